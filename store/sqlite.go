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
	"github.com/fnhq/fn/internal/sqlstmt"
)

// SQLite is the embedded backend: one file, no server.
type SQLite struct {
	db *sql.DB
	// stmts holds this file's constant statements, prepared once on the one connection.
	stmts *sqlstmt.Cache

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
	s := &SQLite{db: db, stmts: sqlstmt.New(db, maxStmts), cache: map[string][]*Object{}}
	// the statements Update runs in its transaction, which would run them unprepared otherwise
	for _, q := range []string{getObjectSQL, updateObjectSQL} {
		if _, _, err := s.stmts.Get(context.Background(), q); err != nil {
			s.Close()
			return nil, fmt.Errorf("opening %s: %w", path, err)
		}
	}
	return s, nil
}

// maxStmts is above the number of constant statements this file has.
const maxStmts = 64

const (
	getObjectSQL    = `SELECT created_at, updated_at, data FROM objects WHERE class = ? AND id = ?`
	updateObjectSQL = `UPDATE objects SET updated_at = ?, data = ? WHERE class = ? AND id = ?`
)

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
	_, err = s.stmts.Exec(ctx, `INSERT INTO objects (class, id, created_at, updated_at, data) VALUES (?, ?, ?, ?, ?)`,
		o.Class, o.ID, ms(o.CreatedAt), ms(o.UpdatedAt), data)
	s.invalidate(o.Class)
	if err != nil && strings.Contains(err.Error(), "UNIQUE") {
		return ErrDuplicate
	}
	return err
}

// Get implements Store.
func (s *SQLite) Get(ctx context.Context, class, id string) (*Object, error) {
	return readObject(s.stmts.QueryRow(ctx, getObjectSQL, class, id), class, id)
}

// readObject reads the object that row, of getObjectSQL, holds.
func readObject(row *sql.Row, class, id string) (*Object, error) {
	var created, updated int64
	var data string
	err := row.Scan(&created, &updated, &data)
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
	ts := s.stmts.In(tx)
	o, err := readObject(ts.QueryRow(ctx, getObjectSQL, class, id), class, id)
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
	if _, err := ts.Exec(ctx, updateObjectSQL, ms(o.UpdatedAt), data, class, id); err != nil {
		return nil, err
	}
	defer s.invalidate(class)
	return o, tx.Commit()
}

// Delete implements Store.
func (s *SQLite) Delete(ctx context.Context, class, id string) error {
	res, err := s.stmts.Exec(ctx, `DELETE FROM objects WHERE class = ? AND id = ?`, class, id)
	s.invalidate(class)
	if err != nil {
		return err
	}
	if _, err := s.stmts.Exec(ctx, `DELETE FROM relations WHERE owner_class = ? AND owner_id = ?`, class, id); err != nil {
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
	if err := s.stmts.QueryRow(ctx, `PRAGMA data_version`).Scan(&version); err != nil {
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
	rows, err := s.stmts.Query(ctx, `SELECT id, created_at, updated_at, data FROM objects WHERE class = ? ORDER BY created_at, id`, class)
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
	_, err := s.stmts.Exec(ctx, `INSERT INTO sessions (token, user_id, created_at) VALUES (?, ?, ?)`, token, userID, ms(time.Now()))
	return err
}

// SessionUser implements Store.
func (s *SQLite) SessionUser(ctx context.Context, token string) (string, error) {
	var id string
	err := s.stmts.QueryRow(ctx, `SELECT user_id FROM sessions WHERE token = ?`, token).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return "", ErrNotFound
	}
	return id, err
}

// DeleteSessions implements Store.
func (s *SQLite) DeleteSessions(ctx context.Context, userID string) error {
	_, err := s.stmts.Exec(ctx, `DELETE FROM sessions WHERE user_id = ?`, userID)
	return err
}

// UserSession implements Store.
func (s *SQLite) UserSession(ctx context.Context, userID string) (string, error) {
	var token string
	err := s.stmts.QueryRow(ctx, `SELECT token FROM sessions WHERE user_id = ? ORDER BY created_at DESC, rowid DESC LIMIT 1`, userID).Scan(&token)
	if errors.Is(err, sql.ErrNoRows) {
		return "", ErrNotFound
	}
	return token, err
}

// AddRelation implements Store.
func (s *SQLite) AddRelation(ctx context.Context, r Relation, targetClass string, targetIDs []string) error {
	now := ms(time.Now())
	for _, id := range targetIDs {
		if _, err := s.stmts.Exec(ctx, `INSERT OR IGNORE INTO relations (owner_class, owner_id, key, target_class, target_id, created_at) VALUES (?, ?, ?, ?, ?, ?)`,
			r.OwnerClass, r.OwnerID, r.Key, targetClass, id, now); err != nil {
			return err
		}
	}
	return nil
}

// RemoveRelation implements Store.
func (s *SQLite) RemoveRelation(ctx context.Context, r Relation, targetIDs []string) error {
	for _, id := range targetIDs {
		if _, err := s.stmts.Exec(ctx, `DELETE FROM relations WHERE owner_class = ? AND owner_id = ? AND key = ? AND target_id = ?`,
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
	rows, err := s.stmts.Query(ctx, q, args...)
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
	s.stmts.Close()
	return s.db.Close()
}
