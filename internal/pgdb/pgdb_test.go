package pgdb_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/fnhq/fn/internal/pgdb"
	"github.com/fnhq/fn/internal/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// Replicas starting together migrate once; Check tells a fresh database from a current one.
func TestConcurrentMigrateAndCheck(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.DSN(t)
	if err := pgdb.Check(ctx, dsn, 10*time.Second); !errors.Is(err, pgdb.ErrSchema) {
		t.Fatalf("Check of an empty database: %v, want ErrSchema", err)
	}
	var wg sync.WaitGroup
	for i := 0; i < 4; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			pool, err := pgdb.Open(ctx, dsn)
			if err != nil {
				t.Error(err)
				return
			}
			pool.Close()
		}()
	}
	wg.Wait()
	if err := pgdb.Check(ctx, dsn, 10*time.Second); err != nil {
		t.Fatalf("Check after migrating: %v", err)
	}
	pool, err := pgdb.Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	var n int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM fn_schema_migrations`).Scan(&n); err != nil || n != pgdb.Version() {
		t.Fatalf("%d migrations recorded (%v), want %d", n, err, pgdb.Version())
	}
	if err := pgdb.Check(ctx, "postgres://nobody@127.0.0.1:1/none?sslmode=disable&connect_timeout=2", 5*time.Second); err == nil {
		t.Fatal("Check of an unreachable server passed")
	}
}
