package pg_test

import (
	"context"
	"sync"
	"testing"

	"github.com/fnhq/fn/control"
	"github.com/fnhq/fn/control/controltest"
	"github.com/fnhq/fn/control/pg"
	"github.com/fnhq/fn/internal/pgdb"
	"github.com/fnhq/fn/internal/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

func TestPostgres(t *testing.T) {
	var dsns sync.Map // control.Plane → its database
	open := func(t *testing.T, dsn string) control.Plane {
		pool, err := pgdb.Open(context.Background(), dsn)
		if err != nil {
			t.Fatal(err)
		}
		p := pg.New(pool, true)
		dsns.Store(control.Plane(p), dsn)
		return p
	}
	controltest.Run(t, func(t *testing.T) control.Plane { return open(t, pgtest.DSN(t)) }, controltest.Options{
		Reopen: func(t *testing.T, old control.Plane) control.Plane {
			dsn, ok := dsns.Load(old)
			if !ok {
				t.Fatal("reopen of a plane the test did not open")
			}
			return open(t, dsn.(string))
		},
	})
}
