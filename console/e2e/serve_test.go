package e2e

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/fnhq/fn/internal/testutil"
)

const adminToken = "console-e2e-admin-token"

const timers = "timers:\n  nightly:\n    function: nightly\n    cron: '0 0 3 * * ?'\n"

const shopCloud = `const AV = require('leanengine')
AV.Cloud.define('hello', async (req) => {
  console.log('hello called with', JSON.stringify(req.params))
  return 'hello ' + (req.params.name || 'world')
})
AV.Cloud.define('whoami', async (req) => (req.currentUser ? req.currentUser.get('username') : 'nobody'))
AV.Cloud.define('nightly', async () => { console.log('nightly ran on the server') })
AV.Cloud.afterSave('Todo', async (req) => { console.log('afterSave in shop: ' + req.object.get('title')) })
`

type served struct {
	*proc
	env     []string
	appID   string
	master  string
	appKey  string
	project string
}

// shopServe starts fn serve with an app "shop" that has two versions in production (the second
// changes a timeout).
func shopServe(t *testing.T) *served {
	t.Helper()
	data := filepath.Join(t.TempDir(), "data")
	// --sdk-dir: online deploys build against the fixture's leanengine
	s := &served{proc: start(t, t.TempDir(), []string{"FN_ADMIN_TOKEN=" + adminToken}, "/__fn/console/session", 200,
		"serve", "--listen", "127.0.0.1:{port}", "--data-dir", data, "--sdk-dir", filepath.Dir(testutil.NodeModules(t)))}
	s.env = []string{"FN_SERVER=" + s.url, "FN_TOKEN=" + adminToken, "XDG_CONFIG_HOME=" + filepath.Join(t.TempDir(), "cfg")}
	out := fnRun(t, ".", s.env, "apps", "create", "shop", "--json")
	s.appID = jsonField(t, out, "appId")
	s.master = jsonField(t, out, "masterKey")
	s.appKey = jsonField(t, out, "appKey")
	dir := filepath.Join(t.TempDir(), "shop")
	testutil.WriteFile(t, dir, "fn.yaml", "name: shop\ndialect: lean\nentry: cloud.js\nruntime: node18\ndefaults:\n  timeout: 5\n  memory: 256\n"+timers)
	testutil.WriteFile(t, dir, "package.json", `{"name":"shop","version":"1.0.0","private":true,"dependencies":{"leancloud-storage":"4.15.2","leanengine":"3.8.0"}}`)
	testutil.WriteFile(t, dir, "cloud.js", shopCloud)
	testutil.LinkNodeModules(t, dir)
	fnRun(t, dir, s.env, "deploy", "--app", "shop", "--env", "production", "-m", "first")
	testutil.WriteFile(t, dir, "fn.yaml", "name: shop\ndialect: lean\nentry: cloud.js\nruntime: node18\ndefaults:\n  timeout: 9\n  memory: 256\n"+timers)
	fnRun(t, dir, s.env, "deploy", "--app", "shop", "--env", "production", "-m", "longer timeout")
	s.project = dir
	return s
}

func jsonField(t *testing.T, out, key string) string {
	t.Helper()
	i := strings.Index(out, `"`+key+`"`)
	if i < 0 {
		t.Fatalf("no %s in %s", key, out)
	}
	rest := out[i+len(key)+2:]
	rest = rest[strings.Index(rest, `"`)+1:]
	return rest[:strings.Index(rest, `"`)]
}

func TestServeConsole(t *testing.T) {
	ctx := tab(t)
	s := shopServe(t)

	// the login form; a wrong token is refused with a message
	do(t, ctx, "login page", chromedp.Navigate(s.url+"/__fn/console"), chromedp.WaitVisible(chromedp.CSS(`#login-token`)),
		chromedp.SendKeys(chromedp.CSS(`#login-token`), "not-the-token"), click(`#login-submit`),
		waitText(`#login-token-err`, "neither the admin token nor"))
	shot(t, ctx, "serve-login")
	// before logging in the admin API refuses the page
	if st := eval[int](t, ctx, `fetch("/__fn/apps").then((r) => r.status)`); st != 401 {
		t.Errorf("admin API before login: %d, want 401", st)
	}
	do(t, ctx, "log in as admin", setValue(`#login-token`, adminToken), click(`#login-submit`),
		chromedp.WaitVisible(chromedp.CSS(`#functions-table`)), waitText(`#app-picker`, "shop"), waitText(`#who`, "admin"))
	if cookie := eval[string](t, ctx, `document.cookie`); strings.Contains(cookie, "fn_console=") {
		t.Errorf("the session cookie is readable by scripts: %q", cookie)
	}

	// invoke as the server, with the call's logs
	do(t, ctx, "invoke hello",
		chromedp.Click(chromedp.Search(`//table[@id="functions-table"]//tr[.//span[text()="hello"]]`)),
		waitText(`#invoke-name`, "hello"), setValue(`#invoke-data`, `{"name": "console"}`), click(`#invoke-button`),
		waitText(`#outcome-result`, `"hello console"`), waitText(`#outcome-logs`, `hello called with {"name":"console"}`))
	do(t, ctx, "copy as fn invoke", click(`#copy-fn`), waitText(`#copy-output`, "--remote"))
	if cmd := textOf(t, ctx, `#copy-output`); cmd != `fn invoke hello --data '{"name":"console"}' --remote --app 'shop' --env production` {
		t.Errorf("copy as fn invoke: %q", cmd)
	}

	// the monitor shows a client's call from outside
	do(t, ctx, "monitor", chromedp.Navigate(s.url+"/__fn/console/#requests"), waitText(`#monitor-state`, "live"))
	if st, m := call(t, "POST", s.url+"/1.1/functions/hello", map[string]string{"X-LC-Id": s.appID, "X-LC-Key": s.appKey}, `{"name":"outside"}`); st != 200 {
		t.Fatalf("client call: %d %v", st, m)
	}
	do(t, ctx, "the client call in the monitor", waitJS(`document.querySelectorAll('#monitor-rows tr[data-function="hello"]').length >= 2`),
		click(`#monitor-rows tr:first-child`), waitText(`#request-logs`, `hello called with {"name":"outside"}`))

	// versions: two, and the diff of their config
	do(t, ctx, "versions", chromedp.Navigate(s.url+"/__fn/console/#versions"), waitText(`#diff-out`, "timeout"))
	diff := textOf(t, ctx, `#diff-out`)
	if !strings.Contains(diff, `- bundles[cloud].config.timeout = 5`) || !strings.Contains(diff, `+ bundles[cloud].config.timeout = 9`) {
		t.Errorf("config diff: %s", diff)
	}
	shot(t, ctx, "serve-versions")

	// the double-submit token: a same-origin POST without it is refused, with it goes through
	noToken := eval[int](t, ctx, fmt.Sprintf(`fetch("/__fn/apps/%s/invoke/production/hello", {method: "POST", headers: {"Content-Type": "application/json"}, body: "{}"}).then((r) => r.status)`, s.appID))
	if noToken != 403 {
		t.Errorf("POST without the CSRF token: %d, want 403", noToken)
	}
	withToken := eval[int](t, ctx, fmt.Sprintf(`fetch("/__fn/apps/%s/invoke/production/hello", {method: "POST", headers: {"Content-Type": "application/json", "X-Fn-Csrf": document.cookie.match(/fn_console_csrf=([^;]+)/)[1]}, body: "{}"}).then((r) => r.status)`, s.appID))
	if withToken != 200 {
		t.Errorf("POST with the CSRF token: %d, want 200", withToken)
	}

	// a cross-site page posting a form into the admin API with the session cookie gets 403
	evil := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		fmt.Fprintf(w, `<form id="f" method="POST" enctype="text/plain" action="%s/__fn/apps/%s/invoke/production/hello"><input name='{"data":{"name":"evil"},"x":"' value='"}'></form><script>document.getElementById("f").submit()</script>`, s.url, s.appID)
	}))
	defer evil.Close()
	do(t, ctx, "cross-site form post", chromedp.Navigate(evil.URL), waitJS(`location.href.includes("/invoke/production/hello")`),
		waitText(`body`, "refused"))
	if body := textOf(t, ctx, `body`); !strings.Contains(body, `"code":"csrf"`) {
		t.Errorf("cross-site POST answer: %s", body)
	}
	if st, m := call(t, "GET", s.url+"/__fn/apps/"+s.appID+"/logs?search=evil", map[string]string{"Authorization": "Bearer " + adminToken}, ""); st != 200 || len(m) != 0 {
		t.Errorf("the cross-site call ran: %d %v", st, m)
	}

	// logout: the cookie is worthless afterwards
	do(t, ctx, "logout", chromedp.Navigate(s.url+"/__fn/console/"), chromedp.WaitVisible(chromedp.CSS(`#functions-table`)),
		click(`#logout`), chromedp.WaitVisible(chromedp.CSS(`#login-token`)), waitText(`#login-token-err`, "Logged out"))
	if st := eval[int](t, ctx, fmt.Sprintf(`fetch("/__fn/apps/%s/functions/production").then((r) => r.status)`, s.appID)); st != 401 {
		t.Errorf("admin API after logout: %d, want 401", st)
	}

	// the app's master key: an app-scoped session, without the app list
	do(t, ctx, "log in with the master key", setValue(`#login-token`, s.master), click(`#login-submit`),
		chromedp.WaitVisible(chromedp.CSS(`#functions-table`)), waitText(`#who`, "master key"), waitText(`#where`, "shop"))
	if st := eval[int](t, ctx, `fetch("/__fn/apps").then((r) => r.status)`); st != 401 {
		t.Errorf("server-wide route with a master-key session: %d, want 401", st)
	}
}

// Online editing in fn serve: a function written in the page, a syntax error refused, a history
// of revisions, the merged cloud.js, and a deploy to staging that a client call then runs.
func TestServeOnline(t *testing.T) {
	ctx := tab(t)
	s := shopServe(t)
	do(t, ctx, "log in", chromedp.Navigate(s.url+"/__fn/console/#code"), chromedp.WaitVisible(chromedp.CSS(`#login-token`)),
		setValue(`#login-token`, s.master), click(`#login-submit`), chromedp.WaitVisible(chromedp.CSS(`#new-name`)))
	do(t, ctx, "a new online function", setValue(`#new-name`, "greet"), click(`#new-create`), waitText(`#code-path`, "greet"),
		waitJS(`!!(document.querySelector(".cm-content") || document.querySelector("#code-text"))`),
		setCode("return 'hi ' + request.params.name + ' (v1)'\n"), click(`#code-save`), waitText(`#save-ok`, "Saved r1"))
	do(t, ctx, "a syntax error", setCode("return 'hi ' + (request.params.name\n"), click(`#code-save`), waitText(`#build-errors`, "greet"))
	do(t, ctx, "the second revision", setCode("console.log('greeting', request.params.name)\nreturn 'hi ' + request.params.name + ' (v2)'\n"),
		click(`#code-save`), waitText(`#save-ok`, "Saved r2"), waitText(`#history`, "r2"), waitText(`#history`, "r1"),
		waitText(`#online-list`, "greet"))
	do(t, ctx, "preview cloud.js", click(`#preview-button`), waitText(`#preview-out`, `AV.Cloud.define("greet"`))
	if p := textOf(t, ctx, `#preview-out`); !strings.Contains(p, "(v2)") || strings.Contains(p, "(v1)") {
		t.Errorf("the merged cloud.js is not the latest revision:\n%s", p)
	}
	do(t, ctx, "deploy to staging", setValue(`#deploy-env`, "staging"), setValue(`#deploy-message`, "from the console"),
		click(`#deploy-button`), waitText(`#deploy-result`, "to staging"))
	shot(t, ctx, "serve-online")
	st, m := call(t, "POST", s.url+"/1.1/functions/greet", map[string]string{"X-LC-Id": s.appID, "X-LC-Key": s.appKey, "X-LC-Prod": "0"}, `{"name":"ann"}`)
	if st != 200 || m["result"] != "hi ann (v2)" {
		t.Fatalf("staging after the online deploy: %d %v", st, m)
	}
	// the deploy is a normal version: the versions panel lists it with its message
	do(t, ctx, "versions of staging", chromedp.Navigate(s.url+"/__fn/console/#versions"), chromedp.WaitVisible(chromedp.CSS(`#env-picker`)),
		setValue(`#env-picker`, "staging"), waitText(`main`, "from the console"))
}

// The other panels against fn serve: data with its hooks, the hooks' logs live, a hook by hand,
// users and impersonation, timers, and the outbox of a lean app.
func TestServePanels(t *testing.T) {
	ctx := tab(t)
	s := shopServe(t)
	do(t, ctx, "log in", chromedp.Navigate(s.url+"/__fn/console/#data"), chromedp.WaitVisible(chromedp.CSS(`#login-token`)),
		setValue(`#login-token`, adminToken), click(`#login-submit`), chromedp.WaitVisible(chromedp.CSS(`#data-new-class`)))
	do(t, ctx, "create a Todo", setValue(`#data-new-class`, "Todo"), click(`#data-query`), chromedp.WaitVisible(chromedp.CSS(`#data-new`)),
		click(`#data-new`), setValue(`#object-json`, `{"title": "ship it"}`), click(`#object-save`), waitText(`#object-result`, "Created"))
	if res := textOf(t, ctx, `#object-result`); !strings.Contains(res, "afterSave") {
		t.Errorf("the create did not report its hook: %q", res)
	}
	do(t, ctx, "the hook's log, live", chromedp.Navigate(s.url+"/__fn/console/#logs"), waitText(`#logs-rows`, "afterSave in shop: ship it"))
	do(t, ctx, "hook by hand", chromedp.Navigate(s.url+"/__fn/console/#hooks"), setValue(`#hook-class`, "Todo"), setValue(`#hook-name`, "afterSave"),
		setValue(`#hook-object`, `{"title": "by hand"}`), click(`#hook-run`), waitText(`#outcome-logs`, "afterSave in shop: by hand"))
	do(t, ctx, "users", chromedp.Navigate(s.url+"/__fn/console/#users"), setValue(`#user-name`, "bo"), setValue(`#user-password`, "secret-bo-12"),
		click(`#user-create`), waitText(`#users-list`, "bo"), click(`[aria-label="Impersonate bo"]`), waitText(`#impersonating`, "Invoking as bo"))
	do(t, ctx, "invoke as bo", chromedp.Navigate(s.url+"/__fn/console/#functions"),
		chromedp.Click(chromedp.Search(`//table[@id="functions-table"]//tr[.//span[text()="whoami"]]`)), waitText(`#invoke-as-user`, "bo"),
		click(`#invoke-button`), waitText(`#outcome-result`, `"bo"`))
	do(t, ctx, "timers", chromedp.Navigate(s.url+"/__fn/console/#timers"), waitText(`#timers`, "0 0 3 * * ?"),
		click(`[aria-label="Trigger nightly"]`), waitJS(`document.querySelector('#timers tr[data-timer="nightly"]').dataset.runs === "1"`))
	do(t, ctx, "the timer's run in the monitor", chromedp.Navigate(s.url+"/__fn/console/#requests"),
		waitJS(`[...document.querySelectorAll('#monitor-rows tr')].some((r) => r.cells[1].textContent === "timer" && r.dataset.function === "nightly")`))
	do(t, ctx, "outbox", chromedp.Navigate(s.url+"/__fn/console/#outbox"), waitText(`#outbox`, "only wx environments"))
}
