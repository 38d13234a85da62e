package console

import (
	"crypto/sha256"
	"encoding/hex"
	"sync"
	"time"

	"github.com/fnhq/fn/internal/randid"
)

// session is one console login. Sessions live in the process: a restart (or another replica)
// asks for a new login.
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
	mu  sync.Mutex
	now func() time.Time
	// by the SHA-256 of the cookie value: the store holds no usable token
	m map[string]*session
}

func newSessions(now func() time.Time) *sessions {
	return &sessions{now: now, m: map[string]*session{}}
}

func hashOf(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

// add stores s (setting its CSRF token and expiry) and returns the cookie value.
func (ss *sessions) add(s *session, ttl time.Duration) string {
	token := randid.Key(32)
	s.csrf = randid.Key(32)
	now := ss.now()
	s.expires = now.Add(ttl)
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
	ss.m[hashOf(token)] = s
	return token
}

// get returns the live session of a cookie value, or nil.
func (ss *sessions) get(token string) *session {
	if len(token) > 128 {
		return nil
	}
	ss.mu.Lock()
	defer ss.mu.Unlock()
	k := hashOf(token)
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

func (ss *sessions) remove(token string) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	delete(ss.m, hashOf(token))
}
