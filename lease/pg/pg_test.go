package pg_test

import (
	"context"
	"sync"
	"testing"

	"github.com/fnhq/fn/internal/pgdb"
	"github.com/fnhq/fn/internal/pgtest"
	"github.com/fnhq/fn/lease"
	"github.com/fnhq/fn/lease/leasetest"
	"github.com/fnhq/fn/lease/pg"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// Each handle has its own pool, as another replica's would.
func TestPostgres(t *testing.T) {
	var dsns sync.Map
	open := func(t *testing.T, dsn string) lease.Lease {
		pool, err := pgdb.Open(context.Background(), dsn)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(pool.Close)
		l := pg.New(pool)
		dsns.Store(l, dsn)
		return l
	}
	leasetest.Run(t, func(t *testing.T) lease.Lease { return open(t, pgtest.DSN(t)) }, leasetest.Options{
		Share: func(t *testing.T, l lease.Lease) lease.Lease {
			dsn, _ := dsns.Load(l)
			return open(t, dsn.(string))
		},
	})
}
