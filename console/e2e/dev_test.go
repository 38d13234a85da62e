package e2e

import (
	"context"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"

	"github.com/fnhq/fn/internal/testutil"
)

const sumJS = `const cloud = require('wx-server-sdk')
cloud.init({ env: cloud.DYNAMIC_CURRENT_ENV })
exports.main = async (event) => {
  console.log('adding', event.a, event.b)
  return { sum: event.a + event.b, openid: cloud.getWXContext().OPENID }
}
`

const tickJS = `exports.main = async () => { console.log('tick ran'); return 'ticked' }
`

// wxDev starts fn dev on a wx project with a function, a saved event, identities and a timer.
func wxDev(t *testing.T) (*proc, string) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "cdev")
	testutil.WriteFile(t, dir, "fn.yaml", "name: cdev\ndialect: wx\nenv: cdev-env\n"+
		"identities:\n  alice: {openid: oAlice, appid: wxA}\n  bob: {openid: oBob, appid: wxB}\n"+
		"timers:\n  nightly:\n    function: tick\n    cron: '0 0 3 * * ?'\n")
	testutil.WriteFile(t, dir, "package.json", `{"name":"cdev","version":"1.0.0","private":true,"dependencies":{"wx-server-sdk":"4.0.2"}}`)
	testutil.WriteFile(t, dir, "functions/sum/index.js", sumJS)
	testutil.WriteFile(t, dir, "functions/tick/index.js", tickJS)
	testutil.WriteFile(t, dir, "events/sum/answer.json", `{"a": 40, "b": 2}`)
	testutil.LinkNodeModules(t, dir)
	return start(t, dir, nil, "/__fn/console/session", 200, "dev", "--port", "{port}"), dir
}

func TestDevConsole(t *testing.T) {
	ctx := tab(t)
	dev, _ := wxDev(t)
	if !strings.Contains(dev.stderr.String(), dev.url+"/__fn/console/") {
		t.Errorf("fn dev's banner does not name the console:\n%s", dev.stderr)
	}

	// the page, and how fast it paints
	do(t, ctx, "open the console",
		chromedp.Navigate(dev.url+"/__fn/console"),
		chromedp.WaitVisible(chromedp.CSS(`#functions-table`)),
		waitJS(`performance.getEntriesByName("first-contentful-paint").length > 0`))
	fcp := eval[float64](t, ctx, `performance.getEntriesByName("first-contentful-paint")[0].startTime`)
	t.Logf("first contentful paint: %.0f ms", fcp)

	// functions: pick sum, a saved event, an identity; invalid JSON is refused before sending
	do(t, ctx, "invoke form",
		chromedp.Click(chromedp.Search(`//table[@id="functions-table"]//tr[.//span[text()="sum"]]`)),
		waitText(`#invoke-name`, "sum"),
		setValue(`#invoke-data`, `{"a": 1,`),
		waitText(`#invoke-data-err`, "Not valid JSON"))
	if !eval[bool](t, ctx, `document.querySelector("#invoke-button").disabled`) {
		t.Error("the invoke button is enabled with invalid JSON")
	}
	do(t, ctx, "saved event and identity",
		setValue(`#invoke-event`, "answer"),
		waitJS(`document.querySelector("#invoke-data").value.includes('"a": 40')`),
		setValue(`#invoke-identity`, "alice"),
		click(`#invoke-button`),
		waitText(`#outcome-result`, `"sum": 42`),
		waitText(`#outcome-result`, `"openid": "oAlice"`),
		waitText(`#outcome-logs`, "adding 40 2"),
		waitText(`#recent-calls`, "ms"))
	shot(t, ctx, "dev-functions")

	// copy as fn invoke / curl: the curl really runs
	do(t, ctx, "copy as fn invoke", click(`#copy-fn`), waitText(`#copy-output`, "fn invoke sum"))
	cmd := textOf(t, ctx, `#copy-output`)
	if cmd != `fn invoke sum --data '{"a":40,"b":2}' --as 'alice'` {
		t.Errorf("copy as fn invoke: %q", cmd)
	}
	do(t, ctx, "copy as curl", click(`#copy-curl`), waitText(`#copy-output`, "curl -sS"))
	cmd = textOf(t, ctx, `#copy-output`)
	out, err := exec.Command("sh", "-c", cmd).CombinedOutput()
	if err != nil || !strings.Contains(string(out), `"sum":42`) || !strings.Contains(string(out), `"openid":"oAlice"`) {
		t.Errorf("the copied curl %q: %v %s", cmd, err, out)
	}

	// the request monitor shows a call made from outside the page, with its logs
	do(t, ctx, "request monitor", chromedp.Navigate(dev.url+"/__fn/console/#requests"), waitText(`#monitor-state`, "live"))
	if status, m := call(t, "POST", dev.url+"/wx/functions/sum", map[string]string{"X-Fn-Identity": "bob"}, `{"a": 5, "b": 6}`); status != 200 {
		t.Fatalf("outside call: %d %v", status, m)
	}
	do(t, ctx, "the outside call in the monitor",
		waitJS(`document.querySelectorAll('#monitor-rows tr[data-function="sum"]').length >= 3`),
		waitText(`#monitor-rows tr:first-child`, "bob"),
		click(`#monitor-rows tr:first-child`),
		waitText(`#request-record`, `"identity": "bob"`),
		waitText(`#request-logs`, "adding 5 6"))
	shot(t, ctx, "dev-requests")

	// live logs with a filter
	do(t, ctx, "logs", chromedp.Navigate(dev.url+"/__fn/console/#logs"), waitText(`#logs-state`, "live"),
		setValue(`#logs-text`, "adding 7"), click(`#logs-apply`), waitText(`#logs-state`, "live"))
	call(t, "POST", dev.url+"/wx/functions/sum", nil, `{"a": 7, "b": 8}`)
	call(t, "POST", dev.url+"/wx/functions/sum", nil, `{"a": 9, "b": 9}`)
	do(t, ctx, "the new log line, live", waitText(`#logs-rows`, "adding 7 8"))
	rows := textOf(t, ctx, `#logs-rows`)
	if strings.Contains(rows, "adding 9 9") || strings.Contains(rows, "adding 40 2") {
		t.Errorf("the text filter let other lines through: %s", rows)
	}
	shot(t, ctx, "dev-logs")

	// timers: next fire time, trigger now, disable and enable
	do(t, ctx, "timers", chromedp.Navigate(dev.url+"/__fn/console/#timers"),
		waitJS(`!!document.querySelector('#timers tr[data-timer="nightly"]')`),
		waitText(`#timers tr[data-timer="nightly"]`, "0 0 3 * * ?"),
		click(`[aria-label="Trigger nightly"]`),
		waitJS(`document.querySelector('#timers tr[data-timer="nightly"]').dataset.runs === "1"`),
		click(`[aria-label="Disable nightly"]`),
		waitJS(`!!document.querySelector('[aria-label="Enable nightly"]')`),
		click(`[aria-label="Enable nightly"]`),
		waitJS(`!!document.querySelector('[aria-label="Disable nightly"]')`))
	shot(t, ctx, "dev-timers")
	if status, m := call(t, "GET", dev.url+"/__fn/apps/-/logs?function=tick", nil, ""); status != 200 {
		t.Errorf("tick logs: %d %v", status, m)
	}

	// a wx collection in the data panel
	do(t, ctx, "wx data", chromedp.Navigate(dev.url+"/__fn/console/#data"), chromedp.WaitVisible(chromedp.CSS(`#data-new-class`)),
		setValue(`#data-new-class`, "todos"), setValue(`#data-new-kind`, "wx"), click(`#data-query`), chromedp.WaitVisible(chromedp.CSS(`#data-new`)),
		click(`#data-new`), setValue(`#object-json`, `{"title": "from the console"}`), click(`#object-save`),
		waitText(`#object-result`, "Created"), waitText(`#data-table`, "from the console"), waitText(`#data-class`, "todos (wx, 1)"))
	if st, m := call(t, "GET", dev.url+"/__fn/apps/-/data/dev/wx/todos", nil, ""); st != 200 || m["count"] != 1.0 {
		t.Errorf("the wx collection after the console's create: %d %v", st, m)
	}

	// outbox and versions render (fn dev has no versions: it says so)
	do(t, ctx, "outbox", chromedp.Navigate(dev.url+"/__fn/console/#outbox"), waitText(`#outbox`, "empty"))
	do(t, ctx, "versions", chromedp.Navigate(dev.url+"/__fn/console/#versions"), waitText(`main`, "versions are fn serve's"))

	// keyboard: the nav is reachable with Tab and the focused link shows a focus ring
	do(t, ctx, "keyboard focus", chromedp.Navigate(dev.url+"/__fn/console/#functions"), chromedp.WaitVisible(chromedp.CSS(`#functions-table`)),
		chromedp.Focus(chromedp.CSS(`nav a[href="#logs"]`)), chromedp.KeyEvent("\r"), waitJS(`location.hash === "#logs"`),
		chromedp.WaitVisible(chromedp.CSS(`#logs-function`)), chromedp.KeyEvent("\t"), chromedp.KeyEvent("\t"))
	outline := eval[string](t, ctx, `getComputedStyle(document.activeElement).outlineStyle + " on " + document.activeElement.tagName`)
	if strings.HasPrefix(outline, "none") || outline == "" {
		t.Errorf("focused control has no visible focus outline (%q)", outline)
	}
	// labels: every control has one
	do(t, ctx, "labels", chromedp.Navigate(dev.url+"/__fn/console/#functions"), chromedp.WaitVisible(chromedp.CSS(`#invoke-data`)),
		// the list shows each function's source file and its last call
		waitText(`#functions-table`, "functions/sum/index.js"), waitText(`#functions-table`, "200 · "),
		// a row is picked with the keyboard too
		chromedp.Focus(chromedp.Search(`//table[@id="functions-table"]//tr[.//span[text()="tick"]]`)), chromedp.KeyEvent("\r"),
		waitText(`#invoke-name`, "tick"))
	unlabeled := eval[[]string](t, ctx, `[...document.querySelectorAll("input, select, textarea")].filter((e) => !(e.labels && e.labels.length) && !e.getAttribute("aria-label")).map((e) => e.id || e.outerHTML)`)
	if len(unlabeled) > 0 {
		t.Errorf("controls without a label: %v", unlabeled)
	}

	// the theme follows the system's colour scheme
	for _, c := range []struct{ scheme, bg string }{{"dark", "rgb(21, 24, 29)"}, {"light", "rgb(255, 255, 255)"}} {
		do(t, ctx, c.scheme+" scheme", colorScheme(c.scheme),
			waitJS(`getComputedStyle(document.body).backgroundColor === "`+c.bg+`"`))
		if c.scheme == "dark" {
			shot(t, ctx, "dev-functions-dark")
		}
	}
}

// colorScheme emulates the system's prefers-color-scheme.
func colorScheme(scheme string) step {
	return chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		_, err := cdp.Call(ctx, tg, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{
			Features: []*emulation.MediaFeature{{Name: "prefers-color-scheme", Value: scheme}}})
		return err
	})
}
