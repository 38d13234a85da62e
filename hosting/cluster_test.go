package hosting

import (
	"context"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fnhq/fn/api"
	"github.com/fnhq/fn/appenv"
	"github.com/fnhq/fn/artifacts"
	"github.com/fnhq/fn/control"
	"github.com/fnhq/fn/internal/testutil"
	"github.com/fnhq/fn/nodejs"
)

// stalePlane makes one read of production's active version, once armed, return what was active
// when it was read only after the test has changed it: a sync that read it and then waited
// for a deploy running on the same replica.
type stalePlane struct {
	control.Plane
	armed   atomic.Bool
	read    chan struct{}
	release chan struct{}
}

func (p *stalePlane) Active(ctx context.Context, app, env string) (api.Version, error) {
	v, err := p.Plane.Active(ctx, app, env)
	if env == "production" && p.armed.CompareAndSwap(true, false) {
		close(p.read)
		<-p.release
	}
	return v, err
}

func (p *stalePlane) Changes(ctx context.Context) <-chan struct{} { return nil }

// A replica that hears of another replica's activation while a deploy of its own activates a
// later version keeps the later one: the sync reads what is active again once it holds the
// environment's deploy lock (it used to switch back to the version it had read before).
func TestSyncDoesNotGoBackToAVersionReadBeforeALocalDeploy(t *testing.T) {
	ctx := context.Background()
	sq, err := control.OpenSQLite(filepath.Join(t.TempDir(), "control.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer sq.Close()
	sdk := filepath.Dir(testutil.NodeModules(t))
	node, err := nodejs.Find(ctx)
	if err != nil {
		t.Fatal(err)
	}
	blobs, err := artifacts.OpenDir(t.TempDir()) // shared, as PostgreSQL's are
	if err != nil {
		t.Fatal(err)
	}
	open := func(cp control.Plane) *Runtime {
		rt, _, err := Open(ctx, Config{DataDir: t.TempDir(), Control: cp, Artifacts: blobs, AdminToken: "fnadm_sync", SDKDir: sdk, Node: node.Path, NodeVersion: node.Version})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { rt.Close(time.Second) })
		return rt
	}
	other := open(&stalePlane{Plane: sq})
	here := &stalePlane{Plane: sq, read: make(chan struct{}), release: make(chan struct{})}
	rt := open(here)

	app, err := other.CreateApp(ctx, "sy", "", "", appenv.Keys{})
	if err != nil {
		t.Fatal(err)
	}
	deploy := func(on *Runtime, result string) int {
		t.Helper()
		if _, err := on.SaveOnline(ctx, app.ID, api.OnlineFunction{Name: "which", Type: "function", Code: "return " + result}); err != nil {
			t.Fatal(err)
		}
		res, err := on.OnlineDeploy(ctx, app.ID, "production", result, "test")
		if err != nil {
			t.Fatal(err)
		}
		return res.Version.ID
	}
	serving := func() int {
		env, err := rt.Env(ctx, app.ID, "production")
		if err != nil {
			t.Fatal(err)
		}
		if rel := env.Release(); rel != nil {
			return rel.Version
		}
		return 0
	}
	first := deploy(rt, "'first'")
	if serving() != first {
		t.Fatalf("this replica does not serve its own deploy %d", first)
	}
	second := deploy(other, "'second'") // another replica's activation, not heard here yet

	here.armed.Store(true)
	synced := make(chan error, 1)
	go func() { synced <- rt.Sync(ctx) }()
	<-here.read // the sync has read that the second version is active…
	third := deploy(rt, "'third'")
	close(here.release) // …and goes on after this replica's own later deploy
	if err := <-synced; err != nil {
		t.Fatal(err)
	}
	if got := serving(); got != third {
		t.Fatalf("after the sync this replica serves version %d; want %d, its own later deploy (the other replica's was %d)", got, third, second)
	}
}
