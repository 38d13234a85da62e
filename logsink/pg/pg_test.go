package pg_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/fnhq/fn/api"
	"github.com/fnhq/fn/internal/pgdb"
	"github.com/fnhq/fn/internal/pgtest"
	"github.com/fnhq/fn/logsink"
	"github.com/fnhq/fn/logsink/logsinktest"
	"github.com/fnhq/fn/logsink/pg"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

func open(t *testing.T, dsn string) *pg.Sink {
	pool, err := pgdb.Open(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	s, err := pg.New(pool, pg.Options{Retention: 200, Poll: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestPostgres(t *testing.T) {
	var dsns sync.Map
	openDSN := func(t *testing.T, dsn string) logsink.Sink {
		s := open(t, dsn)
		dsns.Store(logsink.Sink(s), dsn)
		return s
	}
	logsinktest.Run(t, func(t *testing.T) logsink.Sink { return openDSN(t, pgtest.DSN(t)) }, logsinktest.Options{
		Retention: 200,
		Reopen: func(t *testing.T, old logsink.Sink) logsink.Sink {
			dsn, _ := dsns.Load(old)
			return openDSN(t, dsn.(string))
		},
	})
}

// A follower on one replica gets every replica's records, in id order, each once.
func TestFollowAcrossReplicas(t *testing.T) {
	dsn := pgtest.DSN(t)
	a, b, c := open(t, dsn), open(t, dsn), open(t, dsn)
	defer a.Close()
	defer b.Close()
	defer c.Close()
	ch, cancel := a.Subscribe(logsink.Filter{App: "shop"})
	defer cancel()
	const each = 200
	var wg sync.WaitGroup
	for _, s := range []*pg.Sink{a, b, c} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < each; i++ {
				if got := s.Append(api.LogRecord{App: "shop", Level: "info", Message: "m"}); got[0].ID == 0 {
					t.Error("Append failed")
					return
				}
			}
		}()
	}
	wg.Wait()
	var last int64
	deadline := time.After(20 * time.Second)
	for n := 0; n < 3*each; n++ {
		select {
		case r, ok := <-ch:
			if !ok {
				t.Fatalf("subscription closed after %d records", n)
			}
			if r.ID != last+1 && last != 0 {
				t.Fatalf("record %d follows %d: a gap or a duplicate", r.ID, last)
			}
			last = r.ID
		case <-deadline:
			t.Fatalf("%d of %d records delivered", n, 3*each)
		}
	}
}
