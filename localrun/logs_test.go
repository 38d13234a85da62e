package localrun

import (
	"fmt"
	"testing"
	"time"

	"github.com/fnhq/fn/engine"
	"github.com/fnhq/fn/server"
)

// groupEvents records what logGroups printed.
type groupEvents struct {
	DevEvents
	logs        []string            // messages printed on their own
	invocations map[string][]string // request id → the messages printed under it
}

func (e *groupEvents) Log(r engine.Record) { e.logs = append(e.logs, r.Message) }

func (e *groupEvents) Invocation(inv server.Invocation, recs []engine.Record) {
	for _, r := range recs {
		e.invocations[inv.RequestID] = append(e.invocations[inv.RequestID], r.Message)
	}
	if _, ok := e.invocations[inv.RequestID]; !ok {
		e.invocations[inv.RequestID] = nil
	}
}

func newTestGroups() (*logGroups, *groupEvents, *time.Time) {
	ev := &groupEvents{invocations: map[string][]string{}}
	g := newLogGroups(ev)
	clock := time.Date(2026, 12, 2, 8, 0, 0, 0, time.UTC)
	g.now, g.base = func() time.Time { return clock }, clock
	return g, ev, &clock
}

func TestLogGroupsGroupOutputUnderItsCall(t *testing.T) {
	g, ev, clock := newTestGroups()
	g.Record(engine.Record{RequestID: "a", Message: "a1"})
	g.Record(engine.Record{RequestID: "b", Message: "b1"})
	g.Record(engine.Record{RequestID: "a", Message: "a2"})
	g.Record(engine.Record{Message: "no call"})
	g.Invocation(server.Invocation{RequestID: "a"})
	if got := fmt.Sprint(ev.invocations["a"]); got != "[a1 a2]" {
		t.Errorf("under a: %s", got)
	}
	// a line of a's after a was reported prints on its own at once
	*clock = clock.Add(59 * time.Second)
	g.Record(engine.Record{RequestID: "a", Message: "a late"})
	if got := fmt.Sprint(ev.logs); got != "[no call a late]" {
		t.Errorf("printed on their own: %s", got)
	}
	// b never reported: its output prints on its own a minute after its first line
	*clock = clock.Add(2 * time.Second)
	g.Record(engine.Record{Message: "later"})
	if got := fmt.Sprint(ev.logs); got != "[no call a late b1 later]" {
		t.Errorf("after b's minute: %s", got)
	}
	if len(g.pending) != 0 || len(g.started) != 0 {
		t.Errorf("held: %v, %v", g.pending, g.started)
	}
}

// Calls that print nothing used to leave their ids in done for good: only a record trimmed it.
func TestLogGroupsForgetFinishedCalls(t *testing.T) {
	g, ev, clock := newTestGroups()
	for i := 0; i < 1000; i++ {
		g.Invocation(server.Invocation{RequestID: fmt.Sprint("r", i)})
		*clock = clock.Add(time.Millisecond)
	}
	if len(g.done) != 1000 {
		t.Fatalf("%d calls remembered within the minute; want 1000", len(g.done))
	}
	*clock = clock.Add(groupWait)
	g.Invocation(server.Invocation{RequestID: "last"})
	if len(g.done) != 1 || g.dones.len() != 1 {
		t.Errorf("a minute later %d calls are remembered (%d queued); want only the last", len(g.done), g.dones.len())
	}
	// a forgotten call's line is no longer known to be late: it waits like any other
	g.Record(engine.Record{RequestID: "r1", Message: "r1 late"})
	if len(ev.logs) != 0 || len(g.pending["r1"]) != 1 {
		t.Errorf("printed %v, held %v", ev.logs, g.pending)
	}
}

func TestLogGroupsBoundTheFinishedCallsTheyRemember(t *testing.T) {
	g, _, _ := newTestGroups()
	for i := 0; i < maxDone+100; i++ {
		g.Invocation(server.Invocation{RequestID: fmt.Sprint("r", i)}) // all in the same instant
	}
	if len(g.done) > maxDone+1 {
		t.Errorf("%d finished calls remembered; the bound is %d", len(g.done), maxDone)
	}
	if _, ok := g.done[fmt.Sprint("r", maxDone+99)]; !ok {
		t.Error("the newest call was forgotten")
	}
	if _, ok := g.done["r0"]; ok {
		t.Error("the oldest call is still remembered")
	}
}

// A call whose id finishes twice (a replay with the same id) is remembered from its last end.
func TestLogGroupsSameIDTwice(t *testing.T) {
	g, ev, clock := newTestGroups()
	g.Invocation(server.Invocation{RequestID: "x"})
	*clock = clock.Add(40 * time.Second)
	g.Invocation(server.Invocation{RequestID: "x"})
	*clock = clock.Add(40 * time.Second) // 80 s after the first end, 40 s after the second
	g.Record(engine.Record{RequestID: "x", Message: "x late"})
	if fmt.Sprint(ev.logs) != "[x late]" {
		t.Errorf("printed %v; want the late line on its own", ev.logs)
	}
}

// The queue of started calls holds little more than the calls in flight: an entry whose call has
// reported goes as soon as it is at the front, not a minute later (at 15 000 calls/s that minute
// grew fn dev by 110 MB).
func TestLogGroupsQueueOnlyCallsInFlight(t *testing.T) {
	g, ev, clock := newTestGroups()
	g.Record(engine.Record{RequestID: "long", Message: "long1"}) // a call that runs all along
	for i := 0; i < 1000; i++ {
		rid := fmt.Sprint("r", i)
		g.Record(engine.Record{RequestID: rid, Message: rid})
		g.Invocation(server.Invocation{RequestID: rid})
		*clock = clock.Add(time.Millisecond)
	}
	if len(g.started) != 1 || len(g.pending) != 1 {
		t.Fatalf("held %d groups; want the long call's alone", len(g.started))
	}
	// the long call's entry is at the front and keeps the finished ones behind it queued
	if n := g.starts.len(); n != 1001 {
		t.Fatalf("%d queued; want 1001 behind the call in flight", n)
	}
	g.Invocation(server.Invocation{RequestID: "long"})
	g.Record(engine.Record{RequestID: "next", Message: "next"})
	if n := g.starts.len(); n != 1 {
		t.Errorf("%d queued after the long call reported; want the next call's alone", n)
	}
	if fmt.Sprint(ev.invocations["long"]) != "[long1]" || len(ev.logs) != 0 {
		t.Errorf("long: %v, on their own: %v", ev.invocations["long"], ev.logs)
	}
}

// A call's timer that logs long after the call ended, in a fn dev that has been idle since,
// prints its line at once: nothing forgot the call in between.
func TestLogGroupsLateLineAfterAnIdleWhile(t *testing.T) {
	g, ev, clock := newTestGroups()
	g.Invocation(server.Invocation{RequestID: "t"})
	*clock = clock.Add(2 * time.Minute)
	g.Record(engine.Record{RequestID: "t", Message: "tick"})
	if fmt.Sprint(ev.logs) != "[tick]" || len(g.pending) != 0 {
		t.Errorf("printed %v, held %v; want the line printed on its own at once", ev.logs, g.pending)
	}
	// and the call is forgotten now: it was more than a minute ago
	if _, ok := g.done["t"]; ok {
		t.Error("the call is still remembered")
	}
}
