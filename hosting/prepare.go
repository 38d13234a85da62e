package hosting

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fnhq/fn/api"
	"github.com/fnhq/fn/appenv"
	"github.com/fnhq/fn/control"
	"github.com/fnhq/fn/lease"
	"github.com/fnhq/fn/project"
)

// A control plane shared by replicas announces a version when it is recorded, before the
// deploying replica has loaded and activated it. Every other replica then loads it too, in a
// separate environment that serves nothing yet (prepared), so that the activation, when it
// comes, is a pointer swap instead of starting Node workers.

// versionPender finds the version a deploy on some replica is loading (control/pg).
type versionPender interface {
	Pending(ctx context.Context, appID, env string) (api.Version, error)
}

// deployActivator activates a deployed version unless a later deploy of the environment has
// been active meanwhile, so that two deploys racing through two replicas end on the later one
// everywhere (control/pg).
type deployActivator interface {
	ActivateDeploy(ctx context.Context, appID, env string, id int) error
}

// prepareTimeout bounds loading a version that is not active yet.
const prepareTimeout = 2 * time.Minute

// retireDelay is how long an environment replaced by a prepared one keeps answering: a request
// that looked it up just before the swap still reaches its engine. In-flight calls then get
// the engine's own grace.
const retireDelay = 5 * time.Second

// gatedLease claims timer fires only once its environment serves: a prepared version must not
// run the timers of a version that is not active.
type gatedLease struct {
	lease.Lease
	open *atomic.Bool
}

func (g gatedLease) Claim(ctx context.Context, key string, at time.Time) (bool, error) {
	if !g.open.Load() {
		return false, nil
	}
	return g.Lease.Claim(ctx, key, at)
}

// prepared is a version loaded in an environment of its own, waiting to serve.
type prepared struct {
	version int
	secrets map[string]string
	gate    *atomic.Bool
	cancel  context.CancelFunc
	ready   chan struct{} // closed when loading has ended; then env or err is set
	env     *appenv.Env
	err     error
	took    time.Duration
	stopped *sync.WaitGroup // the Runtime's retiring group: Close waits for a discarded one to stop
}

// discard stops a preparation and what it loaded.
func (p *prepared) discard() {
	p.cancel()
	p.stopped.Add(1)
	go func() {
		defer p.stopped.Done()
		<-p.ready
		if p.env != nil {
			p.env.Close(2 * time.Second)
		}
	}()
}

// wait blocks until the preparation has ended.
func (p *prepared) wait(ctx context.Context) error {
	select {
	case <-p.ready:
		return p.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// prepare starts loading version v of an environment in the background.
func (rt *Runtime) prepare(app api.App, ar *appRuntime, name string, v api.Version, secrets map[string]string) *prepared {
	ctx, cancel := context.WithTimeout(context.Background(), prepareTimeout)
	p := &prepared{version: v.ID, secrets: secrets, gate: new(atomic.Bool), cancel: cancel, ready: make(chan struct{}), stopped: &rt.retiring}
	go func() {
		defer close(p.ready)
		defer cancel()
		start := time.Now()
		env, err := rt.loadPrepared(ctx, app, ar, name, v, secrets, p.gate)
		p.env, p.err, p.took = env, err, time.Since(start)
	}()
	return p
}

func (rt *Runtime) loadPrepared(ctx context.Context, app api.App, ar *appRuntime, name string, v api.Version, secrets map[string]string, gate *atomic.Bool) (*appenv.Env, error) {
	dir := filepath.Join(rt.appDir(app.ID), "versions", strconv.Itoa(v.ID))
	if err := rt.materialize(ctx, dir, v.Manifest); err != nil {
		return nil, err
	}
	if err := rt.shareVersion(app.ID, dir); err != nil { // readable by the app's uid, as activate does
		return nil, err
	}
	rel := &appenv.Release{Version: v.ID, Dir: dir, Manifest: v.Manifest, Env: secrets,
		File: func(b api.Bundle) string { return filepath.Join(dir, b.Name+".js") }}
	treeRelease(rel, dir)
	env, err := rt.newEnv(app, ar, name, project.Dialect(v.Manifest.Dialect), gate)
	if err != nil {
		return nil, err
	}
	if _, err := env.Activate(ctx, rel); err != nil {
		env.Close(time.Second)
		return nil, err
	}
	return env, nil
}

// install makes a prepared environment the one that serves; the replaced one retires.
func (rt *Runtime) install(er *envRuntime, p *prepared) {
	p.gate.Store(true)
	old := er.cur.Swap(p.env)
	rt.retiring.Add(1)
	go func() {
		defer rt.retiring.Done()
		t := time.NewTimer(retireDelay)
		defer t.Stop()
		select {
		case <-t.C:
		case <-rt.closing:
		}
		old.Close(30 * time.Second)
	}()
}

// takePrepared hands over the preparation of version id, if that is the one under way.
func (er *envRuntime) takePrepared(id int) *prepared {
	er.prepMu.Lock()
	defer er.prepMu.Unlock()
	p := er.prep
	if p == nil || p.version != id {
		return nil
	}
	er.prep = nil
	return p
}

// dropPrepared discards whatever preparation is under way.
func (er *envRuntime) dropPrepared() {
	er.prepMu.Lock()
	p := er.prep
	er.prep = nil
	er.prepMu.Unlock()
	if p != nil {
		p.discard()
	}
}

// syncPrepared starts preparing the version a deploy elsewhere is loading, and drops a
// preparation that no deploy is waiting for any more (activated, superseded or discarded).
func (rt *Runtime) syncPrepared(ctx context.Context, app api.App, ar *appRuntime, er *envRuntime, name string, secrets map[string]string) error {
	pender, ok := rt.cp.(versionPender)
	if !ok {
		return nil
	}
	if er.deploying.Load() {
		return nil // this replica loads it itself
	}
	want := 0
	pv, err := pender.Pending(ctx, app.ID, name)
	switch {
	case errors.Is(err, control.ErrNotFound):
	case err != nil:
		return err
	default:
		want = pv.ID
	}
	er.prepMu.Lock()
	defer er.prepMu.Unlock()
	if p := er.prep; p != nil && (p.version != want || !maps.Equal(p.secrets, secrets)) {
		p.discard()
		er.prep = nil
	}
	if want != 0 && er.prep == nil {
		er.prep = rt.prepare(app, ar, name, pv, secrets)
	}
	return nil
}

// follow switches an environment to version v, activated by another replica, heard at heard:
// to its prepared environment when there is one (waiting for it to finish loading), else by
// loading it now. It notes how it switched and how long after hearing of the activation the
// new version served. The caller holds the deploy lock.
func (rt *Runtime) switchFollowing(ctx context.Context, app api.App, er *envRuntime, v api.Version, secrets map[string]string, heard time.Time) error {
	name := er.env().Name()
	if p := er.takePrepared(v.ID); p != nil {
		if err := p.wait(ctx); err == nil && maps.Equal(p.secrets, secrets) {
			rt.install(er, p)
			rt.note(app.ID, name, "info", fmt.Sprintf("switched to version %d, activated by another replica: prepared before the activation (loaded in %.1f ms), serving %.3f ms after the activation was heard",
				v.ID, ms(p.took), ms(time.Since(heard))))
			return nil
		}
		p.discard()
	}
	if err := rt.activate(ctx, app, er, v); err != nil {
		return err
	}
	rt.note(app.ID, name, "info", fmt.Sprintf("switched to version %d, activated by another replica: loaded after the activation, serving %.3f ms after the activation was heard",
		v.ID, ms(time.Since(heard))))
	return nil
}

// deployPrepared is a deploy's switch on a shared control plane: load v in an environment of
// its own, record it as active unless a later deploy won meanwhile, and only then serve it. A
// superseded deploy never serves.
func (rt *Runtime) deployPrepared(ctx context.Context, app api.App, er *envRuntime, v api.Version, da deployActivator) error {
	rt.mu.Lock()
	ar := rt.apps[app.ID]
	rt.mu.Unlock()
	if ar == nil {
		return &appenv.NotFound{Msg: "no such app: " + app.ID}
	}
	secrets, err := rt.cp.Secrets(ctx, app.ID)
	if err != nil {
		return err
	}
	p := rt.prepare(app, ar, v.Env, v, secrets)
	if err := p.wait(ctx); err != nil {
		p.discard()
		return err
	}
	if err := da.ActivateDeploy(context.WithoutCancel(ctx), app.ID, v.Env, v.ID); err != nil {
		p.discard()
		if errors.Is(err, control.ErrConflict) {
			return badf("version %d was not activated: %v", v.ID, err)
		}
		return err
	}
	rt.install(er, p)
	return nil
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
