package logsink

import (
	"encoding/json"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/fnhq/fn/api"
)

// truncMark ends a message that was cut; the number of bytes cut follows it.
const truncMark = "… [truncated "

// Truncate cuts a message over MaxMessage bytes on a character boundary and marks how much is
// gone; the result is at most MaxMessage bytes. Every backend cuts with it.
func Truncate(msg string) string {
	if len(msg) <= MaxMessage {
		return msg
	}
	// the marker's length depends on the number it carries; 20 digits cover any int
	keep := MaxMessage - len(truncMark) - len(" bytes]") - 20
	for keep > 0 && !utf8.RuneStart(msg[keep]) {
		keep--
	}
	return msg[:keep] + truncMark + strconv.Itoa(len(msg)-keep) + " bytes]"
}

// prepare gives a record its id and what Append promises. Times are kept in UTC to the
// microsecond, what every backend can store, so that all of them answer the same record.
func prepare(r api.LogRecord, id int64, now time.Time) api.LogRecord {
	r.ID = id
	if r.Time.IsZero() {
		r.Time = now
	}
	r.Time = r.Time.UTC().Truncate(time.Microsecond)
	r.Message = Truncate(r.Message)
	return r
}

// subscription is one Subscribe call.
type subscription struct {
	f  Filter
	ch chan api.LogRecord
}

// subBuffer is how far a subscriber may fall behind before it is dropped.
const subBuffer = 1024

// fanOut delivers r to every subscriber that wants it, dropping (and closing) the ones whose
// buffers are full, so that Append never waits for a reader. The caller holds the lock that
// guards subs.
func fanOut(subs map[*subscription]struct{}, r api.LogRecord) {
	for sub := range subs {
		if !sub.f.Match(r) {
			continue
		}
		select {
		case sub.ch <- r:
		default:
			delete(subs, sub)
			close(sub.ch)
		}
	}
}

// subscribe registers a subscription; unsubscribe closes its channel once.
func subscribe(subs map[*subscription]struct{}, f Filter) *subscription {
	sub := &subscription{f: f, ch: make(chan api.LogRecord, subBuffer)}
	subs[sub] = struct{}{}
	return sub
}

func unsubscribe(subs map[*subscription]struct{}, sub *subscription) {
	if _, ok := subs[sub]; ok {
		delete(subs, sub)
		close(sub.ch)
	}
}

func closedChan() chan api.LogRecord {
	ch := make(chan api.LogRecord)
	close(ch)
	return ch
}

// replayColumn is what a backend stores of a record's request and caller: JSON, or "" when
// the record carries neither (every record but invocations).
type replayColumn struct {
	Request    json.RawMessage `json:"request,omitempty"`
	Replayable bool            `json:"replayable,omitempty"`
	Caller     *api.Caller     `json:"caller,omitempty"`
}

// EncodeReplay is the stored form of a record's request, caller and replayability.
func EncodeReplay(r api.LogRecord) string {
	if len(r.Request) == 0 && r.Caller == nil && !r.Replayable {
		return ""
	}
	b, _ := json.Marshal(replayColumn{Request: r.Request, Replayable: r.Replayable, Caller: r.Caller})
	return string(b)
}

// DecodeReplay restores what EncodeReplay stored into r.
func DecodeReplay(s string, r *api.LogRecord) {
	if s == "" {
		return
	}
	var c replayColumn
	if json.Unmarshal([]byte(s), &c) == nil {
		r.Request, r.Replayable, r.Caller = c.Request, c.Replayable, c.Caller
	}
}
