package commands

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fnhq/fn/internal/testutil"
)

func importProject(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	testutil.WriteFile(t, dir, "fn.yaml", "name: imp\ndialect: lean\nlean:\n  appId: imp-fnDev\n  appKey: impKey\n  masterKey: impMaster\n  hookKey: impHook\n")
	testutil.WriteFile(t, dir, "cloud.js", "const AV = require('leanengine')\n")
	return dir
}

type importOut struct {
	DryRun  bool `json:"dryRun"`
	Classes map[string]struct {
		Added, Changed, Unchanged, Failed int
	} `json:"classes"`
	Errors   []string `json:"errors"`
	Sessions int      `json:"sessions"`
	Error    string   `json:"error"`
}

func decodeImport(t *testing.T, r result) importOut {
	t.Helper()
	var out importOut
	if err := json.Unmarshal([]byte(r.out), &out); err != nil {
		t.Fatalf("not JSON (%v): %s %s", err, r.out, r.err)
	}
	return out
}

func TestImportAndExportCommands(t *testing.T) {
	dir := importProject(t)
	exp := filepath.Join(dir, "export")
	testutil.WriteFile(t, exp, "Post.jsonl", `{"objectId":"p1","createdAt":"2020-01-01T00:00:00.000Z","updatedAt":"2020-01-02T00:00:00.000Z","title":"hi","ACL":{"*":{"read":true}}}`+"\n")
	testutil.WriteFile(t, exp, "_User.jsonl", `{"objectId":"u1","createdAt":"2020-01-01T00:00:00.000Z","updatedAt":"2020-01-01T00:00:00.000Z","username":"alice","salt":"s","password":"h","sessionToken":"tok1"}`+"\n")

	r := fn(t, dir, "import", exp, "--dry-run", "--json")
	if out := decodeImport(t, r); r.code != 0 || !out.DryRun || out.Classes["Post"].Added != 1 {
		t.Fatalf("dry run: %d %s %s", r.code, r.out, r.err)
	}
	r = fn(t, dir, "import", exp, "--json")
	out := decodeImport(t, r)
	if r.code != 0 || out.DryRun || out.Classes["Post"].Added != 1 || out.Classes["_User"].Added != 1 || out.Sessions != 1 {
		t.Fatalf("import: %d %s %s", r.code, r.out, r.err)
	}
	r = fn(t, dir, "import", exp)
	if r.code != 0 || !strings.Contains(r.err, "0 added, 0 changed, 2 unchanged, 0 failed (no hooks fired)") || r.out != "" {
		t.Fatalf("second import: %d out=%q err=%s", r.code, r.out, r.err)
	}

	back := filepath.Join(dir, "back")
	r = fn(t, dir, "export", back, "--json")
	if r.code != 0 || !strings.Contains(r.out, `"Post": 1`) {
		t.Fatalf("export: %d %s %s", r.code, r.out, r.err)
	}
	b, _ := os.ReadFile(filepath.Join(back, "_User.jsonl"))
	var u map[string]any
	json.Unmarshal(b, &u)
	if u["salt"] != "s" || u["password"] != "h" || u["sessionToken"] != "tok1" || u["username"] != "alice" {
		t.Errorf("exported user %s", b)
	}

	// bad records: reported with file:line, exit 1; abort stops at the first
	bad := testutil.WriteFile(t, dir, "Item.jsonl", "{\"objectId\":\"a\"}\n{oops\n{\"objectId\":\"b\"}\n")
	r = fn(t, dir, "import", bad)
	if r.code != ExitFailure || !strings.Contains(r.err, bad+":2: Item: malformed data") || !strings.Contains(r.err, "2 added") {
		t.Errorf("skip: %d %s", r.code, r.err)
	}
	r = fn(t, dir, "import", bad, "--on-error", "abort", "--json")
	if out := decodeImport(t, r); r.code != ExitFailure || !strings.Contains(out.Error, ":2: Item: malformed data") {
		t.Errorf("abort: %d %s", r.code, r.out)
	}

	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"import"}, "give the export to import"},
		{[]string{"import", exp, "--on-error", "maybe"}, "invalid --on-error"},
		{[]string{"import", "--from-leancloud", "--app-id", "x"}, "needs --app-id and --server"},
		{[]string{"import", "--from-leancloud", "--app-id", "x", "--server", "http://127.0.0.1:1"}, "needs the master key"},
		{[]string{"import", filepath.Join(dir, "nope.jsonl")}, "no such file"},
		{[]string{"export", back, "--format", "xml"}, "invalid --format"},
	} {
		if r := fn(t, dir, c.args...); r.code != ExitUsage || !strings.Contains(r.err, c.want) {
			t.Errorf("%v: %d %s", c.args, r.code, r.err)
		}
	}
	wx := t.TempDir()
	testutil.WriteFile(t, wx, "fn.yaml", "name: w\ndialect: wx\n")
	if r := fn(t, wx, "import", exp); r.code != ExitFailure || !strings.Contains(r.err, "fn import works on lean projects") {
		t.Errorf("wx: %d %s", r.code, r.err)
	}
}

func TestImportFromLeanCloud(t *testing.T) {
	var keys []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		keys = append(keys, r.Header.Get("X-LC-Key"))
		switch r.URL.Path {
		case "/1.1/schemas":
			w.Write([]byte(`{"Note":{},"_User":{}}`))
		case "/1.1/scan/classes/Note":
			w.Write([]byte(`{"results":[{"objectId":"n1","text":"a"},{"objectId":"n2","text":"b"}],"cursor":null}`))
		case "/1.1/scan/classes/_User":
			w.Write([]byte(`{"results":[],"cursor":null}`))
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	dir := importProject(t)
	t.Setenv("FN_MASTER_KEY", "the-master")
	r := fn(t, dir, "import", "--from-leancloud", "--app-id", "app1", "--server", srv.URL, "--json")
	out := decodeImport(t, r)
	if r.code != 0 || out.Classes["Note"].Added != 2 {
		t.Fatalf("%d %s %s", r.code, r.out, r.err)
	}
	if keys[0] != "the-master,master" {
		t.Errorf("key header %q", keys[0])
	}
	state, err := os.ReadFile(filepath.Join(dir, ".fn", "import-app1.state.json"))
	if err != nil || !strings.Contains(string(state), `"done": true`) || strings.Contains(string(state), "the-master") {
		t.Errorf("state %s %v", state, err)
	}
	// done: a second run has nothing to scan until --restart
	n := len(keys)
	if r := fn(t, dir, "import", "--from-leancloud", "--app-id", "app1", "--server", srv.URL); r.code != 0 || len(keys) != n+1 {
		t.Errorf("second run: %d requests (only the class list expected) %s", len(keys)-n, r.err)
	}
	r = fn(t, dir, "import", "--from-leancloud", "--app-id", "app1", "--server", srv.URL, "--restart", "--json")
	if out := decodeImport(t, r); out.Classes["Note"].Unchanged != 2 {
		t.Errorf("restart: %s", r.out)
	}
}
