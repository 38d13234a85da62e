package commands

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/fnhq/fn/internal/testutil"
)

func TestTimersNext(t *testing.T) {
	r := fn(t, t.TempDir(), "timers", "next", "0 0/30 8-9 5,20 * ?", "--from", "2026-03-01T00:00:00+08:00", "-n", "5", "--json")
	var got []string
	if err := json.Unmarshal([]byte(r.out), &got); err != nil || r.code != 0 {
		t.Fatalf("%d %v %s", r.code, err, r.err)
	}
	want := "2026-03-05T08:00:00+08:00 2026-03-05T08:30:00+08:00 2026-03-05T09:00:00+08:00 2026-03-05T09:30:00+08:00 2026-03-20T08:00:00+08:00"
	if strings.Join(got, " ") != want {
		t.Fatalf("got %v", got)
	}
	// strictly after --from, in --tz
	r = fn(t, t.TempDir(), "timers", "next", "0 0 8 ? * MON", "--from", "2026-03-02 08:00:00", "--tz", "UTC", "-n", "1")
	if r.code != 0 || strings.TrimSpace(r.out) != "2026-03-09 08:00:00 Mon +00:00" {
		t.Fatalf("%d %q %s", r.code, r.out, r.err)
	}
	bad := []struct {
		args []string
		want string
	}{
		{[]string{"timers", "next", "0 0 8 * *"}, "has 6 or 7 fields"},
		{[]string{"timers", "next", "0 0 25 ? * MON"}, `hour field "25": 25 is out of range 0–23`},
		{[]string{"timers", "next", "0 0 8 ? * MON", "--tz", "Mars/Olympus"}, `unknown time zone "Mars/Olympus"`},
		{[]string{"timers", "next", "0 0 8 ? * MON", "--from", "yesterday"}, `--from "yesterday"`},
		{[]string{"timers", "next", "0 0 8 ? * MON", "-n", "0"}, "-n must be 1–1000"},
	}
	for _, b := range bad {
		r := fn(t, t.TempDir(), b.args...)
		if r.code != ExitUsage || !strings.Contains(r.err, b.want) {
			t.Errorf("%v: %d %s", b.args, r.code, r.err)
		}
	}
}

func TestTimersListAndControlAgainstDev(t *testing.T) {
	dir := t.TempDir()
	testutil.WriteFile(t, dir, "fn.yaml", "name: tl\ndialect: wx\ntimezone: UTC\ntimers:\n  tick:\n    function: job\n    cron: '* * * * * ?'\n  nightly:\n    function: job\n    cron: '0 0 2 * * ?'\n")
	testutil.WriteFile(t, dir, "functions/job/index.js", "exports.main = async (e) => { console.log('job ran by', e.TriggerName); return 1 }\n")

	r := fn(t, dir, "timers", "list", "--json")
	var list []timerListing
	if err := json.Unmarshal([]byte(r.out), &list); err != nil || len(list) != 2 || len(list[1].Next) != 5 || list[0].Name != "tick" {
		t.Fatalf("list: %v %s %s", err, r.out, r.err)
	}
	first, _ := time.Parse(time.RFC3339, list[1].Next[0])
	if first.Hour() != 2 || first.Minute() != 0 || !strings.HasSuffix(list[1].Next[0], "Z") {
		t.Errorf("nightly next times in UTC: %v", list[1].Next)
	}
	if r := fn(t, dir, "timers", "trigger", "nightly"); r.code != ExitFailure || !strings.Contains(r.err, "fn dev is not running") {
		t.Errorf("trigger without dev: %d %s", r.code, r.err)
	}

	// fn dev runs the every-second timer on schedule; trigger, disable and list talk to it.
	d := startDev(t, dir)
	d.waitEvent("invocation", 5*time.Second, func(ev map[string]any) bool { return ev["identity"] == "timer tick" })
	if r := fn(t, dir, "timers", "disable", "tick"); r.code != 0 {
		t.Fatalf("disable: %d %s", r.code, r.err)
	}
	if r := fn(t, dir, "timers", "trigger", "nightly"); r.code != 0 {
		t.Fatalf("trigger: %d %s", r.code, r.err)
	}
	d.waitEvent("log", 5*time.Second, func(ev map[string]any) bool { return ev["message"] == "job ran by nightly" })
	r = fn(t, dir, "timers", "list", "--json")
	json.Unmarshal([]byte(r.out), &list)
	if list[0].State != "disabled" || list[1].State != "enabled" {
		t.Errorf("states from fn dev: %+v", list)
	}
	if r := fn(t, dir, "timers", "enable", "ghost"); r.code != ExitFailure || !strings.Contains(r.err, `no timer named "ghost"`) {
		t.Errorf("unknown timer: %d %s", r.code, r.err)
	}
}

func TestDevNoTimers(t *testing.T) {
	dir := t.TempDir()
	testutil.WriteFile(t, dir, "fn.yaml", "name: nt\ndialect: wx\ntimers:\n  tick:\n    function: job\n    cron: '* * * * * ?'\n")
	testutil.WriteFile(t, dir, "functions/job/index.js", "exports.main = async () => 1\n")
	d := startDev(t, dir, "--no-timers")
	// the scheduler is not running at all: its routes say so, and fn timers reports it
	r := fn(t, dir, "timers", "trigger", "tick")
	if r.code != ExitFailure || !strings.Contains(r.err, "timers are off in this fn dev (--no-timers)") {
		t.Fatalf("trigger with --no-timers: %d %s", r.code, r.err)
	}
	if status, _ := post(t, d.url+"/wx/functions/job", nil, `{}`); status != 200 {
		t.Fatalf("the functions still serve: %d", status)
	}
	if n := d.count("invocation"); n > 1 {
		t.Fatalf("with --no-timers only the manual call runs, saw %d invocations", n)
	}
}
