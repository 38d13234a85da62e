package e2e

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/input"
	"github.com/chromedp/chromedp"

	"github.com/fnhq/fn/internal/testutil"
)

// setCode replaces the editor's text as typing would: in CodeMirror select all and insert the
// text through the browser's input pipeline; in the fallback textarea set its value.
func setCode(code string) step {
	return func(ctx context.Context, tg *chromedp.Target) (chromedp.Void, error) {
		cm, err := chromedp.Evaluate[bool](`!!document.querySelector(".cm-content")`)(ctx, tg)
		if err != nil {
			return chromedp.Void{}, err
		}
		if !cm {
			return setValue(`#code-text`, code)(ctx, tg)
		}
		if _, err := chromedp.Evaluate[bool](`(() => { const c = document.querySelector(".cm-content"); c.focus(); document.execCommand("selectAll"); return true })()`)(ctx, tg); err != nil {
			return chromedp.Void{}, err
		}
		_, err = cdp.Call(ctx, tg, input.InsertText, input.InsertTextParams{Text: code})
		return chromedp.Void{}, err
	}
}

func wxResult(t *testing.T, url, fn, body string) map[string]any {
	t.Helper()
	res, err := http.Post(url+"/wx/functions/"+fn, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	var m map[string]any
	json.Unmarshal(b, &m)
	r, _ := m["result"].(map[string]any)
	return r
}

// Online editing in fn dev: a syntax error is shown from the server's esbuild check and not
// written; a good save hot-reloads and the next calls see the new code; a new function from
// the template runs.
func TestDevCode(t *testing.T) {
	ctx := tab(t)
	dev, _ := wxDev(t)
	if r := wxResult(t, dev.url, "sum", `{"a": 6, "b": 7}`); r["sum"] != 13.0 {
		t.Fatalf("before the edit: %v", r)
	}
	do(t, ctx, "code panel", chromedp.Navigate(dev.url+"/__fn/console/#code"), waitText(`#source-files`, "functions/sum/index.js"),
		chromedp.Click(chromedp.Search(`//div[@id="source-files"]//tr[.//span[text()="functions/sum/index.js"]]`)),
		waitText(`#code-path`, "functions/sum/index.js"), waitJS(`!!(document.querySelector(".cm-content") || document.querySelector("#code-text"))`))
	editor := "textarea"
	if eval[bool](t, ctx, `!!document.querySelector(".cm-content")`) {
		editor = "codemirror"
	}
	t.Logf("editor: %s", editor)
	if editor == "textarea" {
		// a plain go build: the page says how to get the full editor
		do(t, ctx, "the fallback's note", waitText(`#editor-fallback`, "make build"))
	}

	do(t, ctx, "a syntax error", setCode("exports.main = async (event) => {\n  return { sum: }\n}\n"), click(`#code-save`),
		waitText(`#build-errors`, ":2:"), chromedp.WaitVisible(chromedp.CSS(`#code-force`)))
	if editor == "codemirror" {
		do(t, ctx, "the error in the editor", waitJS(`!!document.querySelector(".cm-lint-marker-error, .cm-lintRange-error")`))
	}
	shot(t, ctx, "dev-code-error")
	if r := wxResult(t, dev.url, "sum", `{"a": 6, "b": 7}`); r["sum"] != 13.0 {
		t.Fatalf("a refused save changed the function: %v", r)
	}

	do(t, ctx, "a good save", setCode("exports.main = async (event) => {\n  console.log('multiplying')\n  return { product: event.a * event.b }\n}\n"),
		click(`#code-save`), waitText(`#save-ok`, "Saved"))
	testutil.Eventually(t, 20*time.Second, "a call to see the new code", func() bool {
		return wxResult(t, dev.url, "sum", `{"a": 6, "b": 7}`)["product"] == 42.0
	})

	do(t, ctx, "a new function", setValue(`#new-name`, "fresh"), click(`#new-create`), waitText(`#code-path`, "fresh"))
	testutil.Eventually(t, 20*time.Second, "the new function to answer", func() bool {
		res, err := http.Post(dev.url+"/wx/functions/fresh", "application/json", strings.NewReader(`{}`))
		if err != nil {
			return false
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode == 200 && strings.Contains(string(b), `"errMsg":"cloud.callFunction:ok"`)
	})
}
