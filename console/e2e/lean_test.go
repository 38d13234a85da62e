package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/fnhq/fn/internal/testutil"
)

const todoCloud = `const AV = require('leanengine')
AV.Cloud.define('whoami', async (req) => {
  console.log('whoami asked with', JSON.stringify(req.params))
  return req.currentUser ? req.currentUser.get('username') : 'nobody'
})
AV.Cloud.beforeSave('Todo', async (req) => {
  const title = req.object.get('title')
  if (!title) throw new AV.Cloud.Error('a todo needs a title')
  console.log('beforeSave saw ' + title)
})
AV.Cloud.afterSave('Todo', async (req) => {
  console.log('afterSave saw ' + req.object.get('title'))
})
`

func leanDev(t *testing.T) (*proc, string) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "todo")
	testutil.WriteFile(t, dir, "fn.yaml", "name: todo\ndialect: lean\nentry: cloud.js\n")
	testutil.WriteFile(t, dir, "package.json", `{"name":"todo","version":"1.0.0","private":true,"dependencies":{"leancloud-storage":"4.15.2","leanengine":"3.8.0"}}`)
	testutil.WriteFile(t, dir, "cloud.js", todoCloud)
	testutil.LinkNodeModules(t, dir)
	return start(t, dir, nil, "/__fn/console/session", 200, "dev", "--port", "{port}"), dir
}

func TestDevLeanConsole(t *testing.T) {
	ctx := tab(t)
	dev, dir := leanDev(t)

	// data: a new class; creating an object fires its hooks, shown as such, and their logs appear
	do(t, ctx, "data panel", chromedp.Navigate(dev.url+"/__fn/console/#data"), waitText(`#data-host`, "No classes yet"),
		setValue(`#data-new-class`, "Todo"), click(`#data-query`), chromedp.WaitVisible(chromedp.CSS(`#data-new`)),
		click(`#data-new`), setValue(`#object-json`, `{"title": "milk", "done": false}`), click(`#object-save`),
		waitText(`#object-result`, "Created"))
	if res := textOf(t, ctx, `#object-result`); !strings.Contains(res, "beforeSave") || !strings.Contains(res, "afterSave") {
		t.Errorf("the create did not report its hooks: %q", res)
	}
	do(t, ctx, "the created object in the table", waitText(`#data-table`, "milk"))
	// a hook that refuses: the error is shown, nothing is written
	do(t, ctx, "refused by beforeSave", click(`#data-new`), setValue(`#object-json`, `{"done": true}`), click(`#object-save`),
		waitText(`#object-result`, "a todo needs a title"))

	// edit with an ACL, then filter with a where
	do(t, ctx, "edit", click(`#data-table tbody tr:first-child`), waitText(`#object-editor`, "Object "),
		setValue(`#object-json`, `{"title": "bread", "done": true}`), setValue(`#object-acl`, `{"*": {"read": true}}`),
		click(`#object-save`), waitText(`#object-result`, "Saved"), waitText(`#data-table`, "bread"))
	do(t, ctx, "more objects", click(`#data-new`), setValue(`#object-json`, `{"title": "eggs"}`), click(`#object-save`),
		waitText(`#object-result`, "Created"), waitText(`#data-table`, "eggs"))
	do(t, ctx, "where", setValue(`#data-where`, `{"title": "bread"}`), click(`#data-query`), waitText(`#data-count`, "of 1"))
	if tbl := textOf(t, ctx, `#data-table`); strings.Contains(tbl, "eggs") {
		t.Errorf("the where let eggs through: %s", tbl)
	}
	do(t, ctx, "ACL as stored", click(`#data-table tbody tr:first-child`), waitJS(`document.querySelector("#object-acl").value.includes('"read": true')`))
	shot(t, ctx, "dev-data")

	// import (no hooks, as imports do) and export
	nd := filepath.Join(t.TempDir(), "todos.jsonl")
	os.WriteFile(nd, []byte("{\"objectId\":\"imp00000000000000000001\",\"title\":\"imported one\"}\n{\"objectId\":\"imp00000000000000000002\",\"title\":\"imported two\"}\n"), 0o644)
	do(t, ctx, "import", setValue(`#data-where`, ``), click(`#data-query`), waitText(`#data-count`, "of 2"),
		chromedp.SetUploadFiles(chromedp.CSS(`#data-import-file`), []string{nd}), waitText(`#data-count`, "of 4"),
		click(`#data-export`), waitText(`#data-export-out`, "exported 4 objects"))

	// the hooks' own logs, live in the logs panel
	do(t, ctx, "hook logs", chromedp.Navigate(dev.url+"/__fn/console/#logs"), waitText(`#logs-rows`, "afterSave saw milk"),
		waitText(`#logs-rows`, "beforeSave saw eggs"))
	if rows := textOf(t, ctx, `#logs-rows`); strings.Contains(rows, "imported one") {
		t.Errorf("an import fired a hook: %s", rows)
	}

	// a hook by hand: runs, writes nothing
	do(t, ctx, "hook by hand", chromedp.Navigate(dev.url+"/__fn/console/#hooks"), setValue(`#hook-class`, "Todo"),
		setValue(`#hook-name`, "beforeSave"), setValue(`#hook-object`, `{"title": "by hand"}`), click(`#hook-run`),
		waitText(`#outcome-status`, "ok"), waitText(`#outcome-logs`, "beforeSave saw by hand"))

	// users: create one, impersonate it, the invoke form runs as that user
	do(t, ctx, "users", chromedp.Navigate(dev.url+"/__fn/console/#users"), setValue(`#user-name`, "ann"), setValue(`#user-password`, "secret-ann-1"),
		click(`#user-create`), waitText(`#users-list`, "ann"), click(`[aria-label="Impersonate ann"]`), waitText(`#impersonating`, "Invoking as ann"))
	do(t, ctx, "invoke as ann", chromedp.Navigate(dev.url+"/__fn/console/#functions"),
		chromedp.Click(chromedp.Search(`//table[@id="functions-table"]//tr[.//span[text()="whoami"]]`)), waitText(`#invoke-as-user`, "ann"),
		click(`#invoke-button`), waitText(`#outcome-result`, `"ann"`))
	// copy as curl: the client's call, as ann, runs in a shell
	do(t, ctx, "copy as curl", setValue(`#invoke-path`, "functions"), click(`#copy-curl`), waitText(`#copy-output`, "/1.1/functions/whoami"))
	if out, err := exec.Command("sh", "-c", textOf(t, ctx, `#copy-output`)).CombinedOutput(); err != nil || strings.TrimSpace(string(out)) != `{"result":"ann"}` {
		t.Errorf("the copied curl: %v %s", err, out)
	}
	do(t, ctx, "copy as curl of /1.1/call", setValue(`#invoke-path`, "call"), click(`#copy-curl`), waitText(`#copy-output`, "/1.1/call/whoami"))
	// /call encodes the result as AV objects, as leanengine does (a string becomes {})
	if out, err := exec.Command("sh", "-c", textOf(t, ctx, `#copy-output`)).CombinedOutput(); err != nil || strings.TrimSpace(string(out)) != `{"result":{}}` {
		t.Errorf("the copied curl of /1.1/call: %v %s", err, out)
	}

	// replay: a call from outside, replayed from the monitor, runs again with the same params
	do(t, ctx, "monitor", chromedp.Navigate(dev.url+"/__fn/console/#requests"), waitText(`#monitor-state`, "live"))
	keys := jsonFieldFile(t, filepath.Join(dir, ".fn", "keys.json"))
	if st, m := call(t, "POST", dev.url+"/1.1/functions/whoami", map[string]string{"X-LC-Id": keys["appId"], "X-LC-Key": keys["appKey"]}, `{"replay": "me"}`); st != 200 {
		t.Fatalf("outside call: %d %v", st, m)
	}
	// the monitor also lists the hook runs of the data edits above
	do(t, ctx, "hook runs in the monitor", waitJS(`[...document.querySelectorAll('#monitor-rows tr')].some((r) => r.cells[1].textContent === "hook" && r.dataset.function.includes("beforeSave"))`))
	do(t, ctx, "replay", waitJS(`!!document.querySelector('#monitor-rows tr[data-function="whoami"]')`),
		click(`#monitor-rows tr[data-function="whoami"]`), waitText(`#request-event`, `"replay": "me"`),
		chromedp.WaitEnabled(chromedp.CSS(`#replay-button`)), click(`#replay-button`), waitText(`#replay-outcome`, `"nobody"`),
		waitText(`#replay-outcome #outcome-logs`, `whoami asked with {"replay":"me"}`),
		waitJS(`document.querySelectorAll('#monitor-rows tr[data-function="whoami"]').length >= 2`))
	shot(t, ctx, "dev-replay")
}

func jsonFieldFile(t *testing.T, path string) map[string]string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, k := range []string{"appId", "appKey", "masterKey"} {
		if strings.Contains(string(b), `"`+k+`"`) {
			out[k] = jsonField(t, string(b), k)
		}
	}
	return out
}
