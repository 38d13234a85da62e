package localrun

import (
	"context"
	"encoding/json"
	"net/http"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fnhq/fn/engine"
	"github.com/fnhq/fn/internal/testutil"
	"github.com/fnhq/fn/project"
	"github.com/fnhq/fn/scheduler"
	"github.com/fnhq/fn/server"
)

// recorder keeps what fn dev reports.
type recorder struct {
	mu      sync.Mutex
	url     string
	dir     string // the project directory
	ready   chan struct{}
	invs    []server.Invocation
	logs    []engine.Record
	fails   []error
	reloads []ReloadInfo
	events  []string
	loaded  LoadInfo
}

func newRecorder() *recorder { return &recorder{ready: make(chan struct{})} }

// Ready records the URL; the recorder counts as ready once the first load has finished (Loaded).
func (r *recorder) Ready(i DevInfo) {
	r.mu.Lock()
	r.url = i.URL
	r.events = append(r.events, "ready")
	r.mu.Unlock()
}
func (r *recorder) Loaded(i LoadInfo) {
	r.mu.Lock()
	r.loaded = i
	r.events = append(r.events, "loaded")
	r.mu.Unlock()
	close(r.ready)
}
func (r *recorder) Reload(i ReloadInfo) { r.mu.Lock(); r.reloads = append(r.reloads, i); r.mu.Unlock() }
func (r *recorder) ReloadFailed(err error) {
	r.mu.Lock()
	r.fails = append(r.fails, err)
	r.mu.Unlock()
}
func (r *recorder) Invocation(inv server.Invocation, logs []engine.Record) {
	r.mu.Lock()
	r.invs = append(r.invs, inv)
	r.logs = append(r.logs, logs...)
	r.mu.Unlock()
}
func (r *recorder) Log(rec engine.Record) { r.mu.Lock(); r.logs = append(r.logs, rec); r.mu.Unlock() }

func (r *recorder) timerRuns(name string) []server.Invocation {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []server.Invocation
	for _, inv := range r.invs {
		if inv.Identity == "timer "+name {
			out = append(out, inv)
		}
	}
	return out
}

func (r *recorder) countLog(msg string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, l := range r.logs {
		if strings.Contains(l.Message, msg) {
			n++
		}
	}
	return n
}

func runDev(t *testing.T, files map[string]string, o DevOptions) (*recorder, *dev) {
	t.Helper()
	dir := t.TempDir()
	for rel, c := range files {
		testutil.WriteFile(t, dir, rel, c)
	}
	testutil.LinkNodeModules(t, dir)
	p, err := project.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	rec := newRecorder()
	rec.dir = dir
	o.Node, o.Host, o.Events = "node", "127.0.0.1", rec
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- RunDev(ctx, p, o) }()
	t.Cleanup(func() { cancel(); <-done })
	select {
	case <-rec.ready:
	case err := <-done:
		t.Fatalf("fn dev stopped: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("fn dev did not start")
	}
	return rec, nil
}

func TestTimersFireOnScheduleWithTimerTrigger(t *testing.T) {
	rec, _ := runDev(t, map[string]string{
		"fn.yaml":                 "name: tm\ndialect: wx\ntimers:\n  tick:\n    function: tick\n    cron: '* * * * * ?'\n    params: {hello: timer}\n  every2:\n    function: tick\n    interval: 2\n",
		"functions/tick/index.js": "exports.main = async (event) => { console.log('tick', process.env.TRIGGER_SRC, event.Type, event.TriggerName, event.Message); return 1 }\n",
	}, DevOptions{})
	testutil.Eventually(t, 8*time.Second, "three runs of the every-second timer", func() bool { return len(rec.timerRuns("tick")) >= 3 })
	runs := rec.timerRuns("tick")
	sort.Slice(runs, func(i, j int) bool { return runs[i].Scheduled.Before(runs[j].Scheduled) })
	// the scheduler's decisions, not wall-clock gaps: every run is due on a whole second of the
	// cron, later than the one before (a loaded machine may skip a second, never repeat one)
	for i := range runs {
		if at := runs[i].Scheduled; at.IsZero() || at.Nanosecond() != 0 {
			t.Errorf("run %d was scheduled at %v, want a whole second", i, at)
		}
		if i > 0 && !runs[i].Scheduled.After(runs[i-1].Scheduled) {
			t.Errorf("run %d was scheduled at %v, the same as or before run %d at %v", i, runs[i].Scheduled, i-1, runs[i-1].Scheduled)
		}
		if !runs[i].OK {
			t.Errorf("run failed: %+v", runs[i])
		}
	}
	if rec.countLog(`tick timer Timer tick {"hello":"timer"}`) == 0 {
		t.Errorf("the function should see TRIGGER_SRC=timer and the timer event; logs: %+v", rec.logs)
	}
	testutil.Eventually(t, 6*time.Second, "the interval timer", func() bool { return len(rec.timerRuns("every2")) >= 1 })
}

func TestTimerTimeoutsShortCircuitAndOverlap(t *testing.T) {
	rec, _ := runDev(t, map[string]string{
		"fn.yaml":  "name: tm\ndialect: lean\ntimers:\n  slow:\n    function: slow\n    cron: '* * * * * ?'\n",
		"cloud.js": "const AV = require('leanengine')\nAV.Cloud.define('slow', () => new Promise(() => {}))\n",
	}, DevOptions{TimerTimeout: 1500 * time.Millisecond})
	// every second a run is due while the previous one (1.5 s) still goes: skipped and logged
	testutil.Eventually(t, 10*time.Second, "an overlapping run to be skipped", func() bool {
		return rec.countLog("was skipped: the previous run is still going") > 0
	})
	testutil.Eventually(t, 15*time.Second, "three timeouts", func() bool { return rec.countLog(scheduler.TimedOutMessage) >= scheduler.ShortCircuitAfter })
	testutil.Eventually(t, 5*time.Second, "the short-circuit message", func() bool { return rec.countLog(scheduler.ShortCircuitedMessage) >= 1 })
	runs := len(rec.timerRuns("slow"))
	testutil.Eventually(t, 5*time.Second, "more short-circuit messages while nothing runs", func() bool { return rec.countLog(scheduler.ShortCircuitedMessage) >= 3 })
	if got := len(rec.timerRuns("slow")); got != runs {
		t.Errorf("a short-circuited timer ran again: %d runs, then %d", runs, got)
	}
	for _, inv := range rec.timerRuns("slow") {
		if inv.Status != 503 {
			t.Errorf("a timed-out lean timer run should answer 503, got %+v", inv)
		}
	}
}

func TestTimerControlRoutes(t *testing.T) {
	rec, _ := runDev(t, map[string]string{
		"fn.yaml":                "name: tm\ndialect: wx\ntimers:\n  daily:\n    function: job\n    cron: '0 0 3 * * ?'\n",
		"functions/job/index.js": "exports.main = async () => 'done'\n",
	}, DevOptions{})
	post := func(path string) int {
		resp, err := http.Post(rec.url+path, "application/json", nil)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := post("/__fn/apps/-/timers/dev/daily/trigger"); code != 200 {
		t.Fatalf("trigger: %d", code)
	}
	testutil.Eventually(t, 5*time.Second, "the triggered run", func() bool { return len(rec.timerRuns("daily")) == 1 })
	if code := post("/__fn/apps/-/timers/dev/nope/trigger"); code != 404 {
		t.Errorf("unknown timer: %d", code)
	}
	if code := post("/__fn/apps/-/timers/dev/daily/disable"); code != 200 {
		t.Fatalf("disable: %d", code)
	}
	resp, err := http.Get(rec.url + "/__fn/apps/-/timers/dev")
	if err != nil {
		t.Fatal(err)
	}
	var st []scheduler.TimerStatus
	json.NewDecoder(resp.Body).Decode(&st)
	resp.Body.Close()
	if len(st) != 1 || st[0].Enabled || !st[0].Next.IsZero() {
		t.Fatalf("status after disable: %+v", st)
	}
}

func TestLeanTimerWithUnknownFunctionIsReported(t *testing.T) {
	rec, _ := runDev(t, map[string]string{
		"fn.yaml":  "name: tm\ndialect: lean\ntimers:\n  ghost:\n    function: nothere\n    interval: 3600\n",
		"cloud.js": "const AV = require('leanengine')\nAV.Cloud.define('hello', () => 'hi')\n",
	}, DevOptions{})
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if len(rec.fails) != 1 || !strings.Contains(rec.fails[0].Error(), `fn.yaml: timers.ghost.function: unknown function "nothere"`) {
		t.Fatalf("reported: %v", rec.fails)
	}
}
