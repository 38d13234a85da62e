//go:build unix

package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fnhq/fn/internal/testutil"
)

// TestMain lets the test binary be the floor server too, as fnbench's own main does: startFloor
// starts the running executable again.
func TestMain(m *testing.M) {
	if os.Getenv(floorEnv) == "1" {
		floorServer()
		return
	}
	os.Exit(m.Run())
}

// TestSmoke runs every group of the benchmark for a moment against a freshly built fn, so that
// the harness keeps working as fn changes (make bench-smoke runs the same). It asserts that every
// row was measured, never a figure.
func TestSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("builds fn and starts servers")
	}
	if _, err := exec.LookPath("node"); err != nil {
		t.Skip("node is not installed")
	}
	nm := testutil.NodeModules(t)
	bin := filepath.Join(t.TempDir(), "fn")
	build := exec.Command("go", "build", "-o", bin, "./cmd/fn")
	build.Dir = testutil.RepoRoot()
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building fn: %v\n%s", err, out)
	}
	saved, savedOut := opt, out
	t.Cleanup(func() { opt, out = saved, savedOut })
	opt = options{smoke: true, dur: 100 * time.Millisecond, rounds: 1, n: 50}
	var report strings.Builder
	out = &report
	if err := runAll(bin, nm, filepath.Join(t.TempDir(), "no-peers"), ""); err != nil {
		t.Fatalf("%v\nreport so far:\n%s", err, report.String())
	}
	got := report.String()
	for _, row := range []string{
		"| `fn --version` |", "cold `fn build`, wx-js", "`fn build` after a source edit, lean-js", "`fn invoke login` one-shot",
		"`fn dev` ready, wx template, restart", "worker start, lean cloud code (leanengine), with a spare ready",
		"engine p50 minus bare node p50", "wx worker RSS over ", "| fn dev wx, `concurrency: 32` | 32 |", "| leanengine 3.8 + express (the platform's own) | 32 |",
		"RSS after the load above", "save → first response, dependency change", "create, with a beforeSave hook",
		"| one function changed | lean |", "| fn serve (lean hello) | 32 |", "| " + floorName + " | 32 |", "skipped: ",
	} {
		if !strings.Contains(got, row) {
			t.Errorf("the smoke report has no row %q:\n%s", row, got)
		}
	}
	if testing.Verbose() {
		os.Stdout.WriteString(got)
	}
}
