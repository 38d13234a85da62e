package pg_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"io"
	"sync"
	"testing"

	"github.com/fnhq/fn/artifacts"
	"github.com/fnhq/fn/artifacts/artifactstest"
	"github.com/fnhq/fn/artifacts/pg"
	"github.com/fnhq/fn/internal/pgdb"
	"github.com/fnhq/fn/internal/pgtest"
	"github.com/jackc/pgx/v5/pgxpool"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

func openPool(t *testing.T, dsn string) *pgxpool.Pool {
	pool, err := pgdb.Open(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return pool
}

func TestPostgres(t *testing.T) {
	var dsns sync.Map
	open := func(t *testing.T, dsn string) artifacts.Store {
		s := pg.New(openPool(t, dsn))
		dsns.Store(s, dsn)
		return s
	}
	artifactstest.Run(t, func(t *testing.T) artifacts.Store { return open(t, pgtest.DSN(t)) }, artifactstest.Options{
		Reopen: func(t *testing.T, old artifacts.Store) artifacts.Store {
			dsn, _ := dsns.Load(old)
			return open(t, dsn.(string))
		},
	})
}

// A blob of several chunks comes back whole, also through another replica's pool.
func TestChunks(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.DSN(t)
	blob := make([]byte, 2*pg.ChunkSize+12345)
	rand.Read(blob)
	h := artifactstest.Hash(blob)
	if err := pg.New(openPool(t, dsn)).Put(ctx, h, bytes.NewReader(blob), int64(len(blob))); err != nil {
		t.Fatal(err)
	}
	r, err := pg.New(openPool(t, dsn)).Open(ctx, h)
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(r)
	if err != nil || !bytes.Equal(got, blob) {
		t.Fatalf("read %d bytes (%v), want the %d stored", len(got), err, len(blob))
	}
}
