package localrun

import (
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// The page-code side of a test, in plain Node: wx-cloud.js downloaded from fn dev, two users,
// callbacks and promises, the database under each collection's permission, and storage.
const clientScript = `const { cloud } = require(process.argv[2])
const out = {}
const err = (e) => ({ errCode: e.errCode, errMsg: e.errMsg })
const as = (identity) => cloud.init({ server: process.env.FN_SERVER, identity })
;(async () => {
  as('alice')
  out.call = (await cloud.callFunction({ name: 'whoami', data: { n: 1 } })).result
  out.callback = await new Promise((resolve) => cloud.callFunction({ name: 'whoami', data: { n: 2 },
    success: (res) => resolve({ ok: res.result.n, errMsg: res.errMsg }), fail: (e) => resolve({ fail: e.errMsg }) }))
  out.cloudID = (await cloud.callFunction({ name: 'whoami', data: { n: 3, weRun: cloud.CloudID('cid-1') } })).result.weRun
  out.missing = await new Promise((resolve) => cloud.callFunction({ name: 'ghost', fail: (e) => resolve(e.errMsg) }))
  const db = cloud.database()
  const _ = db.command
  const todos = db.collection('todos')
  const a = await todos.add({ data: { title: 'mine', n: 1 } })
  out.added = a.errMsg
  as('bob')
  await todos.add({ data: { title: 'bobs', n: 5 } })
  out.bobSees = (await todos.where({ n: _.gte(0) }).get()).data.map((d) => d.title)
  try { await todos.doc(a._id).get(); out.bobReadsAlice = 'read' } catch (e) { out.bobReadsAlice = err(e) }
  try { await todos.doc(a._id).remove(); out.bobRemovesAlice = 'removed' } catch (e) { out.bobRemovesAlice = err(e) }
  const posts = db.collection('posts')
  as('alice')
  const p = await posts.add({ data: { title: 'hello' } })
  as('bob')
  out.bobReadsPost = (await posts.doc(p._id).get()).data.title
  try { await posts.doc(p._id).update({ data: { title: 'hacked' } }); out.bobUpdatesPost = 'updated' } catch (e) { out.bobUpdatesPost = err(e) }
  as('alice')
  out.aliceUpdatesPost = (await posts.doc(p._id).update({ data: { title: 'edited', views: _.inc(1) } })).stats.updated
  out.count = (await posts.where({ title: 'edited' }).count()).total
  try { await db.collection('secrets').add({ data: { x: 1 } }); out.secrets = 'added' } catch (e) { out.secrets = err(e) }
  try { await db.collection('notes').where({}).get(); out.notesAll = 'read' } catch (e) { out.notesAll = err(e) }
  out.notesOwn = (await db.collection('notes').where({ _openid: 'oAlice' }).get()).errMsg
  const up = await cloud.uploadFile({ cloudPath: 'avatars/a.txt', fileContent: Buffer.from('avatar') })
  const urls = await cloud.getTempFileURL({ fileList: [up.fileID] })
  out.file = await (await fetch(urls.fileList[0].tempFileURL)).text()
  as('bob')
  out.bobDeletes = (await cloud.deleteFile({ fileList: [up.fileID] })).fileList[0].status
  try { await cloud.uploadFile({ cloudPath: 'avatars/a.txt', fileContent: Buffer.from('bob was here') }); out.bobOverwrites = 'uploaded' } catch (e) { out.bobOverwrites = err(e) }
  as('alice')
  out.deleted = (await cloud.deleteFile({ fileList: [up.fileID] })).fileList[0].status
  console.log(JSON.stringify(out))
})().catch((e) => { console.log(JSON.stringify({ crashed: e.stack || String(e) })); process.exit(1) })
`

func TestMiniProgramClientInNode(t *testing.T) {
	rec, _ := runDev(t, map[string]string{
		"fn.yaml": `name: mp
dialect: wx
env: mp-env
identities:
  alice: {openid: oAlice, appid: wxMP}
  bob: {openid: oBob, appid: wxMP}
wx:
  permissions:
    todos: creator
    posts: read-all
    secrets: admin
    notes: {read: "doc._openid == auth.openid", write: "doc._openid == auth.openid"}
`,
		"functions/whoami/index.js": "const cloud = require('wx-server-sdk')\ncloud.init()\nexports.main = async (event) => ({ n: event.n, openid: cloud.getWXContext().OPENID, weRun: event.weRun })\n",
	}, DevOptions{})
	// collections exist as on the platform (created in the console / by the server SDK)
	for _, c := range []string{"todos", "posts", "secrets", "notes"} {
		res, err := http.Post(rec.url+"/admin", "application/json", strings.NewReader(`{"action":"database.addCollection","envName":"mp-env","collectionName":"`+c+`"}`))
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
	}
	res, err := http.Get(rec.url + "/__fn/wx-cloud.js")
	if err != nil {
		t.Fatal(err)
	}
	src, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 200 || !strings.Contains(res.Header.Get("Content-Type"), "javascript") {
		t.Fatalf("GET /__fn/wx-cloud.js: %d %s", res.StatusCode, res.Header.Get("Content-Type"))
	}
	dir := t.TempDir()
	lib := filepath.Join(dir, "wx-cloud.js")
	os.WriteFile(lib, src, 0o644)
	test := filepath.Join(dir, "page.test.js")
	os.WriteFile(test, []byte(clientScript), 0o644)
	cmd := exec.Command("node", test, lib)
	cmd.Env = append(os.Environ(), "FN_SERVER="+rec.url)
	b, err := cmd.CombinedOutput()
	var out map[string]any
	if jerr := json.Unmarshal(b, &out); jerr != nil || err != nil {
		t.Fatalf("node: %v\n%s", err, b)
	}
	want := func(key string, ok bool) {
		if !ok {
			t.Errorf("%s: %v", key, mustJSON(out[key]))
		}
	}
	call, _ := out["call"].(map[string]any)
	want("call", call != nil && call["openid"] == "oAlice" && call["n"] == 1.0)
	cb, _ := out["callback"].(map[string]any)
	want("callback", cb != nil && cb["ok"] == 2.0 && cb["errMsg"] == "cloud.callFunction:ok")
	want("cloudID", strings.Contains(mustJSON(out["cloudID"]), `"cloudID":"cid-1"`) && strings.Contains(mustJSON(out["cloudID"]), `"openId":"oAlice"`))
	want("missing", strings.Contains(mustJSON(out["missing"]), "ghost"))
	want("added", out["added"] == "collection.add:ok")
	want("bobSees", mustJSON(out["bobSees"]) == `["bobs"]`)
	for _, k := range []string{"bobReadsAlice", "bobRemovesAlice", "bobUpdatesPost", "secrets", "notesAll"} {
		e, _ := out[k].(map[string]any)
		want(k, e != nil && e["errCode"] == -502003.0 && strings.Contains(e["errMsg"].(string), "Permission denied"))
	}
	want("bobReadsPost", out["bobReadsPost"] == "hello")
	want("aliceUpdatesPost", out["aliceUpdatesPost"] == 1.0)
	want("count", out["count"] == 1.0)
	want("notesOwn", out["notesOwn"] == "collection.get:ok")
	want("file", out["file"] == "avatar")
	want("deleted", out["deleted"] == 0.0)
	want("bobDeletes", out["bobDeletes"] == -503002.0)
	bo, _ := out["bobOverwrites"].(map[string]any)
	want("bobOverwrites", bo != nil && bo["errCode"] == -503002.0)
}
