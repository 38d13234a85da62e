package main

import (
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// Every fn command pays for the package initialisation of the whole binary (`fn --version`
// included), so fn's own packages do no work there: a regexp with a bounded repetition such as
// {0,127}, compiled at package level, cost thousands of allocations and milliseconds per start.
// Counted in allocations, which do not depend on the machine's speed.
func TestPackageInitIsCheap(t *testing.T) {
	if os.Getenv("FN_INIT_PROBE") == "1" {
		return // the probe: the package initialisation has run
	}
	cmd := exec.Command(os.Args[0], "-test.run", "^TestPackageInitIsCheap$")
	cmd.Env = append(os.Environ(), "FN_INIT_PROBE=1", "GODEBUG=inittrace=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("the probe failed: %v\n%s", err, out)
	}
	line := regexp.MustCompile(`^init (github\.com/fnhq/fn/\S+) @\S+ ms, \S+ ms clock, \d+ bytes, (\d+) allocs`)
	seen := 0
	for _, l := range strings.Split(string(out), "\n") {
		m := line.FindStringSubmatch(l)
		if m == nil {
			continue
		}
		seen++
		if n, _ := strconv.Atoi(m[2]); n > 1000 {
			t.Errorf("%s allocates %d times while the binary starts: defer that work to its first use (sync.OnceValue)", m[1], n)
		}
	}
	if seen < 10 {
		t.Fatalf("the trace names %d of fn's packages; is GODEBUG=inittrace=1 honoured?\n%s", seen, out)
	}
}
