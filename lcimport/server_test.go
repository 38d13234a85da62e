package lcimport

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/fnhq/fn/internal/testutil"
	"github.com/fnhq/fn/store"
)

// A user who signed in on fn (LeanStorage replaced the LeanCloud hash) keeps fn's password
// through a re-import of the old export, which reports the user unchanged.
func TestReimportKeepsAnUpgradedPassword(t *testing.T) {
	st := openStore(t)
	dir := t.TempDir()
	testutil.WriteFile(t, dir, "_User.jsonl", `{"objectId":"u1","username":"a","salt":"s","password":"h","createdAt":"2020-01-01T00:00:00.000Z"}`+"\n")
	if _, err := importPath(t, dir, st, Options{}); err != nil {
		t.Fatal(err)
	}
	st.Update(context.Background(), "_User", "u1", func(o *store.Object) error {
		delete(o.Fields, FieldLCSalt)
		delete(o.Fields, FieldLCPassword)
		o.Fields["_hashed_password"] = "$2a$fn"
		return nil
	})
	rep, err := importPath(t, dir, st, Options{})
	if err != nil || rep.Classes["_User"].Unchanged != 1 {
		t.Fatalf("re-import: %+v %v", rep.Classes["_User"], err)
	}
	if u := get(t, st, "_User", "u1"); u.Fields["_hashed_password"] != "$2a$fn" || u.Fields[FieldLCPassword] != nil {
		t.Fatalf("the upgraded password was reverted: %v", u.Fields)
	}
}

// fakeServer is the server side of an import, as the admin API does it: each batch through
// NewWireSource and Import into a StoreTarget, without folding; fold and files separately.
func fakeServer(t *testing.T, st store.Store, filesDir string, batches *atomic.Int32) *httptest.Server {
	target := &StoreTarget{Store: st, FilesDir: filesDir}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /__fn/apps/{app}/import", func(w http.ResponseWriter, r *http.Request) {
		batches.Add(1)
		rep, err := Import(r.Context(), NewWireSource(r.Body), struct{ Target }{target}, Options{DryRun: r.URL.Query().Get("dryRun") == "1",
			Files: &FileOptions{SkipContent: true, URL: func(o *store.Object) string { return "http://fn/files/" + o.ID }}})
		res := BatchResult{Report: rep}
		if err != nil {
			res.Error = err.Error()
		}
		json.NewEncoder(w).Encode(res)
	})
	mux.HandleFunc("POST /__fn/apps/{app}/import/fold", func(w http.ResponseWriter, r *http.Request) {
		var body struct{ Classes []string }
		json.NewDecoder(r.Body).Decode(&body)
		out := map[string]FoldReport{}
		for _, c := range body.Classes {
			out[c], _ = target.FoldRelation(r.Context(), c)
		}
		json.NewEncoder(w).Encode(out)
	})
	mux.HandleFunc("GET /__fn/apps/{app}/import/files/{id}", func(w http.ResponseWriter, r *http.Request) {
		has, _ := target.HasFile(r.Context(), FileMeta{ObjectID: r.PathValue("id"), Size: -1, MD5: r.URL.Query().Get("md5")})
		json.NewEncoder(w).Encode(map[string]bool{"present": has})
	})
	mux.HandleFunc("PUT /__fn/apps/{app}/import/files/{id}", func(w http.ResponseWriter, r *http.Request) {
		if err := target.PutFile(r.Context(), FileMeta{ObjectID: r.PathValue("id")}, r.Body); err != nil {
			w.WriteHeader(500)
		}
		io.WriteString(w, "{}")
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

// ImportInto: batches bounded by MaxBatchRecords, reports summed, duplicates across batches
// found on the client, relations folded once, file contents sent after their objects, and a
// second run unchanged with nothing downloaded.
func TestImportIntoServer(t *testing.T) {
	var downloads atomic.Int32
	old := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		downloads.Add(1)
		io.WriteString(w, "content")
	}))
	defer old.Close()
	dir := t.TempDir()
	var b strings.Builder
	for i := range MaxBatchRecords + 10 {
		b.WriteString(`{"objectId":"n` + itoa(i) + `","likes":{"__type":"Relation","className":"Note"}}` + "\n")
	}
	b.WriteString(`{"objectId":"n1"}` + "\n") // a duplicate, in the second batch
	testutil.WriteFile(t, dir, "Note.jsonl", b.String())
	testutil.WriteFile(t, dir, "_Join:likes:Note.jsonl", `{"owningId":"n0","relatedId":"n1"}`+"\n")
	testutil.WriteFile(t, dir, "_File.jsonl", `{"objectId":"f1","name":"a.txt","url":"`+old.URL+`/a.txt","metaData":{"size":7}}`+"\n")
	st := openStore(t)
	var batches atomic.Int32
	srv := fakeServer(t, st, filepath.Join(t.TempDir(), "files"), &batches)
	run := func() *Report {
		src, err := Open(dir, OpenOptions{})
		if err != nil {
			t.Fatal(err)
		}
		defer src.Close()
		rep, err := ImportInto(context.Background(), src, &Server{URL: srv.URL, App: "a"}, Options{Files: &FileOptions{}})
		if err != nil {
			t.Fatal(err)
		}
		return rep
	}
	rep := run()
	if c := rep.Classes["Note"]; c.Added != MaxBatchRecords+10 || c.Failed != 1 || len(rep.Errors) != 1 || !strings.Contains(rep.Errors[0], "duplicate") {
		t.Fatalf("notes %+v %v", c, rep.Errors)
	}
	if batches.Load() < 2 {
		t.Fatalf("%d batches for %d records", batches.Load(), MaxBatchRecords+12)
	}
	if fr := rep.Relations["_Join:likes:Note"]; fr.Owners != 1 {
		t.Fatalf("fold %+v", rep.Relations)
	}
	if ids, _ := st.RelationTargets(context.Background(), store.Relation{OwnerClass: "Note", OwnerID: "n0", Key: "likes"}); len(ids) != 1 {
		t.Fatalf("relation rows %v", ids)
	}
	if rep.Files == nil || rep.Files.Downloaded != 1 || get(t, st, "_File", "f1").Fields["url"] != "http://fn/files/f1" {
		t.Fatalf("files %+v", rep.Files)
	}
	rep = run()
	if tot := rep.Totals(); tot.Added+tot.Changed != 0 || rep.Files.Present != 1 || downloads.Load() != 1 {
		t.Fatalf("second run: %+v files %+v downloads %d", tot, rep.Files, downloads.Load())
	}
}
