package pg_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fnhq/fn/api"
	"github.com/fnhq/fn/internal/pgdb"
	"github.com/fnhq/fn/internal/pgtest"
	"github.com/fnhq/fn/internal/testutil"
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

// An Append that gives up while its records are still queued behind a stuck commit takes them
// off the queue: reported as not kept, they are never written later. One whose records a
// commit has taken waits for that commit, and gets their ids.
func TestAppendThatGivesUpLeavesNothingBehind(t *testing.T) {
	dsn := pgtest.DSN(t)
	ctx := context.Background()
	pool, err := pgdb.Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	s, err := pg.New(pool, pg.Options{Retention: 200, Queue: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	// hold the id counter's row: the next commit waits for it
	block, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := block.Exec(ctx, `UPDATE fn_log_counter SET last = last`); err != nil {
		t.Fatal(err)
	}
	taken := make(chan []api.LogRecord, 1)
	go func() {
		taken <- s.Append(api.LogRecord{App: "q", Level: "info", Message: "taken by the stuck commit"})
	}()
	testutil.Eventually(t, 10*time.Second, "the commit to wait for the counter's row", func() bool {
		var n int
		pool.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE 'UPDATE fn_log_counter SET last = last + %'`).Scan(&n)
		return n > 0
	})
	queued := s.Append(api.LogRecord{App: "q", Level: "info", Message: "queued behind it"})
	if len(queued) != 1 || queued[0].ID != 0 {
		t.Fatalf("an Append queued behind a stuck commit past its wait: %+v, want one record without an id", queued)
	}
	if err := block.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	got := <-taken
	if len(got) != 1 || got[0].ID == 0 {
		t.Fatalf("the Append whose records the commit had taken: %+v, want its id", got)
	}
	// a later Append commits after anything the queue still held
	if r := s.Append(api.LogRecord{App: "q", Level: "info", Message: "after"}); r[0].ID == 0 {
		t.Fatalf("a later Append: %+v", r)
	}
	recs, err := s.Query(ctx, logsink.Filter{App: "q"}, 100)
	if err != nil {
		t.Fatal(err)
	}
	var msgs []string
	for _, r := range recs {
		msgs = append(msgs, r.Message)
	}
	if strings.Join(msgs, "|") != "taken by the stuck commit|after" {
		t.Fatalf("kept: %q, want the taken record and the later one, not the one reported as not kept", msgs)
	}
}
