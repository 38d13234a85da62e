package engine

import (
	"testing"
	"time"
)

// The crash-loop decision: nothing below CrashLoopDeaths recent deaths, then a delay doubling
// per death up to the cap, at the lowest priority; deaths age out of the window.
func TestCrashLogBackoff(t *testing.T) {
	var c crashLog
	t0 := time.Unix(1000, 0)
	for i := 0; i < CrashLoopDeaths-1; i++ {
		c.note(t0)
	}
	if d, n := c.backoff(t0); d != 0 || n != 0 {
		t.Fatalf("after %d deaths: delay %v nice %d, want none", CrashLoopDeaths-1, d, n)
	}
	c.note(t0)
	if d, n := c.backoff(t0); d != crashBackoffBase || n != NiceDemoted {
		t.Fatalf("after %d deaths: delay %v nice %d, want %v at %d", CrashLoopDeaths, d, n, crashBackoffBase, NiceDemoted)
	}
	c.note(t0)
	if d, _ := c.backoff(t0); d != 2*crashBackoffBase {
		t.Fatalf("one death more: delay %v, want %v", d, 2*crashBackoffBase)
	}
	for i := 0; i < 40; i++ {
		c.note(t0)
	}
	if d, _ := c.backoff(t0); d != crashBackoffMax {
		t.Fatalf("many deaths: delay %v, want the cap %v", d, crashBackoffMax)
	}
	if d, n := c.backoff(t0.Add(CrashLoopWindow + time.Second)); d != 0 || n != 0 {
		t.Fatalf("after the window: delay %v nice %d, want none", d, n)
	}
}
