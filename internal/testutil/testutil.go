// Package testutil holds helpers shared by tests: the repository root, the npm fixture with the
// real SDKs, and polling with a deadline.
package testutil

import (
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"
)

// RepoRoot is the repository's root directory.
func RepoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}

// NodeModules returns the fixture's node_modules with the real wx-server-sdk, leanengine and
// leancloud-storage. It fails the test when the fixture is not installed (make fixtures does it).
func NodeModules(t testing.TB) string {
	t.Helper()
	dir := filepath.Join(RepoRoot(), "testdata", "npm", "node_modules")
	if _, err := os.Stat(filepath.Join(dir, "wx-server-sdk", "package.json")); err != nil {
		t.Fatalf("the npm fixture is not installed (%v): run 'make fixtures'", err)
	}
	return dir
}

// LinkNodeModules makes dir/node_modules point at the fixture.
func LinkNodeModules(t testing.TB, dir string) {
	t.Helper()
	if err := os.Symlink(NodeModules(t), filepath.Join(dir, "node_modules")); err != nil {
		t.Fatal(err)
	}
}

// Eventually polls cond every few milliseconds until it holds or the deadline passes.
func Eventually(t testing.TB, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", within, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// WriteFile writes a file below dir, creating directories.
func WriteFile(t testing.TB, dir, rel, content string) string {
	t.Helper()
	path := filepath.Join(dir, filepath.FromSlash(rel))
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}
