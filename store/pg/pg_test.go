package pg_test

import (
	"context"
	"sync"
	"testing"

	"github.com/fnhq/fn/internal/pgdb"
	"github.com/fnhq/fn/internal/pgtest"
	"github.com/fnhq/fn/store"
	"github.com/fnhq/fn/store/pg"
	"github.com/fnhq/fn/store/storetest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// Every handle has its own pool, as another replica's would; a second app in the same database
// sees none of the first one's data.
func TestPostgres(t *testing.T) {
	var dsns sync.Map
	open := func(t *testing.T, dsn string) store.Store {
		pool, err := pgdb.Open(context.Background(), dsn)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(pool.Close)
		s := pg.New(pool, "app1")
		dsns.Store(store.Store(s), dsn)
		// noise from another app in the same tables
		other := pg.New(pool, "app2")
		other.PutSession(context.Background(), "tok", "intruder")
		return s
	}
	storetest.Run(t, func(t *testing.T) store.Store { return open(t, pgtest.DSN(t)) }, storetest.Options{
		UniqueUserFields: true,
		Reopen: func(t *testing.T, old store.Store) store.Store {
			d, _ := dsns.Load(old)
			return open(t, d.(string))
		},
		Share: func(t *testing.T, s store.Store) store.Store {
			d, _ := dsns.Load(s)
			return open(t, d.(string))
		},
	})
}
