package logsink_test

import (
	"path/filepath"
	"sync"
	"testing"

	"github.com/fnhq/fn/logsink"
	"github.com/fnhq/fn/logsink/logsinktest"
)

func TestMemory(t *testing.T) {
	logsinktest.Run(t, func(t *testing.T) logsink.Sink { return logsink.NewMemory(100) }, logsinktest.Options{Retention: 100})
}

// sqliteOpener opens SQLite sinks in temporary directories and reopens them by their path.
func sqliteOpener(retention int) (open func(t *testing.T) logsink.Sink, reopen func(t *testing.T, s logsink.Sink) logsink.Sink) {
	var paths sync.Map
	openAt := func(t *testing.T, path string) logsink.Sink {
		s, err := logsink.OpenSQLite(path, logsink.SQLiteOptions{Retention: retention})
		if err != nil {
			t.Fatal(err)
		}
		paths.Store(logsink.Sink(s), path)
		return s
	}
	open = func(t *testing.T) logsink.Sink { return openAt(t, filepath.Join(t.TempDir(), "logs", "logs.db")) }
	reopen = func(t *testing.T, s logsink.Sink) logsink.Sink {
		path, ok := paths.Load(s)
		if !ok {
			t.Fatal("reopen of a sink the test did not open")
		}
		return openAt(t, path.(string))
	}
	return open, reopen
}

func TestSQLite(t *testing.T) {
	open, reopen := sqliteOpener(100)
	logsinktest.Run(t, open, logsinktest.Options{Retention: 100, Reopen: reopen})
}
