// Package sqlstmt keeps the prepared statements of an embedded SQLite database: parsing a
// statement costs more than SQLite's work on an indexed row (a quarter of a wx database write),
// so the wx cloud database and LeanStorage's SQLite store prepare each query once.
package sqlstmt

import (
	"context"
	"database/sql"
	"sync"
)

// Cache holds up to max prepared statements of one database, by query text.
type Cache struct {
	db  *sql.DB
	max int

	mu    sync.Mutex
	stmts map[string]*sql.Stmt // nil once closed
}

// New makes an empty cache for db that keeps at most max statements.
func New(db *sql.DB, max int) *Cache {
	return &Cache{db: db, max: max, stmts: map[string]*sql.Stmt{}}
}

func (c *Cache) cached(q string) *sql.Stmt {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.stmts[q]
}

// Has reports whether q's statement is in the cache.
func (c *Cache) Has(q string) bool { return c.cached(q) != nil }

func (c *Cache) full() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.stmts == nil || len(c.stmts) >= c.max
}

// Get returns q's statement, preparing it on a miss. done closes a statement the full (or
// closed) cache could not keep: call it once the statement's work is over.
func (c *Cache) Get(ctx context.Context, q string) (st *sql.Stmt, done func(), err error) {
	if st := c.cached(q); st != nil {
		return st, func() {}, nil
	}
	if st, err = c.db.PrepareContext(ctx, q); err != nil {
		return nil, nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if old := c.stmts[q]; old != nil {
		st.Close()
		return old, func() {}, nil
	}
	if c.stmts != nil && len(c.stmts) < c.max {
		c.stmts[q] = st
		return st, func() {}, nil
	}
	return st, func() { st.Close() }, nil
}

// Exec runs statement q, prepared.
func (c *Cache) Exec(ctx context.Context, q string, args ...any) (sql.Result, error) {
	st, done, err := c.Get(ctx, q)
	if err != nil {
		return nil, err
	}
	defer done()
	return st.ExecContext(ctx, args...)
}

// Query runs query q, prepared.
func (c *Cache) Query(ctx context.Context, q string, args ...any) (*sql.Rows, error) {
	st, done, err := c.Get(ctx, q)
	if err != nil {
		return nil, err
	}
	defer done() // the rows keep the statement until they close
	return st.QueryContext(ctx, args...)
}

// QueryRow runs query q, prepared; an error preparing it shows in the row's Scan.
func (c *Cache) QueryRow(ctx context.Context, q string, args ...any) *sql.Row {
	st, done, err := c.Get(ctx, q)
	if err != nil {
		return c.db.QueryRowContext(ctx, q, args...) // reports the same error through Scan
	}
	defer done()
	return st.QueryRowContext(ctx, args...)
}

// Close closes every statement kept; later Gets prepare statements that are not kept.
func (c *Cache) Close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, st := range c.stmts {
		st.Close()
	}
	c.stmts = nil
}

// Tx runs statements in one transaction. A statement in the cache is bound to the transaction
// once, not at every use. One that is not runs as it is, and PrepareMissed prepares it after the
// commit: preparing it while the transaction holds a connection would wait for another one (and
// forever when the database has one connection).
type Tx struct {
	c      *Cache
	tx     *sql.Tx
	bound  map[string]*sql.Stmt // nil: not cached, run as it is
	missed []string
}

// In returns a runner of cached statements in tx.
func (c *Cache) In(tx *sql.Tx) *Tx {
	return &Tx{c: c, tx: tx, bound: map[string]*sql.Stmt{}}
}

func (t *Tx) stmt(ctx context.Context, q string) *sql.Stmt {
	st, ok := t.bound[q]
	if !ok {
		if cached := t.c.cached(q); cached != nil {
			st = t.tx.StmtContext(ctx, cached)
		} else {
			t.missed = append(t.missed, q)
		}
		t.bound[q] = st
	}
	return st
}

// Exec runs statement q in the transaction.
func (t *Tx) Exec(ctx context.Context, q string, args ...any) (sql.Result, error) {
	if st := t.stmt(ctx, q); st != nil {
		return st.ExecContext(ctx, args...)
	}
	return t.tx.ExecContext(ctx, q, args...)
}

// QueryRow runs query q in the transaction.
func (t *Tx) QueryRow(ctx context.Context, q string, args ...any) *sql.Row {
	if st := t.stmt(ctx, q); st != nil {
		return st.QueryRowContext(ctx, args...)
	}
	return t.tx.QueryRowContext(ctx, q, args...)
}

// PrepareMissed puts the statements the transaction ran as they were into the cache, while
// there is room. Call it once the transaction has ended.
func (t *Tx) PrepareMissed(ctx context.Context) {
	for _, q := range t.missed {
		if t.c.full() {
			return
		}
		if _, done, err := t.c.Get(ctx, q); err == nil {
			done()
		}
	}
}
