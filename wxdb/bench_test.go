package wxdb

import (
	"context"
	"fmt"
	"strings"
	"testing"
)

func seed(b testing.TB, db *DB, n int) {
	for i := 0; i < n; i += maxInsert {
		var docs []string
		for j := i; j < i+maxInsert && j < n; j++ {
			docs = append(docs, fmt.Sprintf(`{"_id":"id%d","k":%d,"g":"g%d","name":"user %d","tags":["t%d","all"],"score":%d.5}`, j, j, j%100, j, j%7, j%1000))
		}
		insert(b, db, "bench", docs...)
	}
}

func benchSizes(b *testing.B, fn func(b *testing.B, db *DB, n int)) {
	for _, n := range []int{10_000, 100_000} {
		b.Run(fmt.Sprintf("docs=%d", n), func(b *testing.B) {
			db := openTest(b)
			seed(b, db, n)
			// Indexes are made on a field's first query; make them outside the timing.
			for _, q := range []string{`{"k":1}`, `{"g":"x"}`} {
				if _, err := db.Explain(context.Background(), "env", "bench", q); err != nil {
					b.Fatal(err)
				}
			}
			b.ResetTimer()
			fn(b, db, n)
		})
	}
}

func BenchmarkAdd(b *testing.B) {
	benchSizes(b, func(b *testing.B, db *DB, n int) {
		for i := 0; b.Loop(); i++ {
			insert(b, db, "bench", fmt.Sprintf(`{"k":%d,"g":"new","name":"x"}`, n+i))
		}
	})
}

func BenchmarkGetByID(b *testing.B) {
	benchSizes(b, func(b *testing.B, db *DB, n int) {
		for i := 0; b.Loop(); i++ {
			r := list(b, call(b, db, "database.getDocument", map[string]any{"collectionName": "bench", "queryType": "DOC", "query": fmt.Sprintf(`{"_id":"id%d"}`, i%n)}))
			if len(r) != 1 {
				b.Fatal(r)
			}
		}
	})
}

func BenchmarkWhereIndexed(b *testing.B) {
	benchSizes(b, func(b *testing.B, db *DB, n int) {
		for i := 0; b.Loop(); i++ {
			r := list(b, call(b, db, "database.getDocument", map[string]any{"collectionName": "bench", "queryType": "WHERE", "limit": 100,
				"query": fmt.Sprintf(`{"k":{"$numberInt":"%d"}}`, i%n)}))
			if len(r) != 1 {
				b.Fatal(r)
			}
		}
	})
}

func BenchmarkWhereRange(b *testing.B) {
	benchSizes(b, func(b *testing.B, db *DB, n int) {
		for i := 0; b.Loop(); i++ {
			lo := i % (n - 20)
			r := list(b, call(b, db, "database.getDocument", map[string]any{"collectionName": "bench", "queryType": "WHERE", "limit": 100,
				"query": fmt.Sprintf(`{"k":{"$gte":%d,"$lt":%d}}`, lo, lo+20)}))
			if len(r) != 20 {
				b.Fatal(len(r))
			}
		}
	})
}

func BenchmarkUpdateByID(b *testing.B) {
	benchSizes(b, func(b *testing.B, db *DB, n int) {
		for i := 0; b.Loop(); i++ {
			mustOK(b, call(b, db, "database.modifyDocument", map[string]any{"collectionName": "bench", "queryType": "DOC", "merge": true,
				"query": fmt.Sprintf(`{"_id":"id%d"}`, i%n), "data": `{"$inc":{"score":1}}`}))
		}
	})
}

func BenchmarkAggregateGroup(b *testing.B) {
	benchSizes(b, func(b *testing.B, db *DB, n int) {
		for b.Loop() {
			r := list(b, call(b, db, "database.aggregateDocuments", map[string]any{"collectionName": "bench", "stages": []map[string]any{
				{"stageKey": "$match", "stageValue": `{"g":"g7"}`},
				{"stageKey": "$group", "stageValue": `{"_id":"$g","n":{"$sum":1},"avg":{"$avg":"$score"}}`},
			}}))
			if len(r) != 1 {
				b.Fatal(r)
			}
		}
	})
}

func TestExplainUsesIndex(t *testing.T) {
	db := openTest(t)
	seed(t, db, 50)
	ctx := context.Background()
	plan, err := db.Explain(ctx, "env", "bench", `{"k":{"$numberInt":"7"}}`)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(plan, "USING INDEX") || !strings.Contains(plan, "c1_ix_") {
		t.Fatalf("an equality on k should use its expression index:\n%s", plan)
	}
	plan, _ = db.Explain(ctx, "env", "bench", `{"score":{"$gt":3,"$lte":9}}`)
	if !strings.Contains(plan, "USING INDEX") {
		t.Fatalf("a range on score should use its expression index:\n%s", plan)
	}
	plan, _ = db.Explain(ctx, "env", "bench", `{"_id":"id3"}`)
	if !strings.Contains(plan, "USING INDEX sqlite_autoindex") {
		t.Fatalf("an _id lookup should use the unique key:\n%s", plan)
	}
	// tags holds arrays: an equality on it cannot be pushed down (an element may match), so it scans.
	plan, _ = db.Explain(ctx, "env", "bench", `{"tags":"all"}`)
	if strings.Contains(plan, "USING INDEX") {
		t.Fatalf("a condition on an array field must not be pushed down:\n%s", plan)
	}
	// Indexes per collection are bounded; past the bound a new path is still answered.
	for i := 0; i < maxIndexes+5; i++ {
		q := fmt.Sprintf(`{"f%d":1}`, i)
		if _, err := db.Explain(ctx, "env", "bench", q); err != nil {
			t.Fatal(err)
		}
	}
	var n int
	db.be.(*sqliteBackend).db.QueryRow(`SELECT count(*) FROM sqlite_master WHERE type = 'index' AND name LIKE 'c1_ix_%'`).Scan(&n)
	if n != maxIndexes {
		t.Errorf("%d indexes, want the bound %d", n, maxIndexes)
	}
	if r := mustOK(t, call(t, db, "database.calculateDocument", map[string]any{"collectionName": "bench", "query": `{"f40":1,"k":1}`})); string(r.Data) != `{"total":0}` {
		t.Errorf("count on an unindexed path: %s", r.Data)
	}
	// And the scan still answers it: k 3, 10 and 17 have tag t3.
	r := mustOK(t, call(t, db, "database.calculateDocument", map[string]any{"collectionName": "bench", "query": `{"tags":"t3","k":{"$lt":20}}`}))
	if string(r.Data) != `{"total":3}` {
		t.Fatalf("count %s", r.Data)
	}
}

// BenchmarkAggregateScan groups every document (no index helps): the cost of reading a whole collection.
func BenchmarkAggregateScan(b *testing.B) {
	benchSizes(b, func(b *testing.B, db *DB, n int) {
		for b.Loop() {
			r := list(b, call(b, db, "database.aggregateDocuments", map[string]any{"collectionName": "bench", "stages": []map[string]any{
				{"stageKey": "$group", "stageValue": `{"_id":"$g","n":{"$sum":1}}`},
			}}))
			if len(r) != 100 {
				b.Fatal(len(r))
			}
		}
	})
}

// BenchmarkWhereSorted sorts a where's matches before the limit (sorting is done after the scan).
func BenchmarkWhereSorted(b *testing.B) {
	benchSizes(b, func(b *testing.B, db *DB, n int) {
		for b.Loop() {
			r := list(b, call(b, db, "database.getDocument", map[string]any{"collectionName": "bench", "limit": 10,
				"query": `{"g":"g7"}`, "order": `{"score":{"$numberInt":"-1"}}`}))
			if len(r) != 10 {
				b.Fatal(len(r))
			}
		}
	})
}

// BenchmarkSortedPage is a feed: the first page of the whole collection by a field.
func BenchmarkSortedPage(b *testing.B) {
	benchSizes(b, func(b *testing.B, db *DB, n int) {
		for b.Loop() {
			r := list(b, call(b, db, "database.getDocument", map[string]any{"collectionName": "bench", "limit": 20, "order": `{"` + sortField + `":{"$numberInt":"-1"}}`}))
			if len(r) != 20 {
				b.Fatal(len(r))
			}
		}
	})
}

var sortField = "k"
