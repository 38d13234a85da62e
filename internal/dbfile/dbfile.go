// Package dbfile prepares the SQLite files of fn's embedded backends: they hold keys, secrets
// and what functions log about users, so only their owner may read them.
package dbfile

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
)

// Prepare makes path's directory (0700 when it is new) and the database file, and brings the
// database, WAL and shared-memory files to 0600 when an earlier version left them wider.
// SQLite gives the WAL and shared-memory files it creates the mode of the database file.
func Prepare(path string) error {
	if strings.ContainsAny(path, "?#") {
		// the driver reads options after a '?' in its data source name
		return fmt.Errorf("the database path %q contains '?' or '#'; choose a data directory without them", path)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if runtime.GOOS == "windows" {
		return nil // no Unix modes to narrow
	}
	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		fi, err := os.Stat(p)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return err
		}
		if fi.Mode().Perm()&0o077 != 0 {
			if err := os.Chmod(p, 0o600); err != nil {
				return fmt.Errorf("narrowing %s to 0600: %w", p, err)
			}
		}
	}
	return nil
}

// DSN is the data source name of a database in WAL mode with the given synchronous level.
// Transactions take the write lock when they begin: a read-then-write transaction that had to
// upgrade its lock could fail at once with SQLITE_BUSY when another process writes, where
// one that waits at BEGIN is covered by the busy timeout.
func DSN(path, synchronous string) string {
	return "file:" + path + "?_pragma=journal_mode(WAL)&_pragma=busy_timeout(5000)&_pragma=synchronous(" + synchronous + ")&_txlock=immediate"
}
