package pg_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fnhq/fn/api"
	"github.com/fnhq/fn/control"
	"github.com/fnhq/fn/control/controltest"
	"github.com/fnhq/fn/control/pg"
	"github.com/fnhq/fn/internal/pgdb"
	"github.com/fnhq/fn/internal/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

func TestPostgres(t *testing.T) {
	var dsns sync.Map // control.Plane → its database
	open := func(t *testing.T, dsn string) control.Plane {
		pool, err := pgdb.Open(context.Background(), dsn)
		if err != nil {
			t.Fatal(err)
		}
		p := pg.New(pool, true)
		dsns.Store(control.Plane(p), dsn)
		return p
	}
	controltest.Run(t, func(t *testing.T) control.Plane { return open(t, pgtest.DSN(t)) }, controltest.Options{
		Reopen: func(t *testing.T, old control.Plane) control.Plane {
			dsn, ok := dsns.Load(old)
			if !ok {
				t.Fatal("reopen of a plane the test did not open")
			}
			return open(t, dsn.(string))
		},
	})
}

func openPlane(t *testing.T) *pg.Plane {
	t.Helper()
	pool, err := pgdb.Open(context.Background(), pgtest.DSN(t))
	if err != nil {
		t.Fatal(err)
	}
	p := pg.New(pool, true)
	t.Cleanup(func() { p.Close() })
	return p
}

func version(env string) api.Version {
	return api.Version{Env: env, CreatedAt: time.Now(), Digest: "d", Manifest: api.Manifest{Dialect: "lean"}}
}

// Two deploys of one environment racing through two replicas end on the later version,
// whichever activation commits first.
func TestActivateDeployLaterWins(t *testing.T) {
	ctx := context.Background()
	p := openPlane(t)
	if err := p.CreateApp(ctx, api.App{ID: "a1", Name: "a1", CreatedAt: time.Now()}, ""); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Pending(ctx, "a1", "production"); !errors.Is(err, control.ErrNotFound) {
		t.Fatalf("pending before any deploy: %v", err)
	}
	v1, _ := p.CreateVersion(ctx, "a1", version("production"))
	v2, _ := p.CreateVersion(ctx, "a1", version("production"))
	if got, err := p.Pending(ctx, "a1", "production"); err != nil || got.ID != v2.ID {
		t.Fatalf("pending: %d %v, want version %d", got.ID, err, v2.ID)
	}
	// the later one commits first: the earlier one is refused
	if err := p.ActivateDeploy(ctx, "a1", "production", v2.ID); err != nil {
		t.Fatal(err)
	}
	if err := p.ActivateDeploy(ctx, "a1", "production", v1.ID); !errors.Is(err, pg.ErrSuperseded) || !errors.Is(err, control.ErrConflict) {
		t.Fatalf("activating the earlier deploy after the later one: %v", err)
	}
	if a, _ := p.Active(ctx, "a1", "production"); a.ID != v2.ID {
		t.Fatalf("active %d, want %d", a.ID, v2.ID)
	}
	if _, err := p.Pending(ctx, "a1", "production"); !errors.Is(err, control.ErrNotFound) {
		t.Fatalf("pending after the activation: %v", err)
	}
	// the earlier one commits first: the later one still wins
	v3, _ := p.CreateVersion(ctx, "a1", version("production"))
	v4, _ := p.CreateVersion(ctx, "a1", version("production"))
	if err := p.ActivateDeploy(ctx, "a1", "production", v3.ID); err != nil {
		t.Fatal(err)
	}
	if got, err := p.Pending(ctx, "a1", "production"); err != nil || got.ID != v4.ID {
		t.Fatalf("pending: %d %v, want version %d", got.ID, err, v4.ID)
	}
	if err := p.ActivateDeploy(ctx, "a1", "production", v4.ID); err != nil {
		t.Fatal(err)
	}
	// a rollback goes back on purpose; a later deploy of staging is another environment
	if err := p.Activate(ctx, "a1", "production", v1.ID); err != nil {
		t.Fatal(err)
	}
	s1, _ := p.CreateVersion(ctx, "a1", version("staging"))
	if err := p.ActivateDeploy(ctx, "a1", "staging", s1.ID); err != nil {
		t.Fatal(err)
	}

	// many racing pairs: always the later id
	for range 10 {
		a, _ := p.CreateVersion(ctx, "a1", version("production"))
		b, _ := p.CreateVersion(ctx, "a1", version("production"))
		var wg sync.WaitGroup
		errs := make([]error, 2)
		for i, id := range []int{a.ID, b.ID} {
			wg.Add(1)
			go func() { defer wg.Done(); errs[i] = p.ActivateDeploy(ctx, "a1", "production", id) }()
		}
		wg.Wait()
		if errs[1] != nil {
			t.Fatalf("the later deploy %d was refused: %v", b.ID, errs[1])
		}
		if act, _ := p.Active(ctx, "a1", "production"); act.ID != b.ID {
			t.Fatalf("after racing %d and %d, %d is active (the first: %v)", a.ID, b.ID, act.ID, errs[0])
		}
	}
}

// Replicas hear of a new version (to prepare it) and of a replaced admin token (to drop it).
func TestChangesAnnounceVersionsAndToken(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	old := pg.Poll
	pg.Poll = time.Hour // only notifications signal
	defer func() { pg.Poll = old }()
	p := openPlane(t)
	if err := p.CreateApp(ctx, api.App{ID: "a1", Name: "a1", CreatedAt: time.Now()}, ""); err != nil {
		t.Fatal(err)
	}
	ch := p.Changes(ctx)
	<-ch // the one sent on listening
	expect := func(what string, change func()) {
		t.Helper()
		// drain a signal that came before this change
		select {
		case <-ch:
		default:
		}
		change()
		select {
		case <-ch:
		case <-time.After(10 * time.Second):
			t.Fatalf("no change signal for %s", what)
		}
	}
	expect("a new version", func() {
		if _, err := p.CreateVersion(ctx, "a1", version("production")); err != nil {
			t.Fatal(err)
		}
	})
	expect("a new admin token", func() {
		if err := p.SetAdminTokenHash(ctx, strings.Repeat("ab", 32)); err != nil {
			t.Fatal(err)
		}
	})
	if h, _ := p.AdminTokenHash(ctx); h != strings.Repeat("ab", 32) {
		t.Fatalf("admin token hash %q", h)
	}
}
