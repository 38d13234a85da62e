package store

import (
	"context"
	"errors"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

func TestSQLiteObjectsSessionsAndPersistence(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "data.db")
	s, err := OpenSQLite(path)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC().Truncate(time.Millisecond)
	o := &Object{Class: "Post", ID: "p1", CreatedAt: now, UpdatedAt: now, Fields: map[string]any{"n": 1.0, "tags": []any{"a"}, "when": map[string]any{"__type": "Date", "iso": "2026-01-01T00:00:00.000Z"}}}
	if err := s.Insert(ctx, o); err != nil {
		t.Fatal(err)
	}
	if err := s.Insert(ctx, o); !errors.Is(err, ErrDuplicate) {
		t.Fatalf("second insert: %v", err)
	}
	// concurrent atomic read-modify-writes lose nothing
	var wg sync.WaitGroup
	for i := 0; i < 50; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := s.Update(ctx, "Post", "p1", func(o *Object) error { o.Fields["n"] = o.Fields["n"].(float64) + 1; return nil })
			if err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if err := s.PutSession(ctx, "tok", "u1"); err != nil {
		t.Fatal(err)
	}
	s.Close()

	s, err = OpenSQLite(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	got, err := s.Get(ctx, "Post", "p1")
	if err != nil || got.Fields["n"] != 51.0 || !got.CreatedAt.Equal(now) {
		t.Fatalf("after reopen: %+v %v", got, err)
	}
	if id, err := s.SessionUser(ctx, "tok"); err != nil || id != "u1" {
		t.Fatalf("session: %q %v", id, err)
	}
	if _, err := s.Update(ctx, "Post", "nope", func(*Object) error { return nil }); !errors.Is(err, ErrNotFound) {
		t.Fatalf("update of a missing object: %v", err)
	}
	if classes, _ := s.Classes(ctx); len(classes) != 1 || classes[0] != "Post" {
		t.Fatalf("classes: %v", classes)
	}
	if err := s.Delete(ctx, "Post", "p1"); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete(ctx, "Post", "p1"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("second delete: %v", err)
	}
	if err := s.Reset(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := s.SessionUser(ctx, "tok"); !errors.Is(err, ErrNotFound) {
		t.Fatal("reset should remove sessions")
	}
}

func TestSQLiteRelationsAndUserSession(t *testing.T) {
	ctx := context.Background()
	s, err := OpenSQLite(filepath.Join(t.TempDir(), "data.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.UserSession(ctx, "u1"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("no session yet: %v", err)
	}
	s.PutSession(ctx, "t1", "u1")
	s.PutSession(ctx, "t2", "u1")
	if tok, err := s.UserSession(ctx, "u1"); err != nil || tok != "t2" {
		t.Fatalf("newest session: %q %v", tok, err)
	}
	r := Relation{OwnerClass: "_Role", OwnerID: "r1", Key: "users"}
	if err := s.AddRelation(ctx, r, "_User", []string{"u1", "u2", "u1"}); err != nil {
		t.Fatal(err)
	}
	s.AddRelation(ctx, Relation{OwnerClass: "_Role", OwnerID: "r2", Key: "users"}, "_User", []string{"u2"})
	if ids, _ := s.RelationTargets(ctx, r); len(ids) != 2 || ids[0] != "u1" || ids[1] != "u2" {
		t.Fatalf("targets: %v", ids)
	}
	if owners, _ := s.RelationOwners(ctx, "_Role", "users", "u2"); len(owners) != 2 {
		t.Fatalf("owners of u2: %v", owners)
	}
	s.RemoveRelation(ctx, r, []string{"u2"})
	if owners, _ := s.RelationOwners(ctx, "_Role", "users", "u2"); len(owners) != 1 || owners[0] != "r2" {
		t.Fatalf("owners after remove: %v", owners)
	}
	// deleting the owner object drops its rows
	now := time.Now()
	s.Insert(ctx, &Object{Class: "_Role", ID: "r1", CreatedAt: now, UpdatedAt: now, Fields: map[string]any{}})
	s.Delete(ctx, "_Role", "r1")
	if ids, _ := s.RelationTargets(ctx, r); len(ids) != 0 {
		t.Fatalf("rows of a deleted owner: %v", ids)
	}
}

// A transaction holds the store's one connection: a constant statement it runs before anything
// prepared it must run as it is, not wait for a connection to prepare on.
func TestStatementInATransactionBeforeItIsPrepared(t *testing.T) {
	s, err := OpenSQLite(filepath.Join(t.TempDir(), "data.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	var n int
	in := s.stmts.In(tx)
	if err := in.QueryRow(ctx, `SELECT count(*) FROM objects`).Scan(&n); err != nil {
		t.Fatalf("in the transaction: %v", err)
	}
	if _, err := in.Exec(ctx, `DELETE FROM sessions WHERE user_id = ?`, "nobody"); err != nil {
		t.Fatalf("in the transaction: %v", err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	// and outside it, the same statement is prepared and kept
	if _, err := s.stmts.Exec(ctx, `DELETE FROM sessions WHERE user_id = ?`, "nobody"); err != nil {
		t.Fatal(err)
	}
	if !s.stmts.Has(`DELETE FROM sessions WHERE user_id = ?`) {
		t.Error("the statement run outside a transaction was not kept")
	}
}
