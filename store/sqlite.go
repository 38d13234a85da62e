package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	_ "modernc.org/sqlite" // pure-Go SQLite driver

	"github.com/fnhq/fn/internal/dbfile"
)

// SQLite is the embedded backend: one file, no server.
type SQLite struct {
	db *sql.DB
	// stmts holds this file's fixed statements, prepared once on the one connection: parsing
	// SQL cost more than SQLite's work on the row (a quarter of a write in the wx database).
	stmts sync.Map // query → *sql.Stmt

	// Scans are cached per class (queries evaluate over a class's objects): this process's
	// writes drop a class's entry; another process's writes (fn data import while fn dev runs)
	// show in PRAGMA data_version and drop them all.
	mu          sync.Mutex
	cache       map[string][]*Object
	dataVersion int64
}

func (s *SQLite) invalidate(class string) {
	s.mu.Lock()
	delete(s.cache, class)
	s.mu.Unlock()
}

const sqliteSchema = `
CREATE TABLE IF NOT EXISTS objects (
  class      TEXT NOT NULL,
  id         TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL,
  data       TEXT NOT NULL,
  PRIMARY KEY (class, id)
);
CREATE TABLE IF NOT EXISTS sessions (
  token      TEXT PRIMARY KEY,
  user_id    TEXT NOT NULL,
  created_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS sessions_user ON sessions (user_id);
CREATE TABLE IF NOT EXISTS relations (
  owner_class  TEXT NOT NULL,
  owner_id     TEXT NOT NULL,
  key          TEXT NOT NULL,
  target_class TEXT NOT NULL,
  target_id    TEXT NOT NULL,
  created_at   INTEGER NOT NULL,
  PRIMARY KEY (owner_class, owner_id, key, target_id)
);
CREATE INDEX IF NOT EXISTS relations_target ON relations (owner_class, key, target_id);
`

// OpenSQLite opens (creating if needed) a database file: directory 0700, file 0600 (it holds
// users' password hashes and sessions).
func OpenSQLite(path string) (*SQLite, error) {
	if err := dbfile.Prepare(path); err != nil {
		return nil, fmt.Errorf("storage: %w", err)
	}
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=journal_mode(WAL)&_pragma=busy_timeout(5000)&_pragma=synchronous(NORMAL)")
	if err != nil {
		return nil, err
	}
	// One connection: SQLite serialises writers anyway, and it makes Update's read-modify-write
	// atomic without lock juggling.
	db.SetMaxOpenConns(1)
	if _, err := db.Exec(sqliteSchema); err != nil {
		db.Close()
		return nil, fmt.Errorf("opening %s: %w", path, err)
	}
	s := &SQLite{db: db, cache: map[string][]*Object{}}
	// the statements Update runs in its transaction, which could not prepare them itself
	for _, q := range []string{getObjectSQL, updateObjectSQL} {
		if _, err := s.stmt(context.Background(), nil, q); err != nil {
			s.Close()
			return nil, fmt.Errorf("opening %s: %w", path, err)
		}
	}
	return s, nil
}

const (
	getObjectSQL    = `SELECT created_at, updated_at, data FROM objects WHERE class = ? AND id = ?`
	updateObjectSQL = `UPDATE objects SET updated_at = ?, data = ? WHERE class = ? AND id = ?`
)

// stmt returns q's prepared statement, preparing it the first time; q is one of the constant
// queries of this file, never a query made from a request. Within a transaction, which holds
// the one connection, a statement not prepared yet is not prepared (that would wait for the
// connection): the caller runs q on the transaction as it is.
func (s *SQLite) stmt(ctx context.Context, tx *sql.Tx, q string) (*sql.Stmt, error) {
	if st, ok := s.stmts.Load(q); ok {
		if tx != nil {
			return tx.StmtContext(ctx, st.(*sql.Stmt)), nil
		}
		return st.(*sql.Stmt), nil
	}
	if tx != nil {
		return nil, nil
	}
	st, err := s.db.PrepareContext(ctx, q)
	if err != nil {
		return nil, err
	}
	if old, loaded := s.stmts.LoadOrStore(q, st); loaded {
		st.Close()
		return old.(*sql.Stmt), nil
	}
	return st, nil
}

// exec runs constant statement q, in tx when it is not nil.
func (s *SQLite) exec(ctx context.Context, tx *sql.Tx, q string, args ...any) (sql.Result, error) {
	st, err := s.stmt(ctx, tx, q)
	switch {
	case err != nil:
		return nil, err
	case st == nil:
		return tx.ExecContext(ctx, q, args...)
	}
	return st.ExecContext(ctx, args...)
}

// queryRow runs constant query q, in tx when it is not nil.
func (s *SQLite) queryRow(ctx context.Context, tx *sql.Tx, q string, args ...any) *sql.Row {
	st, err := s.stmt(ctx, tx, q)
	switch {
	case err != nil:
		return s.db.QueryRowContext(ctx, q, args...) // reports the same error through Scan
	case st == nil:
		return tx.QueryRowContext(ctx, q, args...)
	}
	return st.QueryRowContext(ctx, args...)
}

// query runs constant query q.
func (s *SQLite) query(ctx context.Context, q string, args ...any) (*sql.Rows, error) {
	st, err := s.stmt(ctx, nil, q)
	if err != nil {
		return nil, err
	}
	return st.QueryContext(ctx, args...)
}

func ms(t time.Time) int64 { return t.UnixMilli() }

func encode(o *Object) (string, error) {
	b, err := json.Marshal(o.Fields)
	return string(b), err
}

func decodeRow(class, id string, created, updated int64, data string) (*Object, error) {
	o := &Object{Class: class, ID: id, CreatedAt: time.UnixMilli(created).UTC(), UpdatedAt: time.UnixMilli(updated).UTC()}
	dec := json.NewDecoder(strings.NewReader(data))
	dec.UseNumber()
	if err := dec.Decode(&o.Fields); err != nil {
		return nil, err
	}
	normalizeNumbers(o.Fields)
	return o, nil
}

// normalizeNumbers turns json.Number into int64 when whole, else float64, so that values compare
// as the JSON client sent them.
func normalizeNumbers(m map[string]any) {
	for k, v := range m {
		m[k] = normalizeValue(v)
	}
}

func normalizeValue(v any) any {
	switch x := v.(type) {
	case json.Number:
		if i, err := x.Int64(); err == nil {
			return float64(i)
		}
		f, _ := x.Float64()
		return f
	case map[string]any:
		normalizeNumbers(x)
	case []any:
		for i := range x {
			x[i] = normalizeValue(x[i])
		}
	}
	return v
}

// Insert implements Store.
func (s *SQLite) Insert(ctx context.Context, o *Object) error {
	data, err := encode(o)
	if err != nil {
		return err
	}
	_, err = s.exec(ctx, nil, `INSERT INTO objects (class, id, created_at, updated_at, data) VALUES (?, ?, ?, ?, ?)`,
		o.Class, o.ID, ms(o.CreatedAt), ms(o.UpdatedAt), data)
	s.invalidate(o.Class)
	if err != nil && strings.Contains(err.Error(), "UNIQUE") {
		return ErrDuplicate
	}
	return err
}

// Get implements Store.
func (s *SQLite) Get(ctx context.Context, class, id string) (*Object, error) {
	return s.get(ctx, nil, class, id)
}

func (s *SQLite) get(ctx context.Context, tx *sql.Tx, class, id string) (*Object, error) {
	var created, updated int64
	var data string
	err := s.queryRow(ctx, tx, getObjectSQL, class, id).
		Scan(&created, &updated, &data)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	return decodeRow(class, id, created, updated, data)
}

// Update implements Store.
func (s *SQLite) Update(ctx context.Context, class, id string, fn func(*Object) error) (*Object, error) {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	o, err := s.get(ctx, tx, class, id)
	if err != nil {
		return nil, err
	}
	if err := fn(o); err != nil {
		return nil, err
	}
	data, err := encode(o)
	if err != nil {
		return nil, err
	}
	if _, err := s.exec(ctx, tx, updateObjectSQL, ms(o.UpdatedAt), data, class, id); err != nil {
		return nil, err
	}
	defer s.invalidate(class)
	return o, tx.Commit()
}

// Delete implements Store.
func (s *SQLite) Delete(ctx context.Context, class, id string) error {
	res, err := s.exec(ctx, nil, `DELETE FROM objects WHERE class = ? AND id = ?`, class, id)
	s.invalidate(class)
	if err != nil {
		return err
	}
	if _, err := s.exec(ctx, nil, `DELETE FROM relations WHERE owner_class = ? AND owner_id = ?`, class, id); err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return ErrNotFound
	}
	return nil
}

// Scan implements Store. The objects returned are shared: callers must not modify them.
func (s *SQLite) Scan(ctx context.Context, class string) ([]*Object, error) {
	var version int64
	if err := s.queryRow(ctx, nil, `PRAGMA data_version`).Scan(&version); err != nil {
		return nil, err
	}
	s.mu.Lock()
	if version != s.dataVersion {
		s.cache, s.dataVersion = map[string][]*Object{}, version
	}
	cached, ok := s.cache[class]
	s.mu.Unlock()
	if ok {
		return cached, nil
	}
	out, err := s.scan(ctx, class)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	if s.dataVersion == version {
		s.cache[class] = out
	}
	s.mu.Unlock()
	return out, nil
}

func (s *SQLite) scan(ctx context.Context, class string) ([]*Object, error) {
	rows, err := s.query(ctx, `SELECT id, created_at, updated_at, data FROM objects WHERE class = ? ORDER BY created_at, id`, class)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*Object
	for rows.Next() {
		var id, data string
		var created, updated int64
		if err := rows.Scan(&id, &created, &updated, &data); err != nil {
			return nil, err
		}
		o, err := decodeRow(class, id, created, updated, data)
		if err != nil {
			return nil, err
		}
		out = append(out, o)
	}
	return out, rows.Err()
}

// Classes implements Store.
func (s *SQLite) Classes(ctx context.Context) ([]string, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT DISTINCT class FROM objects ORDER BY class`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var c string
		if err := rows.Scan(&c); err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, rows.Err()
}

// PutSession implements Store.
func (s *SQLite) PutSession(ctx context.Context, token, userID string) error {
	_, err := s.exec(ctx, nil, `INSERT INTO sessions (token, user_id, created_at) VALUES (?, ?, ?)`, token, userID, ms(time.Now()))
	return err
}

// SessionUser implements Store.
func (s *SQLite) SessionUser(ctx context.Context, token string) (string, error) {
	var id string
	err := s.queryRow(ctx, nil, `SELECT user_id FROM sessions WHERE token = ?`, token).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return "", ErrNotFound
	}
	return id, err
}

// DeleteSessions implements Store.
func (s *SQLite) DeleteSessions(ctx context.Context, userID string) error {
	_, err := s.exec(ctx, nil, `DELETE FROM sessions WHERE user_id = ?`, userID)
	return err
}

// UserSession implements Store.
func (s *SQLite) UserSession(ctx context.Context, userID string) (string, error) {
	var token string
	err := s.queryRow(ctx, nil, `SELECT token FROM sessions WHERE user_id = ? ORDER BY created_at DESC, rowid DESC LIMIT 1`, userID).Scan(&token)
	if errors.Is(err, sql.ErrNoRows) {
		return "", ErrNotFound
	}
	return token, err
}

// AddRelation implements Store.
func (s *SQLite) AddRelation(ctx context.Context, r Relation, targetClass string, targetIDs []string) error {
	now := ms(time.Now())
	for _, id := range targetIDs {
		if _, err := s.exec(ctx, nil, `INSERT OR IGNORE INTO relations (owner_class, owner_id, key, target_class, target_id, created_at) VALUES (?, ?, ?, ?, ?, ?)`,
			r.OwnerClass, r.OwnerID, r.Key, targetClass, id, now); err != nil {
			return err
		}
	}
	return nil
}

// RemoveRelation implements Store.
func (s *SQLite) RemoveRelation(ctx context.Context, r Relation, targetIDs []string) error {
	for _, id := range targetIDs {
		if _, err := s.exec(ctx, nil, `DELETE FROM relations WHERE owner_class = ? AND owner_id = ? AND key = ? AND target_id = ?`,
			r.OwnerClass, r.OwnerID, r.Key, id); err != nil {
			return err
		}
	}
	return nil
}

// RelationTargets implements Store.
func (s *SQLite) RelationTargets(ctx context.Context, r Relation) ([]string, error) {
	return s.strings(ctx, `SELECT target_id FROM relations WHERE owner_class = ? AND owner_id = ? AND key = ? ORDER BY created_at, rowid`,
		r.OwnerClass, r.OwnerID, r.Key)
}

// RelationOwners implements Store.
func (s *SQLite) RelationOwners(ctx context.Context, ownerClass, key, targetID string) ([]string, error) {
	return s.strings(ctx, `SELECT owner_id FROM relations WHERE owner_class = ? AND key = ? AND target_id = ? ORDER BY created_at, rowid`,
		ownerClass, key, targetID)
}

func (s *SQLite) strings(ctx context.Context, q string, args ...any) ([]string, error) {
	rows, err := s.query(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var v string
		if err := rows.Scan(&v); err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

// Reset implements Store.
func (s *SQLite) Reset(ctx context.Context) error {
	_, err := s.db.ExecContext(ctx, `DELETE FROM objects; DELETE FROM sessions; DELETE FROM relations;`)
	s.mu.Lock()
	s.cache = map[string][]*Object{}
	s.mu.Unlock()
	return err
}

// Close implements Store.
func (s *SQLite) Close() error {
	s.stmts.Range(func(_, st any) bool {
		st.(*sql.Stmt).Close()
		return true
	})
	return s.db.Close()
}
