package appenv

import (
	"strings"
	"testing"

	"github.com/fnhq/fn/engine"
)

func TestAppProcessEnvironmentKeepsHostSecretsOut(t *testing.T) {
	host := []string{"PATH=/bin", "HOME=/home/u", "LC_ALL=C", "FN_TOKEN=secret", "NODE_OPTIONS=--inspect",
		"LEANCLOUD_APP_MASTER_KEY=real-master", "LC_APP_KEY=real-key", "LC_API_SERVER=https://api.example", "AWS_SECRET_ACCESS_KEY=x"}
	got := strings.Join(appHostEnv(false, "/scratch", host), "\n")
	for _, want := range []string{"PATH=/bin", "LC_ALL=C", "HOME=/scratch", "TMPDIR=/scratch"} {
		if !strings.Contains(got, want) {
			t.Errorf("missing %s in:\n%s", want, got)
		}
	}
	for _, leak := range []string{"FN_TOKEN", "NODE_OPTIONS", "real-master", "real-key", "api.example", "AWS_SECRET", "/home/u"} {
		if strings.Contains(got, leak) {
			t.Errorf("%s leaked into the app process:\n%s", leak, got)
		}
	}
	if inherit := strings.Join(appHostEnv(true, "", host), "\n"); !strings.Contains(inherit, "AWS_SECRET_ACCESS_KEY") || strings.Contains(inherit, "real-master") {
		t.Errorf("inherit: %s", inherit)
	}
}

func TestAppRoutesAndInvocationPaths(t *testing.T) {
	for path, app := range map[string]bool{
		"/": true, "/todos": true, "/1.1/functions/hello": true, "/1/call/x": true, "/__engine/1/ping": true,
		"/1.1/functions/_ops/metadatas": true, "/1.1/classes/Todo": false, "/1.1/users/me": false, "/1/batch": false,
		"/1.1/functionsX": false, "/wx/functions/a": true,
	} {
		if got := appRouted(path); got != app {
			t.Errorf("appRouted(%q) = %v, want %v", path, got, app)
		}
	}
	for _, c := range []struct {
		req  engine.LeanRequest
		want string
	}{
		{engine.LeanRequest{Kind: engine.LeanFunction, Name: "hello"}, "/1.1/functions/hello"},
		{engine.LeanRequest{Kind: engine.LeanFunction, Name: "hello", RPC: true}, "/1.1/call/hello"},
		{engine.LeanRequest{Kind: engine.LeanClassHook, ClassName: "Todo", Hook: "beforeSave"}, "/1.1/functions/Todo/beforeSave"},
		{engine.LeanRequest{Kind: engine.LeanUserHook, Hook: "onVerified", ClassName: "sms"}, "/1.1/functions/onVerified/sms"},
		{engine.LeanRequest{Kind: engine.LeanUserHook, Hook: "onLogin"}, "/1.1/functions/_User/onLogin"},
		{engine.LeanRequest{Kind: "bigquery"}, "/1.1/functions/BigQuery/onComplete"},
	} {
		if got := leanPath(c.req); got != c.want {
			t.Errorf("leanPath(%+v) = %q, want %q", c.req, got, c.want)
		}
	}
}
