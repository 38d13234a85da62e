package leanstorage

import (
	"net/url"
	"testing"
)

func TestScanAndCQLThroughSDK(t *testing.T) {
	t.Parallel()
	svc := newServiceWith(t, Options{})
	r := runSDK(t, svc, `
  const objs = []
  for (let i = 0; i < 25; i++) objs.push(new AV.Object('Score').set({ n: i, player: 'p' + (i % 3), even: i % 2 === 0 }))
  await AV.Object.saveAll(objs)
  const seen = []
  const it = new AV.Query('Score').greaterThanOrEqualTo('n', 5).scan({ orderedBy: 'n', batchSize: 7 }, { useMasterKey: true })
  for (;;) { const { done, value } = await it.next(); if (done) break; seen.push(value.get('n')) }
  report.scanned = seen
  const byId = []
  const it2 = new AV.Query('Score').scan({ batchSize: 10 }, { useMasterKey: true })
  for (;;) { const { done, value } = await it2.next(); if (done) break; byId.push(value.id) }
  report.byIdCount = byId.length
  report.byIdSorted = byId.every((id, i) => i === 0 || byId[i - 1] < id)
  try { await new AV.Query('Score').scan().next() } catch (e) { report.scanNoMaster = errOf(e) }

  const q1 = await AV.Query.doCloudQuery('select * from Score where player = ? and n > ? order by n desc limit 2', ['p1', 10])
  report.cql = q1.results.map((o) => o.get('n'))
  report.cqlClass = q1.className
  const q2 = await AV.Query.doCloudQuery('select count(*) from Score where even = true or n in (1, 3)')
  report.cqlCount = q2.count
  const q3 = await AV.Query.doCloudQuery("select n, player from Score where player like 'p_' and (n < 2 or n >= 24) order by n")
  report.cqlLike = q3.results.map((o) => [o.get('n'), o.get('player')])
  const q4 = await AV.Query.doCloudQuery('select count(*), * from Score where n is exists limit 1, 2')
  report.cqlBoth = [q4.count, q4.results.map((o) => o.get('n')).length]
  try { await AV.Query.doCloudQuery('select * form Score') } catch (e) { report.cqlBad = errOf(e) }
  try { await AV.Query.doCloudQuery('select * from Score where n = ?', []) } catch (e) { report.cqlMissing = errOf(e) }
  try { await AV.Query.doCloudQuery('delete from Score') } catch (e) { report.cqlDelete = errOf(e) }
`)
	c := reportChecks{t, r}
	c.want("scanned", []int{5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24})
	c.want("byIdCount", 25)
	c.want("byIdSorted", true)
	c.wantErr("scanNoMaster", 119, "That operation isn't allowed for clients.")
	c.want("cql", []int{22, 19})
	c.want("cqlClass", "Score")
	c.want("cqlCount", 15)
	c.want("cqlLike", [][]any{{0, "p0"}, {1, "p1"}, {24, "p0"}})
	c.want("cqlBoth", []int{25, 2})
	c.wantErr("cqlBad", 300, "CQL syntax error: expected from")
	c.wantErr("cqlMissing", 300, "CQL syntax error: more placeholders than pvalues (0)")
	c.wantErr("cqlDelete", 300, "CQL syntax error: only select statements are supported")

	for _, bad := range []url.Values{{"limit": {"1001"}}, {"cursor": {"garbage"}}, {"scan_key": {"bad key"}}} {
		if status, m := svc.do(t, "GET", "scan/classes/Score", bad, "", Auth{Master: true}); status != 400 {
			t.Errorf("scan %v: %d %v", bad, status, m)
		}
	}
}
