// Package pg is the timer lease of a cluster: a claim is a row of fn_timer_fires, whose primary
// key (timer, scheduled time) lets exactly one replica insert it. A replica that dies mid-run
// has already recorded its claim, so the fire is not repeated; the next fire is a new key that
// any live replica wins.
package pg

import (
	"context"
	"fmt"
	"time"

	"github.com/fnhq/fn/lease"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Lease is the PostgreSQL lease.
type Lease struct{ pool *pgxpool.Pool }

var _ lease.Lease = (*Lease)(nil)

// New returns a lease over a pool migrated by pgdb.Open.
func New(pool *pgxpool.Pool) *Lease { return &Lease{pool: pool} }

// history is how long claimed fires are kept beyond the newest one of each timer.
const history = 24 * time.Hour

// Claim implements lease.Lease. Within a transaction holding the timer's advisory lock it
// refuses a fire at or before the newest claimed one (a replica whose clock lags must not fire
// again what another one moved past), then inserts the claim; the unique key is the last word.
func (l *Lease) Claim(ctx context.Context, key string, at time.Time) (bool, error) {
	at = at.UTC().Truncate(time.Microsecond)
	won := false
	err := pgx.BeginFunc(ctx, l.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtextextended($1, 7))`, key); err != nil {
			return err
		}
		var later bool
		if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM fn_timer_fires WHERE key = $1 AND at >= $2)`, key, at).Scan(&later); err != nil {
			return err
		}
		if later {
			return nil
		}
		tag, err := tx.Exec(ctx, `INSERT INTO fn_timer_fires (key, at) VALUES ($1, $2) ON CONFLICT DO NOTHING`, key, at)
		if err != nil {
			return err
		}
		won = tag.RowsAffected() == 1
		_, err = tx.Exec(ctx, `DELETE FROM fn_timer_fires WHERE key = $1 AND at < $2`, key, at.Add(-history))
		return err
	})
	if err != nil {
		return false, fmt.Errorf("timer lease: claiming %s at %s: %w", key, at.Format(time.RFC3339), err)
	}
	return won, nil
}
