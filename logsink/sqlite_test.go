package logsink

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/fnhq/fn/api"
)

func openSQLite(t *testing.T, path string, retention int) *SQLite {
	t.Helper()
	s, err := OpenSQLite(path, SQLiteOptions{Retention: retention})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// A process killed before its queue reached the disk handed out ids that followers may have
// seen: the next start must not hand them out again.
func TestSQLiteIDsAfterCrash(t *testing.T) {
	path := filepath.Join(t.TempDir(), "logs.db")
	crashed := openSQLite(t, path, 0)
	seen := add(crashed, "a", "b", "c")
	// a second process on the same file stands in for the restart: the first one never closed
	next := openSQLite(t, path, 0)
	defer next.Close()
	got := add(next, "after the crash")
	if got[0].ID <= seen[2].ID {
		t.Fatalf("after a crash the first id is %d; the crashed run handed out up to %d", got[0].ID, seen[2].ID)
	}
	crashed.Close()
}

// A clean stop loses nothing, so the next run continues right after the last id.
func TestSQLiteIDsAfterCleanStop(t *testing.T) {
	path := filepath.Join(t.TempDir(), "logs.db")
	s := openSQLite(t, path, 0)
	recs := add(s, "a", "b")
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openSQLite(t, path, 0)
	defer s.Close()
	if got := add(s, "c"); got[0].ID != recs[1].ID+1 {
		t.Fatalf("after a clean stop the next id is %d, want %d", got[0].ID, recs[1].ID+1)
	}
}

func TestSQLiteRetentionLoweredOnReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "logs.db")
	s := openSQLite(t, path, 1000)
	var msgs []string
	for i := 0; i < 500; i++ {
		msgs = append(msgs, fmt.Sprint(i))
	}
	recs := add(s, msgs...)
	s.Append(api.LogRecord{App: "other", Level: "info", Message: "kept"})
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openSQLite(t, path, 100)
	defer s.Close()
	got := queryAll(t, s, Filter{App: "a"})
	if len(got) != 100 || got[0].ID != recs[400].ID {
		t.Fatalf("after reopening with retention 100: %d records of app a from id %d", len(got), got[0].ID)
	}
	if len(queryAll(t, s, Filter{App: "other"})) != 1 {
		t.Fatal("the other app lost its record")
	}
}

func queryAll(t *testing.T, s Sink, f Filter) []api.LogRecord {
	t.Helper()
	recs, err := s.Query(t.Context(), f, 0)
	if err != nil {
		t.Fatal(err)
	}
	return recs
}

func TestSQLiteFiles(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("no Unix modes")
	}
	dir := filepath.Join(t.TempDir(), "data")
	path := filepath.Join(dir, "logs.db")
	s := openSQLite(t, path, 0)
	defer s.Close()
	add(s, "x")
	queryAll(t, s, Filter{})
	for file, want := range map[string]os.FileMode{dir: 0o700, path: 0o600, path + "-wal": 0o600} {
		fi, err := os.Stat(file)
		if err != nil {
			t.Fatal(err)
		}
		if got := fi.Mode().Perm(); got != want {
			t.Errorf("%s: mode %o, want %o", file, got, want)
		}
	}
}

func TestSQLiteRejectsNegativeRetention(t *testing.T) {
	if _, err := OpenSQLite(filepath.Join(t.TempDir(), "logs.db"), SQLiteOptions{Retention: -1}); err == nil {
		t.Fatal("a negative retention was accepted")
	}
}

// A follower connected across a restart of the server gets every record written after the
// restart exactly once: it reconnects with the last id it saw.
func TestStreamAcrossRestart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "logs.db")
	first := openSQLite(t, path, 0)
	srv1, _ := server(t, first, StreamOptions{})
	f := follow(t, srv1, "follow=1")
	add(first, "one", "two")
	f.messages(1)
	last := f.next().ID
	// the records written during shutdown reach the disk though the follower is gone
	add(first, "during shutdown")
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}
	f.ended()

	second := openSQLite(t, path, 0)
	defer second.Close()
	srv2, _ := server(t, second, StreamOptions{})
	add(second, "after restart")
	r := follow(t, srv2, fmt.Sprintf("follow=1&after=%d", last))
	if got := fmt.Sprint(r.messages(2)); got != "[during shutdown after restart]" {
		t.Fatalf("resumed with %s", got)
	}
	add(second, "live")
	if got := r.next().Message; got != "live" {
		t.Fatalf("then %q", got)
	}
}

// A log database written before records kept requests gains the column on open: its old
// records read back, and new ones keep their request and caller.
func TestSQLiteAddsTheReplayColumnToAnOldDatabase(t *testing.T) {
	path := filepath.Join(t.TempDir(), "logs.db")
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	old := strings.Replace(logSchema, ",\n  replay      TEXT NOT NULL DEFAULT ''", "", 1)
	if old == logSchema {
		t.Fatal("the old schema is the new one")
	}
	if _, err := db.Exec(old); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`INSERT INTO logs VALUES (1, 0, 'a', 'dev', 0, 'f', 'r1', 'info', 1, 'old', 'fn', 1, 200, 1.5, '', 'call')`); err != nil {
		t.Fatal(err)
	}
	db.Close()
	s := openSQLite(t, path, 0)
	s.Append(api.LogRecord{App: "a", Env: "dev", Level: "info", Message: "new", Invocation: true, Kind: "call", RequestID: "r2",
		Request: []byte(`{"x":1}`), Replayable: true, Caller: &api.Caller{User: "u1"}})
	s.Close()
	s = openSQLite(t, path, 0)
	defer s.Close()
	recs, err := s.Query(context.Background(), Filter{App: "a"}, 0)
	if err != nil || len(recs) != 2 {
		t.Fatalf("%v %+v", err, recs)
	}
	if recs[0].Message != "old" || recs[0].Replayable || recs[0].Request != nil {
		t.Errorf("the old record: %+v", recs[0])
	}
	if string(recs[1].Request) != `{"x":1}` || !recs[1].Replayable || recs[1].Caller == nil || recs[1].Caller.User != "u1" {
		t.Errorf("the new record: %+v", recs[1])
	}
}

// The writer takes a queue that outgrew one transaction in several, and keeps the queue's array
// once what is left fits in it: every record reaches the database once, in order, and appends
// after a flush reuse the array.
func TestSQLiteFlushInBatchesKeepsTheQueue(t *testing.T) {
	s := openSQLite(t, filepath.Join(t.TempDir(), "logs.db"), 0)
	defer func() { s.stmts.close(); s.db.Close() }()
	// the writer is stopped: the test flushes by hand
	close(s.done)
	<-s.writerEnd
	const n = 2*maxBatch + maxBatch/2 // resliced once (more left than written), then moved to the front
	recs := make([]api.LogRecord, n)
	for i := range recs {
		recs[i] = api.LogRecord{App: "app", Level: "info", Message: fmt.Sprintf("m%d", i)}
	}
	appended := s.Append(recs...)
	s.flush()
	if s.writeErr != nil {
		t.Fatal(s.writeErr)
	}
	// a queue that one transaction takes in two: what is left moves to the front of the array,
	// where the appends after the flush go
	appended = append(appended, s.Append(recs[:maxBatch+maxBatch/2]...)...)
	front := &s.pending[0]
	s.flush()
	if len(s.pending) != 0 {
		t.Fatalf("after the flush the queue has %d records; want none", len(s.pending))
	}
	appended = append(appended, s.Append(api.LogRecord{App: "app", Level: "info", Message: "after"})...)
	if &s.pending[0] != front {
		t.Fatal("the append after a flush went to another part of the array (or a new one)")
	}
	s.flush()
	rows, err := s.db.Query(`SELECT id, message FROM logs ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	i := 0
	for ; rows.Next(); i++ {
		var id int64
		var msg string
		if err := rows.Scan(&id, &msg); err != nil {
			t.Fatal(err)
		}
		if i >= len(appended) || id != appended[i].ID || msg != appended[i].Message {
			t.Fatalf("row %d is %d %q; want %d %q", i, id, msg, appended[i].ID, appended[i].Message)
		}
	}
	if i != len(appended) {
		t.Fatalf("%d rows stored; want %d", i, len(appended))
	}
}
