// Package storetest is the conformance suite of store.Store: the SQLite and PostgreSQL stores
// run it, so that leanstorage finds the same objects, sessions and relations in each.
package storetest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/fnhq/fn/store"
)

// Options describe what a backend can do beyond the interface.
type Options struct {
	// Reopen opens again the storage s was opened on; the suite has closed s.
	Reopen func(t *testing.T, s store.Store) store.Store
	// Share returns another handle on s's storage, as another replica would open it (nil: the
	// suite uses s itself).
	Share func(t *testing.T, s store.Store) store.Store
	// UniqueUserFields: Insert and Update refuse a _User whose username, email or phone number
	// another user has (store.ErrTaken).
	UniqueUserFields bool
}

var ctx = context.Background()

// Run runs the suite; open returns a store over new, empty storage for one test.
func Run(t *testing.T, open func(t *testing.T) store.Store, o Options) {
	share := o.Share
	if share == nil {
		share = func(_ *testing.T, s store.Store) store.Store { return s }
	}
	now := time.Now().UTC().Truncate(time.Millisecond)

	t.Run("Objects", func(t *testing.T) {
		s := open(t)
		o := &store.Object{Class: "Post", ID: "p1", CreatedAt: now, UpdatedAt: now, Fields: map[string]any{"n": 1.0, "tags": []any{"a"},
			"when": map[string]any{"__type": "Date", "iso": "2026-01-01T00:00:00.000Z"}, "big": 12345678901.0, "frac": 0.25}}
		must(t, s.Insert(ctx, o))
		if err := s.Insert(ctx, o); !errors.Is(err, store.ErrDuplicate) {
			t.Fatalf("second insert: %v, want ErrDuplicate", err)
		}
		got, err := s.Get(ctx, "Post", "p1")
		must(t, err)
		if got.Fields["n"] != 1.0 || got.Fields["big"] != 12345678901.0 || got.Fields["frac"] != 0.25 || !got.CreatedAt.Equal(now) ||
			got.Fields["when"].(map[string]any)["iso"] != "2026-01-01T00:00:00.000Z" || got.Fields["tags"].([]any)[0] != "a" {
			t.Fatalf("Get = %+v", got)
		}
		if _, err := s.Get(ctx, "Post", "nope"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("Get of a missing object: %v", err)
		}
		if _, err := s.Update(ctx, "Post", "nope", func(*store.Object) error { return nil }); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("update of a missing object: %v", err)
		}
		boom := errors.New("boom")
		if _, err := s.Update(ctx, "Post", "p1", func(o *store.Object) error { o.Fields["n"] = 99.0; return boom }); !errors.Is(err, boom) {
			t.Fatalf("an update whose fn fails: %v", err)
		}
		if got, _ := s.Get(ctx, "Post", "p1"); got.Fields["n"] != 1.0 {
			t.Fatalf("an aborted update changed the object: %v", got.Fields["n"])
		}
		must(t, s.Insert(ctx, &store.Object{Class: "Post", ID: "p2", CreatedAt: now.Add(time.Second), UpdatedAt: now, Fields: map[string]any{}}))
		must(t, s.Insert(ctx, &store.Object{Class: "Other", ID: "x", CreatedAt: now, UpdatedAt: now, Fields: map[string]any{}}))
		all, err := s.Scan(ctx, "Post")
		must(t, err)
		if len(all) != 2 || all[0].ID != "p1" || all[1].ID != "p2" {
			t.Fatalf("Scan = %v, want p1, p2 oldest first", idsOf(all))
		}
		classes, err := s.Classes(ctx)
		must(t, err)
		if fmt.Sprint(classes) != "[Other Post]" {
			t.Fatalf("Classes = %v", classes)
		}
		must(t, s.Delete(ctx, "Post", "p1"))
		if err := s.Delete(ctx, "Post", "p1"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("second delete: %v", err)
		}
	})

	t.Run("ConcurrentUpdates", func(t *testing.T) {
		// read-modify-writes from several handles (replicas) lose nothing
		s := open(t)
		must(t, s.Insert(ctx, &store.Object{Class: "C", ID: "c", CreatedAt: now, UpdatedAt: now, Fields: map[string]any{"n": 0.0}}))
		handles := []store.Store{s, share(t, s), share(t, s)}
		var wg sync.WaitGroup
		for i := 0; i < 60; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, err := handles[i%3].Update(ctx, "C", "c", func(o *store.Object) error { o.Fields["n"] = o.Fields["n"].(float64) + 1; return nil })
				if err != nil {
					t.Error(err)
				}
			}()
		}
		wg.Wait()
		if got, err := share(t, s).Get(ctx, "C", "c"); err != nil || got.Fields["n"] != 60.0 {
			t.Fatalf("after 60 concurrent increments: %v, %v", got, err)
		}
	})

	t.Run("Sessions", func(t *testing.T) {
		s := open(t)
		if _, err := s.UserSession(ctx, "u1"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("no session yet: %v", err)
		}
		must(t, s.PutSession(ctx, "t1", "u1"))
		must(t, s.PutSession(ctx, "t2", "u1"))
		if tok, err := s.UserSession(ctx, "u1"); err != nil || tok != "t2" {
			t.Fatalf("newest session: %q %v", tok, err)
		}
		// a session written through one replica is seen by another
		if id, err := share(t, s).SessionUser(ctx, "t1"); err != nil || id != "u1" {
			t.Fatalf("SessionUser: %q %v", id, err)
		}
		must(t, s.DeleteSessions(ctx, "u1"))
		if _, err := s.SessionUser(ctx, "t2"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("after DeleteSessions: %v", err)
		}
	})

	t.Run("Relations", func(t *testing.T) {
		s := open(t)
		r := store.Relation{OwnerClass: "_Role", OwnerID: "r1", Key: "users"}
		must(t, s.AddRelation(ctx, r, "_User", []string{"u1", "u2", "u1"}))
		must(t, s.AddRelation(ctx, store.Relation{OwnerClass: "_Role", OwnerID: "r2", Key: "users"}, "_User", []string{"u2"}))
		if ids, _ := s.RelationTargets(ctx, r); fmt.Sprint(ids) != "[u1 u2]" {
			t.Fatalf("targets: %v", ids)
		}
		if owners, _ := s.RelationOwners(ctx, "_Role", "users", "u2"); fmt.Sprint(owners) != "[r1 r2]" {
			t.Fatalf("owners of u2: %v", owners)
		}
		must(t, s.RemoveRelation(ctx, r, []string{"u2"}))
		if owners, _ := s.RelationOwners(ctx, "_Role", "users", "u2"); fmt.Sprint(owners) != "[r2]" {
			t.Fatalf("owners after remove: %v", owners)
		}
		// deleting the owner object drops its rows
		must(t, s.Insert(ctx, &store.Object{Class: "_Role", ID: "r1", CreatedAt: now, UpdatedAt: now, Fields: map[string]any{}}))
		must(t, s.Delete(ctx, "_Role", "r1"))
		if ids, _ := s.RelationTargets(ctx, r); len(ids) != 0 {
			t.Fatalf("rows of a deleted owner: %v", ids)
		}
	})

	t.Run("Reset", func(t *testing.T) {
		s := open(t)
		must(t, s.Insert(ctx, &store.Object{Class: "A", ID: "a", CreatedAt: now, UpdatedAt: now, Fields: map[string]any{}}))
		must(t, s.PutSession(ctx, "tok", "u"))
		must(t, s.Reset(ctx))
		if _, err := s.SessionUser(ctx, "tok"); !errors.Is(err, store.ErrNotFound) {
			t.Fatal("Reset kept a session")
		}
		if all, _ := s.Scan(ctx, "A"); len(all) != 0 {
			t.Fatalf("Reset kept %d objects", len(all))
		}
	})

	t.Run("Reopen", func(t *testing.T) {
		if o.Reopen == nil {
			t.Skip("the backend keeps nothing")
		}
		s := open(t)
		must(t, s.Insert(ctx, &store.Object{Class: "K", ID: "k", CreatedAt: now, UpdatedAt: now, Fields: map[string]any{"v": "kept"}}))
		must(t, s.PutSession(ctx, "tok", "u1"))
		must(t, s.Close())
		s = o.Reopen(t, s)
		defer s.Close()
		if got, err := s.Get(ctx, "K", "k"); err != nil || got.Fields["v"] != "kept" || !got.CreatedAt.Equal(now) {
			t.Fatalf("after reopen: %+v %v", got, err)
		}
		if id, err := s.SessionUser(ctx, "tok"); err != nil || id != "u1" {
			t.Fatalf("session after reopen: %q %v", id, err)
		}
	})

	t.Run("UniqueUserFields", func(t *testing.T) {
		if !o.UniqueUserFields {
			t.Skip("the backend leaves unique user fields to the caller")
		}
		s := open(t)
		// many replicas signing one username up at once: exactly one wins
		var wg sync.WaitGroup
		var mu sync.Mutex
		won, lost := 0, 0
		for i := 0; i < 12; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				err := share(t, s).Insert(ctx, &store.Object{Class: "_User", ID: fmt.Sprint("u", i), CreatedAt: now, UpdatedAt: now,
					Fields: map[string]any{"username": "alice"}})
				mu.Lock()
				defer mu.Unlock()
				var te *store.TakenError
				switch {
				case err == nil:
					won++
				case errors.As(err, &te) && te.Field == "username" && errors.Is(err, store.ErrTaken):
					lost++
				default:
					t.Errorf("Insert: %v", err)
				}
			}()
		}
		wg.Wait()
		if won != 1 || lost != 11 {
			t.Fatalf("%d signups won, %d were refused; want 1 and 11", won, lost)
		}
		must(t, s.Insert(ctx, &store.Object{Class: "_User", ID: "bob", CreatedAt: now, UpdatedAt: now,
			Fields: map[string]any{"username": "bob", "email": "b@example.com"}}))
		_, err := s.Update(ctx, "_User", "bob", func(o *store.Object) error { o.Fields["username"] = "alice"; return nil })
		if !errors.Is(err, store.ErrTaken) {
			t.Fatalf("renaming to a taken username: %v, want ErrTaken", err)
		}
		// other classes may repeat a username field
		must(t, s.Insert(ctx, &store.Object{Class: "Pet", ID: "p", CreatedAt: now, UpdatedAt: now, Fields: map[string]any{"username": "alice"}}))
	})
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func idsOf(objs []*store.Object) []string {
	out := make([]string, len(objs))
	for i, o := range objs {
		out[i] = o.ID
	}
	return out
}
