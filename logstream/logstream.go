// Package logstream keeps recent log records and streams them as NDJSON, with filters and
// follow mode that resumes by record id: fn serve keeps one per app, fn dev one per project.
package logstream

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
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

func (f Filter) Match(r Record) bool {
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

// Ring keeps an app's latest records and pushes new ones to followers.
type Ring struct {
	mu      sync.Mutex
	keep    int
	next    int64
	records []Record
	subs    map[chan Record]struct{}
}

func NewRing(keep int) *Ring {
	return &Ring{keep: keep, next: 1, subs: map[chan Record]struct{}{}}
}

func (l *Ring) Add(r Record) {
	l.mu.Lock()
	defer l.mu.Unlock()
	r.ID = l.next
	l.next++
	if r.Time.IsZero() {
		r.Time = time.Now()
	}
	l.records = append(l.records, r)
	// trim in batches: copying the kept records on every add would cost O(keep) per record
	if len(l.records) >= 2*l.keep {
		l.records = append([]Record(nil), l.records[len(l.records)-l.keep:]...)
	}
	for ch := range l.subs {
		select {
		case ch <- r:
		default: // a follower that cannot keep up resumes by id after reconnecting
		}
	}
}

// Snapshot returns the kept records that match, and (with follow) a channel of later ones.
func (l *Ring) Snapshot(f Filter, follow bool) ([]Record, chan Record, func()) {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []Record
	kept := l.records
	if len(kept) > l.keep {
		kept = kept[len(kept)-l.keep:]
	}
	for _, r := range kept {
		if f.Match(r) {
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

// ParseFilter reads a filter from query parameters: function, level, requestId, search, env,
// after (a record id), since (RFC 3339).
func ParseFilter(q map[string][]string) (Filter, error) {
	get := func(k string) string {
		if v := q[k]; len(v) > 0 {
			return v[0]
		}
		return ""
	}
	f := Filter{Function: get("function"), Level: get("level"), RequestID: get("requestId"), Search: get("search"), Env: get("env")}
	if a := get("after"); a != "" {
		n, err := strconv.ParseInt(a, 10, 64)
		if err != nil {
			return f, fmt.Errorf("after must be a record id, got %q", a)
		}
		f.After = n
	}
	if s := get("since"); s != "" {
		t, err := time.Parse(time.RFC3339, s)
		if err != nil {
			return f, fmt.Errorf("since must be an RFC 3339 time, got %q", s)
		}
		f.Since = t
	}
	return f, nil
}

// Stream writes the matching records as NDJSON; with follow it keeps the response open and
// pushes new records as they happen (with a keep-alive newline every 15 s) until the client goes.
func Stream(w http.ResponseWriter, r *http.Request, ring *Ring, f Filter, follow bool, app string) {
	recs, ch, stop := ring.Snapshot(f, follow)
	defer stop()
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.WriteHeader(http.StatusOK)
	enc := json.NewEncoder(w)
	flusher, _ := w.(http.Flusher)
	last := f.After
	for _, rec := range recs {
		rec.App = app
		enc.Encode(rec)
		last = rec.ID
	}
	if flusher != nil {
		flusher.Flush()
	}
	if !follow {
		return
	}
	keepalive := time.NewTicker(15 * time.Second)
	defer keepalive.Stop()
	for {
		select {
		case <-r.Context().Done():
			return
		case rec := <-ch:
			if rec.ID <= last || !f.Match(rec) {
				continue
			}
			rec.App = app
			enc.Encode(rec)
			last = rec.ID
			if flusher != nil {
				flusher.Flush()
			}
		case <-keepalive.C:
			w.Write([]byte("\n"))
			if flusher != nil {
				flusher.Flush()
			}
		}
	}
}
