package control_test

import (
	"bytes"
	"context"
	"database/sql"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/fnhq/fn/api"
	"github.com/fnhq/fn/control"
	"github.com/fnhq/fn/control/controltest"
)

func TestSQLite(t *testing.T) {
	var paths sync.Map // control.Plane → its file
	open := func(t *testing.T) control.Plane {
		path := filepath.Join(t.TempDir(), "control", "control.db")
		p, err := control.OpenSQLite(path)
		if err != nil {
			t.Fatal(err)
		}
		paths.Store(control.Plane(p), path)
		return p
	}
	controltest.Run(t, open, controltest.Options{
		Reopen: func(t *testing.T, old control.Plane) control.Plane {
			path, ok := paths.Load(old)
			if !ok {
				t.Fatal("reopen of a plane the test did not open")
			}
			p, err := control.OpenSQLite(path.(string))
			if err != nil {
				t.Fatal(err)
			}
			paths.Store(control.Plane(p), path)
			return p
		},
	})
}

// The database holds keys and secrets: only its owner may read it, and session tokens are not
// in it at all.
func TestSQLiteFiles(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	path := filepath.Join(dir, "control.db")
	p, err := control.OpenSQLite(path)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := p.SetAdminTokenHash(ctx, "x"); err != nil {
		t.Fatal(err)
	}
	// the WAL exists while the plane is open
	if runtime.GOOS != "windows" {
		for file, want := range map[string]os.FileMode{dir: 0o700, path: 0o600, path + "-wal": 0o600, path + "-shm": 0o600} {
			fi, err := os.Stat(file)
			if err != nil {
				t.Fatal(err)
			}
			if got := fi.Mode().Perm(); got != want {
				t.Errorf("%s: mode %o, want %o", file, got, want)
			}
		}
	}
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	var mode string
	if err := db.QueryRowContext(ctx, `PRAGMA journal_mode`).Scan(&mode); err != nil || mode != "wal" {
		t.Errorf("journal mode %q, %v; want wal", mode, err)
	}
	db.Close()
	const token = "fnwx_0123456789abcdef0123456789abcdef"
	if err := p.CreateApp(ctx, api.App{ID: "a-id", Name: "a"}, ""); err != nil {
		t.Fatal(err)
	}
	if err := p.PutSession(ctx, token, control.Session{AppID: "a-id", OpenID: "o", Expires: time.Now().Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	found := false
	for _, file := range []string{path, path + "-wal"} {
		b, err := os.ReadFile(file)
		if err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
		if bytes.Contains(b, []byte(token)) {
			t.Errorf("%s holds a session token in clear", file)
		}
		if bytes.Contains(b, []byte(control.TokenHash(token))) {
			found = true
		}
	}
	if !found {
		t.Error("the session's token hash is nowhere in the database files")
	}
}
