package hosting

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	artifactspg "github.com/fnhq/fn/artifacts/pg"
	controlpg "github.com/fnhq/fn/control/pg"
	"github.com/fnhq/fn/internal/pgdb"
	leasepg "github.com/fnhq/fn/lease/pg"
	logsinkpg "github.com/fnhq/fn/logsink/pg"
	"github.com/fnhq/fn/store"
	storepg "github.com/fnhq/fn/store/pg"
)

// IsPostgresURL reports whether a --db value names PostgreSQL.
func IsPostgresURL(dsn string) bool {
	return strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://")
}

// DescribeDB is a DSN without its password, for messages.
func DescribeDB(dsn string) string {
	u, err := url.Parse(dsn)
	if err != nil || u.Host == "" {
		return "the database"
	}
	return u.Host + u.Path
}

// UsePostgres connects to dsn, migrates its schema (once, however many replicas start
// together) and sets every backend of cfg to PostgreSQL: the control plane (whose changes
// other replicas follow), artifacts, logs, the timer lease and each app's data. done releases
// them; call it after Runtime.Close.
func UsePostgres(ctx context.Context, cfg *Config, dsn string) (done func(), err error) {
	if !IsPostgresURL(dsn) {
		return nil, errors.New("the database URL must start with postgres:// or postgresql://")
	}
	pool, err := pgdb.Open(ctx, dsn)
	if err != nil {
		return nil, err
	}
	retention := cfg.LogRetention
	if retention == 0 {
		retention = 10000
	}
	logs, err := logsinkpg.New(pool, logsinkpg.Options{Retention: retention})
	if err != nil {
		pool.Close()
		return nil, err
	}
	cfg.Control = controlpg.New(pool, false)
	cfg.Artifacts = artifactspg.New(pool)
	cfg.Logs = logs
	cfg.Lease = leasepg.New(pool)
	cfg.Stores = func(appID string) (store.Store, error) { return storepg.New(pool, appID), nil }
	return func() {
		logs.Close()
		pool.Close()
	}, nil
}

// CheckPostgres is fn serve --check with --db: the database answers and its schema is the one
// this fn needs.
func CheckPostgres(ctx context.Context, dsn string) error {
	if !IsPostgresURL(dsn) {
		return errors.New("the database URL must start with postgres:// or postgresql://")
	}
	if err := pgdb.Check(ctx, dsn, 10*time.Second); err != nil {
		return fmt.Errorf("%s: %w", DescribeDB(dsn), err)
	}
	return nil
}

// ErrSchema is CheckPostgres's error for a database whose schema is missing or not current.
var ErrSchema = pgdb.ErrSchema
