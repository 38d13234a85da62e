package server

import (
	"crypto/sha256"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// DefaultSignWindow is how far an X-LC-Sign timestamp may lie from the server's clock. LeanCloud
// does not publish its window; 15 minutes tolerates clock skew of phones while a captured
// signature stops working soon after.
const DefaultSignWindow = 15 * time.Minute

// freshDuplicate is how young a signature must be for an identical second request to count as
// a client's own concurrent call rather than a replay: the SDKs sign with Date.now(), so two
// identical writes sent together in one millisecond carry the same signature.
const freshDuplicate = 2 * time.Second

// maxReplayEntries bounds the replay memory; beyond it new fingerprints are not remembered
// (the window still applies).
const maxReplayEntries = 200_000

// replayGuard remembers the writes seen with each signature within the window.
type replayGuard struct {
	window time.Duration
	mu     sync.Mutex
	seen   map[[32]byte]time.Time // fingerprint → when it may be forgotten
	pruned time.Time
}

func newReplayGuard(window time.Duration) *replayGuard {
	return &replayGuard{window: window, seen: map[[32]byte]time.Time{}}
}

// checkSignFresh refuses a signature whose timestamp is outside the window, and a write (any
// method but GET/HEAD) that repeats byte for byte an earlier signed write, unless the
// signature is only moments old (a client's concurrent identical calls). The signature does
// not cover the request, so this only stops the replay of a captured write as it was sent.
func (s *api) checkSignFresh(r *http.Request, sign string, body []byte) error {
	parts := strings.Split(sign, ",")
	ts, err := strconv.ParseInt(parts[1], 10, 64)
	if err != nil {
		return errUnauthorized
	}
	now := s.o.Now()
	signed := time.UnixMilli(ts)
	age := now.Sub(signed)
	if age > s.o.SignWindow || age < -s.o.SignWindow {
		return errUnauthorized
	}
	if r.Method == http.MethodGet || r.Method == http.MethodHead {
		return nil
	}
	h := sha256.New()
	for _, p := range []string{sign, r.Method, r.URL.RequestURI()} {
		h.Write([]byte(p))
		h.Write([]byte{0})
	}
	h.Write(body)
	var fp [32]byte
	h.Sum(fp[:0])
	g := s.replays
	g.mu.Lock()
	defer g.mu.Unlock()
	if now.Sub(g.pruned) > time.Minute || len(g.seen) >= maxReplayEntries {
		for k, until := range g.seen {
			if now.After(until) {
				delete(g.seen, k)
			}
		}
		g.pruned = now
	}
	if _, dup := g.seen[fp]; dup && (age > freshDuplicate || age < -freshDuplicate) {
		return errUnauthorized
	}
	if len(g.seen) < maxReplayEntries {
		g.seen[fp] = signed.Add(g.window)
	}
	return nil
}
