package wxdb

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fnhq/fn/internal/testutil"
)

func TestHandleRejectsHostileInput(t *testing.T) {
	db := openTest(t)
	insert(t, db, "c", `{"_id":"a","n":1}`)
	deep := strings.Repeat(`{"a":`, maxDepth+5) + "1" + strings.Repeat("}", maxDepth+5)
	big := `{"s":"` + strings.Repeat("x", maxDocSize) + `"}`
	cases := []struct {
		name, action string
		body         map[string]any
		code         string
	}{
		{"malformed EJSON", "database.getDocument", map[string]any{"collectionName": "c", "query": `{"a":`}, CodeInvalidParam},
		{"bad number wrapper", "database.insertDocument", map[string]any{"collectionName": "c", "data": []string{`{"n":{"$numberInt":"x"}}`}}, CodeInvalidParam},
		{"query not a string", "database.getDocument", map[string]any{"collectionName": "c", "query": 5}, CodeInvalidParam},
		{"deep document", "database.insertDocument", map[string]any{"collectionName": "c", "data": []string{deep}}, CodeInvalidParam},
		{"too large", "database.insertDocument", map[string]any{"collectionName": "c", "data": []string{big}}, CodeRequestFailed},
		{"dollar field", "database.insertDocument", map[string]any{"collectionName": "c", "data": []string{`{"a":{"$x":1}}`}}, CodeInvalidParam},
		{"dotted field", "database.insertDocument", map[string]any{"collectionName": "c", "data": []string{`{"a.b":1}`}}, CodeInvalidParam},
		{"empty field", "database.insertDocument", map[string]any{"collectionName": "c", "data": []string{`{"":1}`}}, CodeInvalidParam},
		{"bad _id", "database.insertDocument", map[string]any{"collectionName": "c", "data": []string{`{"_id":{"x":1}}`}}, CodeInvalidParam},
		{"no documents", "database.insertDocument", map[string]any{"collectionName": "c", "data": []string{}}, CodeInvalidParam},
		{"bad collection name", "database.getDocument", map[string]any{"collectionName": "../etc"}, CodeInvalidParam},
		{"no collection name", "database.getDocument", map[string]any{}, CodeInvalidParam},
		{"negative limit", "database.getDocument", map[string]any{"collectionName": "c", "limit": -1}, CodeInvalidParam},
		{"fractional offset", "database.getDocument", map[string]any{"collectionName": "c", "offset": 1.5}, CodeInvalidParam},
		{"unknown operator", "database.getDocument", map[string]any{"collectionName": "c", "query": `{"n":{"$near2":1}}`}, CodeInvalidCommand},
		{"long path", "database.getDocument", map[string]any{"collectionName": "c", "query": `{"` + strings.Repeat("a.", 200) + `a":1}`}, CodeInvalidParam},
		{"long update path", "database.modifyDocument", map[string]any{"collectionName": "c", "query": `{}`, "multi": true, "data": `{"$set":{"` + strings.Repeat("a.", 200) + `a":1}}`}, CodeInvalidParam},
		{"bad path", "database.modifyDocument", map[string]any{"collectionName": "c", "query": `{}`, "data": `{"$set":{"a.":1}}`, "multi": true}, CodeInvalidParam},
		{"replace with operator", "database.modifyDocument", map[string]any{"collectionName": "c", "query": `{"_id":"a"}`, "queryType": "DOC", "merge": false, "data": `{"$set":{"a":1}}`}, CodeInvalidParam},
		{"unknown stage", "database.aggregateDocuments", map[string]any{"collectionName": "c", "stages": []map[string]any{{"stageKey": "$out", "stageValue": `"x"`}}}, CodeInvalidCommand},
		{"unknown expression", "database.aggregateDocuments", map[string]any{"collectionName": "c", "stages": []map[string]any{{"stageKey": "$project", "stageValue": `{"x":{"$nope":1}}`}}}, CodeInvalidCommand},
		{"unknown action", "database.dropEverything", map[string]any{"collectionName": "c"}, CodeInvalidCommand},
		{"watch", "database.watch", map[string]any{"collectionName": "c"}, CodeWatchUnsupported},
		{"missing collection", "database.calculateDocument", map[string]any{"collectionName": "none"}, CodeCollectionNotExist},
		{"unknown transaction", "database.commitTransaction", map[string]any{"transactionId": "nope"}, CodeTxNotExist},
	}
	for _, c := range cases {
		r := call(t, db, c.action, c.body)
		if r.Code != c.code {
			t.Errorf("%s: got %q %q, want %s", c.name, r.Code, r.Message, c.code)
		}
		if len(r.RequestID) != 32 {
			t.Errorf("%s: requestId %q", c.name, r.RequestID)
		}
	}
	// Nothing was written by the failures.
	r := mustOK(t, call(t, db, "database.calculateDocument", map[string]any{"collectionName": "c"}))
	if string(r.Data) != `{"total":1}` {
		t.Fatalf("failed writes left documents: %s", r.Data)
	}
	// A body that is not JSON and an action that is not the database's.
	out, ok := db.Handle(context.Background(), "env", Caller{}, "database.getDocument", json.RawMessage(`{`))
	if !ok || !strings.Contains(string(out), CodeInvalidParam) {
		t.Errorf("non-JSON body: %s %v", out, ok)
	}
	if _, ok := db.Handle(context.Background(), "env", Caller{}, "functions.invokeFunction", json.RawMessage(`{}`)); ok {
		t.Error("a functions action was taken as a database action")
	}
}

func TestHandleSemantics(t *testing.T) {
	db := openTest(t)
	// Environments are separate databases.
	insert(t, db, "c", `{"_id":"a","n":1}`)
	out, _ := db.Handle(context.Background(), "other", Caller{}, "database.getDocument", json.RawMessage(`{"collectionName":"c"}`))
	if !strings.Contains(string(out), CodeCollectionNotExist) {
		t.Errorf("another environment sees the collection: %s", out)
	}
	// A mini-program client cannot create a collection by adding to it, and gets 20 at most.
	r := callAs(t, db, Caller{OpenID: "u", Client: true}, "database.insertDocument", map[string]any{"collectionName": "fresh", "data": []string{`{"x":1}`}})
	if r.Code != CodeCollectionNotExist {
		t.Errorf("client add to a missing collection: %+v", r)
	}
	var docs []string
	for i := 0; i < 30; i++ {
		docs = append(docs, `{"i":1}`)
	}
	insert(t, db, "c", docs...)
	if n := len(list(t, callAs(t, db, Caller{Client: true}, "database.getDocument", map[string]any{"collectionName": "c", "limit": 100}))); n != 20 {
		t.Errorf("client get returned %d, want 20", n)
	}
	if r := callAs(t, db, Caller{Client: true}, "database.removeDocument", map[string]any{"collectionName": "c", "queryType": "WHERE", "query": `{}`, "multi": true}); r.Code != "DATABASE_PERMISSION_DENIED" {
		t.Errorf("client where-remove: %+v", r)
	}
	if n := len(list(t, call(t, db, "database.getDocument", map[string]any{"collectionName": "c", "limit": 5000}))); n != 31 {
		t.Errorf("server get with a large limit returned %d", n)
	}
	// _openid comes from the caller, unless the document has one.
	callAs(t, db, Caller{OpenID: "o9"}, "database.insertDocument", map[string]any{"collectionName": "c", "data": []string{`{"_id":"w","k":1}`, `{"_id":"v","_openid":"mine"}`}})
	got := list(t, call(t, db, "database.getDocument", map[string]any{"collectionName": "c", "query": `{"_id":{"$in":["v","w"]}}`, "order": `{"_id":1}`}))
	if got[0]["_openid"] != "mine" || got[1]["_openid"] != "o9" {
		t.Errorf("_openid: %v", got)
	}
	// Updates that change nothing do not count.
	r = mustOK(t, call(t, db, "database.modifyDocument", map[string]any{"collectionName": "c", "query": `{"_id":"a"}`, "queryType": "DOC", "merge": true, "data": `{"$set":{"n":1}}`}))
	if string(r.Data) != `{"updated":0}` {
		t.Errorf("no-op update: %s", r.Data)
	}
	// updateAndReturn answers the new document.
	r = mustOK(t, call(t, db, "database.modifyAndReturnDoc", map[string]any{"collectionName": "c", "query": `{"_id":"a"}`, "data": `{"$inc":{"n":{"$numberInt":"4"}}}`}))
	var mr struct {
		Updated int    `json:"updated"`
		Doc     string `json:"doc"`
	}
	json.Unmarshal(r.Data, &mr)
	if mr.Updated != 1 || mr.Doc != `{"_id":"a","n":5}` {
		t.Errorf("modifyAndReturnDoc: %s", r.Data)
	}
	// A where-update with multi false touches one document.
	r = mustOK(t, call(t, db, "database.modifyDocument", map[string]any{"collectionName": "c", "query": `{"i":1}`, "multi": false, "merge": true, "data": `{"$set":{"i":2}}`}))
	if string(r.Data) != `{"updated":1}` {
		t.Errorf("multi false: %s", r.Data)
	}
}

func TestTransactions(t *testing.T) {
	db := openTest(t)
	insert(t, db, "acct", `{"_id":"a","bal":10}`, `{"_id":"b","bal":0}`)
	start := func() string {
		r := mustOK(t, call(t, db, "database.startTransaction", map[string]any{}))
		if len(r.TransactionID) != 32 {
			t.Fatalf("transactionId %q", r.TransactionID)
		}
		return r.TransactionID
	}
	get := func(tx, id string) []map[string]any {
		return list(t, call(t, db, "database.getDocument", map[string]any{"collectionName": "acct", "queryType": "DOC", "query": `{"_id":"` + id + `"}`, "transactionId": tx}))
	}
	inc := func(tx, id string, n int) reply {
		body := map[string]any{"collectionName": "acct", "queryType": "DOC", "query": `{"_id":"` + id + `"}`, "merge": true, "data": `{"$inc":{"bal":` + itoa(n) + `}}`}
		if tx != "" {
			body["transactionId"] = tx
		}
		return call(t, db, "database.modifyDocument", body)
	}
	// Own writes are visible inside, not outside, until commit.
	t1 := start()
	mustOK(t, inc(t1, "a", -5))
	mustOK(t, call(t, db, "database.removeDocument", map[string]any{"collectionName": "acct", "queryType": "DOC", "query": `{"_id":"b"}`, "transactionId": t1}))
	if bal := get(t1, "a")[0]["bal"]; bal != 5.0 {
		t.Errorf("inside: %v", bal)
	}
	if len(get(t1, "b")) != 0 {
		t.Error("a removed document is visible inside its transaction")
	}
	if bal := get("", "a")[0]["bal"]; bal != 10.0 {
		t.Errorf("outside before commit: %v", bal)
	}
	mustOK(t, call(t, db, "database.commitTransaction", map[string]any{"transactionId": t1}))
	if bal := get("", "a")[0]["bal"]; bal != 5.0 || len(get("", "b")) != 0 {
		t.Errorf("after commit: %v", get("", "a"))
	}
	// Snapshot: a write after the start is not seen, and writing that document conflicts at commit.
	t2 := start()
	mustOK(t, inc("", "a", 100))
	if bal := get(t2, "a")[0]["bal"]; bal != 5.0 {
		t.Errorf("snapshot read: %v", bal)
	}
	mustOK(t, inc(t2, "a", 1))
	if r := call(t, db, "database.commitTransaction", map[string]any{"transactionId": t2}); r.Code != CodeTxConflict {
		t.Errorf("commit after a concurrent write: %+v", r)
	}
	if bal := get("", "a")[0]["bal"]; bal != 105.0 {
		t.Errorf("a conflicting commit wrote: %v", bal)
	}
	// Abort discards; a finished transaction is gone.
	t3 := start()
	mustOK(t, inc(t3, "a", 1))
	mustOK(t, call(t, db, "database.abortTransaction", map[string]any{"transactionId": t3}))
	if r := inc(t3, "a", 1); r.Code != CodeTxNotExist {
		t.Errorf("write in an aborted transaction: %+v", r)
	}
	// Idle transactions expire.
	t4 := start()
	db.now = func() time.Time { return time.Now().Add(txIdle + time.Second) }
	t4b := start()
	if r := inc(t4, "a", 1); r.Code != CodeTxNotExist {
		t.Errorf("write in an expired transaction: %+v", r)
	}
	db.now = time.Now
	if bal := get("", "a")[0]["bal"]; bal != 105.0 {
		t.Errorf("aborted or expired transactions wrote: %v", bal)
	}
	// Where queries are not transactional.
	t5 := start()
	if r := call(t, db, "database.getDocument", map[string]any{"collectionName": "acct", "query": `{"bal":1}`, "transactionId": t5}); r.Code != CodeInvalidParam {
		t.Errorf("where in a transaction: %+v", r)
	}
	// Old states are kept only while a transaction may read them.
	mustOK(t, inc("", "a", 1))
	if len(db.history) == 0 {
		t.Error("no old state kept for an open transaction")
	}
	mustOK(t, call(t, db, "database.abortTransaction", map[string]any{"transactionId": t5}))
	mustOK(t, call(t, db, "database.abortTransaction", map[string]any{"transactionId": t4b}))
	if len(db.txs) != 0 || len(db.history) != 0 {
		t.Errorf("after the last transaction: %d open, %d old states", len(db.txs), len(db.history))
	}
}

func TestExportImport(t *testing.T) {
	db := openTest(t)
	insert(t, db, "c", `{"_id":"a","n":1,"d":{"$date":"2024-01-02T03:04:05.006Z"},"arr":[1,"x"]}`, `{"_id":"b","f":1.5,"big":{"$numberLong":"9007199254740993"}}`)
	var buf bytes.Buffer
	n, err := db.Export(context.Background(), "env", "c", &buf)
	if err != nil || n != 2 {
		t.Fatal(n, err)
	}
	want := `{"_id":"a","n":1,"d":{"$date":"2024-01-02T03:04:05.006Z"},"arr":[1,"x"]}` + "\n" + `{"_id":"b","f":1.5,"big":9007199254740993}` + "\n"
	if buf.String() != want {
		t.Fatalf("export:\n%s", buf.String())
	}
	db2 := openTest(t)
	if n, err := db2.Import(context.Background(), "env", "copy", strings.NewReader(buf.String()+"\n{\"noid\":true}\n"), ImportInsert); err != nil || n != 3 {
		t.Fatal(n, err)
	}
	var again bytes.Buffer
	db2.Export(context.Background(), "env", "copy", &again)
	if !strings.HasPrefix(again.String(), want) {
		t.Errorf("round trip:\n%s", again.String())
	}
	// Insert mode refuses existing ids and imports nothing; upsert replaces.
	if _, err := db2.Import(context.Background(), "env", "copy", strings.NewReader(`{"_id":"zz"}`+"\n"+`{"_id":"a"}`), ImportInsert); err == nil {
		t.Error("import over an existing _id succeeded")
	}
	if n, err := db2.Import(context.Background(), "env", "copy", strings.NewReader(`{"_id":"a","n":2}`), ImportUpsert); err != nil || n != 1 {
		t.Error(n, err)
	}
	got := list(t, callEnv(t, db2, "database.getDocument", map[string]any{"collectionName": "copy", "query": `{"_id":{"$in":["a","zz"]}}`}))
	if len(got) != 1 || got[0]["n"] != 2.0 {
		t.Errorf("after upsert import: %v", got)
	}
	// A bad line names itself.
	if _, err := db2.Import(context.Background(), "env", "copy", strings.NewReader(`{"_id":"q"}`+"\n"+`{oops`), ImportInsert); err == nil || !strings.Contains(err.Error(), "line 2") {
		t.Errorf("bad line: %v", err)
	}
}

func callEnv(t *testing.T, db *DB, action string, body map[string]any) reply {
	return call(t, db, action, body)
}

func TestFilesArePrivate(t *testing.T) {
	dir := t.TempDir()
	db, err := Open(filepath.Join(dir, "db.sqlite"))
	if err != nil {
		t.Fatal(err)
	}
	insert(t, db, "c", `{"x":1}`)
	db.Close()
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		info, _ := e.Info()
		if info.Mode().Perm()&0o077 != 0 {
			t.Errorf("%s is %v", e.Name(), info.Mode().Perm())
		}
	}
	// Reopening keeps the data and the version counter.
	db, err = Open(filepath.Join(dir, "db.sqlite"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if db.seq.Load() == 0 {
		t.Error("the version counter was not kept")
	}
	if n := len(list(t, call(t, db, "database.getDocument", map[string]any{"collectionName": "c"}))); n != 1 {
		t.Errorf("reopened: %d documents", n)
	}
}

func TestAnotherProcessWrites(t *testing.T) {
	path := filepath.Join(t.TempDir(), "db.sqlite")
	a, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	insert(t, a, "c", `{"_id":"1","t":"x"}`)
	q := map[string]any{"collectionName": "c", "query": `{"t":"x"}`}
	if n := len(list(t, call(t, a, "database.getDocument", q))); n != 1 {
		t.Fatalf("got %d", n)
	}
	// A second process (fn data import) makes t an array field: the first must stop pushing
	// the condition down, or it would miss the new document.
	b, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	insert(t, b, "c", `{"_id":"2","t":["y","x"]}`)
	insert(t, b, "d", `{"_id":"3"}`)
	b.Close()
	if got := ids(t, list(t, call(t, a, "database.getDocument", q))); strings.Join(got, ",") != "1,2" {
		t.Errorf("after another process wrote: %v", got)
	}
	if n := len(list(t, call(t, a, "database.getDocument", map[string]any{"collectionName": "d"}))); n != 1 {
		t.Errorf("a collection made by another process: %d", n)
	}
	// Versions stay ordered across processes: a transaction that read before b's write conflicts.
	tx := mustOK(t, call(t, a, "database.startTransaction", map[string]any{})).TransactionID
	b, _ = Open(path)
	mustOK(t, call(t, b, "database.modifyDocument", map[string]any{"collectionName": "c", "queryType": "DOC", "query": `{"_id":"1"}`, "merge": true, "data": `{"$set":{"n":1}}`}))
	b.Close()
	mustOK(t, call(t, a, "database.modifyDocument", map[string]any{"collectionName": "c", "queryType": "DOC", "query": `{"_id":"1"}`, "merge": true, "data": `{"$set":{"n":2}}`, "transactionId": tx}))
	if r := call(t, a, "database.commitTransaction", map[string]any{"transactionId": tx}); r.Code != CodeTxConflict {
		t.Errorf("commit over another process's write: %+v", r)
	}
}

func TestLegacyTransactionActions(t *testing.T) {
	db := openTest(t)
	insert(t, db, "c", `{"_id":"a","n":1}`)
	tx := mustOK(t, call(t, db, "database.startTransaction", map[string]any{})).TransactionID
	raw := func(action string, body map[string]any) map[string]any {
		body["action"], body["transactionId"], body["collectionName"] = action, tx, "c"
		b, _ := json.Marshal(body)
		out, _ := db.Handle(context.Background(), "env", Caller{}, action, b)
		var m map[string]any
		json.Unmarshal(out, &m)
		return m
	}
	if m := raw("database.getInTransaction", map[string]any{"_id": "a"}); m["data"] != `{"_id":"a","n":1}` {
		t.Errorf("get: %v", m)
	}
	if m := raw("database.updateDocInTransaction", map[string]any{"_id": "a", "data": `{"$set":{"n":{"$numberInt":"2"}}}`}); m["updated"] != "1" {
		t.Errorf("update: %v", m)
	}
	if m := raw("database.updateDocInTransaction", map[string]any{"_id": "b", "data": `{"m":1}`, "upsert": true}); m["updated"] != "0" || m["upserted"] != `{"_id":"b"}` {
		t.Errorf("upsert: %v", m)
	}
	if m := raw("database.deleteDocInTransaction", map[string]any{"_id": "a"}); m["deleted"] != "1" {
		t.Errorf("delete: %v", m)
	}
	if m := raw("database.getInTransaction", map[string]any{"_id": "a"}); m["data"] != "null" {
		t.Errorf("get after delete: %v", m)
	}
	mustOK(t, call(t, db, "database.commitTransaction", map[string]any{"transactionId": tx}))
	got := list(t, call(t, db, "database.getDocument", map[string]any{"collectionName": "c"}))
	if len(got) != 1 || got[0]["_id"] != "b" || got[0]["m"] != 1.0 {
		t.Errorf("after commit: %v", got)
	}
}

func TestPlainWriteWaitsForTransaction(t *testing.T) {
	db := openTest(t)
	insert(t, db, "c", `{"_id":"a","n":1}`, `{"_id":"b","n":1}`)
	upd := func(tx, id string, n int) map[string]any {
		body := map[string]any{"collectionName": "c", "queryType": "DOC", "query": `{"_id":"` + id + `"}`, "merge": true, "data": `{"$inc":{"n":` + itoa(n) + `}}`}
		if tx != "" {
			body["transactionId"] = tx
		}
		return body
	}
	tx := mustOK(t, call(t, db, "database.startTransaction", map[string]any{})).TransactionID
	mustOK(t, call(t, db, "database.modifyDocument", upd(tx, "a", 10)))
	// Another document is not locked.
	mustOK(t, call(t, db, "database.modifyDocument", upd("", "b", 1)))
	done := make(chan []byte, 1)
	go func() {
		b, _ := json.Marshal(upd("", "a", 1))
		out, _ := db.Handle(context.Background(), "env", Caller{}, "database.modifyDocument", b)
		done <- out
	}()
	testutil.Eventually(t, 5*time.Second, "the plain write to wait for the transaction", func() bool { return db.waiting.Load() == 1 })
	select {
	case out := <-done:
		t.Fatalf("the plain write finished while the document was locked: %s", out)
	default:
	}
	// The transaction commits without a conflict; then the waiting write applies on top.
	mustOK(t, call(t, db, "database.commitTransaction", map[string]any{"transactionId": tx}))
	if out := <-done; !strings.Contains(string(out), `"updated":1`) {
		t.Fatalf("the waiting write: %s", out)
	}
	got := list(t, call(t, db, "database.getDocument", map[string]any{"collectionName": "c", "order": `{"_id":1}`}))
	if got[0]["n"] != 12.0 || got[1]["n"] != 2.0 {
		t.Errorf("after both writes: %v", got)
	}
	// A write that waits too long gives up, and writes nothing.
	db.lockWait = 20 * time.Millisecond
	tx = mustOK(t, call(t, db, "database.startTransaction", map[string]any{})).TransactionID
	mustOK(t, call(t, db, "database.removeDocument", map[string]any{"collectionName": "c", "queryType": "DOC", "query": `{"_id":"a"}`, "transactionId": tx}))
	if r := call(t, db, "database.removeDocument", map[string]any{"collectionName": "c", "query": `{}`, "multi": true}); r.Code != CodeRequestFailed || !strings.Contains(r.Message, "locked by a transaction") {
		t.Errorf("a write past the lock wait: %+v", r)
	}
	mustOK(t, call(t, db, "database.abortTransaction", map[string]any{"transactionId": tx}))
	if r := mustOK(t, call(t, db, "database.calculateDocument", map[string]any{"collectionName": "c"})); string(r.Data) != `{"total":2}` {
		t.Errorf("documents after the abandoned write: %s", r.Data)
	}
}
