package localrun

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/fnhq/fn/internal/testutil"
)

// A hook fired by a cloud function's write gets at most the time the function has left (the
// seed: a beforeSave triggered by a function that has run 13 s of 15 gets 2 s).
func TestHookTimeoutBoundByTheCallingFunction(t *testing.T) {
	rec, _ := runDev(t, map[string]string{
		"fn.yaml": "name: hk\ndialect: lean\ndefaults:\n  timeout: 3\nlean:\n  appId: hk-fnDev\n  appKey: hkKey\n  masterKey: hkMaster\n  hookKey: hkHook\n",
		"cloud.js": `const AV = require('leanengine')
AV.Cloud.define('slowSave', async () => {
  await new Promise((r) => setTimeout(r, 2300))
  const o = new AV.Object('Slow')
  o.set('x', 1)
  try { await o.save(); return 'saved' } catch (e) { return e.code + ' ' + e.message }
})
AV.Cloud.beforeSave('Slow', async () => { await new Promise((r) => setTimeout(r, 1500)) })
`,
	}, DevOptions{})
	call := func(method, path, body string) string {
		req, _ := http.NewRequest(method, rec.url+path, strings.NewReader(body))
		req.Header.Set("X-LC-Id", "hk-fnDev")
		req.Header.Set("X-LC-Key", "hkKey")
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	// a client's save gives the hook its full 3 s: 1.5 s is fine
	if got := call(http.MethodPost, "/1.1/classes/Slow", `{"x":2}`); !strings.Contains(got, `"objectId"`) {
		t.Fatalf("client save: %s", got)
	}
	// the function has ~0.7 s left when it saves: the hook is cut off then, not after 3 s
	call(http.MethodPost, "/1.1/functions/slowSave", `{}`)
	testutil.Eventually(t, 5*time.Second, "the bounded hook run", func() bool {
		rec.mu.Lock()
		defer rec.mu.Unlock()
		for _, inv := range rec.invs {
			if inv.Function == "Slow.beforeSave" && inv.Status == 503 {
				if inv.Duration > 1200*time.Millisecond {
					t.Errorf("the hook ran %v: it should have had only the function's remaining ~0.7 s", inv.Duration)
				}
				return true
			}
		}
		return false
	})
}
