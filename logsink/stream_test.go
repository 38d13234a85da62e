package logsink

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fnhq/fn/api"
)

// follower reads a stream line by line.
type follower struct {
	t      *testing.T
	resp   *http.Response
	lines  chan string
	cancel context.CancelFunc
}

func follow(t *testing.T, srv *httptest.Server, query string) *follower {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/logs?"+query, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	f := &follower{t: t, resp: resp, lines: make(chan string, 10000), cancel: cancel}
	go func() {
		defer close(f.lines)
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			f.lines <- sc.Text()
		}
	}()
	t.Cleanup(func() { cancel(); resp.Body.Close() })
	return f
}

// next returns the next record, skipping keep-alive lines.
func (f *follower) next() api.LogRecord {
	f.t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case line, ok := <-f.lines:
			if !ok {
				f.t.Fatal("the stream ended")
			}
			if line == "" {
				continue
			}
			var r api.LogRecord
			if err := json.Unmarshal([]byte(line), &r); err != nil {
				f.t.Fatalf("line %q: %v", line, err)
			}
			return r
		case <-deadline:
			f.t.Fatal("no record within 10 s")
		}
	}
}

func (f *follower) messages(n int) []string {
	f.t.Helper()
	var out []string
	for i := 0; i < n; i++ {
		out = append(out, f.next().Message)
	}
	return out
}

// ended waits for the stream to end and returns the records it still sent.
func (f *follower) ended() []api.LogRecord {
	f.t.Helper()
	var out []api.LogRecord
	deadline := time.After(10 * time.Second)
	for {
		select {
		case line, ok := <-f.lines:
			if !ok {
				return out
			}
			if line != "" {
				var r api.LogRecord
				json.Unmarshal([]byte(line), &r)
				out = append(out, r)
			}
		case <-deadline:
			f.t.Fatal("the stream is still open after 10 s")
		}
	}
}

// server serves Stream over s; handlers reports when each handler returns.
func server(t *testing.T, s Sink, opts StreamOptions) (*httptest.Server, chan struct{}) {
	returned := make(chan struct{}, 10)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() { returned <- struct{}{} }()
		f, err := ParseFilter(r.URL.Query())
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		o := opts
		o.Follow = r.URL.Query().Get("follow") == "1"
		Stream(w, r, s, f, o)
	}))
	t.Cleanup(srv.Close)
	return srv, returned
}

func add(s Sink, msgs ...string) []api.LogRecord {
	var recs []api.LogRecord
	for _, m := range msgs {
		recs = append(recs, api.LogRecord{App: "a", Env: "production", Level: "info", Message: m})
	}
	return s.Append(recs...)
}

func TestStreamSnapshot(t *testing.T) {
	s := NewMemory(100)
	add(s, "one", "two", "three")
	s.Append(api.LogRecord{App: "a", Level: "error", Message: "bad"})
	srv, _ := server(t, s, StreamOptions{Tail: 2})
	resp, err := http.Get(srv.URL + "/logs")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "application/x-ndjson" {
		t.Errorf("Content-Type %q", ct)
	}
	f := &follower{t: t, lines: make(chan string, 100)}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		f.lines <- sc.Text()
	}
	close(f.lines)
	if got := fmt.Sprint(msgs(f.ended())); got != "[three bad]" {
		t.Fatalf("a stream with tail 2 sent %s, want the newest two", got)
	}
	// a filter applies to the snapshot
	f2 := follow(t, srv, "level=error")
	if got := fmt.Sprint(msgs(f2.ended())); got != "[bad]" {
		t.Fatalf("level=error sent %s", got)
	}
}

func msgs(recs []api.LogRecord) []string {
	var out []string
	for _, r := range recs {
		out = append(out, r.Message)
	}
	return out
}

func TestStreamFollowAndResume(t *testing.T) {
	s := NewMemory(1000)
	old := add(s, "old1", "old2")
	srv, _ := server(t, s, StreamOptions{})
	f := follow(t, srv, "follow=1")
	if got := fmt.Sprint(f.messages(2)); got != "[old1 old2]" {
		t.Fatalf("snapshot %s", got)
	}
	// the snapshot has been sent, so the subscription exists: later records follow
	live := add(s, "live1", "live2")
	if got := fmt.Sprint(f.messages(2)); got != "[live1 live2]" {
		t.Fatalf("followed %s", got)
	}
	f.cancel()

	// a follower that saw old2 resumes after it: nothing again, nothing missed
	add(s, "while away")
	r := follow(t, srv, fmt.Sprintf("follow=1&after=%d", old[1].ID))
	if got := fmt.Sprint(r.messages(3)); got != "[live1 live2 while away]" {
		t.Fatalf("resumed with %s", got)
	}
	add(s, "after resume")
	if got := r.next(); got.Message != "after resume" || got.ID <= live[1].ID {
		t.Fatalf("then %+v", got)
	}
}

// A resuming follower gets everything after its cursor, past one page.
func TestStreamResumePages(t *testing.T) {
	s := NewMemory(10000)
	var in []string
	for i := 0; i < 2*page+10; i++ {
		in = append(in, fmt.Sprint(i))
	}
	recs := add(s, in...)
	srv, _ := server(t, s, StreamOptions{Tail: 100})
	f := follow(t, srv, fmt.Sprintf("after=%d", recs[4].ID))
	got := f.ended()
	if len(got) != len(recs)-5 || got[0].ID != recs[5].ID || got[len(got)-1].ID != recs[len(recs)-1].ID {
		t.Fatalf("resume after record 5 of %d sent %d records", len(recs), len(got))
	}
	for i := 1; i < len(got); i++ {
		if got[i].ID <= got[i-1].ID {
			t.Fatalf("out of order: %d after %d", got[i].ID, got[i-1].ID)
		}
	}
}

// racy is a sink where records arrive at the worst moments: between Subscribe and the snapshot
// Query, right after the snapshot, and while a dropped follower subscribes again.
type racy struct {
	*Memory
	mu         sync.Mutex
	queries    int
	subscribes int
	dropFirst  bool
}

func (r *racy) Query(ctx context.Context, f Filter, limit int) ([]api.LogRecord, error) {
	r.mu.Lock()
	r.queries++
	n := r.queries
	r.mu.Unlock()
	if n == 1 {
		add(r.Memory, "between subscribe and snapshot") // in the subscription and in the snapshot
	}
	recs, err := r.Memory.Query(ctx, f, limit)
	if n == 1 {
		add(r.Memory, "right after the snapshot") // only in the subscription
	}
	return recs, err
}

func (r *racy) Subscribe(f Filter) (<-chan api.LogRecord, func()) {
	r.mu.Lock()
	r.subscribes++
	n := r.subscribes
	r.mu.Unlock()
	if r.dropFirst && n == 1 {
		return closedChan(), func() {} // dropped at once, as a follower that fell behind
	}
	if r.dropFirst && n == 2 {
		add(r.Memory, "while subscribing again") // only reachable by the catch-up query
	}
	return r.Memory.Subscribe(f)
}

func TestStreamNoGapNoDuplicate(t *testing.T) {
	for _, drop := range []bool{false, true} {
		t.Run(fmt.Sprint("dropped=", drop), func(t *testing.T) {
			s := &racy{Memory: NewMemory(100), dropFirst: drop}
			add(s.Memory, "before")
			srv, _ := server(t, s, StreamOptions{})
			f := follow(t, srv, "follow=1")
			want := []string{"before", "between subscribe and snapshot", "right after the snapshot"}
			if drop {
				want = append(want, "while subscribing again")
			}
			got := f.messages(len(want))
			add(s.Memory, "last")
			got = append(got, f.next().Message)
			want = append(want, "last")
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Fatalf("streamed %q\nwant %q", got, want)
			}
			f.cancel()
		})
	}
}

func TestStreamStopsOnStop(t *testing.T) {
	s := NewMemory(100)
	stop := make(chan struct{})
	srv, returned := server(t, s, StreamOptions{Stop: stop})
	f := follow(t, srv, "follow=1")
	add(s, "x")
	f.next()
	close(stop)
	f.ended()
	select {
	case <-returned:
	case <-time.After(10 * time.Second):
		t.Fatal("the handler did not return after stop closed")
	}
}

func TestStreamStopsWhenClientLeaves(t *testing.T) {
	s := NewMemory(100)
	srv, returned := server(t, s, StreamOptions{})
	f := follow(t, srv, "follow=1")
	add(s, "x")
	f.next()
	f.cancel()
	select {
	case <-returned:
	case <-time.After(10 * time.Second):
		t.Fatal("the handler did not return after the client left")
	}
}

func TestStreamEndsWhenSinkCloses(t *testing.T) {
	s := NewMemory(100)
	srv, returned := server(t, s, StreamOptions{})
	f := follow(t, srv, "follow=1")
	add(s, "x")
	f.next()
	s.Close()
	f.ended()
	<-returned
	// a closed sink answers a new stream with an error
	resp, err := http.Get(srv.URL + "/logs")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body api.ErrorBody
	json.NewDecoder(resp.Body).Decode(&body)
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(body.Error, "closed") {
		t.Fatalf("stream of a closed sink: %d %+v", resp.StatusCode, body)
	}
}

func TestStreamKeepAlive(t *testing.T) {
	old := keepAlive
	keepAlive = 10 * time.Millisecond
	t.Cleanup(func() { keepAlive = old })
	s := NewMemory(100)
	srv, _ := server(t, s, StreamOptions{})
	f := follow(t, srv, "follow=1")
	select {
	case line := <-f.lines:
		if line != "" {
			t.Fatalf("a quiet follow wrote %q, want an empty keep-alive line", line)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no keep-alive line")
	}
}

func TestParseFilter(t *testing.T) {
	since := "2026-03-01T08:00:00+08:00"
	f, err := ParseFilter(url.Values{"function": {"pay"}, "level": {"warn"}, "requestId": {"r1"}, "search": {"50% off"},
		"env": {"staging"}, "after": {"42"}, "since": {since}, "follow": {"1"}})
	if err != nil {
		t.Fatal(err)
	}
	want := Filter{Function: "pay", Level: "warn", RequestID: "r1", Search: "50% off", Env: "staging", After: 42,
		Since: time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)}
	if !f.Since.Equal(want.Since) {
		t.Fatalf("since %v, want %v", f.Since, want.Since)
	}
	f.Since = want.Since
	if f != want {
		t.Fatalf("ParseFilter = %+v, want %+v", f, want)
	}
	if f, err := ParseFilter(url.Values{}); err != nil || f != (Filter{}) {
		t.Fatalf("empty query: %+v, %v", f, err)
	}
	for _, c := range []struct {
		q     url.Values
		param string
	}{
		{url.Values{"level": {"fatal"}}, "level"},
		{url.Values{"level": {"WARN"}}, "level"},
		{url.Values{"after": {"x"}}, "after"},
		{url.Values{"after": {"-1"}}, "after"},
		{url.Values{"after": {"99999999999999999999"}}, "after"},
		{url.Values{"since": {"yesterday"}}, "since"},
		{url.Values{"since": {"2026-03-01"}}, "since"},
		{url.Values{"search": {strings.Repeat("x", 1001)}}, "search"},
		{url.Values{"function": {"a", "b"}}, "function"},
		{url.Values{"env": {"\xff"}}, "env"},
		{url.Values{"requestId": {strings.Repeat("r", 2000)}}, "requestId"},
	} {
		_, err := ParseFilter(c.q)
		if err == nil || !strings.HasPrefix(err.Error(), c.param+" ") {
			t.Errorf("ParseFilter(%v): %v, want an error about %s", c.q, err, c.param)
		}
	}
}
