package commands

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fnhq/fn/internal/testutil"
)

func leanStorageProject(t *testing.T) (string, *devProc) {
	t.Helper()
	dir := t.TempDir()
	testutil.WriteFile(t, dir, "fn.yaml", "name: storage\ndialect: lean\nlean:\n  appId: store-fnDev\n  appKey: storeKey\n  masterKey: storeMaster\n  hookKey: storeHook\n")
	src, err := os.ReadFile(filepath.Join(testutil.RepoRoot(), "testdata", "leanstorage", "cloud.js"))
	if err != nil {
		t.Fatal(err)
	}
	testutil.WriteFile(t, dir, "cloud.js", string(src))
	testutil.LinkNodeModules(t, dir)
	return dir, startDev(t, dir)
}

// The seed's LeanEngine examples, driven through fn dev by the real leancloud-storage client.
func TestLeanStorageConformanceWithRealClient(t *testing.T) {
	dir, d := leanStorageProject(t)
	client, err := os.ReadFile(filepath.Join(testutil.RepoRoot(), "testdata", "leanstorage", "client.js"))
	if err != nil {
		t.Fatal(err)
	}
	// the client runs from the project, where node_modules has leancloud-storage
	script := testutil.WriteFile(t, dir, "client.cjs", string(client))
	cmd := exec.Command("node", script, d.url, "store-fnDev", "storeKey", "storeMaster")
	cmd.Dir = dir
	out, err := cmd.Output()
	if err != nil {
		var stderr string
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = string(ee.Stderr)
		}
		t.Fatalf("client: %v\n%s\n%s\nfn dev:\n%s", err, out, stderr, d.errText())
	}
	var r map[string]any
	if err := json.Unmarshal(out, &r); err != nil {
		t.Fatalf("report: %v\n%s", err, out)
	}
	errIs := func(key string, code float64, msg string) {
		t.Helper()
		e, _ := r[key].(map[string]any)
		if e == nil || e["code"] != code || !strings.HasPrefix(fmt.Sprint(e["message"]), msg) {
			t.Errorf("%s: got %v, want code %v %q", key, r[key], code, msg)
		}
	}
	want := func(key string, v any) {
		t.Helper()
		if fmt.Sprint(r[key]) != fmt.Sprint(v) {
			t.Errorf("%s: got %v, want %v", key, r[key], v)
		}
	}
	want("average", 4)
	want("truncated", strings.Repeat("x", 137)+"...")
	errIs("noComment", 142, "Cloud Code validation failed. Error detail : No comment!")
	want("reviewCount", 3)
	errIs("custom", 123, "custom error message")
	errIs("beforeUpdate", 142, "Cloud Code validation failed. Error detail : comment 长度不得超过 140 字符")
	want("afterRejectedUpdate", strings.Repeat("x", 10))
	want("comments", 2)
	errIs("albumDelete", 142, "Cloud Code validation failed. Error detail : Can't delete album if it still has photos.")
	want("albumStillThere", true)
	want("picturesLeft", "none")
	want("touched", true)
	want("afterUpdateRuns", 1)
	want("signupToken", true)
	errIs("noLogin", 142, "Cloud Code validation failed. Error detail : Forbidden")
	errIs("wrongPassword", 210, "The username and password mismatch.")
	errIs("noUser", 211, "Could not find user.")
	want("whoami", map[string]any{"username": "alice", "hasToken": true})
	want("whoamiAnon", map[string]any{"username": nil, "hasToken": false})
	errIs("badToken", 211, "Verify sessionToken failed, maybe login expired: Could not find user.")
	want("me", "alice")
	want("passwordHidden", true)
	want("rpc", map[string]any{"isObject": true, "className": "Post", "title": "from rpc", "hasId": true})
	want("aclAnonCount", 0)
	want("aclOwnerCount", 1)
	want("aclMasterCount", 1)
	errIs("aclWrite", 1, "Forbidden writing by object's ACL.")
	want("aclValue", 1)
	want("cloudAsUser", 1)
	want("cloudAsAnon", 0)
	want("cloudAsMaster", 1)
	want("gt", 2)
	want("containedIn", 2)
	want("regex", 1)
	want("ordered", []any{5, 4, 3})
	want("limited", []any{4})
	want("include", "hello")
	want("inQuery", 2)
	want("or", 2)

	// wrong key → 401
	status, body := leanCall(t, d.url, http.MethodPost, "/1.1/classes/Review", "wrongKey", `{"comment":"x"}`)
	if status != 401 || body != `{"code":401,"error":"Unauthorized."}` {
		t.Errorf("wrong key: %d %s", status, body)
	}
}

func leanCall(t *testing.T, base, method, path, key, body string) (int, string) {
	t.Helper()
	return leanCallKeys(t, base, "store-fnDev", key, method, path, body)
}

func leanCallKeys(t *testing.T, base, appID, key, method, path, body string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(method, base+path, strings.NewReader(body))
	req.Header.Set("X-LC-Id", appID)
	req.Header.Set("X-LC-Key", key)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, strings.TrimSpace(string(b))
}

func TestLeanStorageRESTAndBadInput(t *testing.T) {
	_, d := leanStorageProject(t)
	call := func(method, path, body string) (int, map[string]any) {
		t.Helper()
		status, text := leanCall(t, d.url, method, path, "storeKey", body)
		var m map[string]any
		json.Unmarshal([]byte(text), &m)
		return status, m
	}
	status, created := call(http.MethodPost, "/1.1/classes/Note", `{"text":"a","n":1,"tags":["x"]}`)
	id, _ := created["objectId"].(string)
	if status != 201 || id == "" || created["createdAt"] == nil {
		t.Fatalf("create: %d %v", status, created)
	}
	// atomic operations, fetchWhenSave
	status, up := call(http.MethodPut, "/1.1/classes/Note/"+id+"?new=true", `{"n":{"__op":"Increment","amount":2},"tags":{"__op":"AddUnique","objects":["x","y"]},"gone":{"__op":"Delete"}}`)
	if status != 200 || up["n"] != 3.0 || fmt.Sprint(up["tags"]) != "[x y]" {
		t.Fatalf("update: %d %v", status, up)
	}
	call(http.MethodPut, "/1.1/classes/Note/"+id, `{"tags":{"__op":"Remove","objects":["x"]},"more":{"__op":"Add","objects":[1,1]}}`)
	_, got := call(http.MethodGet, "/1.1/classes/Note/"+id, "")
	if fmt.Sprint(got["tags"]) != "[y]" || fmt.Sprint(got["more"]) != "[1 1]" || got["text"] != "a" {
		t.Fatalf("after Remove/Add: %v", got)
	}
	// missing id → {}; batch; date
	if status, m := call(http.MethodGet, "/1.1/classes/Note/doesnotexist", ""); status != 200 || len(m) != 0 {
		t.Errorf("missing id: %d %v", status, m)
	}
	if status, m := call(http.MethodGet, "/1.1/classes/NoSuchClass/x", ""); status != 404 || m["code"] != 101.0 {
		t.Errorf("missing class: %d %v", status, m)
	}
	// too many failed logins: 219, even with the right password afterwards
	call(http.MethodPost, "/1.1/users", `{"username":"tries","password":"right"}`)
	for i := 0; i < 5; i++ {
		if status, m := call(http.MethodPost, "/1.1/login", `{"username":"tries","password":"wrong"}`); status != 400 || m["code"] != 210.0 {
			t.Fatalf("wrong password %d: %d %v", i, status, m)
		}
	}
	if status, m := call(http.MethodPost, "/1.1/login", `{"username":"tries","password":"right"}`); status != 400 || m["code"] != 219.0 {
		t.Errorf("after 5 failures: %d %v", status, m)
	}
	status, text := leanCall(t, d.url, http.MethodPost, "/1.1/batch", "storeKey", `{"requests":[{"method":"POST","path":"/1.1/classes/Note","body":{"text":"b"}},{"method":"PUT","path":"/1.1/classes/Note/nope","body":{"text":"c"}}]}`)
	if status != 200 || !strings.Contains(text, `"success":{"createdAt"`) || !strings.Contains(text, `"error":{"code":1,"error":"Could not find object by id 'nope' for class 'Note'."}`) {
		t.Errorf("batch: %d %s", status, text)
	}
	if status, m := call(http.MethodGet, "/1.1/date", ""); status != 200 || m["__type"] != "Date" {
		t.Errorf("date: %d %v", status, m)
	}
	q := func(params string) (int, map[string]any) {
		return call(http.MethodGet, "/1.1/classes/Note?"+params, "")
	}
	if status, m := q("count=1&limit=0"); status != 200 || m["count"] != 2.0 || len(m["results"].([]any)) != 0 {
		t.Errorf("count: %d %v", status, m)
	}
	if _, m := q("keys=text&where=" + url.QueryEscape(`{"text":"a"}`)); len(m["results"].([]any)) != 1 || m["results"].([]any)[0].(map[string]any)["n"] != nil {
		t.Errorf("keys: %v", m)
	}

	countNotes := func() float64 { _, m := q("count=1&limit=0"); return m["count"].(float64) }
	before := countNotes()
	bad := []struct {
		method, path, body string
		status             int
		code               float64
		msg                string
	}{
		{"GET", "/1.1/classes/Note?where=" + url.QueryEscape(`{"text":`), "", 400, 107, "Invalid where: malformed JSON"},
		{"GET", "/1.1/classes/Note?where=" + url.QueryEscape(`{"n":{"$near":1}}`), "", 400, 102, "Invalid query: unknown operator $near."},
		{"GET", "/1.1/classes/Note?where=" + url.QueryEscape(`{"$foo":1}`), "", 400, 102, "Invalid query: unknown operator $foo."},
		{"POST", "/1.1/classes/Bad-Class", `{"a":1}`, 400, 103, "Invalid class name: Bad-Class."},
		{"POST", "/1.1/classes/Note", `{"a":`, 400, 107, "Malformed json object. A json dictionary is expected."},
		{"POST", "/1.1/classes/Note", `{"n":{"__op":"Increment","amount":"lots"}}`, 400, 111, "Invalid value for n: Increment needs a number amount."},
		{"PUT", "/1.1/classes/Note/" + id, `{"text":{"__op":"Increment","amount":1}}`, 400, 111, "Invalid value for text: cannot Increment a non-number."},
		{"POST", "/1.1/classes/Note", `{"bad key":1}`, 400, 105, "Invalid key name: bad key."},
		{"POST", "/1.1/classes/Note", `{"big":"` + strings.Repeat("x", 21<<20) + `"}`, 413, 1, "request entity too large (limit 20971520 bytes)"},
	}
	for _, b := range bad {
		status, m := call(b.method, b.path, b.body)
		if status != b.status || m["code"] != b.code || !strings.HasPrefix(fmt.Sprint(m["error"]), b.msg) {
			t.Errorf("%s %s: %d %v (want %d %v %q)", b.method, b.path[:min(len(b.path), 60)], status, m, b.status, b.code, b.msg)
		}
	}
	if after := countNotes(); after != before {
		t.Errorf("bad input stored something: %v → %v objects", before, after)
	}
	_, got = call(http.MethodGet, "/1.1/classes/Note/"+id, "")
	if got["text"] != "a" {
		t.Errorf("a rejected update changed the object: %v", got)
	}

	// third-party login through onAuthData (which answers for a platform fn has no verifier
	// for): the first call creates the user, the second logs in
	status, first := call(http.MethodPost, "/1.1/users", `{"authData":{"myapp":{"openid":"ow1","access_token":"t"}}}`)
	if status != 201 || first["sessionToken"] == nil {
		t.Fatalf("authData signup: %d %v", status, first)
	}
	status, again := call(http.MethodPost, "/1.1/users", `{"authData":{"myapp":{"openid":"ow1","access_token":"t2"}}}`)
	if status != 200 || again["objectId"] != first["objectId"] || again["sessionToken"] == nil {
		t.Fatalf("authData login: %d %v", status, again)
	}
	if status, m := call(http.MethodPost, "/1.1/users", `{"authData":{"weixin":{"openid":"blocked"}}}`); status != 400 || m["code"] != 142.0 || !strings.Contains(fmt.Sprint(m["error"]), "blocked openid") {
		t.Fatalf("onAuthData refusing: %d %v", status, m)
	}

	// fn dev's stand-in for verification fires onVerified
	call(http.MethodPost, "/1.1/users", `{"username":"vera","password":"pw","email":"vera@example.com"}`)
	resp, err := http.Post(d.url+"/__fn/verify", "application/json", strings.NewReader(`{"user":"vera","type":"email"}`))
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("verify: %v %v", err, resp)
	}
	resp.Body.Close()
	testutil.Eventually(t, 5*1e9, "the onVerified hook's note", func() bool {
		_, m := call(http.MethodGet, "/1.1/classes/VerifiedNote?where="+url.QueryEscape(`{"username":"vera"}`), "")
		res, _ := m["results"].([]any)
		return len(res) == 1
	})
}
