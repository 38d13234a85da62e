// Package pg is the log sink of a cluster: every replica appends to one table, and a follower
// on any replica sees every replica's records. Ids come from a one-row counter updated in the
// appending transaction, whose row lock makes transactions commit in id order: a reader never
// sees id n+1 before id n, so "after the last id I saw" never skips a record that commits late
// (what a sequence would allow). Commits NOTIFY the other replicas, which read what is new by
// id; a poll covers a lost notification.
package pg

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/fnhq/fn/api"
	"github.com/fnhq/fn/logsink"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Channel is the NOTIFY channel of appends; the payload is the last id committed.
const Channel = "fn_logs"

// Options tune the sink.
type Options struct {
	// Retention is how many records of each app are kept (0: logsink.DefaultRetention).
	Retention int
	// Poll is how often followers look for records without a notification (0: 500 ms).
	Poll time.Duration
	// Queue bounds how long an Append waits for the commit that takes its records (0: 11 s,
	// one commit's timeout and a second); records still queued then are not kept.
	Queue time.Duration
}

// Sink is the PostgreSQL log sink.
type Sink struct {
	pool      *pgxpool.Pool
	retention int
	slack     int
	poll      time.Duration
	queueWait time.Duration

	mu        sync.Mutex
	closed    bool
	subs      map[*sub]struct{}
	seen      int64 // the highest id fanned out to subscribers
	sinceTrim map[string]int

	kick chan struct{}
	done chan struct{}
	end  chan struct{}

	// group commit: concurrent Appends share one transaction (one counter update, one COPY,
	// one commit), which is what bounds a replica's invocation rate with a durable commit
	qmu      sync.Mutex
	queue    []*pendingAppend
	qclosed  bool
	wake     chan struct{}
	flushEnd chan struct{}
}

// pendingAppend is one Append waiting for the flusher: done gets the id of its first record,
// or 0 when the transaction failed.
type pendingAppend struct {
	recs []api.LogRecord
	done chan int64
}

// unqueue takes p off the queue; false when a commit has taken it already.
func (s *Sink) unqueue(p *pendingAppend) bool {
	s.qmu.Lock()
	defer s.qmu.Unlock()
	for i, q := range s.queue {
		if q == p {
			s.queue = append(s.queue[:i:i], s.queue[i+1:]...)
			return true
		}
	}
	return false
}

// maxBatch bounds the records of one group commit (a larger single Append is one batch).
const maxBatch = 1000

type sub struct {
	f    logsink.Filter
	last int64 // the last id delivered, or committed before Subscribe
	ch   chan api.LogRecord
}

const subBuffer = 1024

var _ logsink.Sink = (*Sink)(nil)

var levelRank = map[string]int{"debug": 0, "info": 1, "warn": 2, "error": 3}

// New returns a sink over a pool migrated by pgdb.Open (the pool stays the caller's).
func New(pool *pgxpool.Pool, o Options) (*Sink, error) {
	if o.Retention < 0 {
		return nil, fmt.Errorf("log sink: retention must not be negative, got %d", o.Retention)
	}
	if o.Retention == 0 {
		o.Retention = logsink.DefaultRetention
	}
	if o.Poll <= 0 {
		o.Poll = 500 * time.Millisecond
	}
	if o.Queue <= 0 {
		o.Queue = timeout + time.Second
	}
	s := &Sink{pool: pool, retention: o.Retention, slack: max(o.Retention/10, 1), poll: o.Poll, queueWait: o.Queue,
		subs: map[*sub]struct{}{}, sinceTrim: map[string]int{},
		kick: make(chan struct{}, 1), done: make(chan struct{}), end: make(chan struct{}),
		wake: make(chan struct{}, 1), flushEnd: make(chan struct{})}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := pool.QueryRow(ctx, `SELECT last FROM fn_log_counter`).Scan(&s.seen); err != nil {
		return nil, fmt.Errorf("log sink: %w", err)
	}
	go s.follow()
	go s.flusher()
	return s, nil
}

// timeout bounds one append: Append has no context, and a request must not hang on logging.
const timeout = 10 * time.Second

// Append implements logsink.Sink. It commits before it returns: another replica's follower may
// ask for the record by id at once. Appends made at the same time commit together. On a
// database failure the records are returned without ids (0) and are not kept.
func (s *Sink) Append(recs ...api.LogRecord) []api.LogRecord {
	s.mu.Lock()
	closed := s.closed
	s.mu.Unlock()
	if closed {
		return nil
	}
	out := make([]api.LogRecord, len(recs))
	if len(recs) == 0 {
		return out
	}
	now := time.Now()
	for i, r := range recs {
		if r.Time.IsZero() {
			r.Time = now
		}
		r.Time = r.Time.UTC().Truncate(time.Microsecond)
		r.Message = logsink.Truncate(r.Message)
		out[i] = r
	}
	p := &pendingAppend{recs: out, done: make(chan int64, 1)}
	s.qmu.Lock()
	if s.qclosed {
		s.qmu.Unlock()
		return nil
	}
	s.queue = append(s.queue, p)
	s.qmu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
	var first int64
	t := time.NewTimer(s.queueWait)
	select {
	case first = <-p.done:
	case <-t.C:
		// Still queued (the commit before it is stuck): taken off, never written, so the
		// records are truly not kept. Taken by a commit already: that commit is bounded by
		// timeout and says how it ended; giving up before it would report records as not
		// kept that it then commits.
		if !s.unqueue(p) {
			first = <-p.done
		}
	}
	t.Stop()
	if first == 0 {
		return out
	}
	for i := range out {
		out[i].ID = first + int64(i)
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	s.mu.Lock()
	trim := []string{}
	for _, r := range out {
		if s.sinceTrim[r.App]++; s.sinceTrim[r.App] >= s.slack {
			delete(s.sinceTrim, r.App)
			trim = append(trim, r.App)
		}
	}
	s.mu.Unlock()
	for _, app := range trim {
		s.trim(ctx, app)
	}
	select {
	case s.kick <- struct{}{}:
	default:
	}
	return out
}

// flusher commits what Appends queued, as few transactions as the batch bound allows, until
// Close; then it commits what is left and refuses more.
func (s *Sink) flusher() {
	defer close(s.flushEnd)
	for {
		stop := false
		select {
		case <-s.wake:
		case <-s.done:
			stop = true
		}
		for {
			s.qmu.Lock()
			n, k := 0, 0
			for k < len(s.queue) && (k == 0 || n+len(s.queue[k].recs) <= maxBatch) {
				n += len(s.queue[k].recs)
				k++
			}
			take := s.queue[:k:k]
			s.queue = s.queue[k:]
			if stop && k == 0 {
				s.qclosed = true
			}
			s.qmu.Unlock()
			if k == 0 {
				break
			}
			s.commit(take, n)
		}
		if stop {
			return
		}
	}
}

// commit writes a batch in one transaction and tells each Append its first id.
func (s *Sink) commit(batch []*pendingAppend, n int) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var last int64
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if err := tx.QueryRow(ctx, `UPDATE fn_log_counter SET last = last + $1 RETURNING last`, n).Scan(&last); err != nil {
			return err
		}
		id := last - int64(n) + 1
		rows := make([][]any, 0, n)
		for _, p := range batch {
			for _, r := range p.recs {
				rows = append(rows, []any{id, r.Time, r.App, r.Env, r.Version, r.Function, r.RequestID, r.Level, levelRank[r.Level],
					r.Message, r.Stream, r.Invocation, r.Status, r.DurationMs, r.Identity, r.Kind, logsink.EncodeReplay(r)})
				id++
			}
		}
		if _, err := tx.CopyFrom(ctx, pgx.Identifier{"fn_logs"}, []string{"id", "time", "app", "env", "version", "function",
			"request_id", "level", "level_rank", "message", "stream", "invocation", "status", "duration_ms", "identity", "kind", "replay"},
			pgx.CopyFromRows(rows)); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `SELECT pg_notify($1, $2)`, Channel, fmt.Sprint(last))
		return err
	})
	id := last - int64(n) + 1
	for _, p := range batch {
		if err != nil {
			p.done <- 0
			continue
		}
		p.done <- id
		id += int64(len(p.recs))
	}
}

// trim deletes an app's records beyond the newest retention; a failure is retried at the next
// trim of the app.
func (s *Sink) trim(ctx context.Context, app string) {
	s.pool.Exec(ctx, `DELETE FROM fn_logs WHERE app = $1 AND id < (
		SELECT id FROM fn_logs WHERE app = $1 ORDER BY id DESC LIMIT 1 OFFSET $2)`, app, s.retention-1)
}

// follow fans new records out to the subscribers: on this replica's appends, on other replicas'
// notifications, and every poll interval.
func (s *Sink) follow() {
	defer close(s.end)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-s.done:
			cancel()
		case <-ctx.Done():
		}
	}()
	heard := make(chan struct{}, 1)
	go s.listen(ctx, heard)
	tick := time.NewTicker(s.poll)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.kick:
		case <-heard:
		case <-tick.C:
		}
		s.deliver(ctx)
	}
}

// listen LISTENs on a dedicated connection, reconnecting after a failure.
func (s *Sink) listen(ctx context.Context, heard chan<- struct{}) {
	for ctx.Err() == nil {
		conn, err := s.pool.Acquire(ctx)
		if err == nil {
			_, err = conn.Exec(ctx, `LISTEN `+Channel)
			for err == nil {
				_, err = conn.Conn().WaitForNotification(ctx)
				if err == nil {
					select {
					case heard <- struct{}{}:
					default:
					}
				}
			}
			// a connection left listening must not go back to the pool
			conn.Conn().Close(context.Background())
			conn.Release()
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Second):
		}
	}
}

// deliver reads the records after the last one fanned out, in id order, a page at a time.
func (s *Sink) deliver(ctx context.Context) {
	for {
		s.mu.Lock()
		n, after := len(s.subs), s.seen
		s.mu.Unlock()
		if n == 0 {
			// nobody follows: move the mark without reading the records
			var last int64
			if err := s.pool.QueryRow(ctx, `SELECT last FROM fn_log_counter`).Scan(&last); err == nil {
				s.mu.Lock()
				if len(s.subs) == 0 {
					s.seen = max(s.seen, last)
				}
				s.mu.Unlock()
			}
			return
		}
		recs, err := s.query(ctx, logsink.Filter{After: after}, 1000)
		if err != nil || len(recs) == 0 {
			return
		}
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			return
		}
		for _, r := range recs {
			s.seen = max(s.seen, r.ID)
			for sb := range s.subs {
				if r.ID <= sb.last {
					continue
				}
				sb.last = r.ID
				if !sb.f.Match(r) {
					continue
				}
				select {
				case sb.ch <- r:
				default:
					delete(s.subs, sb)
					close(sb.ch)
				}
			}
		}
		s.mu.Unlock()
		if len(recs) < 1000 {
			return
		}
	}
}

// Query implements logsink.Sink.
func (s *Sink) Query(ctx context.Context, f logsink.Filter, limit int) ([]api.LogRecord, error) {
	s.mu.Lock()
	closed := s.closed
	s.mu.Unlock()
	if closed {
		return nil, logsink.ErrClosed
	}
	return s.query(ctx, f, limit)
}

func (s *Sink) query(ctx context.Context, f logsink.Filter, limit int) ([]api.LogRecord, error) {
	where, args := []string{"id > $1"}, []any{f.After}
	add := func(cond string, arg any) {
		args = append(args, arg)
		where = append(where, strings.ReplaceAll(cond, "?", fmt.Sprintf("$%d", len(args))))
	}
	if f.App != "" {
		add("app = ?", f.App)
	}
	if f.Env != "" {
		add("env = ?", f.Env)
	}
	if !f.Since.IsZero() {
		// records are kept to the microsecond: a since between two microseconds means the later
		since := f.Since.UTC().Truncate(time.Microsecond)
		if since.Before(f.Since) {
			since = since.Add(time.Microsecond)
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
		add("strpos(message, ?) > 0", f.Search) // case-sensitive, no wildcards: strings.Contains
	}
	q := `SELECT id, time, app, env, version, function, request_id, level, message, stream, invocation, status, duration_ms,
		identity, kind, replay FROM fn_logs WHERE ` + strings.Join(where, " AND ")
	newest := f.After == 0
	if newest {
		q += " ORDER BY id DESC"
	} else {
		q += " ORDER BY id"
	}
	if limit > 0 {
		args = append(args, limit)
		q += fmt.Sprintf(" LIMIT $%d", len(args))
	}
	rows, err := s.pool.Query(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("log sink: query: %w", err)
	}
	defer rows.Close()
	out := []api.LogRecord{}
	for rows.Next() {
		var r api.LogRecord
		var replay string
		if err := rows.Scan(&r.ID, &r.Time, &r.App, &r.Env, &r.Version, &r.Function, &r.RequestID, &r.Level, &r.Message, &r.Stream,
			&r.Invocation, &r.Status, &r.DurationMs, &r.Identity, &r.Kind, &replay); err != nil {
			return nil, fmt.Errorf("log sink: query: %w", err)
		}
		logsink.DecodeReplay(replay, &r)
		r.Time = r.Time.UTC()
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("log sink: query: %w", err)
	}
	if newest {
		for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
			out[i], out[j] = out[j], out[i]
		}
	}
	if len(out) == 0 {
		return nil, nil
	}
	return out, nil
}

// Subscribe implements logsink.Sink. It reads the committed counter first, so that records
// committed before the call are not delivered as new ones.
func (s *Sink) Subscribe(f logsink.Filter) (<-chan api.LogRecord, func()) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var floor int64
	if err := s.pool.QueryRow(ctx, `SELECT last FROM fn_log_counter`).Scan(&floor); err != nil {
		floor = -1
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		ch := make(chan api.LogRecord)
		close(ch)
		return ch, func() {}
	}
	if floor < 0 {
		floor = s.seen
	}
	// the follower may have moved past records committed after floor while nobody listened
	s.seen = min(s.seen, floor)
	sb := &sub{f: f, last: floor, ch: make(chan api.LogRecord, subBuffer)}
	s.subs[sb] = struct{}{}
	return sb.ch, func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		if _, ok := s.subs[sb]; ok {
			delete(s.subs, sb)
			close(sb.ch)
		}
	}
}

// Close implements logsink.Sink; the pool stays open (it is the caller's).
func (s *Sink) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	for sb := range s.subs {
		delete(s.subs, sb)
		close(sb.ch)
	}
	s.mu.Unlock()
	close(s.done)
	<-s.end
	<-s.flushEnd
	return nil
}
