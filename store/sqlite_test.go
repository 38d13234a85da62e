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
