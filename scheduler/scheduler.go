// Package scheduler fires timers (Quartz cron or interval) on their real schedule as normal
// invocations, with LeanEngine's rules: a 15 s deadline, the platform's timeout and
// short-circuit messages, and no overlapping runs. fn dev and fn serve each run one per
// project or app environment.
package scheduler

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"sync"
	"time"

	"github.com/fnhq/fn/api"
	"github.com/fnhq/fn/cron"
	"github.com/fnhq/fn/engine"
	"github.com/fnhq/fn/project"
	"github.com/fnhq/fn/server"
)

// TimerTimeout is a timer invocation's deadline, as on LeanEngine.
const TimerTimeout = 15 * time.Second

// ShortCircuitAfter is how many timeouts in a row stop a timer until it is re-enabled or the
// project is reloaded.
const ShortCircuitAfter = 3

// The platform's words, logged as they are.
const (
	TimedOutMessage       = "timerAction timed-out and no fallback available."
	ShortCircuitedMessage = "timerAction short-circuited and no fallback available."
)

// TimerStatus is one timer as the admin API reports it.
type TimerStatus = api.TimerStatus

type timerState struct {
	t              project.Timer
	expr           *cron.Expression
	enabled        bool
	running        bool
	timeouts       int
	shortCircuited bool
	next           time.Time
	lastScheduled  time.Time // the fire time of the latest run started
	runs           int
}

// Target is what timers call and report to.
type Target interface {
	Dialect() project.Dialect
	InvokeWX(ctx context.Context, req engine.WXRequest) *engine.Result
	InvokeLean(ctx context.Context, req engine.LeanRequest) *engine.LeanResult
	// Report is told about every timer run, as an invocation.
	Report(inv server.Invocation)
	// Note logs a message of the scheduler's (timeouts, skipped runs).
	Note(level, function, msg string)
}

// Scheduler fires a set of timers on their real schedule.
type Scheduler struct {
	target  Target
	timeout time.Duration
	mu      sync.Mutex
	loc     *time.Location
	timers  map[string]*timerState
	wake    chan struct{}
	now     func() time.Time
	// Claim, when set, decides whether this process runs a scheduled fire (a lease shared by
	// replicas); a lost claim skips the fire silently. Manual triggers are not claimed.
	Claim func(ctx context.Context, timer string, at time.Time) (bool, error)
	// AlignIntervals puts interval timers' fires on a grid of whole intervals since the Unix
	// epoch instead of counting from when this process started: replicas then agree on every
	// fire time, and Claim lets exactly one of them run it. Set it before Reset.
	AlignIntervals bool
}

// New returns a scheduler for timers, evaluated in the time zone tz; Run starts it.
func New(target Target, timers []project.Timer, tz string, timeout time.Duration) *Scheduler {
	if timeout == 0 {
		timeout = TimerTimeout
	}
	s := &Scheduler{target: target, timeout: timeout, wake: make(chan struct{}, 1), now: time.Now}
	s.Reset(timers, tz)
	return s
}

// Reset takes the timers anew (a project reload or a deploy): short-circuits clear.
func (s *Scheduler) Reset(timers []project.Timer, tz string) {
	loc, err := time.LoadLocation(tz)
	if err != nil {
		loc = time.Local
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	old := s.timers
	s.loc = loc
	s.timers = map[string]*timerState{}
	now := s.now()
	for _, t := range timers {
		ts := &timerState{t: t, enabled: true}
		if prev, ok := old[t.Name]; ok {
			ts.enabled, ts.running = prev.enabled, prev.running
		}
		if t.Cron != "" {
			ts.expr, _ = cron.Parse(t.Cron) // validated when the project loaded
		}
		ts.next = s.nextAfter(ts, now)
		s.timers[t.Name] = ts
	}
	s.poke()
}

func (s *Scheduler) nextAfter(ts *timerState, t time.Time) time.Time {
	if ts.expr != nil {
		return ts.expr.Next(t, s.loc)
	}
	iv := time.Duration(ts.t.Interval) * time.Second
	if s.AlignIntervals {
		return time.Unix(0, (t.UnixNano()/int64(iv)+1)*int64(iv)).In(t.Location())
	}
	return t.Add(iv)
}

func (s *Scheduler) poke() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// Run fires timers until ctx ends.
func (s *Scheduler) Run(ctx context.Context) {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		s.mu.Lock()
		var earliest time.Time
		for _, ts := range s.timers {
			if ts.enabled && !ts.next.IsZero() && (earliest.IsZero() || ts.next.Before(earliest)) {
				earliest = ts.next
			}
		}
		s.mu.Unlock()
		wait := time.Hour
		if !earliest.IsZero() {
			wait = time.Until(earliest)
		}
		timer.Reset(max(wait, 0))
		select {
		case <-ctx.Done():
			return
		case <-s.wake:
			continue
		case <-timer.C:
		}
		s.fireDue(ctx)
	}
}

func (s *Scheduler) fireDue(ctx context.Context) {
	now := s.now()
	s.mu.Lock()
	type fire struct {
		ts *timerState
		at time.Time
	}
	var due []fire
	for _, ts := range s.timers {
		if ts.enabled && !ts.next.IsZero() && !ts.next.After(now) {
			due = append(due, fire{ts, ts.next})
			ts.next = s.nextAfter(ts, now)
		}
	}
	sort.Slice(due, func(i, j int) bool { return due[i].ts.t.Name < due[j].ts.t.Name })
	claim := s.Claim
	s.mu.Unlock()
	for _, f := range due {
		if claim != nil {
			won, err := claim(ctx, f.ts.t.Name, f.at)
			if err != nil {
				s.note(f.ts, "error", fmt.Sprintf("timer %s: the run due at %s was skipped: %v", f.ts.t.Name, f.at.In(s.loc).Format("15:04:05"), err))
				continue
			}
			if !won {
				continue
			}
		}
		s.fire(ctx, f.ts, f.at)
	}
}

// ErrTimerRunning is returned by a manual trigger while the timer's previous run goes on.
var ErrTimerRunning = errors.New("the timer's previous run is still going")

// fire starts one run of a timer unless it is short-circuited or still running.
func (s *Scheduler) fire(ctx context.Context, ts *timerState, at time.Time) error {
	s.mu.Lock()
	name := ts.t.Name
	if ts.shortCircuited {
		s.mu.Unlock()
		s.note(ts, "error", ShortCircuitedMessage)
		return nil
	}
	if ts.running {
		s.mu.Unlock()
		s.note(ts, "warn", fmt.Sprintf("timer %s: the run due at %s was skipped: the previous run is still going", name, at.In(s.loc).Format("15:04:05")))
		return ErrTimerRunning
	}
	ts.running = true
	ts.lastScheduled = at
	ts.runs++
	s.mu.Unlock()
	go s.invoke(ctx, ts, at)
	return nil
}

func (s *Scheduler) note(ts *timerState, level, msg string) {
	s.target.Note(level, ts.t.Function, msg)
}

// invoke runs the timer's function as a normal invocation with the timer's 15 s deadline.
func (s *Scheduler) invoke(ctx context.Context, ts *timerState, at time.Time) {
	rid := engine.NewRequestID()
	var timedOut bool
	inv := server.Invocation{Time: time.Now(), Function: ts.t.Function, RequestID: rid, Identity: "timer " + ts.t.Name, Kind: "timer", Scheduled: at}
	params := ts.t.Params
	switch s.target.Dialect() {
	case project.WX:
		// the event a CloudBase timer trigger sends
		ev, _ := json.Marshal(map[string]string{"Type": "Timer", "TriggerName": ts.t.Name, "Time": at.UTC().Format(time.RFC3339), "Message": params})
		res := s.target.InvokeWX(ctx, engine.WXRequest{Function: ts.t.Function, Data: ev, Trigger: "timer", Source: "wx_trigger",
			RequestID: rid, Timeout: s.timeout})
		inv.Dialect, inv.Duration, inv.OK, inv.Status = "wx", res.Duration, res.Err == nil, 200
		if res.Err != nil {
			inv.Status, inv.Error = 500, res.Err.Message
			timedOut = res.Err.Kind == engine.KindTimeout
		}
	case project.Lean:
		if params == "" {
			params = "{}"
		}
		res := s.target.InvokeLean(ctx, engine.LeanRequest{Kind: engine.LeanFunction, Name: ts.t.Function, Params: json.RawMessage(params),
			RequestID: rid, Timeout: s.timeout, HookKeyOK: true, Master: true, RemoteAddress: "127.0.0.1"})
		inv.Dialect, inv.Duration, inv.Status, inv.OK = "lean", res.Duration, res.Status, res.Status == http.StatusOK
		if !inv.OK {
			var e struct {
				Error string `json:"error"`
			}
			json.Unmarshal(res.Body, &e)
			inv.Error = e.Error
			timedOut = res.Err != nil && res.Err.Kind == engine.KindTimeout
		}
	}
	s.target.Report(inv)
	s.mu.Lock()
	ts.running = false
	if timedOut {
		ts.timeouts++
		if ts.timeouts >= ShortCircuitAfter {
			ts.shortCircuited = true
		}
	} else {
		ts.timeouts = 0
	}
	s.mu.Unlock()
	if timedOut {
		s.note(ts, "error", TimedOutMessage)
	}
}

// Status lists the timers.
func (s *Scheduler) Status() []TimerStatus {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]TimerStatus, 0, len(s.timers))
	for _, ts := range s.timers {
		st := TimerStatus{Name: ts.t.Name, Function: ts.t.Function, Cron: ts.t.Cron, Interval: ts.t.Interval, Enabled: ts.enabled,
			ShortCircuited: ts.shortCircuited, Running: ts.running, LastScheduled: ts.lastScheduled, Runs: ts.runs}
		if ts.enabled && !ts.shortCircuited {
			st.Next = ts.next
		}
		out = append(out, st)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// ErrUnknownTimer names a timer the project does not have.
type ErrUnknownTimer struct{ Name string }

func (e *ErrUnknownTimer) Error() string { return fmt.Sprintf("no timer named %q in fn.yaml", e.Name) }

// Control enables, disables or triggers a timer.
func (s *Scheduler) Control(ctx context.Context, name, action string) error {
	s.mu.Lock()
	ts, ok := s.timers[name]
	if !ok {
		s.mu.Unlock()
		return &ErrUnknownTimer{Name: name}
	}
	switch action {
	case "enable":
		ts.enabled, ts.shortCircuited, ts.timeouts = true, false, 0
		ts.next = s.nextAfter(ts, s.now())
	case "disable":
		ts.enabled = false
	case "trigger":
		s.mu.Unlock()
		return s.fire(ctx, ts, s.now())
	}
	s.mu.Unlock()
	s.poke()
	return nil
}
