package wxdb

import (
	"context"
	"encoding/json"
	"testing"
)

func client(t *testing.T, db *DB, openid string, perm Permission, action string, body map[string]any) reply {
	t.Helper()
	body["action"] = action
	b, _ := json.Marshal(body)
	out, ok := db.HandleClient(context.Background(), "env", Caller{OpenID: openid}, func(string) Permission { return perm }, action, b)
	if !ok {
		t.Fatalf("%s not handled", action)
	}
	var r reply
	if err := json.Unmarshal(out, &r); err != nil {
		t.Fatal(err)
	}
	return r
}

func listLen(t *testing.T, r reply) int {
	var d struct{ List []string }
	json.Unmarshal(r.Data, &d)
	return len(d.List)
}

func TestClientPermissions(t *testing.T) {
	db := openTest(t)
	call(t, db, "database.insertDocument", map[string]any{"collectionName": "c", "data": []string{`{"_id":"a1","_openid":"oA","k":1}`, `{"_id":"b1","_openid":"oB","k":1}`}})
	where := map[string]any{"collectionName": "c", "query": `{"k":1}`, "queryType": "WHERE"}
	doc := func(id string) map[string]any {
		return map[string]any{"collectionName": "c", "query": `{"_id":"` + id + `"}`, "queryType": "DOC"}
	}
	creator, readAll, admin := Permission{Mode: "creator"}, Permission{Mode: "read-all"}, Permission{Mode: "admin"}
	custom := Permission{Mode: "custom", Read: "doc._openid == auth.openid", Write: "false"}

	if n := listLen(t, client(t, db, "oA", creator, "database.getDocument", where)); n != 1 {
		t.Errorf("creator-only where: %d documents, want only oA's", n)
	}
	if n := listLen(t, client(t, db, "oA", readAll, "database.getDocument", where)); n != 2 {
		t.Errorf("read-all where: %d documents", n)
	}
	if r := client(t, db, "oA", creator, "database.getDocument", doc("b1")); r.Code != CodePermissionDenied {
		t.Errorf("creator-only doc of another user: %+v", r)
	}
	if r := client(t, db, "oA", readAll, "database.removeDocument", doc("b1")); r.Code != CodePermissionDenied {
		t.Errorf("read-all remove of another user's doc: %+v", r)
	}
	if r := client(t, db, "oA", readAll, "database.removeDocument", doc("a1")); r.Code != "" {
		t.Errorf("remove of one's own doc: %+v", r)
	}
	if r := client(t, db, "oA", admin, "database.getDocument", where); r.Code != CodePermissionDenied {
		t.Errorf("admin-only: %+v", r)
	}
	if r := client(t, db, "oB", custom, "database.getDocument", where); r.Code != CodePermissionDenied {
		t.Errorf("custom rule, a query without _openid: %+v", r)
	}
	own := map[string]any{"collectionName": "c", "query": `{"_openid":"oB"}`, "queryType": "WHERE"}
	if n := listLen(t, client(t, db, "oB", custom, "database.getDocument", own)); n != 1 {
		t.Errorf("custom rule, own query: %d", n)
	}
	if r := client(t, db, "oB", custom, "database.insertDocument", map[string]any{"collectionName": "c", "data": []string{`{"k":2}`}}); r.Code != CodePermissionDenied {
		t.Errorf("custom write false: %+v", r)
	}
	if r := client(t, db, "oB", creator, "database.aggregateDocuments", map[string]any{"collectionName": "c"}); r.Code != CodePermissionDenied {
		t.Errorf("client aggregate: %+v", r)
	}
	if CheckPermission(Permission{Mode: "custom", Read: "doc.x > 1"}) == nil || CheckPermission(Permission{Mode: "everyone"}) == nil {
		t.Error("a rule fn cannot evaluate was accepted")
	}
}
