// Package pgdb opens fn's PostgreSQL database and keeps its schema: every table of every
// PostgreSQL backend (control plane, log sink, artifacts, timer lease, LeanStorage data) is
// created by the numbered migrations below, in this one place. Open applies the missing ones
// under an advisory lock, so that replicas starting together migrate once and the others wait;
// Check says whether a database is reachable and current without changing it.
package pgdb

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// migrations are applied in order; a released one is never edited, only followed by another.
var migrations = []string{
	// 1: everything fn serve keeps
	`
CREATE TABLE fn_meta (
  key   TEXT PRIMARY KEY,
  value TEXT NOT NULL
);
CREATE TABLE fn_apps (
  id         TEXT PRIMARY KEY,
  name       TEXT NOT NULL UNIQUE,
  app_key    TEXT NOT NULL,
  master_key TEXT NOT NULL,
  hook_key   TEXT NOT NULL,
  env_id     TEXT NOT NULL,
  wx_app_id  TEXT NOT NULL,
  wx_secret  TEXT NOT NULL,
  created_at TIMESTAMPTZ NOT NULL
);
CREATE TABLE fn_version_counters (
  app_id TEXT PRIMARY KEY,
  last   INTEGER NOT NULL
);
CREATE TABLE fn_versions (
  app_id      TEXT NOT NULL,
  id          INTEGER NOT NULL,
  env         TEXT NOT NULL,
  created_at  TIMESTAMPTZ NOT NULL,
  message     TEXT NOT NULL,
  who         TEXT NOT NULL,
  digest      TEXT NOT NULL,
  manifest    JSONB NOT NULL,
  promoted    INTEGER NOT NULL,
  ever_active BOOLEAN NOT NULL DEFAULT false,
  PRIMARY KEY (app_id, id)
);
CREATE TABLE fn_active (
  app_id     TEXT NOT NULL,
  env        TEXT NOT NULL,
  version_id INTEGER NOT NULL,
  PRIMARY KEY (app_id, env)
);
CREATE TABLE fn_secrets (
  app_id TEXT NOT NULL,
  name   TEXT NOT NULL,
  value  TEXT NOT NULL,
  PRIMARY KEY (app_id, name)
);
CREATE TABLE fn_wx_sessions (
  token_hash TEXT PRIMARY KEY,
  app_id     TEXT NOT NULL,
  open_id    TEXT NOT NULL,
  wx_app_id  TEXT NOT NULL,
  union_id   TEXT NOT NULL,
  expires    TIMESTAMPTZ NOT NULL
);
CREATE INDEX fn_wx_sessions_app ON fn_wx_sessions (app_id);
CREATE INDEX fn_wx_sessions_expires ON fn_wx_sessions (expires);

CREATE TABLE fn_log_counter (
  one  BOOLEAN PRIMARY KEY DEFAULT true CHECK (one),
  last BIGINT NOT NULL
);
INSERT INTO fn_log_counter (one, last) VALUES (true, 0);
CREATE TABLE fn_logs (
  id          BIGINT PRIMARY KEY,
  time        TIMESTAMPTZ NOT NULL,
  app         TEXT NOT NULL,
  env         TEXT NOT NULL,
  version     INTEGER NOT NULL,
  function    TEXT NOT NULL,
  request_id  TEXT NOT NULL,
  level       TEXT NOT NULL,
  level_rank  SMALLINT NOT NULL,
  message     TEXT NOT NULL,
  stream      TEXT NOT NULL,
  invocation  BOOLEAN NOT NULL,
  status      INTEGER NOT NULL,
  duration_ms DOUBLE PRECISION NOT NULL,
  identity    TEXT NOT NULL,
  kind        TEXT NOT NULL
);
CREATE INDEX fn_logs_app_id ON fn_logs (app, id);
CREATE INDEX fn_logs_request ON fn_logs (request_id) WHERE request_id <> '';

CREATE TABLE fn_blobs (
  hash       TEXT PRIMARY KEY,
  size       BIGINT NOT NULL,
  created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE TABLE fn_blob_chunks (
  hash TEXT NOT NULL,
  n    INTEGER NOT NULL,
  data BYTEA NOT NULL,
  PRIMARY KEY (hash, n)
);

CREATE TABLE fn_timer_fires (
  key        TEXT NOT NULL,
  at         TIMESTAMPTZ NOT NULL,
  claimed_at TIMESTAMPTZ NOT NULL DEFAULT now(),
  PRIMARY KEY (key, at)
);

CREATE TABLE fn_objects (
  app        TEXT NOT NULL,
  class      TEXT NOT NULL,
  id         TEXT NOT NULL,
  created_at TIMESTAMPTZ NOT NULL,
  updated_at TIMESTAMPTZ NOT NULL,
  fields     JSONB NOT NULL,
  PRIMARY KEY (app, class, id)
);
CREATE INDEX fn_objects_created ON fn_objects (app, class, created_at, id);
CREATE INDEX fn_objects_updated ON fn_objects (app, class, updated_at);
-- without the pending list (fastupdate), so a query right after a burst of writes uses the
-- index at full speed instead of scanning the list until a vacuum merges it
CREATE INDEX fn_objects_fields ON fn_objects USING GIN (fields jsonb_path_ops) WITH (fastupdate = off);
-- unique user fields are the database's to enforce: replicas sign users up at once
CREATE UNIQUE INDEX fn_objects_username ON fn_objects (app, (fields->>'username'))
  WHERE class = '_User' AND coalesce(fields->>'username', '') <> '';
CREATE UNIQUE INDEX fn_objects_email ON fn_objects (app, (fields->>'email'))
  WHERE class = '_User' AND coalesce(fields->>'email', '') <> '';
CREATE UNIQUE INDEX fn_objects_phone ON fn_objects (app, (fields->>'mobilePhoneNumber'))
  WHERE class = '_User' AND coalesce(fields->>'mobilePhoneNumber', '') <> '';
CREATE TABLE fn_sessions (
  app        TEXT NOT NULL,
  token      TEXT NOT NULL,
  user_id    TEXT NOT NULL,
  seq        BIGSERIAL,
  PRIMARY KEY (app, token)
);
CREATE INDEX fn_sessions_user ON fn_sessions (app, user_id, seq);
CREATE TABLE fn_relations (
  app          TEXT NOT NULL,
  owner_class  TEXT NOT NULL,
  owner_id     TEXT NOT NULL,
  key          TEXT NOT NULL,
  target_class TEXT NOT NULL,
  target_id    TEXT NOT NULL,
  seq          BIGSERIAL,
  PRIMARY KEY (app, owner_class, owner_id, key, target_id)
);
CREATE INDEX fn_relations_target ON fn_relations (app, owner_class, key, target_id);
`,
	// 2: invocation records keep their request and caller (replays)
	`ALTER TABLE fn_logs ADD COLUMN replay TEXT NOT NULL DEFAULT '';`,
	// 3: functions edited online, with their revisions
	`CREATE TABLE fn_online (
  app_id     TEXT NOT NULL,
  name       TEXT NOT NULL,
  revision   INTEGER NOT NULL,
  type       TEXT NOT NULL,
  class      TEXT NOT NULL,
  hook       TEXT NOT NULL,
  cron       TEXT NOT NULL,
  code       TEXT NOT NULL,
  created_at TIMESTAMPTZ NOT NULL,
  PRIMARY KEY (app_id, name, revision)
);`,
	// 4: web console logins, shared by the replicas
	`CREATE TABLE fn_console_sessions (
  token_hash TEXT PRIMARY KEY,
  admin      BOOLEAN NOT NULL,
  app_id     TEXT NOT NULL,
  app_name   TEXT NOT NULL,
  csrf       TEXT NOT NULL,
  expires    TIMESTAMPTZ NOT NULL
);
CREATE INDEX fn_console_sessions_expires ON fn_console_sessions (expires);`,
}

// Version is the schema version this build of fn needs.
func Version() int { return len(migrations) }

// lockKey is the advisory lock migrations take ("fn" schema, arbitrary but fixed).
const lockKey = 0x666e_0001

// ErrSchema says the database's schema is not the one this build needs.
var ErrSchema = errors.New("the database schema is not current")

// Open connects to dsn and migrates the schema to Version.
func Open(ctx context.Context, dsn string) (*pgxpool.Pool, error) {
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		// pgx quotes the DSN in some errors; say only what is wrong
		return nil, fmt.Errorf("postgres: the database URL is not valid: %w", err) // pgconn redacts the password
	}
	// two connections stay LISTENing (control-plane changes, log followers); the rest serve
	// requests, up to 64 in flight per app: a small pool would queue them
	if !strings.Contains(dsn, "pool_max_conns") && cfg.MaxConns < 20 {
		cfg.MaxConns = 20
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("postgres: %w", err)
	}
	if err := Migrate(ctx, pool); err != nil {
		pool.Close()
		return nil, err
	}
	return pool, nil
}

// Migrate applies the missing migrations, one transaction each, holding the advisory lock so
// that concurrent replicas do not apply one twice.
func Migrate(ctx context.Context, pool *pgxpool.Pool) error {
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("postgres: connecting: %w", err)
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock($1)`, int64(lockKey)); err != nil {
		return fmt.Errorf("postgres: taking the migration lock: %w", err)
	}
	defer conn.Exec(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock($1)`, int64(lockKey))
	if _, err := conn.Exec(ctx, `CREATE TABLE IF NOT EXISTS fn_schema_migrations (
		version INTEGER PRIMARY KEY, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())`); err != nil {
		return fmt.Errorf("postgres: migrations table: %w", err)
	}
	have, err := current(ctx, conn.Conn())
	if err != nil {
		return err
	}
	if have > len(migrations) {
		return fmt.Errorf("postgres: the database is at schema %d, newer than this fn (%d): %w", have, len(migrations), ErrSchema)
	}
	for v := have + 1; v <= len(migrations); v++ {
		err := pgx.BeginFunc(ctx, conn.Conn(), func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, migrations[v-1]); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, `INSERT INTO fn_schema_migrations (version) VALUES ($1)`, v)
			return err
		})
		if err != nil {
			return fmt.Errorf("postgres: applying schema migration %d: %w", v, err)
		}
	}
	return nil
}

func current(ctx context.Context, conn *pgx.Conn) (int, error) {
	var v int
	if err := conn.QueryRow(ctx, `SELECT coalesce(max(version), 0) FROM fn_schema_migrations`).Scan(&v); err != nil {
		return 0, fmt.Errorf("postgres: reading the schema version: %w", err)
	}
	return v, nil
}

// Check connects to dsn within timeout and reports whether the schema is the one this fn
// needs, without migrating.
func Check(ctx context.Context, dsn string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		return fmt.Errorf("postgres: the database URL is not valid: %w", err) // pgconn redacts the password
	}
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return fmt.Errorf("postgres: connecting to %s:%d: %w", cfg.Host, cfg.Port, err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	var exists bool
	if err := conn.QueryRow(ctx, `SELECT to_regclass('fn_schema_migrations') IS NOT NULL`).Scan(&exists); err != nil {
		return fmt.Errorf("postgres: %w", err)
	}
	if !exists {
		return fmt.Errorf("postgres: no fn schema yet (fn serve creates it at its first start): %w", ErrSchema)
	}
	v, err := current(ctx, conn)
	if err != nil {
		return err
	}
	if v != len(migrations) {
		return fmt.Errorf("postgres: the database is at schema %d, this fn needs %d (fn serve migrates at start): %w", v, len(migrations), ErrSchema)
	}
	return nil
}
