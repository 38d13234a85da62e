package dbfile

import (
	"os"
	"path/filepath"
	"runtime"
	"testing"
)

func TestPrepare(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("no Unix modes")
	}
	dir := filepath.Join(t.TempDir(), "new")
	path := filepath.Join(dir, "x.db")
	if err := Prepare(path); err != nil {
		t.Fatal(err)
	}
	check := func(p string, want os.FileMode) {
		t.Helper()
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if got := fi.Mode().Perm(); got != want {
			t.Errorf("%s: mode %o, want %o", p, got, want)
		}
	}
	check(dir, 0o700)
	check(path, 0o600)
	// files an older version left readable by others are narrowed
	for _, p := range []string{path, path + "-wal"} {
		if err := os.Chmod(p, 0o644); err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(path+"-wal", nil, 0o644); err != nil {
		t.Fatal(err)
	}
	os.Chmod(path+"-wal", 0o644)
	if err := Prepare(path); err != nil {
		t.Fatal(err)
	}
	check(path, 0o600)
	check(path+"-wal", 0o600)
}

func TestPrepareRejectsQuery(t *testing.T) {
	if err := Prepare(filepath.Join(t.TempDir(), "a?mode=ro", "x.db")); err == nil {
		t.Fatal("a path with '?' was accepted")
	}
}
