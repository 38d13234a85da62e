package lcimport

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/hex"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/fnhq/fn/store"
)

func TestBSONBackup(t *testing.T) {
	created := time.Date(2020, 1, 2, 3, 4, 5, 678e6, time.UTC)
	oid := bson.NewObjectIDFromTimestamp(created)
	docs := []bson.D{
		{ // Parse-style internal names
			{Key: "_id", Value: "p1"}, {Key: "_created_at", Value: bson.NewDateTimeFromTime(created)},
			{Key: "_updated_at", Value: bson.NewDateTimeFromTime(created.Add(time.Hour))},
			{Key: "title", Value: "hi"}, {Key: "likes", Value: int32(3)}, {Key: "big", Value: int64(1 << 40)},
			{Key: "_p_author", Value: "_User$u1"},
			{Key: "_acl", Value: bson.D{{Key: "*", Value: bson.D{{Key: "r", Value: true}}}, {Key: "u1", Value: bson.D{{Key: "r", Value: true}, {Key: "w", Value: true}}}}},
			{Key: "when", Value: bson.NewDateTimeFromTime(created)},
			{Key: "raw", Value: bson.Binary{Data: []byte("hello")}},
			{Key: "tags", Value: bson.A{"a", int32(2)}},
		},
		{ // REST-style names, ObjectID ids, permissions as _rperm/_wperm
			{Key: "_id", Value: oid}, {Key: "createdAt", Value: bson.NewDateTimeFromTime(created)},
			{Key: "updatedAt", Value: bson.NewDateTimeFromTime(created)},
			{Key: "_rperm", Value: bson.A{"*"}}, {Key: "_wperm", Value: bson.A{"u1"}},
			{Key: "loc", Value: bson.D{{Key: "__type", Value: "GeoPoint"}, {Key: "latitude", Value: 1.5}, {Key: "longitude", Value: 2.5}}},
		},
	}
	var buf bytes.Buffer
	for _, d := range docs {
		b, err := bson.Marshal(d)
		if err != nil {
			t.Fatal(err)
		}
		buf.Write(b)
	}
	dir := filepath.Join(t.TempDir(), "dump", "app")
	os.MkdirAll(dir, 0o755)
	os.WriteFile(filepath.Join(dir, "Post.bson"), buf.Bytes(), 0o644)
	os.WriteFile(filepath.Join(dir, "Post.metadata.json"), []byte(`{"indexes":[]}`), 0o644)

	st := openStore(t)
	rep, err := importPath(t, filepath.Dir(dir), st, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if c := rep.Classes["Post"]; c == nil || c.Added != 2 || len(rep.Classes) != 1 {
		t.Fatalf("report %v %v", rep.Classes, rep.Errors)
	}
	p1 := get(t, st, "Post", "p1")
	want := `{"ACL":{"*":{"read":true},"u1":{"read":true,"write":true}},"author":{"__type":"Pointer","className":"_User","objectId":"u1"},` +
		`"big":1099511627776,"likes":3,"raw":{"__type":"Bytes","base64":"aGVsbG8="},"tags":["a",2],"title":"hi",` +
		`"when":{"__type":"Date","iso":"2020-01-02T03:04:05.678Z"}}`
	if got := mustJSON(p1.Fields); got != want {
		t.Errorf("p1\n got %s\nwant %s", got, want)
	}
	if !p1.CreatedAt.Equal(created) || !p1.UpdatedAt.Equal(created.Add(time.Hour)) {
		t.Errorf("timestamps %v %v", p1.CreatedAt, p1.UpdatedAt)
	}
	p2 := get(t, st, "Post", oid.Hex())
	if got := mustJSON(p2.Fields); got != `{"ACL":{"*":{"read":true},"u1":{"write":true}},"loc":{"__type":"GeoPoint","latitude":1.5,"longitude":2.5}}` {
		t.Errorf("p2 %s", got)
	}

	// a backup cut in the middle of a document
	os.WriteFile(filepath.Join(dir, "Post.bson"), buf.Bytes()[:buf.Len()-7], 0o644)
	rep, err = importPath(t, filepath.Join(dir, "Post.bson"), openStore(t), Options{})
	if err == nil || !strings.Contains(err.Error(), "Post.bson document:2") || !strings.Contains(err.Error(), "truncated") {
		t.Fatalf("truncated backup: %v", err)
	}
	if rep.Classes["Post"].Added != 1 {
		t.Errorf("report %+v", rep.Classes["Post"])
	}
}

// fileServer serves files by path, failing the first request to /flaky with a 503.
type fileServer struct {
	mu    sync.Mutex
	hits  map[string]int
	files map[string]string
}

func (s *fileServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.hits[r.URL.Path]++
	n := s.hits[r.URL.Path]
	s.mu.Unlock()
	if r.URL.Path == "/flaky.txt" && n == 1 {
		http.Error(w, "busy", http.StatusServiceUnavailable)
		return
	}
	body, ok := s.files[r.URL.Path]
	if !ok {
		http.NotFound(w, r)
		return
	}
	w.Write([]byte(body))
}

func md5hex(s string) string { h := md5.Sum([]byte(s)); return hex.EncodeToString(h[:]) }

func TestFilesAreDownloadedCheckedAndResumable(t *testing.T) {
	fs := &fileServer{hits: map[string]int{}, files: map[string]string{
		"/a.png": "PNG-BYTES", "/flaky.txt": "second time lucky", "/bad.txt": "tampered",
	}}
	srv := httptest.NewServer(fs)
	defer srv.Close()
	line := func(id, path, body string, size int) string {
		return `{"objectId":"` + id + `","name":"` + path[1:] + `","url":"` + srv.URL + path + `","key":"k` + id + `","mime_type":"text/plain",` +
			`"metaData":{"size":` + itoa(size) + `,"_checksum":"` + md5hex(body) + `","owner":"u1"},"createdAt":"2020-01-01T00:00:00.000Z","updatedAt":"2020-01-01T00:00:00.000Z"}`
	}
	export := strings.Join([]string{
		line("f1", "/a.png", "PNG-BYTES", 9),
		line("f2", "/flaky.txt", "second time lucky", 17),
		line("f3", "/bad.txt", "original", 8),
		line("f4", "/missing.txt", "x", 1),
		`{"objectId":"f5","name":"odd","url":"ftp://files.example/odd"}`,
	}, "\n") + "\n"
	dir := t.TempDir()
	p := filepath.Join(dir, "_File.jsonl")
	os.WriteFile(p, []byte(export), 0o644)
	blobs := filepath.Join(dir, "blobs")
	st := openStore(t)
	files := &FileOptions{
		URL:      func(o *store.Object) string { return "/files/" + o.ID },
		Parallel: 2,
		Backoff:  func(int) time.Duration { return time.Millisecond },
	}
	run := func() *Report {
		src, err := Open(p, OpenOptions{})
		if err != nil {
			t.Fatal(err)
		}
		defer src.Close()
		rep, err := Import(context.Background(), src, &StoreTarget{Store: st, FilesDir: blobs}, Options{Files: files})
		if err != nil {
			t.Fatal(err)
		}
		return rep
	}
	rep := run()
	if rep.Files == nil || rep.Files.Downloaded != 2 || rep.Files.Failed != 3 || rep.Files.Bytes != 26 || rep.Classes["_File"].Added != 5 {
		t.Fatalf("files %+v", rep.Files)
	}
	errs := strings.Join(rep.Files.Errors, "\n")
	if !strings.Contains(errs, "_File f3: file content does not match its checksum") || !strings.Contains(errs, "_File f4: downloading: HTTP 404") ||
		!strings.Contains(errs, `_File.jsonl:5: _File f5: invalid value: _File url "ftp://files.example/odd" is not an http(s) URL`) {
		t.Errorf("file errors:\n%s", errs)
	}
	if b, _ := os.ReadFile(filepath.Join(blobs, "f1")); string(b) != "PNG-BYTES" {
		t.Errorf("f1 content %q", b)
	}
	if _, err := os.Stat(filepath.Join(blobs, "f3")); !os.IsNotExist(err) {
		t.Error("a file with a wrong checksum was kept")
	}
	entries, _ := os.ReadDir(blobs)
	if len(entries) != 2 {
		t.Errorf("blob dir holds %d entries (partial downloads left behind?)", len(entries))
	}
	f1 := get(t, st, "_File", "f1")
	if f1.Fields["url"] != "/files/f1" || f1.Fields[FieldLCURL] != srv.URL+"/a.png" {
		t.Errorf("f1 url %v / %v", f1.Fields["url"], f1.Fields[FieldLCURL])
	}
	if got := ExportJSON(f1)["url"]; got != "/files/f1" {
		t.Errorf("exported url %v", got)
	}

	// a second run downloads only what is missing, and the objects compare unchanged
	fs.files["/bad.txt"] = "original"
	rep = run()
	if rep.Files.Present != 2 || rep.Files.Downloaded != 1 || rep.Files.Failed != 2 {
		t.Fatalf("second run files %+v", rep.Files)
	}
	if c := rep.Classes["_File"]; c.Unchanged != 5 {
		t.Errorf("second run objects %+v", c)
	}
	if fs.hits["/a.png"] != 1 {
		t.Errorf("a.png fetched %d times", fs.hits["/a.png"])
	}
}

func itoa(n int) string { return strconv.Itoa(n) }
