package sqlstmt

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"testing"

	_ "modernc.org/sqlite"
)

func open(t *testing.T) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+filepath.Join(t.TempDir(), "t.db"))
	if err != nil {
		t.Fatal(err)
	}
	db.SetMaxOpenConns(1)
	t.Cleanup(func() { db.Close() })
	if _, err := db.Exec(`CREATE TABLE kv (k TEXT PRIMARY KEY, v INTEGER)`); err != nil {
		t.Fatal(err)
	}
	return db
}

// The cache keeps at most max statements; one beyond still runs, and done closes it.
func TestCacheKeepsAtMostMax(t *testing.T) {
	db := open(t)
	c := New(db, 2)
	defer c.Close()
	ctx := context.Background()
	for i := 0; i < 3; i++ {
		q := fmt.Sprintf("SELECT %d", i)
		st, done, err := c.Get(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		var n int
		if err := st.QueryRowContext(ctx).Scan(&n); err != nil || n != i {
			t.Fatalf("%s: %d, %v", q, n, err)
		}
		done()
	}
	if !c.Has("SELECT 0") || !c.Has("SELECT 1") || c.Has("SELECT 2") {
		t.Errorf("kept: %v %v %v; want the first two", c.Has("SELECT 0"), c.Has("SELECT 1"), c.Has("SELECT 2"))
	}
}

// In a transaction on the database's one connection, a statement not cached runs as it is, a
// cached one prepared; after the commit PrepareMissed caches the first.
func TestTxRunsMissedStatementsAndPreparesThemAfter(t *testing.T) {
	db := open(t)
	c := New(db, 8)
	defer c.Close()
	ctx := context.Background()
	const ins = `INSERT INTO kv (k, v) VALUES (?, ?)`
	const get = `SELECT v FROM kv WHERE k = ?`
	if _, _, err := c.Get(ctx, get); err != nil {
		t.Fatal(err)
	}
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	in := c.In(tx)
	for i, k := range []string{"a", "b"} {
		if _, err := in.Exec(ctx, ins, k, i); err != nil {
			t.Fatal(err)
		}
	}
	var v int
	if err := in.QueryRow(ctx, get, "b").Scan(&v); err != nil || v != 1 {
		t.Fatalf("b = %d, %v", v, err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	if c.Has(ins) {
		t.Fatal("prepared inside the transaction")
	}
	in.PrepareMissed(ctx)
	if !c.Has(ins) {
		t.Error("not prepared after the commit")
	}
}
