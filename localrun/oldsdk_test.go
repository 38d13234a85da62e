package localrun

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fnhq/fn/internal/testutil"
)

// With FN_TEST_NPM=1: the real old wx-server-sdk versions that ignore TCB_CONTEXT_CNFG (they send
// their API calls to Tencent Cloud's tcb-admin host) reach fn instead: callFunction with the
// caller's identity and a database add.
func TestOldWXServerSDKsReachFn(t *testing.T) {
	if os.Getenv("FN_TEST_NPM") != "1" {
		t.Skip("set FN_TEST_NPM=1 to install old wx-server-sdk versions from npm")
	}
	for _, v := range []string{"1.8.3", "2.1.2", "2.2.0"} {
		t.Run(v, func(t *testing.T) {
			dir := t.TempDir()
			testutil.WriteFile(t, dir, "fn.yaml", "name: old\ndialect: wx\nidentities:\n  zed: {openid: oZed, appid: wxZ}\ndefaultIdentity: zed\n")
			testutil.WriteFile(t, dir, "package.json", `{"name":"old","version":"1.0.0","private":true}`)
			testutil.WriteFile(t, dir, "functions/caller/index.js", `const cloud = require('wx-server-sdk')
cloud.init()
exports.main = async () => {
  const out = {}
  try { out.call = (await cloud.callFunction({ name: 'callee', data: { x: 1 } })).result } catch (e) { out.call = 'fail: ' + (e.errMsg || e.message) }
  try { out.add = (await cloud.database().collection('c').add({ data: { y: 2 } }))._id } catch (e) { out.add = 'fail: ' + (e.errMsg || e.message) }
  try {
    const up = await cloud.uploadFile({ cloudPath: 'old.txt', fileContent: Buffer.from('old sdk file') })
    out.file = (await cloud.downloadFile({ fileID: up.fileID })).fileContent.toString()
  } catch (e) { out.file = 'fail: ' + (e.errMsg || e.message) }
  return out
}
`)
			testutil.WriteFile(t, dir, "functions/callee/index.js", "const cloud = require('wx-server-sdk')\ncloud.init()\nexports.main = async (event) => ({ x: event.x, openid: cloud.getWXContext().OPENID })\n")
			install := exec.Command("npm", "install", "--no-audit", "--no-fund", "wx-server-sdk@"+v)
			install.Dir = dir
			if b, err := install.CombinedOutput(); err != nil {
				t.Fatalf("npm install wx-server-sdk@%s: %v\n%s", v, err, b)
			}
			if _, err := os.Stat(filepath.Join(dir, "node_modules", "wx-server-sdk")); err != nil {
				t.Fatal(err)
			}
			rec, stop := startDevIn(t, dir, DevOptions{})
			defer stop()
			out := callWX(t, rec.url, "caller", `{}`)
			call, _ := out["call"].(map[string]any)
			if call == nil || call["x"] != 1.0 || call["openid"] != "oZed" {
				t.Errorf("callFunction through wx-server-sdk %s: %v", v, out["call"])
			}
			if out["file"] != "old sdk file" {
				t.Errorf("uploadFile/downloadFile through wx-server-sdk %s: %v", v, out["file"])
			}
			// 1.x speaks the legacy database actions (addDocument, queryDocument, …), 2.x the current ones
			add, _ := out["add"].(string)
			if len(add) == 0 || strings.HasPrefix(add, "fail") {
				t.Errorf("database add through wx-server-sdk %s: %v", v, out["add"])
			}
		})
	}
}

// wx-server-sdk 1.8.3 from the fixture (wx-server-sdk-1, no registry needed) under fn dev: its
// database calls go to Tencent Cloud's tcb-admin host, reach fn inside the worker and are
// answered in the legacy format (the drawerApp and Music-blog layouts of docs/compatibility.md:
// count, skip/limit, add with serverDate, a transaction add of a model with `_id: undefined`).
func TestWXServerSDK1DatabaseUnderDev(t *testing.T) {
	dir := t.TempDir()
	testutil.WriteFile(t, dir, "fn.yaml", "name: old1\ndialect: wx\nidentities:\n  zed: {openid: oZed, appid: wxZ}\ndefaultIdentity: zed\n")
	testutil.WriteFile(t, dir, "package.json", `{"name":"old1","version":"1.0.0","private":true}`)
	testutil.LinkNodeModules(t, dir)
	testutil.WriteFile(t, dir, "functions/legacy/index.js", `const cloud = require('wx-server-sdk-1')
cloud.init()
const db = cloud.database()
const _ = db.command
exports.main = async () => {
  const c = db.collection('playlist')
  await db.createCollection('playlist').catch(() => {})
  for (const id of [1, 2, 3]) await c.add({ data: { id, name: 'p' + id, createTime: db.serverDate() } })
  const total = (await c.count()).total
  const page = (await c.orderBy('id', 'asc').skip(1).limit(1).get()).data.map((d) => d.id)
  const t = await db.startTransaction()
  await t.collection('playlist').add({ data: { _id: undefined, id: 4, name: 'in tx' } })
  await t.commit()
  const big = (await c.where({ id: _.gte(3) }).get()).data.map((d) => ({ id: d.id, openid: d._openid, dated: d.createTime instanceof Date }))
  const agg = (await c.aggregate().group({ _id: null, n: db.command.aggregate.sum('$id') }).end()).list
  return { total, page, big, agg }
}
`)
	rec, stop := startDevIn(t, dir, DevOptions{})
	defer stop()
	out := callWX(t, rec.url, "legacy", `{}`)
	b, _ := json.Marshal(out)
	want := `{"agg":[{"_id":null,"n":10}],"big":[{"dated":true,"id":3,"openid":"oZed"},{"dated":false,"id":4,"openid":"oZed"}],"page":[2],"total":3}`
	if string(b) != want {
		t.Errorf("wx-server-sdk 1.8.3 under fn dev:\n got %s\nwant %s", b, want)
	}
}

// wx-server-sdk 2.2.0 from the fixture (wx-server-sdk-2): @cloudbase/database 1.0.x sends
// database.aggregate and JSON.parses data.list; the answer is one string of EJSON strings.
func TestWXServerSDK2AggregateUnderDev(t *testing.T) {
	dir := t.TempDir()
	testutil.WriteFile(t, dir, "fn.yaml", "name: old2\ndialect: wx\n")
	testutil.WriteFile(t, dir, "package.json", `{"name":"old2","version":"1.0.0","private":true}`)
	testutil.LinkNodeModules(t, dir)
	testutil.WriteFile(t, dir, "functions/agg/index.js", `const cloud = require('wx-server-sdk-2')
cloud.init()
const db = cloud.database()
const $ = db.command.aggregate
exports.main = async () => {
  await db.createCollection('t').catch(() => {})
  const c = db.collection('t')
  for (const [g, n] of [['a', 1], ['a', 2], ['b', 5]]) await c.add({ data: { g, n, at: new Date(Date.UTC(2024, 0, n)) } })
  const r = await c.aggregate().match({ n: db.command.lt(5) }).group({ _id: '$g', s: $.sum('$n'), last: $.max('$at') }).end()
  return { list: r.list.map((d) => ({ _id: d._id, s: d.s, last: d.last instanceof Date ? d.last.toISOString() : typeof d.last })) }
}
`)
	rec, stop := startDevIn(t, dir, DevOptions{})
	defer stop()
	out := callWX(t, rec.url, "agg", `{}`)
	b, _ := json.Marshal(out)
	if want := `{"list":[{"_id":"a","last":"2024-01-02T00:00:00.000Z","s":3}]}`; string(b) != want {
		t.Errorf("aggregate through wx-server-sdk 2.2.0:\n got %s\nwant %s", b, want)
	}
}
