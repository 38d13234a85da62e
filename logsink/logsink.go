// Package logsink keeps log records: functions' output, invocations and the runtime's notes.
// A Sink assigns each record an id that increases and is never reused, also across a restart,
// so that a follower resumes after the last id it saw without gaps or duplicates. Backends:
// memory (fn invoke), SQLite with retention (fn dev, fn serve), PostgreSQL (several replicas);
// each passes logsink/logsinktest.
package logsink

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/fnhq/fn/api"
)

// Filter selects records.
type Filter struct {
	App       string // "" for every app
	Env       string
	After     int64 // only records with a larger id
	Since     time.Time
	Function  string
	Level     string // this level or more severe
	RequestID string
	Search    string // substring of the message
}

var levelRank = map[string]int{"debug": 0, "info": 1, "warn": 2, "error": 3}

// ValidLevel reports whether level is one a filter accepts ("" included).
func ValidLevel(level string) bool { _, ok := levelRank[level]; return ok || level == "" }

// Match reports whether a record passes the filter.
func (f Filter) Match(r api.LogRecord) bool {
	switch {
	case r.ID <= f.After:
		return false
	case f.App != "" && r.App != f.App:
		return false
	case f.Env != "" && r.Env != f.Env:
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
	}
	return true
}

// ErrClosed is what a closed sink answers.
var ErrClosed = errors.New("the log sink is closed")

// MaxMessage bounds one record's message; a longer one is cut with a marker.
const MaxMessage = 64 << 10

// Sink is a log backend.
type Sink interface {
	// Append stores records, giving each the next id (the ID field passed in is ignored) and
	// returns them with their ids. It does not wait for a disk: a backend may persist
	// asynchronously, and Close flushes. Messages over MaxMessage are cut by Truncate; a zero
	// Time becomes now; times are kept in UTC to the microsecond.
	Append(recs ...api.LogRecord) []api.LogRecord
	// Query returns the matching records in id order, at most limit (0: no limit) — the newest
	// ones when there are more, unless the filter has After, which asks for the oldest after it.
	Query(ctx context.Context, f Filter, limit int) ([]api.LogRecord, error)
	// Subscribe delivers the matching records appended after the call, in id order, until
	// cancel is called. The channel is buffered; a subscriber that does not keep up is dropped:
	// its channel is closed, and it finds what it missed by subscribing again and then asking
	// Query for the records After the last one it got. cancel and Close close the channel too.
	Subscribe(f Filter) (records <-chan api.LogRecord, cancel func())
	// Close flushes and releases the backend; Append after Close drops records (and returns
	// nil), Query after Close fails with ErrClosed.
	Close() error
}
