package hosting

import (
	"strings"
	"sync"
	"time"
)

// Record is one log line of an app: a function's output, an invocation, or a note of the runtime.
type Record struct {
	ID         int64     `json:"id"` // increasing per app: resume a stream after it
	Time       time.Time `json:"time"`
	App        string    `json:"app,omitempty"`
	Env        string    `json:"env"`
	Version    int       `json:"version,omitempty"`
	Function   string    `json:"function,omitempty"`
	RequestID  string    `json:"requestId,omitempty"`
	Level      string    `json:"level"`
	Message    string    `json:"message"`
	Invocation bool      `json:"invocation,omitempty"`
	Status     int       `json:"status,omitempty"`
	DurationMs float64   `json:"durationMs,omitempty"`
}

// Filter selects records.
type Filter struct {
	After     int64 // only records with a larger id
	Since     time.Time
	Function  string
	Level     string // this level or more severe
	RequestID string
	Search    string
	Env       string
}

var levelRank = map[string]int{"debug": 0, "info": 1, "warn": 2, "error": 3}

func (f Filter) match(r Record) bool {
	switch {
	case r.ID <= f.After:
		return false
	case !f.Since.IsZero() && r.Time.Before(f.Since):
		return false
	case f.Function != "" && r.Function != f.Function:
		return false
	case f.Level != "" && levelRank[r.Level] < levelRank[f.Level]:
		return false
	case f.RequestID != "" && r.RequestID != f.RequestID:
		return false
	case f.Search != "" && !strings.Contains(r.Message, f.Search):
		return false
	case f.Env != "" && r.Env != f.Env:
		return false
	}
	return true
}

// logRing keeps an app's latest records and pushes new ones to followers.
type logRing struct {
	mu      sync.Mutex
	keep    int
	next    int64
	records []Record
	subs    map[chan Record]struct{}
}

func newLogRing(keep int) *logRing {
	return &logRing{keep: keep, next: 1, subs: map[chan Record]struct{}{}}
}

func (l *logRing) add(r Record) {
	l.mu.Lock()
	defer l.mu.Unlock()
	r.ID = l.next
	l.next++
	if r.Time.IsZero() {
		r.Time = time.Now()
	}
	l.records = append(l.records, r)
	if len(l.records) > l.keep {
		l.records = append([]Record(nil), l.records[len(l.records)-l.keep:]...)
	}
	for ch := range l.subs {
		select {
		case ch <- r:
		default: // a follower that cannot keep up resumes by id after reconnecting
		}
	}
}

// snapshot returns the kept records that match, and (with follow) a channel of later ones.
func (l *logRing) snapshot(f Filter, follow bool) ([]Record, chan Record, func()) {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []Record
	for _, r := range l.records {
		if f.match(r) {
			out = append(out, r)
		}
	}
	if !follow {
		return out, nil, func() {}
	}
	ch := make(chan Record, 1024)
	l.subs[ch] = struct{}{}
	return out, ch, func() {
		l.mu.Lock()
		delete(l.subs, ch)
		l.mu.Unlock()
	}
}
