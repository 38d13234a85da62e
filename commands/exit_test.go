package commands

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/fnhq/fn/internal/testutil"
)

// The LeanCloud exit, end to end: an app's export in each of LeanCloud's formats (JSON Lines
// per class, the exportData .tar.gz, a BSON backup), with files at their old URLs, goes into an
// app of the real fn serve created with the old keys; then the real leancloud-storage client,
// changed only in serverURL, logs in with the old password, reads every object with its id,
// follows pointers and relations, downloads the files from fn, uploads a new one and writes.
func TestLeanCloudExitEndToEnd(t *testing.T) {
	const (
		appID     = "exitApp0001-MdYXbMMI"
		appKey    = "exitAppKey0001abcdefgh"
		masterKey = "exitMasterKey0001abcdef"
		hookKey   = "exitHookKey0001abcdefgh"
		token     = "admintoken-exit"
	)
	// the old file domain: serves each content once per request, and counts them
	files := map[string][]byte{
		"/f/hello.txt": []byte("hello from LeanCloud\n"),
		"/f/pic.png":   append([]byte("\x89PNG\r\n\x1a\n"), bytes.Repeat([]byte{0, 1, 2, 3}, 4096)...),
	}
	var mu sync.Mutex
	fetched := map[string]int{}
	old := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, ok := files[r.URL.Path]
		if !ok {
			http.NotFound(w, r)
			return
		}
		mu.Lock()
		fetched[r.URL.Path]++
		mu.Unlock()
		w.Write(b)
	}))
	defer old.Close()
	sum := func(b []byte) string { h := md5.Sum(b); return hex.EncodeToString(h[:]) }

	// 1. the console export: one <Class>.jsonl per class, relations as _Join tables
	exp := filepath.Join(t.TempDir(), "export")
	line := func(v ...map[string]any) string {
		var b strings.Builder
		for _, m := range v {
			j, _ := json.Marshal(m)
			b.Write(j)
			b.WriteByte('\n')
		}
		return b.String()
	}
	ptr := func(class, id string) map[string]any {
		return map[string]any{"__type": "Pointer", "className": class, "objectId": id}
	}
	date := func(s string) map[string]any { return map[string]any{"__type": "Date", "iso": s} }
	testutil.WriteFile(t, exp, "_User.jsonl", line(
		map[string]any{"objectId": "u1", "createdAt": "2021-03-04T05:06:07.089Z", "updatedAt": "2021-03-05T00:00:00.000Z", "username": "alice",
			"email": "alice@example.com", "salt": "h60d8x797d3oa0naxybxxv9bn7xpt2yiowz68mpiwou7gwr2",
			"password":     "tA7BLW+NK0UeARng0693gCaVnljkglCB9snqlpCSUKjx2RgYp8VZZOQt0S5iUtlDrkJXfT3gknS4rRqjYsd/Ug==",
			"sessionToken": "oldsession0alice0000000001", "ACL": map[string]any{"*": map[string]any{"read": true}, "u1": map[string]any{"write": true}}},
		map[string]any{"objectId": "u2", "createdAt": "2021-03-04T05:06:08.000Z", "updatedAt": "2021-03-04T05:06:08.000Z", "username": "bob",
			"salt": "h60d8x797d3oa0naxybxxv9bn7xpt2yiowz68mpiwou7gwr2", "password": "tA7BLW+NK0UeARng0693gCaVnljkglCB9snqlpCSUKjx2RgYp8VZZOQt0S5iUtlDrkJXfT3gknS4rRqjYsd/Ug==",
			"ACL": map[string]any{"*": map[string]any{"read": true}}},
	))
	testutil.WriteFile(t, exp, "_Role.jsonl", line(map[string]any{"objectId": "r1", "createdAt": "2021-01-01T00:00:00.000Z", "updatedAt": "2021-01-01T00:00:00.000Z",
		"name": "admin", "users": map[string]any{"__type": "Relation", "className": "_User"}, "ACL": map[string]any{"*": map[string]any{"read": true}}}))
	testutil.WriteFile(t, exp, "_Join:users:_Role.jsonl", line(map[string]any{"objectId": "j1", "owningId": "r1", "relatedId": "u1"}))
	testutil.WriteFile(t, exp, "_File.jsonl", line(
		map[string]any{"objectId": "f1", "createdAt": "2021-02-01T00:00:00.000Z", "updatedAt": "2021-02-01T00:00:00.000Z", "name": "hello.txt",
			"url": old.URL + "/f/hello.txt", "key": "abc/hello.txt", "mime_type": "text/plain",
			"metaData": map[string]any{"size": len(files["/f/hello.txt"]), "_checksum": sum(files["/f/hello.txt"]), "owner": "u1"}},
		map[string]any{"objectId": "f2", "createdAt": "2021-02-01T00:00:01.000Z", "updatedAt": "2021-02-01T00:00:01.000Z", "name": "pic.png",
			"url": old.URL + "/f/pic.png", "mime_type": "image/png",
			"metaData": map[string]any{"size": len(files["/f/pic.png"]), "_checksum": sum(files["/f/pic.png"]), "owner": "u1"}},
	))
	testutil.WriteFile(t, exp, "Post.jsonl", line(
		map[string]any{"objectId": "p1", "createdAt": "2021-05-06T07:08:09.010Z", "updatedAt": "2021-05-07T00:00:00.000Z", "title": "hello",
			"author": ptr("_User", "u1"), "when": date("2021-05-06T07:00:00.000Z"), "where": map[string]any{"__type": "GeoPoint", "latitude": 39.9, "longitude": 116.4},
			"raw":        map[string]any{"__type": "Bytes", "base64": "aGVsbG8="},
			"attachment": map[string]any{"__type": "File", "objectId": "f1", "name": "hello.txt", "url": old.URL + "/f/hello.txt"},
			"likes":      map[string]any{"__type": "Relation", "className": "_User"}, "tags": []any{"a", 2.0, map[string]any{"nested": true}},
			"ACL": map[string]any{"*": map[string]any{"read": true}}},
		map[string]any{"objectId": "p2", "createdAt": "2021-05-06T07:08:10.000Z", "updatedAt": "2021-05-06T07:08:10.000Z", "title": "alice only",
			"ACL": map[string]any{"u1": map[string]any{"read": true, "write": true}}},
		map[string]any{"objectId": "p3", "createdAt": "2021-05-06T07:08:11.000Z", "updatedAt": "2021-05-06T07:08:11.000Z", "title": "admins only",
			"ACL": map[string]any{"role:admin": map[string]any{"read": true}}},
	))
	testutil.WriteFile(t, exp, "_Join:likes:Post.jsonl", line(
		map[string]any{"objectId": "l1", "owningId": "p1", "relatedId": "u1"}, map[string]any{"objectId": "l2", "owningId": "p1", "relatedId": "u2"}))

	// 2. the exportData .tar.gz
	tgz := filepath.Join(t.TempDir(), "export.tar.gz")
	{
		var buf bytes.Buffer
		gz := gzip.NewWriter(&buf)
		tw := tar.NewWriter(gz)
		body := line(map[string]any{"objectId": "c1", "createdAt": "2021-06-01T00:00:00.000Z", "updatedAt": "2021-06-01T00:00:00.000Z",
			"post": ptr("Post", "p1"), "text": "first!", "ACL": map[string]any{"*": map[string]any{"read": true}}})
		tw.WriteHeader(&tar.Header{Name: "export/Comment.jsonl", Mode: 0o644, Size: int64(len(body))})
		tw.Write([]byte(body))
		tw.Close()
		gz.Close()
		os.WriteFile(tgz, buf.Bytes(), 0o644)
	}

	// 3. the nightly BSON backup
	bsonDir := filepath.Join(t.TempDir(), "dump", "app")
	{
		created := time.Date(2021, 7, 1, 0, 0, 0, 0, time.UTC)
		doc, err := bson.Marshal(bson.D{{Key: "_id", Value: "t1"}, {Key: "_created_at", Value: bson.NewDateTimeFromTime(created)},
			{Key: "_updated_at", Value: bson.NewDateTimeFromTime(created)}, {Key: "name", Value: "go"}, {Key: "_p_post", Value: "Post$p1"},
			{Key: "count", Value: int32(7)}, {Key: "_rperm", Value: bson.A{"*"}}, {Key: "_wperm", Value: bson.A{}}})
		if err != nil {
			t.Fatal(err)
		}
		os.MkdirAll(bsonDir, 0o755)
		os.WriteFile(filepath.Join(bsonDir, "Tag.bson"), doc, 0o644)
	}

	// fn serve, an app with LeanCloud's keys
	t.Setenv("XDG_CONFIG_HOME", t.TempDir())
	t.Setenv("XDG_CACHE_HOME", t.TempDir())
	dataDir := t.TempDir()
	s := startServe(t, dataDir, token, "http://127.0.0.1:1")
	if r := fn(t, ".", "login", "--server", s.url, "--token", token); r.code != 0 {
		t.Fatalf("login: %d %s", r.code, r.err)
	}
	if r := fn(t, ".", "apps", "create", "shop", "--app-id", appID, "--app-key", appKey, "--master-key", masterKey, "--hook-key", hookKey); r.code != 0 {
		t.Fatalf("apps create: %d %s", r.code, r.err)
	}

	imp := func(args ...string) importOut {
		t.Helper()
		r := fn(t, ".", append([]string{"import", "--remote", "--app", "shop", "--json"}, args...)...)
		out := decodeImport(t, r)
		if r.code != 0 {
			t.Fatalf("import %v: %d %s %s", args, r.code, r.out, r.err)
		}
		return out
	}
	// a dry run writes nothing
	if out := imp(exp, "--dry-run"); !out.DryRun || out.Classes["Post"].Added != 3 {
		t.Fatalf("dry run: %+v", out)
	}
	if st, _ := leanCallKeys(t, s.url, appID, masterKey+",master", "GET", "/1.1/classes/Post/p1", ""); st != 404 {
		t.Fatalf("the dry run wrote p1: %d", st)
	}
	out := imp(exp)
	for class, n := range map[string]int{"_User": 2, "_Role": 1, "_File": 2, "Post": 3, "_Join:likes:Post": 2, "_Join:users:_Role": 1} {
		if out.Classes[class].Added != n || out.Classes[class].Failed != 0 {
			t.Errorf("%s: %+v, want %d added", class, out.Classes[class], n)
		}
	}
	if out.Sessions != 1 {
		t.Errorf("sessions: %d", out.Sessions)
	}
	if out := imp(tgz); out.Classes["Comment"].Added != 1 {
		t.Fatalf("tar.gz: %+v", out)
	}
	if out := imp(filepath.Dir(bsonDir)); out.Classes["Tag"].Added != 1 {
		t.Fatalf("bson: %+v", out)
	}
	if fetched["/f/hello.txt"] != 1 || fetched["/f/pic.png"] != 1 {
		t.Fatalf("file downloads: %v", fetched)
	}
	// the contents are in the app's blob directory, under their objectIds
	if b, err := os.ReadFile(filepath.Join(dataDir, "apps", appID, "files", "f2")); err != nil || !bytes.Equal(b, files["/f/pic.png"]) {
		t.Fatalf("stored content of f2: %v", err)
	}

	// a second import changes nothing and downloads nothing
	out = imp(exp)
	if tot := sumClasses(out); tot.Added+tot.Changed+tot.Failed != 0 || tot.Unchanged != 11 {
		t.Fatalf("second import: %+v", out)
	}
	if fetched["/f/hello.txt"] != 1 || fetched["/f/pic.png"] != 1 {
		t.Fatalf("the second import downloaded again: %v", fetched)
	}

	// the real client, changed only in serverURL
	dir := t.TempDir()
	testutil.LinkNodeModules(t, dir)
	script := testutil.WriteFile(t, dir, "client.cjs", exitClient)
	cmd := exec.Command("node", script, s.url, appID, appKey)
	cmd.Dir = dir
	stdout, err := cmd.Output()
	if err != nil {
		var stderr string
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = string(ee.Stderr)
		}
		t.Fatalf("client: %v\n%s\n%s\nfn serve:\n%s", err, stdout, stderr, s.out.String())
	}
	var c map[string]any
	if err := json.Unmarshal(stdout, &c); err != nil {
		t.Fatalf("client report: %v\n%s", err, stdout)
	}
	want := map[string]any{
		"anonymousP2":   "101",
		"userId":        "u1",
		"oldSession":    "u1",
		"postTitle":     "hello",
		"postCreated":   "2021-05-06T07:08:09.010Z",
		"postAuthor":    "alice",
		"postWhen":      "2021-05-06T07:00:00.000Z",
		"postWhere":     "39.9,116.4",
		"postRaw":       "aGVsbG8=",
		"postTags":      `["a",2,{"nested":true}]`,
		"likers":        "u1,u2",
		"roleUsers":     "u1",
		"p2Title":       "alice only",
		"p3Title":       "admins only",
		"bobP3":         "101",
		"commentPost":   "hello",
		"tagName":       "go",
		"tagPost":       "p1",
		"tagCount":      7.0,
		"fileContent":   string(files["/f/hello.txt"]),
		"fileOwner":     "u1",
		"attachContent": string(files["/f/hello.txt"]),
		"picSize":       float64(len(files["/f/pic.png"])),
		"picType":       "image/png",
		"newContent":    "fresh content from the client",
		"newWritten":    "written",
	}
	for k, v := range want {
		if fmt.Sprint(c[k]) != fmt.Sprint(v) {
			t.Errorf("client %s = %v, want %v", k, c[k], v)
		}
	}
	for _, k := range []string{"fileURL", "newURL"} {
		if u, _ := c[k].(string); !strings.HasPrefix(u, s.url+"/__files/"+appID+"/") {
			t.Errorf("%s is not fn's: %q", k, c[k])
		}
	}
	if fetched["/f/hello.txt"] != 1 {
		t.Errorf("the client reached the old file domain: %v", fetched)
	}
	// what the client wrote survives a re-import (the new objects are not the export's)
	out = imp(exp)
	if tot := sumClasses(out); tot.Added+tot.Changed+tot.Failed != 0 {
		t.Fatalf("re-import after client writes: %+v", out)
	}

	// an interrupted import resumes: a scan of the running LeanCloud app, killed while it waits for
	// the third page, goes on after the second when run again
	t.Setenv("FN_MASTER_KEY", "the-old-master")
	var scanMu sync.Mutex
	killed := false
	waiting := make(chan struct{})
	page := func(w http.ResponseWriter, ids []string, cursor string) {
		var res []map[string]any
		for _, id := range ids {
			res = append(res, map[string]any{"objectId": id, "createdAt": "2021-08-01T00:00:00.000Z", "updatedAt": "2021-08-01T00:00:00.000Z", "n": id})
		}
		c := any(nil)
		if cursor != "" {
			c = cursor
		}
		json.NewEncoder(w).Encode(map[string]any{"results": res, "cursor": c})
	}
	lc := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("X-LC-Key") != "the-old-master,master" {
			w.WriteHeader(401)
			return
		}
		q := r.URL.Query()
		switch {
		case r.URL.Path == "/1.1/schemas":
			w.Write([]byte(`{"Note":{}}`))
		case r.URL.Path != "/1.1/scan/classes/Note":
			http.NotFound(w, r)
		case q.Get("cursor") == "" && q.Get("where") == "":
			page(w, []string{"n1", "n2"}, "c1")
		case q.Get("cursor") == "c1":
			page(w, []string{"n3", "n4"}, "c2")
		case q.Get("cursor") == "c2" || strings.Contains(q.Get("where"), `"n4"`):
			scanMu.Lock()
			first := !killed
			killed = true
			scanMu.Unlock()
			if first {
				close(waiting)
				<-r.Context().Done() // until the CLI is killed
				return
			}
			page(w, []string{"n5", "n6"}, "")
		default:
			t.Errorf("unexpected scan %s", r.URL.RawQuery)
			w.WriteHeader(400)
		}
	}))
	defer lc.Close()
	work := t.TempDir()
	kill := exec.Command(binary(t), "import", "--from-leancloud", "--app-id", "oldApp", "--server", lc.URL, "--remote", "--app", "shop")
	kill.Dir = work
	kill.Env = append(os.Environ(), "NO_COLOR=1")
	if err := kill.Start(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-waiting:
	case <-time.After(60 * time.Second):
		kill.Process.Kill()
		t.Fatal("the import never asked for the third page")
	}
	kill.Process.Signal(syscall.SIGKILL)
	kill.Wait()
	count := func() float64 {
		_, body := leanCallKeys(t, s.url, appID, masterKey+",master", "GET", "/1.1/classes/Note?count=1&limit=0", "")
		var m map[string]any
		json.Unmarshal([]byte(body), &m)
		n, _ := m["count"].(float64)
		return n
	}
	if n := count(); n != 4 {
		t.Fatalf("after the kill fn has %v notes, want the first two pages (4)", n)
	}
	r := fn(t, work, "import", "--from-leancloud", "--app-id", "oldApp", "--server", lc.URL, "--remote", "--app", "shop", "--json")
	res := decodeImport(t, r)
	if r.code != 0 || res.Classes["Note"].Added != 2 || res.Classes["Note"].Unchanged != 0 {
		t.Fatalf("resumed import: %d %s %s", r.code, r.out, r.err)
	}
	if n := count(); n != 6 {
		t.Fatalf("after the resume fn has %v notes, want 6", n)
	}
}

func sumClasses(o importOut) (t struct{ Added, Changed, Unchanged, Failed int }) {
	for _, c := range o.Classes {
		t.Added += c.Added
		t.Changed += c.Changed
		t.Unchanged += c.Unchanged
		t.Failed += c.Failed
	}
	return t
}

// exitClient is an app's unchanged client code against fn (only serverURL differs).
const exitClient = `
const AV = require('leancloud-storage');
const [serverURL, appId, appKey] = process.argv.slice(2);
AV.init({ appId, appKey, serverURL });
const out = {};
const text = async (u) => { const r = await fetch(u); if (!r.ok) throw new Error('GET ' + u + ': ' + r.status); return r.text(); };
(async () => {
  try { await new AV.Query('Post').get('p2'); out.anonymousP2 = 'read'; } catch (e) { out.anonymousP2 = String(e.code); }
  const user = await AV.User.logIn('alice', 'password');
  out.userId = user.id;
  await AV.User.logOut();
  out.oldSession = (await AV.User.become('oldsession0alice0000000001')).id;
  const post = await new AV.Query('Post').include('author').get('p1');
  out.postTitle = post.get('title');
  out.postCreated = post.createdAt.toISOString();
  out.postAuthor = post.get('author').get('username');
  out.postWhen = post.get('when').toISOString();
  out.postWhere = post.get('where').latitude + ',' + post.get('where').longitude;
  out.postRaw = post.get('raw').base64;
  out.postTags = JSON.stringify(post.get('tags'));
  out.likers = (await post.relation('likes').query().find()).map(u => u.id).sort().join(',');
  const role = await new AV.Query(AV.Role).equalTo('name', 'admin').first();
  out.roleUsers = (await role.getUsers().query().find()).map(u => u.id).join(',');
  out.p2Title = (await new AV.Query('Post').get('p2')).get('title');
  out.p3Title = (await new AV.Query('Post').get('p3')).get('title');
  const comment = await new AV.Query('Comment').include('post').get('c1');
  out.commentPost = comment.get('post').get('title');
  const tag = await new AV.Query('Tag').get('t1');
  out.tagName = tag.get('name'); out.tagPost = tag.get('post').id; out.tagCount = tag.get('count');
  const f = await AV.File.createWithoutData('f1').fetch();
  out.fileURL = f.url(); out.fileOwner = f.ownerId();
  out.fileContent = await text(f.url());
  out.attachContent = await text(post.get('attachment').url());
  const pic = await fetch((await AV.File.createWithoutData('f2').fetch()).url());
  out.picType = pic.headers.get('content-type'); out.picSize = (await pic.arrayBuffer()).byteLength;
  const nf = new AV.File('new.txt', Buffer.from('fresh content from the client'));
  await nf.save();
  out.newURL = nf.url();
  out.newContent = await text(nf.url());
  await AV.User.logIn('bob', 'password');
  try { await new AV.Query('Post').get('p3'); out.bobP3 = 'read'; } catch (e) { out.bobP3 = String(e.code); }
  await AV.User.logIn('alice', 'password');
  const c = new AV.Object('Comment');
  c.set('post', post); c.set('text', 'from the client'); c.set('file', nf);
  await c.save();
  out.newWritten = (await new AV.Query('Comment').get(c.id)).get('text') === 'from the client' ? 'written' : 'lost';
  console.log(JSON.stringify(out));
})().catch(e => { console.error(e && e.stack || e); console.log(JSON.stringify(out)); process.exit(1); });
`

// With fn dev running, fn import goes to it: objects into its store, contents into .fn/files,
// served by fn dev at the rewritten URL; --local still writes the store directly.
func TestImportIntoRunningDev(t *testing.T) {
	content := []byte("dev file content")
	old := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write(content) }))
	defer old.Close()
	dir := importProject(t)
	testutil.LinkNodeModules(t, dir)
	exp := filepath.Join(t.TempDir(), "export")
	testutil.WriteFile(t, exp, "_File.jsonl", `{"objectId":"f1","name":"a.txt","url":"`+old.URL+`/a.txt","mime_type":"text/plain","metaData":{"size":16}}`+"\n")
	testutil.WriteFile(t, exp, "Post.jsonl", `{"objectId":"p1","title":"hi","ACL":{"*":{"read":true}}}`+"\n")
	d := startDev(t, dir)
	r := fn(t, dir, "import", exp, "--json")
	out := decodeImport(t, r)
	if r.code != 0 || out.Classes["Post"].Added != 1 || out.Classes["_File"].Added != 1 || !strings.Contains(r.out, `"into": "fn dev at `) {
		t.Fatalf("import into fn dev: %d %s %s", r.code, r.out, r.err)
	}
	st, body := leanCallKeys(t, d.url, "imp-fnDev", "impMaster,master", "GET", "/1.1/classes/_File/f1", "")
	var f map[string]any
	json.Unmarshal([]byte(body), &f)
	u, _ := f["url"].(string)
	if st != 200 || !strings.HasPrefix(u, d.url+"/__files/") {
		t.Fatalf("the _File in fn dev: %d %s", st, body)
	}
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !bytes.Equal(b, content) {
		t.Fatalf("GET %s: %d %q", u, resp.StatusCode, b)
	}
	if b, err := os.ReadFile(filepath.Join(dir, ".fn", "files", "f1")); err != nil || !bytes.Equal(b, content) {
		t.Fatalf(".fn/files/f1: %q %v", b, err)
	}
	if r := fn(t, dir, "import", exp, "--json"); r.code != 0 || decodeImport(t, r).Classes["Post"].Unchanged != 1 {
		t.Fatalf("second import: %d %s", r.code, r.out)
	}
	// the local import of the same export neither reverts the rewritten url nor counts a change
	if r := fn(t, dir, "import", exp, "--local", "--json"); r.code != 0 || strings.Contains(r.out, `"into"`) || decodeImport(t, r).Classes["_File"].Unchanged != 1 {
		t.Fatalf("--local: %d %s %s", r.code, r.out, r.err)
	}
	// --no-files: the contents stay where they are, so the objects keep the URLs that point there
	exp2 := filepath.Join(t.TempDir(), "export2")
	testutil.WriteFile(t, exp2, "_File.jsonl", `{"objectId":"f2","name":"b.txt","url":"`+old.URL+`/b.txt","mime_type":"text/plain","metaData":{"size":16}}`+"\n")
	if r := fn(t, dir, "import", exp2, "--no-files", "--json"); r.code != 0 || decodeImport(t, r).Classes["_File"].Added != 1 {
		t.Fatalf("--no-files: %d %s %s", r.code, r.out, r.err)
	}
	st, body = leanCallKeys(t, d.url, "imp-fnDev", "impMaster,master", "GET", "/1.1/classes/_File/f2", "")
	f = nil
	json.Unmarshal([]byte(body), &f)
	if st != 200 || f["url"] != old.URL+"/b.txt" {
		t.Fatalf("--no-files rewrote the url: %d %s", st, body)
	}
	if _, err := os.Stat(filepath.Join(dir, ".fn", "files", "f2")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf(".fn/files/f2 exists with --no-files: %v", err)
	}
}
