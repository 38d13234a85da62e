package engine

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/fnhq/fn/bundler"
	"github.com/fnhq/fn/internal/testutil"
)

// niceOf reads the nice values of every thread of a process from /proc.
func niceOf(t *testing.T, pid int) []int {
	t.Helper()
	tasks, err := os.ReadDir("/proc/" + strconv.Itoa(pid) + "/task")
	if err != nil {
		t.Fatal(err)
	}
	var out []int
	for _, task := range tasks {
		b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/task/" + task.Name() + "/stat")
		if err != nil {
			continue // the thread ended
		}
		s := string(b)
		f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
		n, _ := strconv.Atoi(f[16])
		out = append(out, n)
	}
	return out
}

func allNice(vals []int, want int) bool {
	for _, v := range vals {
		if v != want {
			return false
		}
	}
	return len(vals) > 0
}

const priorityFns = "name: conf\ndialect: wx\nfunctions:\n  busy:\n    timeout: 30\n"

// A call that runs past SlowCallAfter lowers its worker's priority, every thread of it, while it
// runs; a root engine restores it when the call ends (an unprivileged one cannot lower nice).
func TestSlowCallDemotesItsWorker(t *testing.T) {
	f := newFixture(t, map[string]string{
		"fn.yaml": priorityFns,
		"functions/busy/index.js": `const fs = require('fs')
exports.main = (event) => { while (event.flag && !fs.existsSync(event.flag)) {} return { pid: process.pid } }`,
	}, bundler.Dev, Config{})
	pid := int(mustOK(t, f.wx("busy", `{}`, nil))["pid"].(float64))
	if !allNice(niceOf(t, pid), 0) {
		t.Fatalf("a worker after a quick call runs at nice %v, want 0", niceOf(t, pid))
	}
	flag := filepath.Join(t.TempDir(), "go")
	data, _ := json.Marshal(map[string]string{"flag": flag})
	done := make(chan *Result, 1)
	go func() { done <- f.wx("busy", string(data), nil) }()
	testutil.Eventually(t, 10*time.Second, "the slow call's worker to be demoted", func() bool {
		return allNice(niceOf(t, pid), NiceDemoted)
	})
	os.WriteFile(flag, nil, 0o600)
	r := <-done
	if got := int(mustOK(t, r)["pid"].(float64)); got != pid {
		t.Fatalf("the slow call ran in worker %d, want %d", got, pid)
	}
	want := 0
	if os.Geteuid() != 0 {
		want = NiceDemoted
	}
	if got := niceOf(t, pid); !allNice(got, want) {
		t.Fatalf("after the slow call the worker runs at nice %v, want %d", got, want)
	}
}

// A function whose workers keep dying starts its next workers late and at the lowest priority.
func TestCrashLoopReplacementsStartDemoted(t *testing.T) {
	f := newFixture(t, map[string]string{
		"fn.yaml":                 "name: conf\ndialect: wx\n",
		"functions/die/index.js":  "exports.main = async (event) => { if (!event.ok) process.exit(3); return { pid: process.pid } }\n",
		"functions/calm/index.js": "exports.main = async () => ({ pid: process.pid })\n",
	}, bundler.Dev, Config{})
	calm := int(mustOK(t, f.wx("calm", `{}`, nil))["pid"].(float64))
	f.e.mu.Lock()
	p := f.e.pools["die"]
	f.e.mu.Unlock()
	decided := func() (time.Duration, int) {
		p.mu.Lock()
		defer p.mu.Unlock()
		return p.crashes.backoff(time.Now())
	}
	// deaths are noted when the worker has been reaped, a moment after its call failed
	for i := 0; i < 20; i++ {
		if d, _ := decided(); d > 0 {
			break
		}
		if r := f.wx("die", `{}`, nil); r.Err == nil || r.Err.Kind != KindCrash {
			t.Fatalf("call %d of die: %+v, want a crash", i, r.Err)
		}
	}
	delay, nice := decided()
	if delay <= 0 || nice != NiceDemoted {
		t.Fatalf("after repeated crashes the pool decided delay %v nice %d, want a delay at %d", delay, nice, NiceDemoted)
	}
	w, err := p.spawn(context.Background(), p.current())
	if err != nil {
		t.Fatal(err)
	}
	defer w.stop(time.Second)
	if got := niceOf(t, w.pid); !allNice(got, NiceDemoted) {
		t.Fatalf("the crash-looping function's new worker runs at nice %v, want %d", got, NiceDemoted)
	}
	if got := niceOf(t, calm); !allNice(got, 0) {
		t.Fatalf("another function's worker runs at nice %v, want 0", got)
	}
}
