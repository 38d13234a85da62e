package wxdb

import (
	"context"
	"encoding/json"
	"path/filepath"
	"testing"
)

func openTest(t testing.TB) *DB {
	t.Helper()
	db, err := Open(filepath.Join(t.TempDir(), "db.sqlite"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// reply is a decoded Handle answer.
type reply struct {
	Code          string          `json:"code"`
	Message       string          `json:"message"`
	RequestID     string          `json:"requestId"`
	TransactionID string          `json:"transactionId"`
	Data          json.RawMessage `json:"data"`
}

// call sends one action the way the SDK does; body values that are EJSON go in as strings.
func call(t testing.TB, db *DB, action string, body map[string]any) reply {
	t.Helper()
	return callAs(t, db, Caller{}, action, body)
}

func callAs(t testing.TB, db *DB, caller Caller, action string, body map[string]any) reply {
	t.Helper()
	body["action"] = action
	b, err := json.Marshal(body)
	if err != nil {
		t.Fatal(err)
	}
	out, ok := db.Handle(context.Background(), "env", caller, action, b)
	if !ok {
		t.Fatalf("%s: not handled", action)
	}
	var r reply
	if err := json.Unmarshal(out, &r); err != nil {
		t.Fatalf("%s: reply %s: %v", action, out, err)
	}
	return r
}

func mustOK(t testing.TB, r reply) reply {
	t.Helper()
	if r.Code != "" {
		t.Fatalf("unexpected error %s: %s", r.Code, r.Message)
	}
	return r
}

// list decodes a get/aggregate answer's EJSON list into plain JSON values.
func list(t testing.TB, r reply) []map[string]any {
	t.Helper()
	mustOK(t, r)
	var d struct {
		List []string `json:"list"`
	}
	if err := json.Unmarshal(r.Data, &d); err != nil {
		t.Fatal(err)
	}
	out := make([]map[string]any, len(d.List))
	for i, s := range d.List {
		if err := json.Unmarshal([]byte(s), &out[i]); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

func insert(t testing.TB, db *DB, coll string, docs ...string) {
	t.Helper()
	mustOK(t, call(t, db, "database.insertDocument", map[string]any{"collectionName": coll, "data": docs}))
}
