package admin_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/fnhq/fn/api"
)

const wxEcho = `const cloud = require('wx-server-sdk')
cloud.init()
let n = 0
exports.main = async (event) => { n++; console.log('echo', n); return { event, openid: cloud.getWXContext().OPENID, n } }
`

// A call made by a mini-program client is recorded with its event and user; a replay runs the
// same function with the same event as the same user, as a new call.
func TestReplayRepeatsACallInFnDev(t *testing.T) {
	base, _ := startDev(t, map[string]string{
		"fn.yaml":                 "name: rp\ndialect: wx\n",
		"functions/echo/index.js": wxEcho,
	})
	req, _ := http.NewRequest("POST", base+"/wx/functions/echo", strings.NewReader(`{"a":1,"s":"x"}`))
	req.Header.Set("X-WX-OPENID", "o-replay-user")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var first struct {
		Result    map[string]any `json:"result"`
		RequestID string         `json:"requestID"`
	}
	json.NewDecoder(resp.Body).Decode(&first)
	resp.Body.Close()
	if first.RequestID == "" || first.Result["openid"] != "o-replay-user" {
		t.Fatalf("first call: %+v", first)
	}
	rec := invocation(t, base, "", "-", first.RequestID)
	if !rec.Replayable || string(rec.Request) != `{"a":1,"s":"x"}` || rec.Caller == nil || rec.Caller.OpenID != "o-replay-user" {
		t.Fatalf("the record should keep the event and the user: %+v (caller %+v)", rec, rec.Caller)
	}
	var out api.Outcome
	must(t, 200, base, "", "POST", "/__fn/apps/-/replay/dev/"+first.RequestID, nil, &out)
	var res map[string]any
	json.Unmarshal(out.Result, &res)
	if out.Error != nil || out.RequestID == first.RequestID || res["openid"] != "o-replay-user" || res["n"] != 2.0 {
		t.Fatalf("replay: %+v result %s", out, out.Result)
	}
	if ev, _ := json.Marshal(res["event"]); !strings.Contains(string(ev), `"a":1`) || !strings.Contains(string(ev), `"s":"x"`) {
		t.Fatalf("the replay got event %s", ev)
	}
	if len(out.Logs) == 0 || !strings.Contains(out.Logs[0].Message, "echo 2") {
		t.Errorf("the replay's own logs: %+v", out.Logs)
	}
	// the replay is itself a call, recorded and replayable
	if r := invocation(t, base, "", "-", out.RequestID); !r.Replayable {
		t.Errorf("the replay's record: %+v", r)
	}
	// unknown ids, bad ids, and records that are no call
	failsWith(t, 404, base, "", "POST", "/__fn/apps/-/replay/dev/0123456789abcdef", nil, "0123456789abcdef")
	failsWith(t, 400, base, "", "POST", "/__fn/apps/-/replay/dev/a.b", nil, "requestId")
	failsWith(t, 400, base, "", "POST", "/__fn/apps/-/replay/staging/"+first.RequestID, nil, "dev")
}

// A request over the bound is not kept: the record says so and a replay is refused with 422.
func TestReplayRefusesACallWhoseRequestWasNotKept(t *testing.T) {
	base, _ := startDev(t, map[string]string{
		"fn.yaml":                 "name: rp\ndialect: wx\n",
		"functions/echo/index.js": "exports.main = async (event) => Object.keys(event).length\n",
	})
	big := `{"blob":"` + strings.Repeat("x", api.MaxReplayRequest) + `"}`
	var out api.Outcome
	must(t, 200, base, "", "POST", "/__fn/apps/-/invoke/dev/echo", map[string]any{"data": json.RawMessage(big)}, &out)
	rec := invocation(t, base, "", "-", out.RequestID)
	if rec.Replayable || rec.Request != nil {
		t.Fatalf("a %d-byte request should not be kept: %+v", len(big), rec.Replayable)
	}
	e := failsWith(t, 422, base, "", "POST", "/__fn/apps/-/replay/dev/"+out.RequestID, nil, "not kept")
	if e.Code != "not_replayable" {
		t.Errorf("code %q", e.Code)
	}
}

// On fn serve a replay runs on the environment's serving version; the app's master key may
// replay, another app's may not.
func TestReplayOnFnServeWithTheAppsKeyOnly(t *testing.T) {
	s := startServe(t)
	files := map[string]string{"fn.yaml": "name: rs\ndialect: wx\n", "functions/echo/index.js": wxEcho}
	a1 := s.deploy(t, "one", "production", files)
	a2 := s.deploy(t, "two", "production", files)
	var out api.Outcome
	must(t, 200, s.url, s.token, "POST", "/__fn/apps/one/invoke/production/echo", map[string]any{"data": map[string]int{"k": 7}}, &out)
	path := "/__fn/apps/one/replay/production/" + out.RequestID
	failsWith(t, 401, s.url, "", "POST", path, nil, "unauthorized")
	failsWith(t, 401, s.url, a2.MasterKey, "POST", path, nil, "unauthorized")
	// the app's own master key names it by id too; another app cannot reach this one's records
	failsWith(t, 404, s.url, a2.MasterKey, "POST", "/__fn/apps/two/replay/production/"+out.RequestID, nil, out.RequestID)
	var again api.Outcome
	must(t, 200, s.url, a1.MasterKey, "POST", path, nil, &again)
	var res map[string]any
	json.Unmarshal(again.Result, &res)
	if again.RequestID == out.RequestID || again.Version != out.Version || res["n"] != 2.0 || !strings.Contains(string(again.Result), `"k":7`) {
		t.Fatalf("replay: %+v %s", again, again.Result)
	}
	// versions carry their manifests (the console diffs them)
	var vs []api.Version
	must(t, 200, s.url, a1.MasterKey, "GET", "/__fn/apps/one/versions", nil, &vs)
	if len(vs) != 1 || len(vs[0].Manifest.Bundles) != 1 || vs[0].Manifest.Bundles[0].Name != "echo" {
		t.Fatalf("versions: %+v", vs)
	}
}
