package pg_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"testing"
	"time"

	"github.com/fnhq/fn/internal/pgdb"
	"github.com/fnhq/fn/internal/pgtest"
	"github.com/fnhq/fn/leanstorage"
	"github.com/fnhq/fn/store"
	"github.com/fnhq/fn/store/pg"
	"github.com/jackc/pgx/v5"
)

// backends opens an empty SQLite store and an empty PostgreSQL store.
func backends(b *testing.B) map[string]store.Store {
	ctx := context.Background()
	lite, err := store.OpenSQLite(filepath.Join(b.TempDir(), "data.db"))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { lite.Close() })
	pool, err := pgdb.Open(ctx, pgtest.DSN(b))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(pool.Close)
	return map[string]store.Store{"sqlite": lite, "postgres": pg.New(pool, "bench")}
}

// BenchmarkOps is the latency of one store operation on each backend.
func BenchmarkOps(b *testing.B) {
	ctx := context.Background()
	for _, name := range []string{"sqlite", "postgres"} {
		st := backends(b)[name]
		now := time.Now()
		for i := 0; i < 1000; i++ {
			st.Insert(ctx, &store.Object{Class: "Item", ID: fmt.Sprint("seed", i), CreatedAt: now, UpdatedAt: now,
				Fields: map[string]any{"n": float64(i), "tag": fmt.Sprint("t", i%10)}})
		}
		svc := leanstorage.New(st, nil, nil)
		seq := 0
		b.Run(name+"/Insert", func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				seq++
				if err := st.Insert(ctx, &store.Object{Class: "New", ID: fmt.Sprint("x", seq), CreatedAt: now, UpdatedAt: now,
					Fields: map[string]any{"n": float64(i)}}); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(name+"/Get", func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				if _, err := st.Get(ctx, "Item", fmt.Sprint("seed", i%1000)); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(name+"/Increment", func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				if _, err := st.Update(ctx, "Item", "seed1", func(o *store.Object) error { o.Fields["n"] = o.Fields["n"].(float64) + 1; return nil }); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(name+"/QueryEqual1000", func(b *testing.B) {
			q := url.Values{"where": {`{"tag":"t3"}`}, "limit": {"10"}}
			for i := 0; i < b.N; i++ {
				if r := svc.Serve(ctx, "GET", "classes/Item", q, nil, leanstorage.Auth{Master: true}); r.Status != 200 {
					b.Fatal(r.Body)
				}
			}
		})
	}
}

// BenchmarkIndexedWhere is an indexed equality query on a class of FN_BENCH_OBJECTS objects
// (default 20000; the documented figure is for 1000000) on PostgreSQL, through LeanStorage, as
// a client asks it: p50 and p99 are reported.
func BenchmarkIndexedWhere(b *testing.B) {
	n := 20000
	if s := os.Getenv("FN_BENCH_OBJECTS"); s != "" {
		v, err := strconv.Atoi(s)
		if err != nil || v < 1 {
			b.Fatalf("FN_BENCH_OBJECTS=%q: want a positive integer", s)
		}
		n = v
	}
	ctx := context.Background()
	pool, err := pgdb.Open(ctx, pgtest.DSN(b))
	if err != nil {
		b.Fatal(err)
	}
	defer pool.Close()
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	rows := make([][]any, 0, 10000)
	flush := func() {
		if _, err := pool.CopyFrom(ctx, pgx.Identifier{"fn_objects"}, []string{"app", "class", "id", "created_at", "updated_at", "fields"},
			pgx.CopyFromRows(rows)); err != nil {
			b.Fatal(err)
		}
		rows = rows[:0]
	}
	for i := 0; i < n; i++ {
		f, _ := json.Marshal(map[string]any{"user": fmt.Sprint("u", i%(n/10+1)), "score": i % 1000, "title": fmt.Sprint("post ", i)})
		t := base.Add(time.Duration(i) * time.Millisecond)
		rows = append(rows, []any{"bench", "Post", fmt.Sprintf("%010d", i), t, t, string(f)})
		if len(rows) == cap(rows) {
			flush()
		}
	}
	if len(rows) > 0 {
		flush()
	}
	pool.Exec(ctx, "ANALYZE fn_objects")
	svc := leanstorage.New(pg.New(pool, "bench"), nil, nil)
	var lat []time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		q := url.Values{"where": {fmt.Sprintf(`{"user":"u%d"}`, i%(n/10+1))}, "limit": {"20"}, "order": {"-createdAt"}}
		start := time.Now()
		r := svc.Serve(ctx, "GET", "classes/Post", q, nil, leanstorage.Auth{Master: true})
		lat = append(lat, time.Since(start))
		if r.Status != 200 {
			b.Fatal(r.Body)
		}
		if res := r.Body.(map[string]any)["results"].([]map[string]any); len(res) == 0 {
			b.Fatal("no results")
		}
	}
	b.StopTimer()
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
	b.ReportMetric(float64(n), "objects")
}
