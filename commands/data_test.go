package commands

import (
	"encoding/json"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/fnhq/fn/internal/testutil"
)

func TestDataImportExportFiresNoHooksAndSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	testutil.WriteFile(t, dir, "fn.yaml", "name: dat\ndialect: lean\nlean:\n  appId: dat-fnDev\n  appKey: datKey\n  masterKey: datMaster\n  hookKey: datHook\n")
	// a beforeSave that would refuse every Review: an import must not run it
	testutil.WriteFile(t, dir, "cloud.js", "const AV = require('leanengine')\nAV.Cloud.beforeSave('Review', () => { throw new AV.Cloud.Error('no') })\n")
	testutil.LinkNodeModules(t, dir)
	dump := testutil.WriteFile(t, dir, "in.json", `{"Review":[{"objectId":"r1","stars":5,"comment":"fine"}],"_User":[{"objectId":"u1","username":"imp","password":"pw123"}]}`)
	r := fn(t, dir, "data", "import", dump, "--json")
	if r.code != 0 || !strings.Contains(r.out, `"imported": 2`) {
		t.Fatalf("import: %d %s %s", r.code, r.out, r.err)
	}
	d := startDev(t, dir)
	status, body := leanCallAs(t, d.url, "dat", "GET", "/1.1/classes/Review/r1", "")
	if status != 200 || !strings.Contains(body, `"comment":"fine"`) {
		t.Fatalf("imported object: %d %s", status, body)
	}
	// an imported user with a plain password can log in
	if status, body := leanCallAs(t, d.url, "dat", "POST", "/1.1/login", `{"username":"imp","password":"pw123"}`); status != 200 || !strings.Contains(body, "sessionToken") {
		t.Fatalf("login as the imported user: %d %s", status, body)
	}
	r = fn(t, dir, "data", "export")
	var out map[string][]map[string]any
	if err := json.Unmarshal([]byte(r.out), &out); err != nil || len(out["Review"]) != 1 || out["_User"][0]["password"] != nil {
		t.Fatalf("export: %v %s", err, r.out)
	}
	// wx projects have no LeanStorage: their export moves one collection of the cloud database
	wx := t.TempDir()
	testutil.WriteFile(t, wx, "fn.yaml", "name: w\ndialect: wx\n")
	if r := fn(t, wx, "data", "export"); r.code != ExitUsage || !strings.Contains(r.err, "name the collection to export") {
		t.Errorf("wx: %d %s", r.code, r.err)
	}
	if r := fn(t, dir, "data", "list"); r.code != ExitFailure || !strings.Contains(r.err, "fn data list is for wx projects") {
		t.Errorf("lean list: %d %s", r.code, r.err)
	}
	if r := fn(t, dir, "data", "import", testutil.WriteFile(t, dir, "bad.json", `[1,2]`)); r.code != ExitFailure || !strings.Contains(r.err, `expected {"ClassName": [objects…]}`) {
		t.Errorf("bad file: %d %s", r.code, r.err)
	}
}

func leanCallAs(t *testing.T, base, app, method, path, body string) (int, string) {
	t.Helper()
	return leanCallKeys(t, base, app+"-fnDev", app+"Key", method, path, body)
}

func TestDevKeepsDataAcrossRestartsUnlessReset(t *testing.T) {
	dir := t.TempDir()
	testutil.WriteFile(t, dir, "fn.yaml", "name: keep\ndialect: lean\nlean:\n  appId: keep-fnDev\n  appKey: keepKey\n  masterKey: keepMaster\n  hookKey: keepHook\n")
	testutil.WriteFile(t, dir, "cloud.js", "const AV = require('leanengine')\n")
	testutil.LinkNodeModules(t, dir)
	d := startDev(t, dir)
	_, body := leanCallAs(t, d.url, "keep", "POST", "/1.1/classes/Note", `{"text":"kept"}`)
	var created map[string]any
	json.Unmarshal([]byte(body), &created)
	id := created["objectId"].(string)
	d.cmd.Process.Signal(syscall.SIGINT)
	waitTimeout(d.cmd, 10*time.Second)

	d = startDev(t, dir)
	if _, body := leanCallAs(t, d.url, "keep", "GET", "/1.1/classes/Note/"+id, ""); !strings.Contains(body, `"text":"kept"`) {
		t.Fatalf("data should survive a restart: %s", body)
	}
	d.cmd.Process.Signal(syscall.SIGINT)
	waitTimeout(d.cmd, 10*time.Second)

	d = startDev(t, dir, "--reset-data")
	if status, body := leanCallAs(t, d.url, "keep", "GET", "/1.1/classes/Note/"+id, ""); status != 404 || !strings.Contains(body, `"code":101`) {
		t.Fatalf("--reset-data should start empty: %d %s", status, body)
	}
}
