package console

import (
	"context"
	"sync"
	"time"

	"github.com/fnhq/fn/control"
	"github.com/fnhq/fn/internal/randid"
)

// SessionStore keeps console logins where every replica sees them (fn serve's control plane);
// without one they live in the process, and a restart asks for a new login.
type SessionStore interface {
	PutConsoleSession(ctx context.Context, token string, s control.ConsoleSession) error
	ConsoleSession(ctx context.Context, token string) (control.ConsoleSession, error)
	DeleteConsoleSession(ctx context.Context, token string) error
}

// session is one console login.
type session struct {
	admin   bool
	appID   string
	appName string
	csrf    string
	expires time.Time
}

// maxSessions bounds the store; the oldest session goes first when it is full.
const maxSessions = 1000

type sessions struct {
	store SessionStore // nil: the map below
	mu    sync.Mutex
	now   func() time.Time
	// by the SHA-256 of the cookie value: the store holds no usable token
	m map[string]*session
}

func newSessions(now func() time.Time, store SessionStore) *sessions {
	return &sessions{now: now, m: map[string]*session{}, store: store}
}

// add stores s (setting its CSRF token and expiry) and returns the cookie value.
func (ss *sessions) add(ctx context.Context, s *session, ttl time.Duration) (string, error) {
	token := randid.Key(32)
	s.csrf = randid.Key(32)
	now := ss.now()
	s.expires = now.Add(ttl)
	if ss.store != nil {
		err := ss.store.PutConsoleSession(ctx, token, control.ConsoleSession{Admin: s.admin, AppID: s.appID, AppName: s.appName,
			CSRF: s.csrf, Expires: s.expires})
		return token, err
	}
	ss.mu.Lock()
	defer ss.mu.Unlock()
	for k, v := range ss.m {
		if !now.Before(v.expires) {
			delete(ss.m, k)
		}
	}
	for len(ss.m) >= maxSessions {
		var oldest string
		for k, v := range ss.m {
			if oldest == "" || v.expires.Before(ss.m[oldest].expires) {
				oldest = k
			}
		}
		delete(ss.m, oldest)
	}
	ss.m[control.TokenHash(token)] = s
	return token, nil
}

// get returns the live session of a cookie value, or nil (also when the store cannot say: the
// caller is then asked to log in, never let in).
func (ss *sessions) get(ctx context.Context, token string) *session {
	if len(token) > 128 {
		return nil
	}
	if ss.store != nil {
		cs, err := ss.store.ConsoleSession(ctx, token)
		if err != nil || !ss.now().Before(cs.Expires) {
			return nil
		}
		return &session{admin: cs.Admin, appID: cs.AppID, appName: cs.AppName, csrf: cs.CSRF, expires: cs.Expires}
	}
	ss.mu.Lock()
	defer ss.mu.Unlock()
	k := control.TokenHash(token)
	s := ss.m[k]
	if s == nil {
		return nil
	}
	if !ss.now().Before(s.expires) {
		delete(ss.m, k)
		return nil
	}
	return s
}

func (ss *sessions) remove(ctx context.Context, token string) error {
	if ss.store != nil {
		return ss.store.DeleteConsoleSession(ctx, token)
	}
	ss.mu.Lock()
	defer ss.mu.Unlock()
	delete(ss.m, control.TokenHash(token))
	return nil
}
