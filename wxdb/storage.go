package wxdb

import (
	"context"
	"crypto/sha1"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/fnhq/fn/internal/sqlstmt"
	_ "modernc.org/sqlite" // pure-Go SQLite driver
)

// Backend stores documents as JSON (relaxed Extended JSON) per collection. It answers candidate
// rows for a plan (a superset of the matches: the caller re-checks every row with the exact
// matcher), so a backend only needs to translate the conditions it can index. The SQL lives in
// each backend; a PostgreSQL one would map the same Cond list onto JSONB expressions.
type Backend interface {
	// Collection resolves a collection; create makes it when missing.
	Collection(ctx context.Context, env, name string, create bool) (cid int64, created bool, err error)
	Collections(ctx context.Context, env string) ([]string, error)
	// Scan calls fn for each candidate row until fn returns false: in the order given (MongoDB's
	// order for the scalar types; the planner only asks for paths that never held anything
	// else), ties and no order in natural (insertion) order.
	Scan(ctx context.Context, cid int64, conds []Cond, order []OrderKey, fn func(Row) (bool, error)) error
	Get(ctx context.Context, cid int64, key string) (Row, bool, error)
	// Count is the number of documents in a collection.
	Count(ctx context.Context, cid int64) (int, error)
	// Apply writes a batch atomically as the database's next version, which it returns.
	Apply(ctx context.Context, writes []Write) (seq int64, err error)
	// Reload drops what the backend remembers about the file (another process wrote to it).
	Reload(ctx context.Context) error
	// Explain describes how Scan would run conds (for tests and diagnostics).
	Explain(ctx context.Context, cid int64, conds []Cond) (string, error)
	// ImpurePaths are the field paths that ever held an array, a decimal or a non-finite
	// number in this collection: conditions on them (or below them) cannot be pushed down.
	ImpurePaths(cid int64) map[string]bool
	// LastSeq is the version of the last write, by any process.
	LastSeq(ctx context.Context) (int64, error)
	Close() error
}

// Row is one stored document.
type Row struct {
	Key     string
	Version int64
	Doc     []byte
}

// Write is one change in a batch: Doc nil deletes.
type Write struct {
	CID    int64
	Key    string
	Doc    []byte
	Impure []string
}

// Cond is one pushed-down condition on a field path: Op is "=", "in", ">", ">=", "<", "<=";
// values are string, int64, float64 or bool.
type Cond struct {
	Path   string
	Op     string
	Values []any
}

// OrderKey is one pushed-down sort key.
type OrderKey struct {
	Path string
	Desc bool
	// Ranked sorts booleans after strings explicitly; without it SQLite's own order (NULL,
	// numbers, text) is MongoDB's and the path's index serves the sort.
	Ranked bool
}

// sqliteBackend keeps one table per collection (natural order is rowid order) and creates an
// expression index on json_extract(doc, path) the first time a path is queried.
type sqliteBackend struct {
	db *sql.DB

	mu      sync.Mutex
	indexed map[int64]map[string]bool
	impure  map[int64]map[string]bool
	stmts   *sqlstmt.Cache      // prepared statements, bounded by maxStmts
	cids    map[[2]string]int64 // (env, name) → cid; collections are never dropped
}

// maxStmts bounds the prepared-statement cache (query shapes are the client's choice).
const maxStmts = 512

// query runs a read through a cached prepared statement: parsing SQL costs more than running
// an indexed lookup.
func (b *sqliteBackend) query(ctx context.Context, q string, args ...any) (*sql.Rows, error) {
	return b.stmts.Query(ctx, q, args...)
}

const sqliteSchema = `
CREATE TABLE IF NOT EXISTS collections (
  cid  INTEGER PRIMARY KEY,
  env  TEXT NOT NULL,
  name TEXT NOT NULL,
  UNIQUE (env, name)
);
CREATE TABLE IF NOT EXISTS impure_paths (
  cid  INTEGER NOT NULL,
  path TEXT NOT NULL,
  PRIMARY KEY (cid, path)
);
CREATE TABLE IF NOT EXISTS meta (
  k TEXT PRIMARY KEY,
  v INTEGER NOT NULL
);
`

func openSQLite(path string) (*sqliteBackend, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, err
	}
	// Create the file 0600 before SQLite does (it would follow the umask).
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	f.Close()
	for _, suffix := range []string{"-wal", "-shm"} {
		if f, err := os.OpenFile(path+suffix, os.O_RDWR|os.O_CREATE, 0o600); err == nil {
			f.Close()
		}
	}
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=journal_mode(WAL)&_pragma=busy_timeout(5000)&_pragma=synchronous(NORMAL)")
	if err != nil {
		return nil, err
	}
	// Writes are serialised by DB; a few connections let reads run beside them (WAL).
	db.SetMaxOpenConns(4)
	if _, err := db.Exec(sqliteSchema); err != nil {
		db.Close()
		return nil, fmt.Errorf("opening %s: %w", path, err)
	}
	b := &sqliteBackend{db: db, indexed: map[int64]map[string]bool{}, impure: map[int64]map[string]bool{}, stmts: sqlstmt.New(db, maxStmts), cids: map[[2]string]int64{}}
	if err := b.load(); err != nil {
		db.Close()
		return nil, fmt.Errorf("opening %s: %w", path, err)
	}
	return b, nil
}

func (b *sqliteBackend) load() error {
	rows, err := b.db.Query(`SELECT cid, path FROM impure_paths`)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var cid int64
		var p string
		if err := rows.Scan(&cid, &p); err != nil {
			return err
		}
		if b.impure[cid] == nil {
			b.impure[cid] = map[string]bool{}
		}
		b.impure[cid][p] = true
	}
	if err := rows.Err(); err != nil {
		return err
	}
	irows, err := b.db.Query(`SELECT name FROM sqlite_master WHERE type = 'index' AND name LIKE 'c%_ix_%'`)
	if err != nil {
		return err
	}
	defer irows.Close()
	for irows.Next() {
		var name string
		if err := irows.Scan(&name); err != nil {
			return err
		}
		var cid int64
		var h string
		if _, err := fmt.Sscanf(strings.Replace(name, "_ix_", " ", 1), "c%d %s", &cid, &h); err == nil {
			if b.indexed[cid] == nil {
				b.indexed[cid] = map[string]bool{}
			}
			b.indexed[cid][h] = true
		}
	}
	return irows.Err()
}

func table(cid int64) string { return fmt.Sprintf("c%d", cid) }

// jsonPath is the SQLite JSON path of a dotted field path, each segment quoted.
func jsonPath(p string) string {
	var sb strings.Builder
	sb.WriteString("$")
	for _, seg := range strings.Split(p, ".") {
		sb.WriteString(`."`)
		sb.WriteString(seg)
		sb.WriteString(`"`)
	}
	return sb.String()
}

// pushablePath reports whether a field path can be written into SQL literally.
func pushablePath(p string) bool {
	if p == "" || len(p) > 200 {
		return false
	}
	for _, seg := range strings.Split(p, ".") {
		if seg == "" {
			return false
		}
		for _, r := range seg {
			if r == '"' || r == '\'' || r == '\\' || r == '$' || r == '[' || r == ']' || r < 0x20 {
				return false
			}
		}
	}
	return true
}

func extractExpr(p string) string {
	return "json_extract(doc, '" + jsonPath(p) + "')"
}

func indexHash(p string) string {
	h := sha1.Sum([]byte(p))
	return hex.EncodeToString(h[:8])
}

func (b *sqliteBackend) Collection(ctx context.Context, env, name string, create bool) (int64, bool, error) {
	b.mu.Lock()
	cid := b.cids[[2]string{env, name}]
	b.mu.Unlock()
	if cid != 0 {
		return cid, false, nil
	}
	err := b.db.QueryRowContext(ctx, `SELECT cid FROM collections WHERE env = ? AND name = ?`, env, name).Scan(&cid)
	if err == nil {
		b.mu.Lock()
		b.cids[[2]string{env, name}] = cid
		b.mu.Unlock()
		return cid, false, nil
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return 0, false, err
	}
	if !create {
		return 0, false, nil
	}
	tx, err := b.db.BeginTx(ctx, nil)
	if err != nil {
		return 0, false, err
	}
	defer tx.Rollback()
	res, err := tx.ExecContext(ctx, `INSERT INTO collections (env, name) VALUES (?, ?)`, env, name)
	if err != nil {
		return 0, false, err
	}
	cid, _ = res.LastInsertId()
	t := table(cid)
	if _, err := tx.ExecContext(ctx, `CREATE TABLE `+t+` (rid INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE, version INTEGER NOT NULL, doc TEXT NOT NULL)`); err != nil {
		return 0, false, err
	}
	// _openid is what almost every mini-program query filters on.
	if _, err := tx.ExecContext(ctx, `CREATE INDEX `+t+`_ix_`+indexHash("_openid")+` ON `+t+` (`+extractExpr("_openid")+`)`); err != nil {
		return 0, false, err
	}
	if err := tx.Commit(); err != nil {
		return 0, false, err
	}
	b.mu.Lock()
	b.indexed[cid] = map[string]bool{indexHash("_openid"): true}
	b.cids[[2]string{env, name}] = cid
	b.mu.Unlock()
	return cid, true, nil
}

func (b *sqliteBackend) Collections(ctx context.Context, env string) ([]string, error) {
	rows, err := b.db.QueryContext(ctx, `SELECT name FROM collections WHERE env = ? ORDER BY name`, env)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			return nil, err
		}
		out = append(out, n)
	}
	return out, rows.Err()
}

// maxIndexes bounds the expression indexes of one collection (query paths are the client's
// choice); past it, conditions on new paths still run in SQL, without an index.
const maxIndexes = 32

// ensureIndex creates the expression index for a path on first use.
func (b *sqliteBackend) ensureIndex(ctx context.Context, cid int64, path string) error {
	if path == "_id" {
		return nil
	}
	h := indexHash(path)
	b.mu.Lock()
	done := b.indexed[cid][h] || len(b.indexed[cid]) >= maxIndexes
	b.mu.Unlock()
	if done {
		return nil
	}
	t := table(cid)
	if _, err := b.db.ExecContext(ctx, `CREATE INDEX IF NOT EXISTS `+t+`_ix_`+h+` ON `+t+` (`+extractExpr(path)+`)`); err != nil {
		return err
	}
	b.mu.Lock()
	if b.indexed[cid] == nil {
		b.indexed[cid] = map[string]bool{}
	}
	b.indexed[cid][h] = true
	b.mu.Unlock()
	return nil
}

// where renders conds as SQL. Range conditions are bounded to their type's band in SQLite's
// order (numbers < text), so "> 5" does not drag every string along.
func (b *sqliteBackend) where(conds []Cond) (string, []any) {
	var parts []string
	var args []any
	// A range needs its type band only on a side no other condition on the path bounds; a
	// redundant band bound could be the one SQLite picks for the index range.
	type sides struct{ lower, upper bool }
	bounded := map[string]*sides{}
	for _, c := range conds {
		if len(c.Op) > 0 && (c.Op[0] == '>' || c.Op[0] == '<') {
			_, isStr := c.Values[0].(string)
			k := c.Path + "\x00" + map[bool]string{true: "s", false: "n"}[isStr]
			if bounded[k] == nil {
				bounded[k] = &sides{}
			}
			if c.Op[0] == '>' {
				bounded[k].lower = true
			} else {
				bounded[k].upper = true
			}
		}
	}
	banded := map[string]bool{}
	for _, c := range conds {
		col := extractExpr(c.Path)
		if c.Path == "_id" {
			col = "id"
		}
		switch c.Op {
		case "=":
			parts = append(parts, col+" = ?")
			args = append(args, sqlValue(c.Values[0]))
		case "in":
			ph := strings.TrimSuffix(strings.Repeat("?,", len(c.Values)), ",")
			parts = append(parts, col+" IN ("+ph+")")
			for _, v := range c.Values {
				args = append(args, sqlValue(v))
			}
		case ">", ">=", "<", "<=":
			parts = append(parts, col+" "+c.Op+" ?")
			args = append(args, sqlValue(c.Values[0]))
			_, isStr := c.Values[0].(string)
			k := c.Path + "\x00" + map[bool]string{true: "s", false: "n"}[isStr]
			sd := bounded[k]
			if banded[k] || (sd.lower && sd.upper) {
				continue
			}
			banded[k] = true
			switch {
			case isStr && !sd.upper:
				parts = append(parts, col+" < x''")
			case isStr && !sd.lower:
				parts = append(parts, col+" >= ''")
			case !isStr && !sd.upper:
				parts = append(parts, col+" < ''")
			}
		}
	}
	if len(parts) == 0 {
		return "", nil
	}
	return " WHERE " + strings.Join(parts, " AND "), args
}

func sqlValue(v any) any {
	if b, ok := v.(bool); ok {
		if b {
			return 1
		}
		return 0
	}
	return v
}

// orderBy sorts null and missing, then numbers, then strings, then booleans (BSON order for
// the types a pushed-down sort path can hold), each by value, then by insertion.
func orderBy(order []OrderKey) string {
	var sb strings.Builder
	sb.WriteString(" ORDER BY ")
	for _, k := range order {
		dir := ""
		if k.Desc {
			dir = " DESC"
		}
		if k.Ranked {
			jp := "'" + jsonPath(k.Path) + "'"
			sb.WriteString("CASE json_type(doc, " + jp + ") WHEN 'integer' THEN 2 WHEN 'real' THEN 2 WHEN 'text' THEN 3 WHEN 'true' THEN 4 WHEN 'false' THEN 4 ELSE 1 END" + dir + ", ")
		}
		sb.WriteString(extractExpr(k.Path) + dir + ", ")
	}
	sb.WriteString("rid")
	return sb.String()
}

func (b *sqliteBackend) Scan(ctx context.Context, cid int64, conds []Cond, order []OrderKey, fn func(Row) (bool, error)) error {
	for _, c := range conds {
		if err := b.ensureIndex(ctx, cid, c.Path); err != nil {
			return err
		}
	}
	if len(order) > 0 && !order[0].Ranked {
		if err := b.ensureIndex(ctx, cid, order[0].Path); err != nil {
			return err
		}
	}
	w, args := b.where(conds)
	rows, err := b.query(ctx, `SELECT id, version, doc FROM `+table(cid)+w+orderBy(order), args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var r Row
		if err := rows.Scan(&r.Key, &r.Version, &r.Doc); err != nil {
			return err
		}
		more, err := fn(r)
		if err != nil {
			return err
		}
		if !more {
			return nil
		}
	}
	return rows.Err()
}

func (b *sqliteBackend) Explain(ctx context.Context, cid int64, conds []Cond) (string, error) {
	for _, c := range conds {
		if err := b.ensureIndex(ctx, cid, c.Path); err != nil {
			return "", err
		}
	}
	w, args := b.where(conds)
	rows, err := b.db.QueryContext(ctx, `EXPLAIN QUERY PLAN SELECT id, version, doc FROM `+table(cid)+w+` ORDER BY rid`, args...)
	if err != nil {
		return "", err
	}
	defer rows.Close()
	var lines []string
	for rows.Next() {
		var id, parent, notused int
		var detail string
		if err := rows.Scan(&id, &parent, &notused, &detail); err != nil {
			return "", err
		}
		lines = append(lines, detail)
	}
	return strings.Join(lines, "\n"), rows.Err()
}

func (b *sqliteBackend) Get(ctx context.Context, cid int64, key string) (Row, bool, error) {
	rows, err := b.query(ctx, `SELECT version, doc FROM `+table(cid)+` WHERE id = ?`, key)
	if err != nil {
		return Row{}, false, err
	}
	defer rows.Close()
	if !rows.Next() {
		return Row{}, false, rows.Err()
	}
	r := Row{Key: key}
	if err := rows.Scan(&r.Version, &r.Doc); err != nil {
		return Row{}, false, err
	}
	return r, true, nil
}

func (b *sqliteBackend) Count(ctx context.Context, cid int64) (int, error) {
	var n int
	err := b.db.QueryRowContext(ctx, `SELECT count(*) FROM `+table(cid)).Scan(&n)
	return n, err
}

func (b *sqliteBackend) Apply(ctx context.Context, writes []Write) (int64, error) {
	seq, err := b.apply(ctx, writes)
	if err != nil {
		return 0, err
	}
	return seq, nil
}

func (b *sqliteBackend) apply(ctx context.Context, writes []Write) (int64, error) {
	tx, err := b.db.BeginTx(ctx, nil)
	if err != nil {
		return 0, err
	}
	defer tx.Rollback()
	// The version comes from the file, so that two processes writing it stay ordered.
	// a document write is four statements: they run prepared (sqlstmt.Tx)
	ts := b.stmts.In(tx)
	var seq int64
	if err := ts.QueryRow(ctx, lastSeqSQL).Scan(&seq); err != nil && !errors.Is(err, sql.ErrNoRows) {
		return 0, err
	}
	seq++
	var newImpure []Write
	for _, w := range writes {
		t := table(w.CID)
		if w.Doc == nil {
			if _, err := ts.Exec(ctx, `DELETE FROM `+t+` WHERE id = ?`, w.Key); err != nil {
				return 0, err
			}
			continue
		}
		if _, err := ts.Exec(ctx, `INSERT INTO `+t+` (id, version, doc) VALUES (?, ?, ?) ON CONFLICT (id) DO UPDATE SET version = excluded.version, doc = excluded.doc`, w.Key, seq, string(w.Doc)); err != nil {
			return 0, err
		}
		if len(w.Impure) > 0 {
			b.mu.Lock()
			known := b.impure[w.CID]
			var fresh []string
			for _, p := range w.Impure {
				if !known[p] {
					fresh = append(fresh, p)
				}
			}
			b.mu.Unlock()
			for _, p := range fresh {
				if _, err := tx.ExecContext(ctx, `INSERT OR IGNORE INTO impure_paths (cid, path) VALUES (?, ?)`, w.CID, p); err != nil {
					return 0, err
				}
			}
			if len(fresh) > 0 {
				newImpure = append(newImpure, Write{CID: w.CID, Impure: fresh})
			}
		}
	}
	if _, err := ts.Exec(ctx, `INSERT INTO meta (k, v) VALUES ('seq', ?) ON CONFLICT (k) DO UPDATE SET v = excluded.v`, seq); err != nil {
		return 0, err
	}
	// Impure paths become visible before the rows do (under DB's write lock), so a
	// concurrent planner errs on the side of not pushing down.
	b.mu.Lock()
	for _, w := range newImpure {
		if b.impure[w.CID] == nil {
			b.impure[w.CID] = map[string]bool{}
		}
		for _, p := range w.Impure {
			b.impure[w.CID][p] = true
		}
	}
	b.mu.Unlock()
	if err := tx.Commit(); err != nil {
		return 0, err
	}
	ts.PrepareMissed(ctx)
	return seq, nil
}

func (b *sqliteBackend) Reload(ctx context.Context) error {
	b.mu.Lock()
	b.indexed = map[int64]map[string]bool{}
	b.impure = map[int64]map[string]bool{}
	b.cids = map[[2]string]int64{}
	b.mu.Unlock()
	return b.load()
}

func (b *sqliteBackend) ImpurePaths(cid int64) map[string]bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := make(map[string]bool, len(b.impure[cid]))
	for p := range b.impure[cid] {
		out[p] = true
	}
	return out
}

const lastSeqSQL = `SELECT v FROM meta WHERE k = 'seq'`

func (b *sqliteBackend) LastSeq(ctx context.Context) (int64, error) {
	var v int64
	err := b.stmts.QueryRow(ctx, lastSeqSQL).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	return v, err
}

func (b *sqliteBackend) Close() error {
	b.stmts.Close()
	return b.db.Close()
}
