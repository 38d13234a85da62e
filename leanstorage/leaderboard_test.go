package leanstorage

import (
	"testing"
	"time"
)

func TestLeaderboardsThroughSDK(t *testing.T) {
	t.Parallel()
	svc := newServiceWith(t, Options{})
	r := runSDK(t, svc, `
  const master = { useMasterKey: true }
  const lb = await AV.Leaderboard.createLeaderboard({ statisticName: 'score', order: AV.LeaderboardOrder.DESCENDING,
    updateStrategy: AV.LeaderboardUpdateStrategy.BETTER, versionChangeInterval: AV.LeaderboardVersionChangeInterval.WEEK }, master)
  report.created = [lb.statisticName, lb.version, lb.nextResetAt instanceof Date]
  try { await AV.Leaderboard.createLeaderboard({ statisticName: 'other' }) } catch (e) { report.noMaster = errOf(e) }
  try { await AV.Leaderboard.createLeaderboard({ statisticName: 'score' }, master) } catch (e) { report.dup = errOf(e) }
  await AV.Leaderboard.createLeaderboard({ statisticName: 'coins', updateStrategy: 'sum' }, master)

  const mk = (name) => new AV.User().set({ username: name, password: 'pw', email: name + '@example.com' }).signUp()
  const a = await mk('ann'), b = await mk('ben'), c = await mk('cat')
  const as = (u) => ({ sessionToken: u.getSessionToken() })
  await AV.Leaderboard.updateStatistics(a, { score: 10 }, as(a))
  await AV.Leaderboard.updateStatistics(b, { score: 30 }, as(b))
  await AV.Leaderboard.updateStatistics(c, { score: 20 }, as(c))
  report.better = (await AV.Leaderboard.updateStatistics(a, { score: 5 }, as(a)))[0].value
  try { await AV.Leaderboard.updateStatistics(b, { score: 999 }, as(a)) } catch (e) { report.forOther = errOf(e) }
  try { await AV.Leaderboard.updateStatistics(a, { nope: 1 }, as(a)) } catch (e) { report.noBoard = errOf(e) }
  await AV.Leaderboard.updateStatistics(a, { coins: 5 }, as(a))
  report.sum = (await AV.Leaderboard.updateStatistics(a, { coins: 7 }, as(a)))[0].value

  const results = await lb.getResults({ limit: 10, selectUserKeys: ['username', 'email'] }, as(a))
  report.ranks = results.map((x) => [x.rank, x.user.get('username'), x.value, x.user.get('email') === undefined])
  report.around = (await lb.getResultsAroundUser(a, { limit: 1 })).map((x) => [x.rank, x.user.id === a.id])
  report.count = await lb.count()
  report.stats = (await AV.Leaderboard.getStatistics(a)).map((s) => [s.name, s.value, s.version]).sort()
  const company = await new AV.Object('Company').save({ name: 'LeanCloud' })
  await a.save({ company }, as(a))
  const inc = await lb.getResults({ selectUserKeys: ['username'], includeUserKeys: 'company', includeStatistics: ['coins'] }, as(a))
  const annRow = inc.find((x) => x.user.id === a.id)
  report.includedCompany = [annRow.user.get('company') instanceof AV.Object, annRow.user.get('company').get('name'), annRow.includedStatistics.map((s) => s.name)]
  try { await lb.getResults({ includeStatistics: ['fake'] }) } catch (e) { report.fakeStat = errOf(e) }
  report.withStats = (await lb.getResultsAroundUser(a, { limit: 1, includeStatistics: ['coins'] }))[0].includedStatistics.map((s) => [s.name, s.value])

  await lb.reset(master)
  report.afterReset = [lb.version, (await lb.getResults()).length, (await lb.getResults({ version: 0 })).length]
  report.archives = (await lb.getArchives({}, master)).map((x) => [x.version, x.status])
  await AV.Leaderboard.deleteStatistics(a, ['coins'], as(a))
  report.coinsAfterDelete = (await AV.Leaderboard.getStatistics(a, { statisticNames: ['coins'] })).length
  await lb.destroy(master)
  try { await AV.Leaderboard.getLeaderboard('score') } catch (e) { report.destroyed = errOf(e) }
`)
	c := reportChecks{t, r}
	c.want("created", []any{"score", 0, true})
	c.wantErr("noMaster", 119, "That operation isn't allowed for clients.")
	c.wantErr("dup", 137, "A unique field was given a value that is already taken")
	c.want("better", 10)
	c.wantErr("forOther", 206, "The user cannot be altered by a client without the session.")
	c.wantErr("noBoard", 1, `Leaderboard "nope" not found.`)
	c.want("sum", 12)
	c.want("ranks", [][]any{{0, "ben", 30, true}, {1, "cat", 20, true}, {2, "ann", 10, false}}) // only ann sees her email
	c.want("around", [][]any{{2, true}})
	c.want("count", 3)
	c.want("stats", [][]any{{"coins", 12, 0}, {"score", 10, 0}})
	c.want("withStats", [][]any{{"coins", 12}})
	c.want("includedCompany", []any{true, "LeanCloud", []string{"coins"}})
	c.wantErr("fakeStat", 1, `Leaderboard "fake" not found.`)
	c.want("afterReset", []int{1, 0, 3})
	c.want("archives", [][]any{{0, "completed"}})
	c.want("coinsAfterDelete", 0)
	c.wantErr("destroyed", 1, `Leaderboard "score" not found.`)
}

// A daily leaderboard moves to a new version at midnight, China time.
func TestLeaderboardResetsOnItsInterval(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 3, 2, 15, 0, 0, 0, time.UTC) // 23:00 in UTC+8
	s := newServiceWith(t, Options{Now: func() time.Time { return now }})
	master := Auth{Master: true}
	if status, m := s.do(t, "POST", "leaderboard/leaderboards", nil, `{"statisticName":"daily","versionChangeInterval":"day"}`, master); status != 200 ||
		m["expiredAt"].(map[string]any)["iso"] != "2026-03-02T16:00:00.000Z" {
		t.Fatalf("create: %d %v", status, m)
	}
	if status, m := s.do(t, "POST", "leaderboard/leaderboards", nil, `{"statisticName":"bad","order":"sideways"}`, master); status != 400 {
		t.Errorf("bad order: %d %v", status, m)
	}
	now = now.Add(59 * time.Minute)
	if _, m := s.do(t, "GET", "leaderboard/leaderboards/daily", nil, "", Auth{}); m["version"] != 0.0 {
		t.Errorf("before midnight: %v", m)
	}
	now = now.Add(2 * time.Minute)
	if _, m := s.do(t, "GET", "leaderboard/leaderboards/daily", nil, "", Auth{}); m["version"] != 1.0 || m["expiredAt"].(map[string]any)["iso"] != "2026-03-03T16:00:00.000Z" {
		t.Errorf("after midnight: %v", m)
	}
	if next, _ := nextReset("week", time.Date(2026, 3, 2, 1, 0, 0, 0, resetZone)); !next.Equal(time.Date(2026, 3, 9, 0, 0, 0, 0, resetZone)) {
		t.Errorf("next week from a Monday: %v", next)
	}
	if next, _ := nextReset("month", time.Date(2026, 12, 31, 1, 0, 0, 0, resetZone)); !next.Equal(time.Date(2027, 1, 1, 0, 0, 0, 0, resetZone)) {
		t.Errorf("next month from December: %v", next)
	}
}
