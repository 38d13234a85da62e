package hosting

import (
	"context"
	"errors"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fnhq/fn/api"
	"github.com/fnhq/fn/appenv"
	"github.com/fnhq/fn/control"
	"github.com/fnhq/fn/internal/testutil"
)

// feedPlane is a control plane another replica changes behind this one's back: the test
// writes to the plane directly and signals the change when it chooses.
type feedPlane struct {
	control.Plane
	changes       chan struct{}
	adminLookups  atomic.Int64
	sessionLookup atomic.Int64
	appLookups    atomic.Int64
}

func (p *feedPlane) App(ctx context.Context, idOrName string) (api.App, error) {
	p.appLookups.Add(1)
	return p.Plane.App(ctx, idOrName)
}

func (p *feedPlane) Changes(ctx context.Context) <-chan struct{} { return p.changes }
func (p *feedPlane) AdminTokenHash(ctx context.Context) (string, error) {
	p.adminLookups.Add(1)
	return p.Plane.AdminTokenHash(ctx)
}
func (p *feedPlane) Session(ctx context.Context, token string) (control.Session, error) {
	p.sessionLookup.Add(1)
	return p.Plane.Session(ctx, token)
}

func TestAuthCacheFollowsChanges(t *testing.T) {
	ctx := context.Background()
	sq, err := control.OpenSQLite(filepath.Join(t.TempDir(), "control.db"))
	if err != nil {
		t.Fatal(err)
	}
	cp := &feedPlane{Plane: sq, changes: make(chan struct{}, 1)}
	rt, _, err := Open(ctx, Config{DataDir: t.TempDir(), Control: cp, AdminToken: "fnadm_first"})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { rt.Close(time.Second); sq.Close() }()
	signal := func() { cp.changes <- struct{}{} }

	// the admin token: one lookup for many checks
	before := cp.adminLookups.Load()
	for range 5 {
		if !rt.CheckAdmin(ctx, "fnadm_first") {
			t.Fatal("the admin token is refused")
		}
	}
	if rt.CheckAdmin(ctx, "fnadm_wrong") {
		t.Fatal("a wrong admin token is accepted")
	}
	if n := cp.adminLookups.Load() - before; n > 1 {
		t.Fatalf("6 checks looked the admin token up %d times, want at most 1", n)
	}
	// another replica starts with a new token: the old one stops working once the change is heard
	if err := sq.SetAdminTokenHash(ctx, hashToken("fnadm_second")); err != nil {
		t.Fatal(err)
	}
	signal()
	testutil.Eventually(t, 10*time.Second, "the replaced admin token to be refused", func() bool {
		return !rt.CheckAdmin(ctx, "fnadm_first") && rt.CheckAdmin(ctx, "fnadm_second")
	})

	// wx sessions
	app, err := rt.CreateApp(ctx, "shop", "wx0123456789abcdef", "secret", appenv.Keys{})
	if err != nil {
		t.Fatal(err)
	}
	s := control.Session{AppID: app.ID, OpenID: "o-alice", WXAppID: app.WXAppID, Expires: time.Now().Add(time.Hour)}
	if err := sq.PutSession(ctx, "fnwx_alice", s); err != nil {
		t.Fatal(err)
	}
	before = cp.sessionLookup.Load()
	for range 5 {
		got, err := rt.session(ctx, "fnwx_alice")
		if err != nil || got.OpenID != "o-alice" {
			t.Fatalf("session: %+v %v", got, err)
		}
	}
	if n := cp.sessionLookup.Load() - before; n != 1 {
		t.Fatalf("5 lookups of one session asked the plane %d times, want 1", n)
	}
	if _, err := rt.session(ctx, "fnwx_unknown"); !errors.Is(err, control.ErrNotFound) {
		t.Fatalf("an unknown session: %v", err)
	}
	before = cp.appLookups.Load()
	for range 5 {
		if a, err := rt.App(ctx, "shop"); err != nil || a.ID != app.ID {
			t.Fatalf("app: %+v %v", a, err)
		}
	}
	if n := cp.appLookups.Load() - before; n > 1 {
		t.Fatalf("5 lookups of one app asked the plane %d times, want at most 1", n)
	}
	// the app is deleted through another replica: its sessions stop working here once heard
	if err := sq.DeleteApp(ctx, app.ID); err != nil {
		t.Fatal(err)
	}
	signal()
	testutil.Eventually(t, 10*time.Second, "the deleted app's session to be refused", func() bool {
		_, err := rt.session(ctx, "fnwx_alice")
		return errors.Is(err, control.ErrNotFound)
	})
	if _, err := rt.App(ctx, "shop"); err == nil {
		t.Fatal("the app deleted through another replica is still found")
	}
}

func TestAuthCacheBoundAndExpiry(t *testing.T) {
	ctx := context.Background()
	sq, err := control.OpenSQLite(filepath.Join(t.TempDir(), "control.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer sq.Close()
	if err := sq.CreateApp(ctx, api.App{ID: "app1", Name: "app1", CreatedAt: time.Now()}, ""); err != nil {
		t.Fatal(err)
	}
	defer func(n int) { maxCachedSessions = n }(maxCachedSessions)
	maxCachedSessions = 100
	rt := &Runtime{cp: sq}
	rt.auth.init()
	for i := range maxCachedSessions + 50 {
		tok := "fnwx_" + time.Duration(i).String()
		if err := sq.PutSession(ctx, tok, control.Session{AppID: "app1", OpenID: "o", Expires: time.Now().Add(time.Hour)}); err != nil {
			t.Fatal(err)
		}
		if _, err := rt.session(ctx, tok); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(rt.auth.sessions); n != maxCachedSessions {
		t.Fatalf("%d sessions cached, want the bound %d", n, maxCachedSessions)
	}
	// a cached session is answered from the cache until its expiry, and asked again after it
	rt.auth.invalidate()
	lp := &feedPlane{Plane: sq, changes: make(chan struct{}, 1)}
	rt.cp = lp
	now := time.Now()
	rt.auth.now = func() time.Time { return now }
	if err := sq.PutSession(ctx, "fnwx_short", control.Session{AppID: "app1", OpenID: "o", Expires: now.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if _, err := rt.session(ctx, "fnwx_short"); err != nil {
			t.Fatal(err)
		}
	}
	if n := lp.sessionLookup.Load(); n != 1 {
		t.Fatalf("%d lookups of a cached session before its expiry, want 1", n)
	}
	now = now.Add(time.Hour)
	rt.session(ctx, "fnwx_short")
	if n := lp.sessionLookup.Load(); n != 2 {
		t.Fatalf("a cached session past its expiry was not asked again (%d lookups)", n)
	}
}
