package hosting

import (
	"context"
	"sync"
	"time"

	"github.com/fnhq/fn/api"
	"github.com/fnhq/fn/control"
)

// maxCachedSessions bounds the wx sessions a replica remembers; beyond it, an arbitrary one is
// forgotten for each new one.
var maxCachedSessions = 10000

// authCache keeps the admin token's hash, wx sessions and apps (every client request names
// its app) so that a call does not cost a
// control-plane query. Every change signal of the control plane (a notification from any
// replica, or the fallback poll) drops everything, so that a replaced admin token or a deleted
// app's sessions stop working on every replica as soon as it hears of the change (at the latest
// one poll interval later). Misses are not cached: an unknown token always asks the plane.
type authCache struct {
	mu       sync.Mutex
	gen      uint64 // bumped by invalidate: an answer read before it is not kept
	admin    string
	adminOK  bool
	sessions map[string]control.Session // by the token's sha256
	apps     map[string]api.App         // by id and by name, as looked up
	now      func() time.Time           // a cached session's expiry is checked against it
}

func (c *authCache) init() {
	c.sessions = map[string]control.Session{}
	c.apps = map[string]api.App{}
	c.now = time.Now
}

// invalidate forgets everything.
func (c *authCache) invalidate() {
	c.mu.Lock()
	c.gen++
	c.adminOK = false
	clear(c.sessions)
	clear(c.apps)
	c.mu.Unlock()
}

// adminTokenHash is the control plane's admin token hash, cached.
func (rt *Runtime) adminTokenHash(ctx context.Context) (string, error) {
	c := &rt.auth
	c.mu.Lock()
	if c.adminOK {
		h := c.admin
		c.mu.Unlock()
		return h, nil
	}
	gen := c.gen
	c.mu.Unlock()
	h, err := rt.cp.AdminTokenHash(ctx)
	if err != nil {
		return "", err
	}
	c.mu.Lock()
	if c.gen == gen {
		c.admin, c.adminOK = h, true
	}
	c.mu.Unlock()
	return h, nil
}

// session is the control plane's wx session of token, cached until it expires or the plane
// changes.
func (rt *Runtime) session(ctx context.Context, token string) (control.Session, error) {
	if token == "" {
		return control.Session{}, control.ErrNotFound
	}
	c := &rt.auth
	key := control.TokenHash(token)
	c.mu.Lock()
	s, ok := c.sessions[key]
	gen := c.gen
	c.mu.Unlock()
	if ok && c.now().Before(s.Expires) {
		return s, nil
	}
	s, err := rt.cp.Session(ctx, token)
	if err != nil {
		return s, err
	}
	c.mu.Lock()
	if c.gen == gen {
		if _, there := c.sessions[key]; !there && len(c.sessions) >= maxCachedSessions {
			for k := range c.sessions {
				delete(c.sessions, k)
				break
			}
		}
		c.sessions[key] = s
	}
	c.mu.Unlock()
	return s, nil
}

// maxCachedApps bounds the apps a replica remembers.
const maxCachedApps = 10000

// app is the control plane's app by id or name, cached until the plane changes.
func (rt *Runtime) app(ctx context.Context, idOrName string) (api.App, error) {
	c := &rt.auth
	c.mu.Lock()
	a, ok := c.apps[idOrName]
	gen := c.gen
	c.mu.Unlock()
	if ok {
		return a, nil
	}
	a, err := rt.cp.App(ctx, idOrName)
	if err != nil {
		return a, err
	}
	c.mu.Lock()
	if c.gen == gen {
		if len(c.apps) >= maxCachedApps {
			clear(c.apps)
		}
		c.apps[idOrName] = a
	}
	c.mu.Unlock()
	return a, nil
}
