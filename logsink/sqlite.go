package logsink

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/fnhq/fn/api"
	"github.com/fnhq/fn/internal/dbfile"

	_ "modernc.org/sqlite" // pure-Go SQLite driver
)

// SQLiteOptions tune the SQLite sink.
type SQLiteOptions struct {
	// Retention is how many records of each app are kept (0: DefaultRetention); older ones
	// are deleted in batches.
	Retention int
}

// DefaultRetention is how many records per app the SQLite sink keeps unless told otherwise.
const DefaultRetention = 10000

const (
	// maxPending bounds the records waiting for the disk: past it the oldest are dropped
	// rather than letting a stuck disk grow memory without end.
	maxPending = 100000
	// maxBatch bounds one write transaction.
	maxBatch = 2000
	// idReserve is how far ahead of the ids handed out the database records a reservation.
	// After a crash the records not yet written are lost, but followers may have seen their
	// ids; the next start continues after the reservation, so no id is handed out twice.
	idReserve = 1 << 20
	// flushDelay is how long the writer gathers records before a write transaction.
	flushDelay = 20 * time.Millisecond
)

// SQLite is the persistent sink of fn dev and fn serve: one database file. Append only assigns
// ids and queues; a writer goroutine persists the queue in batches and trims each app to the
// retention.
type SQLite struct {
	db        *sql.DB
	stmts     sqliteStmts
	retention int
	slack     int // records an app may exceed the retention by before a trim

	mu       sync.Mutex
	next     int64
	pending  []api.LogRecord // appended, not yet committed; id order
	subs     map[*subscription]struct{}
	closed   bool
	writeErr error // the latest failure of the writer, reported by Close
	dropped  int64

	kick      chan struct{}
	done      chan struct{}
	writerEnd chan struct{}
	sinceTrim map[string]int  // writer only
	batch     []api.LogRecord // writer only: the records of the transaction being written
}

var _ Sink = (*SQLite)(nil)

// sqliteStmts are the writer's statements, prepared once: parsing the 32-row INSERT again for
// every transaction cost an eighth of the writer's time.
type sqliteStmts struct {
	insertFull, insertOne, reserve, trim *sql.Stmt
}

func (st *sqliteStmts) prepare(db *sql.DB) error {
	for _, p := range []struct {
		to  **sql.Stmt
		sql string
	}{
		{&st.insertFull, fullInsertSQL},
		{&st.insertOne, insertSQL(1)},
		{&st.reserve, reserveSQL},
		{&st.trim, trimSQL},
	} {
		stmt, err := db.Prepare(p.sql)
		if err != nil {
			return err
		}
		*p.to = stmt
	}
	return nil
}

func (st *sqliteStmts) close() {
	for _, stmt := range []*sql.Stmt{st.insertFull, st.insertOne, st.reserve, st.trim} {
		if stmt != nil {
			stmt.Close()
		}
	}
}

const logSchema = `
CREATE TABLE IF NOT EXISTS logs (
  id          INTEGER PRIMARY KEY,
  time        INTEGER NOT NULL, -- µs since 1970
  app         TEXT NOT NULL,
  env         TEXT NOT NULL,
  version     INTEGER NOT NULL,
  function    TEXT NOT NULL,
  request_id  TEXT NOT NULL,
  level       TEXT NOT NULL,
  level_rank  INTEGER NOT NULL,
  message     TEXT NOT NULL,
  stream      TEXT NOT NULL,
  invocation  INTEGER NOT NULL,
  status      INTEGER NOT NULL,
  duration_ms REAL NOT NULL,
  identity    TEXT NOT NULL,
  kind        TEXT NOT NULL,
  replay      TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS logs_app_id ON logs (app, id);
-- no index on request_id: request ids are random, and keeping such an index cost more than
-- the rest of the write (2-3x per record); a request's records are found within its app
-- (logs_app_id), which the retention bounds
DROP INDEX IF EXISTS logs_request;
CREATE TABLE IF NOT EXISTS log_meta (
  key   TEXT PRIMARY KEY,
  value INTEGER NOT NULL
);
`

// OpenSQLite opens (creating if needed) a log database: directory 0700, file 0600 (logs may
// carry what functions print about users).
func OpenSQLite(path string, o SQLiteOptions) (*SQLite, error) {
	if o.Retention < 0 {
		return nil, fmt.Errorf("log sink: retention must not be negative, got %d", o.Retention)
	}
	if o.Retention == 0 {
		o.Retention = DefaultRetention
	}
	if err := dbfile.Prepare(path); err != nil {
		return nil, fmt.Errorf("log sink: %w", err)
	}
	db, err := sql.Open("sqlite", dbfile.DSN(path, "NORMAL"))
	if err != nil {
		return nil, fmt.Errorf("log sink %s: %w", path, err)
	}
	// one writer (the goroutine) and a few readers, which WAL lets run beside it
	db.SetMaxOpenConns(4)
	if _, err := db.Exec(logSchema); err != nil {
		db.Close()
		return nil, fmt.Errorf("log sink %s: %w", path, err)
	}
	if err := addReplayColumn(db); err != nil {
		db.Close()
		return nil, fmt.Errorf("log sink %s: %w", path, err)
	}
	var stmts sqliteStmts
	if err := stmts.prepare(db); err != nil {
		stmts.close()
		db.Close()
		return nil, fmt.Errorf("log sink %s: %w", path, err)
	}
	var maxID, reserved int64
	if err := db.QueryRow(`SELECT coalesce(max(id), 0) FROM logs`).Scan(&maxID); err != nil {
		db.Close()
		return nil, fmt.Errorf("log sink %s: %w", path, err)
	}
	err = db.QueryRow(`SELECT value FROM log_meta WHERE key = 'reserved'`).Scan(&reserved)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		db.Close()
		return nil, fmt.Errorf("log sink %s: %w", path, err)
	}
	s := &SQLite{db: db, stmts: stmts, retention: o.Retention, slack: max(o.Retention/10, 1), next: max(maxID, reserved) + 1,
		subs: map[*subscription]struct{}{}, kick: make(chan struct{}, 1), done: make(chan struct{}),
		writerEnd: make(chan struct{}), sinceTrim: map[string]int{}}
	// reserve before handing out the first id, in case the process dies before the first write
	if err := s.reserve(context.Background(), s.next-1+idReserve); err != nil {
		stmts.close()
		db.Close()
		return nil, fmt.Errorf("log sink %s: %w", path, err)
	}
	// a start may come with a smaller retention than the last run's
	if err := s.trimAll(context.Background()); err != nil {
		stmts.close()
		db.Close()
		return nil, fmt.Errorf("log sink %s: %w", path, err)
	}
	go s.writer()
	return s, nil
}

// Append implements Sink.
func (s *SQLite) Append(recs ...api.LogRecord) []api.LogRecord {
	now := time.Now()
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	out := make([]api.LogRecord, len(recs))
	for i, r := range recs {
		r = prepare(r, s.next, now)
		s.next++
		out[i] = r
		s.pending = append(s.pending, r)
		fanOut(s.subs, r)
	}
	if len(s.pending) > maxPending {
		// drop a tenth at once, so that a disk that stays behind costs one copy per many appends
		over := len(s.pending) - maxPending + maxPending/10
		s.pending = append(s.pending[:0:0], s.pending[over:]...)
		s.dropped += int64(over)
	}
	s.mu.Unlock()
	select {
	case s.kick <- struct{}{}:
	default: // the writer is already due
	}
	return out
}

func (s *SQLite) writer() {
	defer close(s.writerEnd)
	for {
		select {
		case <-s.kick:
			// Let the records of the next few milliseconds join this one's transaction: a
			// transaction per call would cost more CPU than serving the call (followers and
			// queries see pending records at once; Close flushes what is left).
			t := time.NewTimer(flushDelay)
			select {
			case <-t.C:
			case <-s.done:
				t.Stop()
			}
			s.flush()
		case <-s.done:
			s.flush()
			return
		}
	}
}

// flush writes everything pending, in batches.
func (s *SQLite) flush() {
	for {
		s.mu.Lock()
		n := min(len(s.pending), maxBatch)
		batch := append(s.batch[:0], s.pending[:n]...)
		reserve := s.next - 1 + idReserve
		s.mu.Unlock()
		if n == 0 {
			return
		}
		err := s.write(batch, reserve)
		s.mu.Lock()
		if err != nil {
			// keep the records for the next kick; Close reports the failure
			s.writeErr = err
			s.mu.Unlock()
			s.batch = clearBatch(batch)
			return
		}
		s.writeErr = nil
		last := batch[len(batch)-1].ID
		i := sort.Search(len(s.pending), func(i int) bool { return s.pending[i].ID > last })
		if rest := len(s.pending) - i; rest <= n {
			// what arrived during the write moves to the front, so that the next appends reuse the
			// array instead of growing a new one (a queue that falls behind is only resliced: moving
			// it would copy it again for every batch)
			copy(s.pending, s.pending[i:])
			clear(s.pending[rest:])
			s.pending = s.pending[:rest]
		} else {
			s.pending = s.pending[i:]
		}
		s.mu.Unlock()
		for _, r := range batch {
			s.sinceTrim[r.App]++
		}
		s.batch = clearBatch(batch)
		for app, n := range s.sinceTrim {
			if n >= s.slack {
				if err := s.trim(context.Background(), app); err != nil {
					s.mu.Lock()
					s.writeErr = err
					s.mu.Unlock()
					continue
				}
				delete(s.sinceTrim, app)
			}
		}
	}
}

// clearBatch empties a written batch for the next one: its records' strings go back to the GC,
// its array stays (a copy per transaction was a tenth of what the log writer allocated).
func clearBatch(batch []api.LogRecord) []api.LogRecord {
	clear(batch)
	return batch[:0]
}

// rowsPerInsert is how many records one INSERT statement carries: a statement per record costs
// more in the driver (binding, stepping) than SQLite spends storing the row.
const rowsPerInsert = 32

const logColumns = 17

// insertSQL is the INSERT of n records.
func insertSQL(n int) string {
	var b strings.Builder
	b.WriteString(`INSERT INTO logs (id, time, app, env, version, function, request_id, level, level_rank,
		message, stream, invocation, status, duration_ms, identity, kind, replay) VALUES `)
	row := "(" + strings.TrimSuffix(strings.Repeat("?, ", logColumns), ", ") + ")"
	for i := 0; i < n; i++ {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(row)
	}
	b.WriteString(" ON CONFLICT (id) DO NOTHING")
	return b.String()
}

var fullInsertSQL = insertSQL(rowsPerInsert)

func (s *SQLite) write(batch []api.LogRecord, reserve int64) error {
	ctx := context.Background()
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("log sink: %w", err)
	}
	defer tx.Rollback()
	var full, one *sql.Stmt // the prepared statements, in this transaction
	args := make([]any, 0, rowsPerInsert*logColumns)
	for len(batch) > 0 {
		n := rowsPerInsert
		if len(batch) < rowsPerInsert {
			n = 1 // the rest one by one
		}
		args = args[:0]
		for _, r := range batch[:n] {
			args = append(args, r.ID, r.Time.UnixMicro(), r.App, r.Env, r.Version, r.Function, r.RequestID, r.Level,
				levelRank[r.Level], r.Message, r.Stream, r.Invocation, r.Status, r.DurationMs, r.Identity, r.Kind, EncodeReplay(r))
		}
		if n == rowsPerInsert {
			if full == nil {
				full = tx.StmtContext(ctx, s.stmts.insertFull)
			}
			_, err = full.ExecContext(ctx, args...)
		} else {
			if one == nil {
				one = tx.StmtContext(ctx, s.stmts.insertOne)
			}
			_, err = one.ExecContext(ctx, args...)
		}
		if err != nil {
			return fmt.Errorf("log sink: writing records %d–%d: %w", batch[0].ID, batch[n-1].ID, err)
		}
		batch = batch[n:]
	}
	if _, err := tx.StmtContext(ctx, s.stmts.reserve).ExecContext(ctx, reserve); err != nil {
		return fmt.Errorf("log sink: reserving ids: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("log sink: commit: %w", err)
	}
	return nil
}

const reserveSQL = `INSERT INTO log_meta (key, value) VALUES ('reserved', ?)
	ON CONFLICT (key) DO UPDATE SET value = excluded.value`

func (s *SQLite) reserve(ctx context.Context, upTo int64) error {
	if _, err := s.stmts.reserve.ExecContext(ctx, upTo); err != nil {
		return fmt.Errorf("log sink: reserving ids: %w", err)
	}
	return nil
}

// trim deletes an app's records beyond the newest retention.
func (s *SQLite) trim(ctx context.Context, app string) error {
	if _, err := s.stmts.trim.ExecContext(ctx, app, app, s.retention-1); err != nil {
		return fmt.Errorf("log sink: trimming %q: %w", app, err)
	}
	return nil
}

const trimSQL = `DELETE FROM logs WHERE app = ? AND id < (
	SELECT id FROM logs WHERE app = ? ORDER BY id DESC LIMIT 1 OFFSET ?)`

func (s *SQLite) trimAll(ctx context.Context) error {
	rows, err := s.db.QueryContext(ctx, `SELECT DISTINCT app FROM logs`)
	if err != nil {
		return err
	}
	var apps []string
	for rows.Next() {
		var app string
		if err := rows.Scan(&app); err != nil {
			rows.Close()
			return err
		}
		apps = append(apps, app)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	for _, app := range apps {
		if err := s.trim(ctx, app); err != nil {
			return err
		}
	}
	return nil
}

// Query implements Sink. It reads the database and the records still on their way to it: the
// queue is copied first, so a record committed meanwhile shows in the database read and none
// falls between the two; one in both counts once.
func (s *SQLite) Query(ctx context.Context, f Filter, limit int) ([]api.LogRecord, error) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil, ErrClosed
	}
	var queued []api.LogRecord
	for _, r := range s.pending {
		if f.Match(r) {
			queued = append(queued, r)
		}
	}
	s.mu.Unlock()

	where, args := []string{"id > ?"}, []any{f.After}
	add := func(cond string, arg any) { where = append(where, cond); args = append(args, arg) }
	if f.App != "" {
		add("app = ?", f.App)
	}
	if f.Env != "" {
		add("env = ?", f.Env)
	}
	if !f.Since.IsZero() {
		// records are kept to the microsecond: a since between two microseconds means the later
		since := f.Since.UnixMicro()
		if f.Since.Nanosecond()%1000 != 0 {
			since++
		}
		add("time >= ?", since)
	}
	if f.Function != "" {
		add("function = ?", f.Function)
	}
	if f.Level != "" {
		add("level_rank >= ?", levelRank[f.Level])
	}
	if f.RequestID != "" {
		add("request_id = ?", f.RequestID)
	}
	if f.Search != "" {
		add("instr(message, ?) > 0", f.Search) // case-sensitive, no wildcards: strings.Contains
	}
	q := `SELECT id, time, app, env, version, function, request_id, level, message, stream, invocation, status, duration_ms,
		identity, kind, replay FROM logs WHERE ` + strings.Join(where, " AND ")
	newest := f.After == 0
	if newest {
		q += " ORDER BY id DESC"
	} else {
		q += " ORDER BY id"
	}
	if limit > 0 {
		q += " LIMIT ?"
		args = append(args, limit)
	}
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		if s.isClosed() {
			return nil, ErrClosed
		}
		return nil, fmt.Errorf("log sink: query: %w", err)
	}
	defer rows.Close()
	var stored []api.LogRecord
	for rows.Next() {
		var r api.LogRecord
		var t int64
		var replay string
		if err := rows.Scan(&r.ID, &t, &r.App, &r.Env, &r.Version, &r.Function, &r.RequestID, &r.Level, &r.Message, &r.Stream,
			&r.Invocation, &r.Status, &r.DurationMs, &r.Identity, &r.Kind, &replay); err != nil {
			return nil, fmt.Errorf("log sink: query: %w", err)
		}
		DecodeReplay(replay, &r)
		r.Time = time.UnixMicro(t).UTC()
		stored = append(stored, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("log sink: query: %w", err)
	}
	if newest {
		for i, j := 0, len(stored)-1; i < j; i, j = i+1, j-1 {
			stored[i], stored[j] = stored[j], stored[i]
		}
	}
	// queued records are newer than every stored one they do not duplicate
	out := stored
	for _, r := range queued {
		if len(out) == 0 || r.ID > out[len(out)-1].ID {
			out = append(out, r)
		}
	}
	return limitRecords(out, f, limit), nil
}

func (s *SQLite) isClosed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}

// Subscribe implements Sink.
func (s *SQLite) Subscribe(f Filter) (<-chan api.LogRecord, func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return closedChan(), func() {}
	}
	sub := subscribe(s.subs, f)
	return sub.ch, func() {
		s.mu.Lock()
		unsubscribe(s.subs, sub)
		s.mu.Unlock()
	}
}

// Close implements Sink: it writes what is queued, then closes the database. It reports a
// write that failed, and how many records a stuck disk made it drop.
func (s *SQLite) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	for sub := range s.subs {
		unsubscribe(s.subs, sub)
	}
	s.mu.Unlock()
	close(s.done)
	<-s.writerEnd
	s.mu.Lock()
	err, dropped, left, last := s.writeErr, s.dropped, len(s.pending), s.next-1
	s.mu.Unlock()
	if err == nil && left == 0 {
		// a clean stop loses nothing it handed out: the next start continues right after
		err = s.reserve(context.Background(), last)
	}
	s.stmts.close()
	if cerr := s.db.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("log sink: %w", cerr)
	}
	if err != nil && left > 0 {
		err = fmt.Errorf("%w (%d records not written)", err, left)
	}
	if err == nil && dropped > 0 {
		err = fmt.Errorf("log sink: the disk fell behind and %d records were dropped", dropped)
	}
	return err
}

// addReplayColumn brings a log database of an earlier fn up to the replay column.
func addReplayColumn(db *sql.DB) error {
	var n int
	if err := db.QueryRow(`SELECT count(*) FROM pragma_table_info('logs') WHERE name = 'replay'`).Scan(&n); err != nil {
		return err
	}
	if n > 0 {
		return nil
	}
	_, err := db.Exec(`ALTER TABLE logs ADD COLUMN replay TEXT NOT NULL DEFAULT ''`)
	return err
}
