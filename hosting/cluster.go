package hosting

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"os"
	"time"

	"github.com/fnhq/fn/api"
	"github.com/fnhq/fn/control"
)

// ChangeFeed is what a control plane shared by several replicas offers: a signal whenever
// another replica may have changed something (a deploy, rollback, secret, app). Open starts a
// follower that calls Sync on each signal when Config.Control implements it.
type ChangeFeed interface {
	Changes(ctx context.Context) <-chan struct{}
}

// follow runs Sync on every change signal until ctx ends. A failed Sync is noted and retried at
// the next signal (the feed's poll sends one at least every few seconds).
func (rt *Runtime) follow(ctx context.Context, feed ChangeFeed) {
	defer close(rt.followEnd)
	changes := feed.Changes(ctx)
	for {
		select {
		case <-ctx.Done():
			return
		case _, ok := <-changes:
			if !ok {
				return
			}
			rt.auth.invalidate()
			if err := rt.sync(ctx, time.Now()); err != nil && ctx.Err() == nil {
				rt.note("", "", "warn", "following the control plane: "+err.Error())
			}
		}
	}
}

// Sync brings this replica in line with the control plane after another replica changed it:
// apps created elsewhere get their runtime, apps deleted elsewhere stop, and every environment
// whose active version (or the app's secrets) differs from what it serves activates it, in
// fresh workers, before switching, so no call fails. A replica that did the change itself
// finds nothing to do.
func (rt *Runtime) Sync(ctx context.Context) error { return rt.sync(ctx, time.Now()) }

// sync is Sync after a change heard at heard.
func (rt *Runtime) sync(ctx context.Context, heard time.Time) error {
	apps, err := rt.cp.Apps(ctx)
	if err != nil {
		return err
	}
	live := map[string]bool{}
	var errs []error
	for _, app := range apps {
		live[app.ID] = true
		if err := rt.syncApp(ctx, app, heard); err != nil {
			errs = append(errs, fmt.Errorf("app %s: %w", app.Name, err))
		}
	}
	rt.mu.Lock()
	var gone []*appRuntime
	for id, ar := range rt.apps {
		if !live[id] {
			gone = append(gone, ar)
			delete(rt.apps, id)
		}
	}
	rt.mu.Unlock()
	if len(gone) > 0 {
		rt.auth.invalidate()
	}
	for _, ar := range gone {
		ar.close(2 * time.Second)
		os.RemoveAll(rt.appDir(ar.id))
	}
	return errors.Join(errs...)
}

func (rt *Runtime) syncApp(ctx context.Context, app api.App, heard time.Time) error {
	ar, err := rt.appRuntime(app)
	if err != nil {
		return err
	}
	secrets, err := rt.cp.Secrets(ctx, app.ID)
	if err != nil {
		return err
	}
	var errs []error
	for _, name := range api.Environments {
		er := ar.envs[name]
		v, err := rt.cp.Active(ctx, app.ID, name)
		if err != nil && !errors.Is(err, control.ErrNotFound) {
			errs = append(errs, err)
			continue
		}
		if err == nil && !serves(er, v.ID, secrets) {
			er.deploy.Lock()
			// A deploy on this replica may have got there while we waited, and activated a later
			// version than the one read above: what is active is read again under the lock, or
			// this replica would go back to the version that deploy replaced.
			now, err := rt.cp.Active(ctx, app.ID, name)
			gone := errors.Is(err, control.ErrNotFound) // nothing is active any more
			var sec map[string]string
			if err == nil {
				sec, err = rt.cp.Secrets(ctx, app.ID)
			}
			switch {
			case gone:
			case err != nil:
				errs = append(errs, err)
				er.deploy.Unlock()
				continue // what to prepare is unknown too; the next change or poll tries again
			case !serves(er, now.ID, sec):
				secrets = sec
				if err := rt.switchFollowing(ctx, app, er, now, sec, heard); err != nil {
					rt.note(app.ID, name, "error", fmt.Sprintf("version %d, activated by another replica, could not start here: %v", now.ID, err))
					errs = append(errs, err)
				}
			default:
				secrets = sec
			}
			er.deploy.Unlock()
		}
		if err := rt.syncPrepared(ctx, app, ar, er, name, secrets); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// serves reports whether an environment runs version id with these secrets.
func serves(er *envRuntime, id int, secrets map[string]string) bool {
	rel := er.env().Release()
	return rel != nil && rel.Version == id && maps.Equal(rel.Env, secrets)
}

// healthTimeout bounds the health check's look at the control plane.
const healthTimeout = 2 * time.Second

// health answers GET /__fn/health for load balancers and probes, without authentication and
// without detail that could help an attacker: 200 when this replica can reach its control plane
// and is not shutting down, else 503 (readiness). ?probe=live answers 200 while the process
// serves at all (liveness).
func (rt *Runtime) health(stop <-chan struct{}) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		status, body := http.StatusOK, map[string]string{"status": "ok"}
		if r.URL.Query().Get("probe") == "live" {
			// liveness: the process serves HTTP; a database outage is not cured by a restart
			w.WriteHeader(status)
			json.NewEncoder(w).Encode(body)
			return
		}
		select {
		case <-stop:
			status, body = http.StatusServiceUnavailable, map[string]string{"status": "draining"}
		default:
			ctx, cancel := context.WithTimeout(r.Context(), healthTimeout)
			defer cancel()
			if _, err := rt.cp.AdminTokenHash(ctx); err != nil {
				status, body = http.StatusServiceUnavailable, map[string]string{"status": "unavailable", "reason": "the control plane does not answer"}
			}
		}
		w.WriteHeader(status)
		json.NewEncoder(w).Encode(body)
	}
}
