package commands

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/fnhq/fn/api"
)

// fn invoke --replay repeats a logged call in the running fn dev and, with --remote, on fn serve.
func TestInvokeReplayLocalAndRemote(t *testing.T) {
	dir := scaffold(t, "wx", "js")
	outcome := func(r result) api.Outcome {
		t.Helper()
		var o api.Outcome
		if err := json.Unmarshal([]byte(r.out), &o); err != nil || r.code != 0 {
			t.Fatalf("exit %d: %s %s", r.code, r.out, r.err)
		}
		return o
	}
	// one-shot: nothing to replay from
	if r := fn(t, dir, "invoke", "--replay", "abc", "--local"); r.code != ExitUsage || !strings.Contains(r.err, "fn dev") {
		t.Fatalf("--replay --local: %d %s", r.code, r.err)
	}
	if r := fn(t, dir, "invoke", "login", "--replay", "abc"); r.code != ExitUsage {
		t.Fatalf("--replay with a function: %d %s", r.code, r.err)
	}
	if r := fn(t, dir, "invoke", "--replay", "abc"); r.code != ExitFailure || !strings.Contains(r.err, "fn dev") {
		t.Fatalf("--replay without fn dev: %d %s", r.code, r.err)
	}
	startDev(t, dir) // fn invoke finds it through .fn/dev.json
	first := outcome(fn(t, dir, "--json", "invoke", "login", "--data", `{"hello":"replay"}`, "--as", "bob"))
	again := outcome(fn(t, dir, "--json", "invoke", "--replay", first.RequestID))
	if again.RequestID == first.RequestID || string(again.Result) != string(first.Result) || again.Identity != first.Identity {
		t.Fatalf("replay in fn dev:\n%+v\nof\n%+v", again, first)
	}
	if r := fn(t, dir, "invoke", "--replay", "ffffffffffffffff"); r.code != ExitFailure || !strings.Contains(r.err, "ffffffffffffffff") {
		t.Fatalf("unknown request id: %d %s", r.code, r.err)
	}

	// remote
	t.Setenv("XDG_CONFIG_HOME", t.TempDir())
	s := startServe(t, t.TempDir(), "admintoken-replay", "http://127.0.0.1:1")
	t.Setenv("FN_SERVER", s.url)
	t.Setenv("FN_TOKEN", "admintoken-replay")
	if r := fn(t, ".", "apps", "create", "shop"); r.code != 0 {
		t.Fatalf("apps create: %d %s", r.code, r.err)
	}
	if r := fn(t, dir, "deploy", "--env", "production", "--app", "shop"); r.code != 0 {
		t.Fatalf("deploy: %d %s", r.code, r.err)
	}
	rfirst := outcome(fn(t, dir, "--json", "invoke", "sum", "--remote", "--app", "shop", "--data", `{"a":2,"b":3}`))
	ragain := outcome(fn(t, dir, "--json", "invoke", "--replay", rfirst.RequestID, "--remote", "--app", "shop"))
	if ragain.RequestID == rfirst.RequestID || string(ragain.Result) != string(rfirst.Result) || ragain.Version != rfirst.Version {
		t.Fatalf("replay on fn serve:\n%+v\nof\n%+v", ragain, rfirst)
	}
}
