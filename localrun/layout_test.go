package localrun

import (
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fnhq/fn/internal/testutil"
)

// leanCall posts to a lean dev server with the app's keys and returns status and body.
func leanCall(t *testing.T, url, id, key, path, body string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, url+path, strings.NewReader(body))
	req.Header.Set("X-LC-Id", id)
	req.Header.Set("X-LC-Key", key)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// The starter's cloud.js loads every file of functions/ through __dirname; under fn dev the
// project's own code runs in place, so __dirname, __filename, require.resolve and fs reads of
// project files are the project's, and a save of a sibling file reloads it.
func TestLeanCloudCodeRunsInPlace(t *testing.T) {
	rec, _ := runDev(t, map[string]string{
		"fn.yaml": "name: lay\ndialect: lean\nlean:\n  appId: lay-fnDev\n  appKey: layKey\n  masterKey: layMaster\n  hookKey: layHook\n",
		"cloud.js": `const AV = require('leanengine')
const fs = require('fs')
const path = require('path')
fs.readdirSync(path.join(__dirname, 'functions')).forEach(file => {
  require(path.join(__dirname, 'functions', file))
})
AV.Cloud.define('where', () => ({
  dirname: __dirname,
  filename: __filename,
  resolved: require.resolve('./lib/util'),
  config: JSON.parse(fs.readFileSync(path.join(__dirname, 'config', 'app.json'), 'utf8')).greeting,
  util: require('./lib/util').name,
}))
`,
		"functions/hello.js": "const AV = require('leanengine')\nAV.Cloud.define('hello', () => 'hello v1')\n",
		"lib/util.js":        "exports.name = 'util'\n",
		"config/app.json":    `{"greeting":"ni hao"}`,
	}, DevOptions{})
	dir := rec.dir
	status, body := leanCall(t, rec.url, "lay-fnDev", "layKey", "/1.1/functions/hello", `{}`)
	if status != 200 || body != `{"result":"hello v1"}`+"\n" {
		t.Fatalf("hello from functions/: %d %s", status, body)
	}
	status, body = leanCall(t, rec.url, "lay-fnDev", "layKey", "/1.1/functions/where", `{}`)
	want := `{"result":{"dirname":` + jsonStr(dir) + `,"filename":` + jsonStr(filepath.Join(dir, "cloud.js")) +
		`,"resolved":` + jsonStr(filepath.Join(dir, "lib", "util.js")) + `,"config":"ni hao","util":"util"}}` + "\n"
	if status != 200 || body != want {
		t.Fatalf("layout:\n got %d %s\nwant %s", status, body, want)
	}
	// a save of a file that only a dynamic require reaches still reloads it
	testutil.WriteFile(t, dir, "functions/hello.js", "const AV = require('leanengine')\nAV.Cloud.define('hello', () => 'hello v2')\n")
	testutil.Eventually(t, 10*time.Second, "the reloaded sibling", func() bool {
		_, body := leanCall(t, rec.url, "lay-fnDev", "layKey", "/1.1/functions/hello", `{}`)
		return body == `{"result":"hello v2"}`+"\n"
	})
	// a new file in functions/ is picked up too
	testutil.WriteFile(t, dir, "functions/bye.js", "const AV = require('leanengine')\nAV.Cloud.define('bye', () => 'bye')\n")
	testutil.Eventually(t, 10*time.Second, "the new function file", func() bool {
		_, body := leanCall(t, rec.url, "lay-fnDev", "layKey", "/1.1/functions/bye", `{}`)
		return body == `{"result":"bye"}`+"\n"
	})
}

func jsonStr(s string) string {
	return `"` + strings.ReplaceAll(s, `\`, `\\`) + `"`
}
