package wxdb

import (
	"context"
	"path/filepath"
	"testing"
	"time"
)

// A write's transaction holds one of the backend's four connections. With the three others
// taken by open cursors, a write whose statements are not prepared yet still goes through: it
// runs them as they are instead of waiting for a connection to prepare them on, and they are
// prepared after the commit.
func TestWriteWithEveryOtherConnectionTaken(t *testing.T) {
	b, err := openSQLite(filepath.Join(t.TempDir(), "wx.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cid, _, err := b.Collection(ctx, "env", "items", true)
	if err != nil {
		t.Fatal(err)
	}
	insert := `INSERT INTO ` + table(cid) + ` (id, version, doc) VALUES (?, ?, ?) ON CONFLICT (id) DO UPDATE SET version = excluded.version, doc = excluded.doc`
	for i := 0; i < 3; i++ {
		rows, err := b.db.QueryContext(ctx, `SELECT k FROM meta`)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
	}
	if _, err := b.Apply(ctx, []Write{{CID: cid, Key: "a", Doc: []byte(`{"_id":"a"}`)}}); err != nil {
		t.Fatalf("a write with the other connections taken: %v", err)
	}
	if !b.stmts.Has(insert) {
		t.Error("the write's statement was not prepared after the commit")
	}
	if _, ok, err := b.Get(ctx, cid, "a"); err != nil || !ok {
		t.Fatalf("the document: %v, %v", ok, err)
	}
}
