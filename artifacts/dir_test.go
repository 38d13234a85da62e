package artifacts_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/fnhq/fn/artifacts"
	"github.com/fnhq/fn/artifacts/artifactstest"
)

func TestDir(t *testing.T) {
	var dirs sync.Map // *artifacts.Dir → its directory
	open := func(t *testing.T) artifacts.Store {
		dir := filepath.Join(t.TempDir(), "blobs")
		d, err := artifacts.OpenDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		dirs.Store(d, dir)
		return d
	}
	artifactstest.Run(t, open, artifactstest.Options{
		Reopen: func(t *testing.T, s artifacts.Store) artifacts.Store {
			dir, _ := dirs.Load(s)
			d, err := artifacts.OpenDir(dir.(string))
			if err != nil {
				t.Fatal(err)
			}
			return d
		},
	})
}

func TestDirFiles(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "blobs")
	d, err := artifacts.OpenDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	blob := []byte("bundle")
	h := artifactstest.Hash(blob)
	if err := d.Put(context.Background(), h, bytes.NewReader(blob), 100); err != nil {
		t.Fatal(err)
	}
	// a failed upload leaves no temporary file behind
	if err := d.Put(context.Background(), artifactstest.Hash([]byte("other")), strings.NewReader("not it"), 100); err == nil {
		t.Fatal("mismatched Put succeeded")
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 || entries[0].Name() != h {
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		t.Fatalf("directory holds %v, want only %s", names, h)
	}
	if runtime.GOOS == "windows" {
		return
	}
	for path, want := range map[string]os.FileMode{dir: 0o700, filepath.Join(dir, h): 0o600} {
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if got := fi.Mode().Perm(); got != want {
			t.Errorf("%s has mode %o, want %o", path, got, want)
		}
	}
}
