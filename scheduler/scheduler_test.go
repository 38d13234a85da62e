package scheduler

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/fnhq/fn/engine"
	"github.com/fnhq/fn/internal/testutil"
	"github.com/fnhq/fn/project"
	"github.com/fnhq/fn/server"
)

// fakeTarget records invocations; release lets a held lean call finish.
type fakeTarget struct {
	mu      sync.Mutex
	invs    []server.Invocation
	notes   []string
	hold    chan struct{} // non-nil: lean calls wait on it
	timeout bool          // lean calls answer a timeout
	started chan string
}

func (f *fakeTarget) Dialect() project.Dialect { return project.Lean }
func (f *fakeTarget) InvokeWX(ctx context.Context, req engine.WXRequest) *engine.Result {
	return &engine.Result{}
}
func (f *fakeTarget) InvokeLean(ctx context.Context, req engine.LeanRequest) *engine.LeanResult {
	if f.started != nil {
		f.started <- req.Name
	}
	if f.hold != nil {
		<-f.hold
	}
	if f.timeout {
		return &engine.LeanResult{Status: 503, Body: engine.LeanTimeoutBody, Err: &engine.FunctionError{Kind: engine.KindTimeout}}
	}
	return &engine.LeanResult{Status: http.StatusOK, Body: []byte(`{"result":1}`)}
}
func (f *fakeTarget) Report(inv server.Invocation) {
	f.mu.Lock()
	f.invs = append(f.invs, inv)
	f.mu.Unlock()
}
func (f *fakeTarget) Note(level, function, msg string) {
	f.mu.Lock()
	f.notes = append(f.notes, msg)
	f.mu.Unlock()
}

func (f *fakeTarget) runs() []server.Invocation {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]server.Invocation(nil), f.invs...)
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	testutil.Eventually(t, 5*time.Second, what, cond)
}

// newAt returns a scheduler whose clock the test sets.
func newAt(target Target, timers []project.Timer, now *time.Time) *Scheduler {
	s := New(target, nil, "UTC", time.Second)
	s.now = func() time.Time { return *now }
	s.Reset(timers, "UTC")
	return s
}

func TestFireDueUsesScheduledTimesAndClaims(t *testing.T) {
	f := &fakeTarget{}
	now := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	s := newAt(f, []project.Timer{{Name: "every5", Function: "job", Cron: "*/5 * * * * ?"}, {Name: "iv", Function: "job", Interval: 7}}, &now)
	var claims []string
	s.Claim = func(ctx context.Context, name string, at time.Time) (bool, error) {
		claims = append(claims, name+"@"+at.Format("15:04:05"))
		return name != "iv", nil // another replica won the interval timer's fire
	}
	st := s.Status()
	if st[0].Name != "every5" || !st[0].Next.Equal(now.Add(5*time.Second)) || !st[1].Next.Equal(now.Add(7*time.Second)) {
		t.Fatalf("next fire times: %+v", st)
	}
	now = now.Add(7*time.Second + 300*time.Millisecond) // late: both are due
	s.fireDue(context.Background())
	waitFor(t, "the won run", func() bool { return len(f.runs()) == 1 })
	run := f.runs()[0]
	if run.Identity != "timer every5" || !run.Scheduled.Equal(time.Date(2026, 12, 1, 10, 0, 5, 0, time.UTC)) || run.Kind != "timer" {
		t.Fatalf("the run carries its scheduled time, not the clock: %+v", run)
	}
	if len(claims) != 2 || claims[0] != "every5@10:00:05" || claims[1] != "iv@10:00:07" {
		t.Fatalf("claims: %v", claims)
	}
	st = s.Status()
	if st[0].Runs != 1 || !st[0].LastScheduled.Equal(run.Scheduled) || st[1].Runs != 0 {
		t.Fatalf("status after the fire: %+v", st)
	}
	// the next fire of every5 is the next multiple of 5 s after the clock, not after the missed one
	if want := time.Date(2026, 12, 1, 10, 0, 10, 0, time.UTC); !st[0].Next.Equal(want) {
		t.Fatalf("next: %v, want %v", st[0].Next, want)
	}
}

func TestManualTriggerWhileRunningAndShortCircuit(t *testing.T) {
	f := &fakeTarget{hold: make(chan struct{}), started: make(chan string, 10)}
	now := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	s := newAt(f, []project.Timer{{Name: "slow", Function: "job", Interval: 60}}, &now)
	if err := s.Control(context.Background(), "slow", "trigger"); err != nil {
		t.Fatal(err)
	}
	<-f.started
	if err := s.Control(context.Background(), "slow", "trigger"); !errors.Is(err, ErrTimerRunning) {
		t.Fatalf("a trigger while the run goes on: %v", err)
	}
	var unknown *ErrUnknownTimer
	if err := s.Control(context.Background(), "nope", "trigger"); !errors.As(err, &unknown) {
		t.Fatalf("unknown timer: %v", err)
	}
	close(f.hold)
	waitFor(t, "the held run", func() bool { return len(f.runs()) == 1 })

	f2 := &fakeTarget{timeout: true}
	s2 := newAt(f2, []project.Timer{{Name: "t", Function: "job", Interval: 1}}, &now)
	for i := 1; i <= ShortCircuitAfter; i++ {
		waitFor(t, "the previous run to end", func() bool { return !s2.Status()[0].Running })
		if err := s2.Control(context.Background(), "t", "trigger"); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "a timed-out run", func() bool { return len(f2.runs()) == i })
	}
	waitFor(t, "the short-circuit", func() bool { return s2.Status()[0].ShortCircuited })
	s2.Control(context.Background(), "t", "trigger")
	f2.mu.Lock()
	last := f2.notes[len(f2.notes)-1]
	f2.mu.Unlock()
	if last != ShortCircuitedMessage || len(f2.runs()) != ShortCircuitAfter {
		t.Fatalf("a short-circuited timer must not run: notes %v, runs %d", f2.notes, len(f2.runs()))
	}
	if err := s2.Control(context.Background(), "t", "enable"); err != nil || s2.Status()[0].ShortCircuited {
		t.Fatalf("enable clears the short-circuit: %v %+v", err, s2.Status())
	}
}

// Aligned interval timers fire on the same grid whenever a process starts, so replicas agree.
func TestAlignedIntervalsAgreeAcrossStarts(t *testing.T) {
	timers := []project.Timer{{Name: "iv", Function: "job", Interval: 7}}
	var next []time.Time
	for _, start := range []time.Time{time.Unix(994, 0), time.Unix(997, 400_000_000), time.Unix(1000, 999_000_000)} {
		now := start
		s := New(&fakeTarget{}, nil, "UTC", time.Second)
		s.now = func() time.Time { return now }
		s.AlignIntervals = true
		s.Reset(timers, "UTC")
		next = append(next, s.Status()[0].Next)
	}
	for _, n := range next {
		if !n.Equal(time.Unix(1001, 0)) { // 143 × 7 s
			t.Fatalf("next fires %v: want all at the multiple of 7 s after the starts, %v", next, time.Unix(1001, 0))
		}
	}
}
