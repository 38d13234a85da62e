// Package logsinktest is the conformance suite of logsink.Sink: the memory, SQLite and
// PostgreSQL sinks run it, so that a follower sees the same ids and records from each.
package logsinktest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/fnhq/fn/api"
	"github.com/fnhq/fn/internal/testutil"
	"github.com/fnhq/fn/logsink"
)

// Options describe what a backend can do beyond the interface.
type Options struct {
	// Reopen opens again the storage s was opened on; the suite has closed s. nil when the
	// backend keeps nothing (those tests are skipped).
	Reopen func(t *testing.T, s logsink.Sink) logsink.Sink
	// Retention is how many records per app the sinks open returns keep: at least 100, or 0
	// when they keep everything (the retention test is skipped).
	Retention int
}

// Run runs the suite; open returns a sink over new, empty storage for one test (the suite
// closes it).
func Run(t *testing.T, open func(t *testing.T) logsink.Sink, o Options) {
	if o.Retention != 0 && o.Retention < 100 {
		t.Fatalf("logsinktest: Options.Retention is %d; the suite needs at least 100 records per app", o.Retention)
	}
	s := &suite{open: open, o: o}
	t.Run("Append", s.append)
	t.Run("ConcurrentAppend", s.concurrentAppend)
	t.Run("QueryFilters", s.queryFilters)
	t.Run("QueryLimit", s.queryLimit)
	t.Run("Subscribe", s.subscribe)
	t.Run("SlowSubscriber", s.slowSubscriber)
	t.Run("Truncation", s.truncation)
	t.Run("Close", s.close)
	t.Run("Retention", s.retention)
	t.Run("Reopen", s.reopen)
}

type suite struct {
	open func(t *testing.T) logsink.Sink
	o    Options
}

var ctx = context.Background()

type handle struct {
	logsink.Sink
	closed bool
}

func (h *handle) close(t *testing.T) {
	if !h.closed {
		h.closed = true
		if err := h.Sink.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	}
}

func (s *suite) sink(t *testing.T) *handle {
	h := &handle{Sink: s.open(t)}
	t.Cleanup(func() { h.close(t) })
	return h
}

func query(t *testing.T, s logsink.Sink, f logsink.Filter, limit int) []api.LogRecord {
	t.Helper()
	recs, err := s.Query(ctx, f, limit)
	if err != nil {
		t.Fatalf("Query(%+v, %d): %v", f, limit, err)
	}
	return recs
}

func ids(recs []api.LogRecord) []int64 {
	out := make([]int64, len(recs))
	for i, r := range recs {
		out[i] = r.ID
	}
	return out
}

// same compares records as a backend returns them: times by instant.
func same(a, b api.LogRecord) bool {
	if !a.Time.Equal(b.Time) {
		return false
	}
	a.Time, b.Time = time.Time{}, time.Time{}
	return reflect.DeepEqual(a, b)
}

func sameAll(t *testing.T, what string, got, want []api.LogRecord) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d records %v, want %d %v", what, len(got), ids(got), len(want), ids(want))
	}
	for i := range got {
		if !same(got[i], want[i]) {
			t.Fatalf("%s: record %d is\n%+v\nwant\n%+v", what, i, got[i], want[i])
		}
	}
}

var t0 = time.Date(2026, 3, 1, 8, 0, 0, 0, time.UTC)

func (s *suite) append(t *testing.T) {
	sk := s.sink(t)
	full := api.LogRecord{ID: 999, Time: t0, App: "shop", Env: "production", Version: 3, Function: "pay", RequestID: "req-1",
		Level: "warn", Message: "card declined: 50% off", Stream: "console", Invocation: true, Status: 402, DurationMs: 12.5,
		Identity: "alice", Kind: "call", Request: json.RawMessage(`{"amount":5,"note":"x"}`), Replayable: true,
		Caller: &api.Caller{OpenID: "o-alice", AppID: "wxapp"}}
	out := sk.Append(full, api.LogRecord{App: "shop", Env: "production", Level: "info", Message: "no time given"})
	if len(out) != 2 {
		t.Fatalf("Append returned %d records, want 2", len(out))
	}
	if out[0].ID <= 0 || out[1].ID <= out[0].ID {
		t.Fatalf("ids %d, %d: want positive and increasing (the id passed in is ignored)", out[0].ID, out[1].ID)
	}
	want := full
	want.ID = out[0].ID
	if !same(out[0], want) {
		t.Fatalf("Append returned %+v, want %+v", out[0], want)
	}
	if out[1].Time.IsZero() {
		t.Fatal("a record appended without a time got none")
	}
	sameAll(t, "Query", query(t, sk, logsink.Filter{}, 0), out)
	// times come back in UTC to the microsecond, from Append and from Query alike
	cst := time.FixedZone("CST", 8*3600)
	fine := sk.Append(api.LogRecord{Time: t0.Add(1234567 * time.Nanosecond).In(cst), App: "zone", Level: "info", Message: "fine"})
	if want := t0.Add(1234 * time.Microsecond); !fine[0].Time.Equal(want) || fine[0].Time.Location() != time.UTC {
		t.Fatalf("a time of %v was kept as %v, want %v", t0.Add(1234567*time.Nanosecond).In(cst), fine[0].Time, want)
	}
	got := query(t, sk, logsink.Filter{App: "zone"}, 0)
	sameAll(t, "Query of a record with a fine time", got, fine)
	if got[0].Time.Location() != time.UTC {
		t.Fatalf("Query returned a time in %v, want UTC", got[0].Time.Location())
	}
	// a since between two microseconds selects what Filter.Match selects
	for _, since := range []time.Duration{1233999, 1234000, 1234001} {
		f := logsink.Filter{App: "zone", Since: t0.Add(since)}
		if n := len(query(t, sk, f, 0)); (n == 1) != f.Match(fine[0]) {
			t.Fatalf("since %v: %d records, Match says %v", f.Since, n, f.Match(fine[0]))
		}
	}
	more := sk.Append(api.LogRecord{App: "shop", Level: "info", Message: "third"})
	if more[0].ID <= out[1].ID {
		t.Fatalf("id %d after %d", more[0].ID, out[1].ID)
	}
	if got := sk.Append(); len(got) != 0 {
		t.Fatalf("Append of nothing returned %v", got)
	}
}

func (s *suite) concurrentAppend(t *testing.T) {
	sk := s.sink(t)
	const writers, each = 10, 50
	got := make([][]api.LogRecord, writers)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			app := fmt.Sprintf("app%d", w)
			for i := 0; i < each; {
				// single records and batches
				n := 1 + i%3
				if i+n > each {
					n = each - i
				}
				batch := make([]api.LogRecord, n)
				for j := range batch {
					batch[j] = api.LogRecord{App: app, Level: "info", Message: fmt.Sprintf("%s #%d", app, i+j)}
				}
				got[w] = append(got[w], sk.Append(batch...)...)
				i += n
			}
		}()
	}
	close(start)
	wg.Wait()
	seen := map[int64]string{}
	for w, recs := range got {
		for i, r := range recs {
			if prev, dup := seen[r.ID]; dup {
				t.Fatalf("id %d given to %q and %q", r.ID, prev, r.Message)
			}
			seen[r.ID] = r.Message
			if i > 0 && r.ID <= recs[i-1].ID {
				t.Fatalf("writer %d: id %d after %d", w, r.ID, recs[i-1].ID)
			}
			if want := fmt.Sprintf("app%d #%d", w, i); r.Message != want {
				t.Fatalf("writer %d record %d: %q, want %q", w, i, r.Message, want)
			}
		}
	}
	all := query(t, sk, logsink.Filter{}, 0)
	if len(all) != writers*each {
		t.Fatalf("Query returned %d records, want %d", len(all), writers*each)
	}
	for i, r := range all {
		if i > 0 && r.ID <= all[i-1].ID {
			t.Fatalf("Query is not in id order: %d after %d", r.ID, all[i-1].ID)
		}
		if seen[r.ID] != r.Message {
			t.Fatalf("record %d reads %q, was appended as %q", r.ID, r.Message, seen[r.ID])
		}
	}
}

func (s *suite) queryFilters(t *testing.T) {
	sk := s.sink(t)
	in := []api.LogRecord{
		{Time: t0, App: "a", Env: "production", Function: "pay", RequestID: "r1", Level: "debug", Message: "start 100%"},
		{Time: t0.Add(time.Second), App: "a", Env: "production", Function: "pay", RequestID: "r1", Level: "info", Message: "charged"},
		{Time: t0.Add(2 * time.Second), App: "a", Env: "staging", Function: "pay", RequestID: "r2", Level: "warn", Message: "Slow card"},
		{Time: t0.Add(3 * time.Second), App: "a", Env: "production", Function: "ship", RequestID: "r3", Level: "error", Message: "no address_line"},
		{Time: t0.Add(4 * time.Second), App: "b", Env: "production", Function: "pay", RequestID: "r4", Level: "info", Message: "charged twice"},
		{Time: t0.Add(5 * time.Second), App: "a", Env: "production", Function: "ship", RequestID: "r5", Level: "info", Message: "shipped"},
	}
	recs := sk.Append(in...)
	pick := func(idx ...int) []api.LogRecord {
		out := []api.LogRecord{}
		for _, i := range idx {
			out = append(out, recs[i])
		}
		return out
	}
	cases := []struct {
		name string
		f    logsink.Filter
		want []api.LogRecord
	}{
		{"none", logsink.Filter{}, pick(0, 1, 2, 3, 4, 5)},
		{"app", logsink.Filter{App: "b"}, pick(4)},
		{"env", logsink.Filter{Env: "staging"}, pick(2)},
		{"after", logsink.Filter{After: recs[3].ID}, pick(4, 5)},
		{"since (inclusive)", logsink.Filter{Since: t0.Add(4 * time.Second)}, pick(4, 5)},
		{"since in another zone", logsink.Filter{Since: t0.Add(4 * time.Second).In(time.FixedZone("CST", 8*3600))}, pick(4, 5)},
		{"function", logsink.Filter{Function: "ship"}, pick(3, 5)},
		{"level debug", logsink.Filter{Level: "debug"}, pick(0, 1, 2, 3, 4, 5)},
		{"level info", logsink.Filter{Level: "info"}, pick(1, 2, 3, 4, 5)},
		{"level warn", logsink.Filter{Level: "warn"}, pick(2, 3)},
		{"level error", logsink.Filter{Level: "error"}, pick(3)},
		{"requestId", logsink.Filter{RequestID: "r1"}, pick(0, 1)},
		{"search", logsink.Filter{Search: "charged"}, pick(1, 4)},
		{"search is case-sensitive", logsink.Filter{Search: "slow"}, pick()},
		{"search % is literal", logsink.Filter{Search: "100%"}, pick(0)},
		{"search _ is literal", logsink.Filter{Search: "d_t"}, pick()},
		{"search _ matches _", logsink.Filter{Search: "address_line"}, pick(3)},
		{"combined", logsink.Filter{App: "a", Env: "production", Function: "pay", Level: "info"}, pick(1)},
		{"combined with after", logsink.Filter{App: "a", After: recs[1].ID, Level: "info"}, pick(2, 3, 5)},
		{"nothing matches", logsink.Filter{App: "c"}, pick()},
	}
	for _, c := range cases {
		got := query(t, sk, c.f, 0)
		if len(got) != len(c.want) {
			t.Errorf("%s: ids %v, want %v", c.name, ids(got), ids(c.want))
			continue
		}
		for i := range got {
			if !same(got[i], c.want[i]) {
				t.Errorf("%s: record %d is %+v, want %+v", c.name, i, got[i], c.want[i])
			}
		}
		for _, r := range got {
			if !c.f.Match(r) {
				t.Errorf("%s: record %d does not match the filter", c.name, r.ID)
			}
		}
	}
}

func (s *suite) queryLimit(t *testing.T) {
	sk := s.sink(t)
	var in []api.LogRecord
	for i := 0; i < 10; i++ {
		app := "a"
		if i%2 == 1 {
			app = "b"
		}
		in = append(in, api.LogRecord{App: app, Level: "info", Message: fmt.Sprint(i)})
	}
	r := sk.Append(in...)
	sameAll(t, "newest 3", query(t, sk, logsink.Filter{}, 3), r[7:])
	sameAll(t, "oldest 3 after the second", query(t, sk, logsink.Filter{After: r[1].ID}, 3), r[2:5])
	sameAll(t, "newest 2 of app a", query(t, sk, logsink.Filter{App: "a"}, 2), []api.LogRecord{r[6], r[8]})
	sameAll(t, "oldest 2 of app a after the first", query(t, sk, logsink.Filter{App: "a", After: r[0].ID}, 2), []api.LogRecord{r[2], r[4]})
	sameAll(t, "limit 0 is all", query(t, sk, logsink.Filter{}, 0), r)
	sameAll(t, "a limit over the count", query(t, sk, logsink.Filter{After: r[7].ID}, 100), r[8:])
	sameAll(t, "after the last", query(t, sk, logsink.Filter{After: r[9].ID}, 5), nil)
}

// recv reads n records from ch within a deadline.
func recv(t *testing.T, ch <-chan api.LogRecord, n int) []api.LogRecord {
	t.Helper()
	var out []api.LogRecord
	deadline := time.After(10 * time.Second)
	for len(out) < n {
		select {
		case r, ok := <-ch:
			if !ok {
				t.Fatalf("the subscription closed after %d of %d records", len(out), n)
			}
			out = append(out, r)
		case <-deadline:
			t.Fatalf("got %d of %d records within 10 s", len(out), n)
		}
	}
	return out
}

// closedWithin drains ch and reports what it held before it closed.
func closedWithin(t *testing.T, ch <-chan api.LogRecord) []api.LogRecord {
	t.Helper()
	var out []api.LogRecord
	deadline := time.After(10 * time.Second)
	for {
		select {
		case r, ok := <-ch:
			if !ok {
				return out
			}
			out = append(out, r)
		case <-deadline:
			t.Fatalf("the subscription is still open after 10 s (%d records read)", len(out))
		}
	}
}

func (s *suite) subscribe(t *testing.T) {
	sk := s.sink(t)
	sk.Append(api.LogRecord{App: "a", Level: "error", Message: "before"})
	all, cancelAll := sk.Subscribe(logsink.Filter{})
	errs, cancelErrs := sk.Subscribe(logsink.Filter{App: "a", Level: "error"})
	defer cancelErrs()
	later := sk.Append(
		api.LogRecord{App: "a", Level: "info", Message: "one"},
		api.LogRecord{App: "a", Level: "error", Message: "two"},
		api.LogRecord{App: "b", Level: "error", Message: "three"},
	)
	sameAll(t, "the unfiltered subscription", recv(t, all, 3), later)
	sameAll(t, "the filtered subscription", recv(t, errs, 1), later[1:2])

	cancelAll()
	cancelAll() // twice is harmless
	after := sk.Append(api.LogRecord{App: "a", Level: "error", Message: "after cancel"})
	if got := closedWithin(t, all); len(got) != 0 {
		t.Fatalf("a cancelled subscription delivered %v", ids(got))
	}
	sameAll(t, "the other subscription after one cancelled", recv(t, errs, 1), after)
}

func (s *suite) slowSubscriber(t *testing.T) {
	sk := s.sink(t)
	slow, cancelSlow := sk.Subscribe(logsink.Filter{})
	defer cancelSlow()
	// a subscriber that reads nothing must not hold Append up
	const n = 5000
	done := make(chan []api.LogRecord)
	go func() {
		var out []api.LogRecord
		for i := 0; i < n; i++ {
			out = append(out, sk.Append(api.LogRecord{App: fmt.Sprintf("app%d", i%50), Level: "info", Message: fmt.Sprint(i)})...)
		}
		done <- out
	}()
	var appended []api.LogRecord
	select {
	case appended = <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("Append is blocked by a subscriber that does not read")
	}
	// the slow subscriber got an in-order prefix and was then dropped
	got := closedWithin(t, slow)
	if len(got) >= n {
		t.Fatalf("the slow subscriber got all %d records: buffer unbounded?", len(got))
	}
	for i, r := range got {
		if r.ID != appended[i].ID {
			t.Fatalf("the slow subscriber's record %d is %d, want %d", i, r.ID, appended[i].ID)
		}
	}
	// what it missed is there to query after its last id
	var lastSeen int64
	if len(got) > 0 {
		lastSeen = got[len(got)-1].ID
	}
	if rest := query(t, sk, logsink.Filter{After: lastSeen}, 0); len(rest) != n-len(got) {
		t.Fatalf("Query after the dropped subscriber's last id: %d records, want %d", len(rest), n-len(got))
	}
}

func (s *suite) truncation(t *testing.T) {
	sk := s.sink(t)
	long := strings.Repeat("日志", logsink.MaxMessage/3) // 6 bytes a repetition: over the limit, cut inside a character
	exact := strings.Repeat("x", logsink.MaxMessage)
	out := sk.Append(api.LogRecord{App: "a", Level: "info", Message: long}, api.LogRecord{App: "a", Level: "info", Message: exact})
	stored := query(t, sk, logsink.Filter{}, 0)
	if len(stored) != 2 {
		t.Fatalf("%d records stored", len(stored))
	}
	for _, msg := range []string{out[0].Message, stored[0].Message} {
		if len(msg) > logsink.MaxMessage {
			t.Fatalf("a %d-byte message kept %d bytes, over MaxMessage %d", len(long), len(msg), logsink.MaxMessage)
		}
		if !utf8.ValidString(msg) {
			t.Fatal("the cut message is not valid UTF-8")
		}
		if !strings.Contains(msg, "truncated") {
			t.Fatalf("the cut message carries no marker: …%q", msg[len(msg)-40:])
		}
		body := msg[:strings.LastIndex(msg, "…")]
		if !strings.HasPrefix(long, body) || len(body) < logsink.MaxMessage-100 {
			t.Fatalf("the cut message keeps %d bytes of the original's start", len(body))
		}
		if msg != logsink.Truncate(long) {
			t.Fatal("the backend cut the message otherwise than logsink.Truncate")
		}
	}
	if out[1].Message != exact || stored[1].Message != exact {
		t.Fatal("a message of exactly MaxMessage bytes was changed")
	}
}

func (s *suite) close(t *testing.T) {
	h := s.sink(t)
	ch, cancel := h.Subscribe(logsink.Filter{})
	defer cancel()
	h.Append(api.LogRecord{App: "a", Level: "info", Message: "last"})
	h.close(t)
	if got := closedWithin(t, ch); len(got) > 1 {
		t.Fatalf("the subscription delivered %d records", len(got))
	}
	if got := h.Sink.Append(api.LogRecord{App: "a", Message: "too late"}); got != nil {
		t.Fatalf("Append after Close returned %v, want nil", got)
	}
	if _, err := h.Sink.Query(ctx, logsink.Filter{}, 0); !errors.Is(err, logsink.ErrClosed) {
		t.Fatalf("Query after Close: %v, want ErrClosed", err)
	}
	ch2, cancel2 := h.Sink.Subscribe(logsink.Filter{})
	defer cancel2()
	closedWithin(t, ch2)
}

func (s *suite) retention(t *testing.T) {
	if s.o.Retention == 0 {
		t.Skip("the backend keeps every record")
	}
	sk := s.sink(t)
	keep := s.o.Retention
	quiet := sk.Append(api.LogRecord{App: "quiet", Level: "info", Message: "q1"}, api.LogRecord{App: "quiet", Level: "info", Message: "q2"})
	var noisy []api.LogRecord
	for i := 0; i < 3*keep; i++ {
		noisy = append(noisy, sk.Append(api.LogRecord{App: "noisy", Level: "info", Message: fmt.Sprint(i)})...)
	}
	// trimming runs in batches, possibly in the background: wait until it has
	var kept []api.LogRecord
	testutil.Eventually(t, 10*time.Second, "the noisy app's records trimmed to the retention", func() bool {
		kept = query(t, sk, logsink.Filter{App: "noisy"}, 0)
		return len(kept) <= keep+keep/2
	})
	if len(kept) < keep {
		t.Fatalf("%d records of the noisy app kept, want at least the newest %d", len(kept), keep)
	}
	sameAll(t, "the newest of the noisy app", kept[len(kept)-keep:], noisy[len(noisy)-keep:])
	// another app's records are not pushed out by a noisy one
	sameAll(t, "the quiet app", query(t, sk, logsink.Filter{App: "quiet"}, 0), quiet)
}

func (s *suite) reopen(t *testing.T) {
	if s.o.Reopen == nil {
		t.Skip("the backend keeps nothing across a reopen")
	}
	h := s.sink(t)
	var before []api.LogRecord
	for i := 0; i < 20; i++ {
		before = append(before, h.Append(api.LogRecord{Time: t0.Add(time.Duration(i) * time.Millisecond), App: "a", Env: "production",
			Version: 2, Function: "f", RequestID: fmt.Sprint("r", i), Level: "info", Message: fmt.Sprint("before ", i),
			Stream: "stdout", Invocation: i%2 == 0, Status: 200, DurationMs: 1.25, Identity: "bob", Kind: "timer"})...)
	}
	last := before[len(before)-1].ID
	h.close(t)
	r := &handle{Sink: s.o.Reopen(t, h.Sink)}
	t.Cleanup(func() { r.close(t) })

	sameAll(t, "records after reopen", query(t, r, logsink.Filter{}, 0), before)
	after := r.Append(api.LogRecord{App: "a", Level: "info", Message: "after 1"}, api.LogRecord{App: "a", Level: "info", Message: "after 2"})
	if after[0].ID <= last {
		t.Fatalf("the first id after reopen is %d, not after the last one before, %d", after[0].ID, last)
	}
	sameAll(t, "a follower resuming after the last id before the restart", query(t, r, logsink.Filter{After: last}, 0), after)
	ch, cancel := r.Subscribe(logsink.Filter{})
	defer cancel()
	live := r.Append(api.LogRecord{App: "a", Level: "info", Message: "live"})
	sameAll(t, "a subscription after reopen", recv(t, ch, 1), live)

	// and again: ids never go back, whatever a restart finds
	r.close(t)
	r2 := &handle{Sink: s.o.Reopen(t, r.Sink)}
	t.Cleanup(func() { r2.close(t) })
	if got := r2.Append(api.LogRecord{App: "a", Level: "info", Message: "third run"}); got[0].ID <= live[0].ID {
		t.Fatalf("the first id of the third run is %d, after %d", got[0].ID, live[0].ID)
	}
	all := query(t, r2, logsink.Filter{}, 0)
	if !sort.SliceIsSorted(all, func(i, j int) bool { return all[i].ID < all[j].ID }) || len(all) != len(before)+len(after)+2 {
		t.Fatalf("after two restarts: ids %v", ids(all))
	}
}
