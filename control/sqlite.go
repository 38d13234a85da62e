package control

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/fnhq/fn/api"
	"github.com/fnhq/fn/internal/dbfile"

	_ "modernc.org/sqlite" // pure-Go SQLite driver
)

// SQLite is the embedded control plane: one database file beside fn serve's data.
type SQLite struct {
	db *sql.DB
}

var _ Plane = (*SQLite)(nil)

// The version counter has its own table, never cleared, so that an id is not handed out twice
// even when the versions holding it are gone (DiscardVersion, DeleteApp and a new app of the
// same id). ever_active marks versions that DiscardVersion must keep: they are history.
const controlSchema = `
CREATE TABLE IF NOT EXISTS meta (
  key   TEXT PRIMARY KEY,
  value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS apps (
  id         TEXT PRIMARY KEY,
  name       TEXT NOT NULL UNIQUE,
  app_key    TEXT NOT NULL,
  master_key TEXT NOT NULL,
  hook_key   TEXT NOT NULL,
  env_id     TEXT NOT NULL,
  wx_app_id  TEXT NOT NULL,
  wx_secret  TEXT NOT NULL,
  created_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS version_counters (
  app_id TEXT PRIMARY KEY,
  last   INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS versions (
  app_id      TEXT NOT NULL,
  id          INTEGER NOT NULL,
  env         TEXT NOT NULL,
  created_at  TEXT NOT NULL,
  message     TEXT NOT NULL,
  who         TEXT NOT NULL,
  digest      TEXT NOT NULL,
  manifest    TEXT NOT NULL,
  promoted    INTEGER NOT NULL,
  ever_active INTEGER NOT NULL DEFAULT 0,
  PRIMARY KEY (app_id, id)
);
CREATE TABLE IF NOT EXISTS active (
  app_id     TEXT NOT NULL,
  env        TEXT NOT NULL,
  version_id INTEGER NOT NULL,
  PRIMARY KEY (app_id, env)
);
CREATE TABLE IF NOT EXISTS secrets (
  app_id TEXT NOT NULL,
  name   TEXT NOT NULL,
  value  TEXT NOT NULL,
  PRIMARY KEY (app_id, name)
);
CREATE TABLE IF NOT EXISTS sessions (
  token_hash TEXT PRIMARY KEY,
  app_id     TEXT NOT NULL,
  open_id    TEXT NOT NULL,
  wx_app_id  TEXT NOT NULL,
  union_id   TEXT NOT NULL,
  expires    INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS sessions_app ON sessions (app_id);
CREATE INDEX IF NOT EXISTS sessions_expires ON sessions (expires);
CREATE TABLE IF NOT EXISTS console_sessions (
  token_hash TEXT PRIMARY KEY,
  admin      INTEGER NOT NULL,
  app_id     TEXT NOT NULL,
  app_name   TEXT NOT NULL,
  csrf       TEXT NOT NULL,
  expires    INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS online (
  app_id     TEXT NOT NULL,
  name       TEXT NOT NULL,
  revision   INTEGER NOT NULL,
  type       TEXT NOT NULL,
  class      TEXT NOT NULL,
  hook       TEXT NOT NULL,
  cron       TEXT NOT NULL,
  code       TEXT NOT NULL,
  created_at INTEGER NOT NULL, -- µs since 1970
  PRIMARY KEY (app_id, name, revision)
);
`

// OpenSQLite opens (creating if needed) the control-plane database at path. The directory is
// made 0700 and the file 0600: the database holds app keys and secrets. SQLite gives its WAL
// and shared-memory files the mode of the database file.
func OpenSQLite(path string) (*SQLite, error) {
	if err := dbfile.Prepare(path); err != nil {
		return nil, fmt.Errorf("control plane: %w", err)
	}
	db, err := sql.Open("sqlite", dbfile.DSN(path, "FULL"))
	if err != nil {
		return nil, fmt.Errorf("control plane %s: %w", path, err)
	}
	// One connection: the control plane sees a handful of writes a minute, and serialising them
	// in the pool makes every transaction's read-then-write atomic without SQLITE_BUSY retries.
	db.SetMaxOpenConns(1)
	if _, err := db.Exec(controlSchema); err != nil {
		db.Close()
		return nil, fmt.Errorf("control plane %s: %w", path, err)
	}
	return &SQLite{db: db}, nil
}

// Close implements Plane.
func (s *SQLite) Close() error { return s.db.Close() }

// tx runs fn in a transaction, committing when it returns nil.
func (s *SQLite) tx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("control plane: %w", err)
	}
	if err := fn(tx); err != nil {
		tx.Rollback()
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("control plane: commit: %w", err)
	}
	return nil
}

func wrap(err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("control plane: %w", err)
}

func fmtTime(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

func parseTime(s string) (time.Time, error) {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("control plane: stored time %q: %w", s, err)
	}
	return t, nil
}

func isUnique(err error) bool { return err != nil && strings.Contains(err.Error(), "UNIQUE") }

// AdminTokenHash implements Plane.
func (s *SQLite) AdminTokenHash(ctx context.Context) (string, error) {
	var h string
	err := s.db.QueryRowContext(ctx, `SELECT value FROM meta WHERE key = 'admin_token_hash'`).Scan(&h)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	return h, wrap(err)
}

// SetAdminTokenHash implements Plane.
func (s *SQLite) SetAdminTokenHash(ctx context.Context, hash string) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO meta (key, value) VALUES ('admin_token_hash', ?)
		ON CONFLICT (key) DO UPDATE SET value = excluded.value`, hash)
	return wrap(err)
}

// CreateApp implements Plane.
func (s *SQLite) CreateApp(ctx context.Context, app api.App, wxSecret string) error {
	if app.ID == "" || app.Name == "" {
		return fmt.Errorf("control plane: an app needs an id and a name (got %q, %q)", app.ID, app.Name)
	}
	return s.tx(ctx, func(tx *sql.Tx) error {
		// an id must not be another app's name either, or App(idOrName) would be ambiguous
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM apps WHERE id IN (?, ?) OR name IN (?, ?)`,
			app.ID, app.Name, app.ID, app.Name).Scan(&n); err != nil {
			return wrap(err)
		}
		if n > 0 {
			return fmt.Errorf("app %s (%s): %w", app.Name, app.ID, ErrExists)
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO apps (id, name, app_key, master_key, hook_key, env_id, wx_app_id, wx_secret, created_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			app.ID, app.Name, app.AppKey, app.MasterKey, app.HookKey, app.EnvID, app.WXAppID, wxSecret, fmtTime(app.CreatedAt))
		if isUnique(err) {
			return fmt.Errorf("app %s (%s): %w", app.Name, app.ID, ErrExists)
		}
		return wrap(err)
	})
}

const appColumns = `id, name, app_key, master_key, hook_key, env_id, wx_app_id, created_at`

type scanner interface{ Scan(dest ...any) error }

func scanApp(r scanner) (api.App, error) {
	var a api.App
	var created string
	if err := r.Scan(&a.ID, &a.Name, &a.AppKey, &a.MasterKey, &a.HookKey, &a.EnvID, &a.WXAppID, &created); err != nil {
		return a, err
	}
	t, err := parseTime(created)
	a.CreatedAt = t
	return a, err
}

// Apps implements Plane.
func (s *SQLite) Apps(ctx context.Context) ([]api.App, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+appColumns+` FROM apps ORDER BY name`)
	if err != nil {
		return nil, wrap(err)
	}
	defer rows.Close()
	out := []api.App{}
	for rows.Next() {
		a, err := scanApp(rows)
		if err != nil {
			return nil, wrap(err)
		}
		out = append(out, a)
	}
	return out, wrap(rows.Err())
}

// App implements Plane.
func (s *SQLite) App(ctx context.Context, idOrName string) (api.App, error) {
	a, err := scanApp(s.db.QueryRowContext(ctx, `SELECT `+appColumns+` FROM apps WHERE id = ? OR name = ? ORDER BY id = ? DESC LIMIT 1`,
		idOrName, idOrName, idOrName))
	if errors.Is(err, sql.ErrNoRows) {
		return api.App{}, fmt.Errorf("app %q: %w", idOrName, ErrNotFound)
	}
	return a, wrap(err)
}

// appExists fails with ErrNotFound for an unknown app id.
func appExists(ctx context.Context, q interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}, appID string) error {
	var one int
	err := q.QueryRowContext(ctx, `SELECT 1 FROM apps WHERE id = ?`, appID).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("app %q: %w", appID, ErrNotFound)
	}
	return wrap(err)
}

// DeleteApp implements Plane. The version counter stays: a new app of the same id continues it.
func (s *SQLite) DeleteApp(ctx context.Context, id string) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		if err := appExists(ctx, tx, id); err != nil {
			return err
		}
		for _, table := range []string{"versions", "active", "secrets", "sessions", "online", "apps"} {
			col := "app_id"
			if table == "apps" {
				col = "id"
			}
			if _, err := tx.ExecContext(ctx, `DELETE FROM `+table+` WHERE `+col+` = ?`, id); err != nil {
				return wrap(err)
			}
		}
		return nil
	})
}

// WXSecret implements Plane.
func (s *SQLite) WXSecret(ctx context.Context, appID string) (string, error) {
	var secret string
	err := s.db.QueryRowContext(ctx, `SELECT wx_secret FROM apps WHERE id = ?`, appID).Scan(&secret)
	if errors.Is(err, sql.ErrNoRows) {
		return "", fmt.Errorf("app %q: %w", appID, ErrNotFound)
	}
	return secret, wrap(err)
}

// CreateVersion implements Plane.
func (s *SQLite) CreateVersion(ctx context.Context, appID string, v api.Version) (api.Version, error) {
	if v.Env == "" {
		return api.Version{}, fmt.Errorf("control plane: a version needs an environment")
	}
	manifest, err := json.Marshal(v.Manifest)
	if err != nil {
		return api.Version{}, fmt.Errorf("control plane: manifest: %w", err)
	}
	err = s.tx(ctx, func(tx *sql.Tx) error {
		if err := appExists(ctx, tx, appID); err != nil {
			return err
		}
		if err := tx.QueryRowContext(ctx, `INSERT INTO version_counters (app_id, last) VALUES (?, 1)
			ON CONFLICT (app_id) DO UPDATE SET last = last + 1 RETURNING last`, appID).Scan(&v.ID); err != nil {
			return wrap(err)
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO versions (app_id, id, env, created_at, message, who, digest, manifest, promoted)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			appID, v.ID, v.Env, fmtTime(v.CreatedAt), v.Message, v.Who, v.Digest, string(manifest), v.Promoted)
		return wrap(err)
	})
	if err != nil {
		return api.Version{}, err
	}
	v.Active = false
	return v, nil
}

// DiscardVersion implements Plane.
func (s *SQLite) DiscardVersion(ctx context.Context, appID string, id int) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		if err := appExists(ctx, tx, appID); err != nil {
			return err
		}
		var everActive bool
		err := tx.QueryRowContext(ctx, `SELECT ever_active FROM versions WHERE app_id = ? AND id = ?`, appID, id).Scan(&everActive)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("version %d of app %s: %w", id, appID, ErrNotFound)
		}
		if err != nil {
			return wrap(err)
		}
		if everActive {
			return fmt.Errorf("version %d of app %s has been active and is kept: %w", id, appID, ErrConflict)
		}
		_, err = tx.ExecContext(ctx, `DELETE FROM versions WHERE app_id = ? AND id = ?`, appID, id)
		return wrap(err)
	})
}

// Activate implements Plane.
func (s *SQLite) Activate(ctx context.Context, appID, env string, id int) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		if err := appExists(ctx, tx, appID); err != nil {
			return err
		}
		var venv string
		err := tx.QueryRowContext(ctx, `SELECT env FROM versions WHERE app_id = ? AND id = ?`, appID, id).Scan(&venv)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("version %d of app %s: %w", id, appID, ErrNotFound)
		}
		if err != nil {
			return wrap(err)
		}
		if venv != env {
			return fmt.Errorf("version %d belongs to %s, not %s: %w", id, venv, env, ErrConflict)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO active (app_id, env, version_id) VALUES (?, ?, ?)
			ON CONFLICT (app_id, env) DO UPDATE SET version_id = excluded.version_id`, appID, env, id); err != nil {
			return wrap(err)
		}
		_, err = tx.ExecContext(ctx, `UPDATE versions SET ever_active = 1 WHERE app_id = ? AND id = ?`, appID, id)
		return wrap(err)
	})
}

const versionSelect = `SELECT v.id, v.env, v.created_at, v.message, v.who, v.digest, v.manifest, v.promoted, a.version_id IS NOT NULL
	FROM versions v LEFT JOIN active a ON a.app_id = v.app_id AND a.env = v.env AND a.version_id = v.id`

func scanVersion(r scanner) (api.Version, error) {
	var v api.Version
	var created, manifest string
	if err := r.Scan(&v.ID, &v.Env, &created, &v.Message, &v.Who, &v.Digest, &manifest, &v.Promoted, &v.Active); err != nil {
		return v, err
	}
	t, err := parseTime(created)
	if err != nil {
		return v, err
	}
	v.CreatedAt = t
	if err := json.Unmarshal([]byte(manifest), &v.Manifest); err != nil {
		return v, fmt.Errorf("control plane: manifest of version %d: %w", v.ID, err)
	}
	return v, nil
}

// Versions implements Plane.
func (s *SQLite) Versions(ctx context.Context, appID string) ([]api.Version, error) {
	// the existence check and the listing read one snapshot
	var out []api.Version
	err := s.tx(ctx, func(tx *sql.Tx) error {
		if err := appExists(ctx, tx, appID); err != nil {
			return err
		}
		rows, err := tx.QueryContext(ctx, versionSelect+` WHERE v.app_id = ? ORDER BY v.id`, appID)
		if err != nil {
			return wrap(err)
		}
		defer rows.Close()
		out = []api.Version{}
		for rows.Next() {
			v, err := scanVersion(rows)
			if err != nil {
				return wrap(err)
			}
			out = append(out, v)
		}
		return wrap(rows.Err())
	})
	return out, err
}

// Version implements Plane.
func (s *SQLite) Version(ctx context.Context, appID string, id int) (api.Version, error) {
	v, err := scanVersion(s.db.QueryRowContext(ctx, versionSelect+` WHERE v.app_id = ? AND v.id = ?`, appID, id))
	if errors.Is(err, sql.ErrNoRows) {
		if err := appExists(ctx, s.db, appID); err != nil {
			return api.Version{}, err
		}
		return api.Version{}, fmt.Errorf("version %d of app %s: %w", id, appID, ErrNotFound)
	}
	return v, wrap(err)
}

// Active implements Plane.
func (s *SQLite) Active(ctx context.Context, appID, env string) (api.Version, error) {
	v, err := scanVersion(s.db.QueryRowContext(ctx, versionSelect+` WHERE v.app_id = ? AND a.env = ?`, appID, env))
	if errors.Is(err, sql.ErrNoRows) {
		if err := appExists(ctx, s.db, appID); err != nil {
			return api.Version{}, err
		}
		return api.Version{}, fmt.Errorf("no active version of %s in app %s: %w", env, appID, ErrNotFound)
	}
	return v, wrap(err)
}

// SetSecret implements Plane.
func (s *SQLite) SetSecret(ctx context.Context, appID, name, value string) error {
	if name == "" {
		return fmt.Errorf("control plane: a secret needs a name")
	}
	return s.tx(ctx, func(tx *sql.Tx) error {
		if err := appExists(ctx, tx, appID); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO secrets (app_id, name, value) VALUES (?, ?, ?)
			ON CONFLICT (app_id, name) DO UPDATE SET value = excluded.value`, appID, name, value)
		return wrap(err)
	})
}

// DeleteSecret implements Plane.
func (s *SQLite) DeleteSecret(ctx context.Context, appID, name string) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		if err := appExists(ctx, tx, appID); err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, `DELETE FROM secrets WHERE app_id = ? AND name = ?`, appID, name)
		if err != nil {
			return wrap(err)
		}
		n, err := res.RowsAffected()
		if err != nil {
			return wrap(err)
		}
		if n == 0 {
			return fmt.Errorf("secret %q of app %s: %w", name, appID, ErrNotFound)
		}
		return nil
	})
}

// Secrets implements Plane.
func (s *SQLite) Secrets(ctx context.Context, appID string) (map[string]string, error) {
	out := map[string]string{}
	err := s.tx(ctx, func(tx *sql.Tx) error {
		if err := appExists(ctx, tx, appID); err != nil {
			return err
		}
		rows, err := tx.QueryContext(ctx, `SELECT name, value FROM secrets WHERE app_id = ?`, appID)
		if err != nil {
			return wrap(err)
		}
		defer rows.Close()
		for rows.Next() {
			var k, v string
			if err := rows.Scan(&k, &v); err != nil {
				return wrap(err)
			}
			out[k] = v
		}
		return wrap(rows.Err())
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// TokenHash is how sessions are keyed: a stolen database does not yield usable tokens.
func TokenHash(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

// PutSession implements Plane. Expired sessions are dropped on the way, so the table holds
// only live ones.
func (s *SQLite) PutSession(ctx context.Context, token string, sess Session) error {
	if token == "" {
		return fmt.Errorf("control plane: a session needs a token")
	}
	return s.tx(ctx, func(tx *sql.Tx) error {
		if err := appExists(ctx, tx, sess.AppID); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM sessions WHERE expires <= ?`, time.Now().UnixMilli()); err != nil {
			return wrap(err)
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO sessions (token_hash, app_id, open_id, wx_app_id, union_id, expires) VALUES (?, ?, ?, ?, ?, ?)
			ON CONFLICT (token_hash) DO UPDATE SET app_id = excluded.app_id, open_id = excluded.open_id, wx_app_id = excluded.wx_app_id,
			union_id = excluded.union_id, expires = excluded.expires`,
			TokenHash(token), sess.AppID, sess.OpenID, sess.WXAppID, sess.UnionID, sess.Expires.UnixMilli())
		return wrap(err)
	})
}

// Session implements Plane.
func (s *SQLite) Session(ctx context.Context, token string) (Session, error) {
	var sess Session
	var expires int64
	err := s.db.QueryRowContext(ctx, `SELECT app_id, open_id, wx_app_id, union_id, expires FROM sessions WHERE token_hash = ? AND expires > ?`,
		TokenHash(token), time.Now().UnixMilli()).Scan(&sess.AppID, &sess.OpenID, &sess.WXAppID, &sess.UnionID, &expires)
	if errors.Is(err, sql.ErrNoRows) {
		return Session{}, fmt.Errorf("session: %w", ErrNotFound)
	}
	if err != nil {
		return Session{}, wrap(err)
	}
	sess.Expires = time.UnixMilli(expires).UTC()
	return sess, nil
}

// PutConsoleSession implements Plane.
func (s *SQLite) PutConsoleSession(ctx context.Context, token string, cs ConsoleSession) error {
	if token == "" {
		return fmt.Errorf("control plane: a console session needs a token")
	}
	return s.tx(ctx, func(tx *sql.Tx) error {
		if !cs.Admin {
			if err := appExists(ctx, tx, cs.AppID); err != nil {
				return err
			}
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM console_sessions WHERE expires <= ?`, time.Now().UnixMilli()); err != nil {
			return wrap(err)
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO console_sessions (token_hash, admin, app_id, app_name, csrf, expires) VALUES (?, ?, ?, ?, ?, ?)
			ON CONFLICT (token_hash) DO UPDATE SET admin = excluded.admin, app_id = excluded.app_id, app_name = excluded.app_name,
			csrf = excluded.csrf, expires = excluded.expires`,
			TokenHash(token), cs.Admin, cs.AppID, cs.AppName, cs.CSRF, cs.Expires.UnixMilli())
		return wrap(err)
	})
}

// ConsoleSession implements Plane.
func (s *SQLite) ConsoleSession(ctx context.Context, token string) (ConsoleSession, error) {
	var cs ConsoleSession
	var expires int64
	err := s.db.QueryRowContext(ctx, `SELECT admin, app_id, app_name, csrf, expires FROM console_sessions WHERE token_hash = ? AND expires > ?`,
		TokenHash(token), time.Now().UnixMilli()).Scan(&cs.Admin, &cs.AppID, &cs.AppName, &cs.CSRF, &expires)
	if errors.Is(err, sql.ErrNoRows) {
		return ConsoleSession{}, fmt.Errorf("console session: %w", ErrNotFound)
	}
	if err != nil {
		return ConsoleSession{}, wrap(err)
	}
	cs.Expires = time.UnixMilli(expires).UTC()
	return cs, nil
}

// DeleteConsoleSession implements Plane.
func (s *SQLite) DeleteConsoleSession(ctx context.Context, token string) error {
	_, err := s.db.ExecContext(ctx, `DELETE FROM console_sessions WHERE token_hash = ?`, TokenHash(token))
	return wrap(err)
}

// SaveOnline implements Plane.
func (s *SQLite) SaveOnline(ctx context.Context, appID string, f api.OnlineFunction) (api.OnlineFunction, error) {
	if f.Name == "" {
		return f, fmt.Errorf("control plane: an online function needs a name")
	}
	err := s.tx(ctx, func(tx *sql.Tx) error {
		if err := appExists(ctx, tx, appID); err != nil {
			return err
		}
		var last int
		if err := tx.QueryRowContext(ctx, `SELECT coalesce(max(revision), 0) FROM online WHERE app_id = ? AND name = ?`, appID, f.Name).Scan(&last); err != nil {
			return wrap(err)
		}
		f.Revision, f.Updated = last+1, time.Now().UTC().Truncate(time.Microsecond)
		if _, err := tx.ExecContext(ctx, `INSERT INTO online (app_id, name, revision, type, class, hook, cron, code, created_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`, appID, f.Name, f.Revision, f.Type, f.Class, f.Hook, f.Cron, f.Code, f.Updated.UnixMicro()); err != nil {
			return wrap(err)
		}
		_, err := tx.ExecContext(ctx, `DELETE FROM online WHERE app_id = ? AND name = ? AND revision <= ?`, appID, f.Name, f.Revision-MaxOnlineRevisions)
		return wrap(err)
	})
	return f, err
}

const onlineColumns = `name, revision, type, class, hook, cron, code, created_at`

func scanOnline(sc interface{ Scan(...any) error }) (api.OnlineFunction, error) {
	var f api.OnlineFunction
	var at int64
	err := sc.Scan(&f.Name, &f.Revision, &f.Type, &f.Class, &f.Hook, &f.Cron, &f.Code, &at)
	f.Updated = time.UnixMicro(at).UTC()
	return f, err
}

// OnlineFunctions implements Plane.
func (s *SQLite) OnlineFunctions(ctx context.Context, appID string) ([]api.OnlineFunction, error) {
	out := []api.OnlineFunction{}
	err := s.tx(ctx, func(tx *sql.Tx) error {
		if err := appExists(ctx, tx, appID); err != nil {
			return err
		}
		rows, err := tx.QueryContext(ctx, `SELECT `+onlineColumns+` FROM online o WHERE app_id = ?
			AND revision = (SELECT max(revision) FROM online WHERE app_id = o.app_id AND name = o.name) ORDER BY name`, appID)
		if err != nil {
			return wrap(err)
		}
		defer rows.Close()
		for rows.Next() {
			f, err := scanOnline(rows)
			if err != nil {
				return wrap(err)
			}
			out = append(out, f)
		}
		return wrap(rows.Err())
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// OnlineFunction implements Plane.
func (s *SQLite) OnlineFunction(ctx context.Context, appID, name string) (api.OnlineFunction, error) {
	var f api.OnlineFunction
	err := s.tx(ctx, func(tx *sql.Tx) error {
		if err := appExists(ctx, tx, appID); err != nil {
			return err
		}
		var err error
		f, err = scanOnline(tx.QueryRowContext(ctx, `SELECT `+onlineColumns+` FROM online WHERE app_id = ? AND name = ?
			ORDER BY revision DESC LIMIT 1`, appID, name))
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("online function %q of app %s: %w", name, appID, ErrNotFound)
		}
		return wrap(err)
	})
	return f, err
}

// OnlineHistory implements Plane.
func (s *SQLite) OnlineHistory(ctx context.Context, appID, name string) ([]api.OnlineRevision, error) {
	var out []api.OnlineRevision
	err := s.tx(ctx, func(tx *sql.Tx) error {
		if err := appExists(ctx, tx, appID); err != nil {
			return err
		}
		rows, err := tx.QueryContext(ctx, `SELECT revision, code, created_at FROM online WHERE app_id = ? AND name = ?
			ORDER BY revision DESC`, appID, name)
		if err != nil {
			return wrap(err)
		}
		defer rows.Close()
		for rows.Next() {
			var r api.OnlineRevision
			var at int64
			if err := rows.Scan(&r.Revision, &r.Code, &at); err != nil {
				return wrap(err)
			}
			r.Time = time.UnixMicro(at).UTC()
			out = append(out, r)
		}
		if err := rows.Err(); err != nil {
			return wrap(err)
		}
		if len(out) == 0 {
			return fmt.Errorf("online function %q of app %s: %w", name, appID, ErrNotFound)
		}
		return nil
	})
	return out, err
}

// DeleteOnline implements Plane.
func (s *SQLite) DeleteOnline(ctx context.Context, appID, name string) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		if err := appExists(ctx, tx, appID); err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, `DELETE FROM online WHERE app_id = ? AND name = ?`, appID, name)
		if err != nil {
			return wrap(err)
		}
		if n, err := res.RowsAffected(); err != nil {
			return wrap(err)
		} else if n == 0 {
			return fmt.Errorf("online function %q of app %s: %w", name, appID, ErrNotFound)
		}
		return nil
	})
}
