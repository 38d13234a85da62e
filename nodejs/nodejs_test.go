//go:build !windows

package nodejs

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Find answers from the cache while the executable is the same file, and asks again once it
// is replaced; a version too old is refused either way.
func TestFindCachesTheVersionPerExecutable(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("XDG_CACHE_HOME", filepath.Join(dir, "cache"))
	runs := filepath.Join(dir, "runs")
	node := filepath.Join(dir, "node")
	write := func(version string) {
		script := "#!/bin/sh\necho x >> " + runs + "\necho " + version + "\n"
		tmp := node + ".new"
		if err := os.WriteFile(tmp, []byte(script), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, node); err != nil {
			t.Fatal(err)
		}
	}
	count := func() int {
		b, _ := os.ReadFile(runs)
		return strings.Count(string(b), "x")
	}
	t.Setenv(EnvNode, node)
	write("v20.1.0")
	for i := 0; i < 3; i++ {
		n, err := Find(context.Background())
		if err != nil || n.Version != "v20.1.0" || n.Major != 20 {
			t.Fatalf("Find: %+v %v", n, err)
		}
	}
	if c := count(); c != 1 {
		t.Fatalf("node --version ran %d times for one executable", c)
	}
	write("v16.20.2")
	if _, err := Find(context.Background()); err == nil || !strings.Contains(err.Error(), "too old") {
		t.Fatalf("a replaced, too old node: %v", err)
	}
	if c := count(); c != 2 {
		t.Fatalf("a replaced executable should be asked again: %d runs", c)
	}
	if _, err := Find(context.Background()); err == nil {
		t.Fatal("the cached too-old version must still be refused")
	}
}
