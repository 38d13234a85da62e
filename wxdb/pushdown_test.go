package wxdb

import (
	"fmt"
	"math/rand/v2"
	"sort"
	"strings"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// TestPushdownIsExact compares every query's answer through SQL pushdown with the exact
// matcher run over all documents: values of mixed types (numbers of each kind, strings,
// booleans, null, arrays, nested documents, decimals, NaN and infinity) at the queried paths.
func TestPushdownIsExact(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	values := []string{`1`, `2`, `2.5`, `{"$numberLong":"3"}`, `-1`, `0`, `"1"`, `"a"`, `"b"`, `""`, `true`, `false`, `null`,
		`[1,2]`, `["a",3]`, `[]`, `{"x":1}`, `{"x":"a"}`, `[{"x":2}]`, `{"$numberDecimal":"2"}`, `{"$numberDouble":"NaN"}`,
		`{"$numberDouble":"Infinity"}`, `{"$date":"2024-01-01T00:00:00Z"}`}
	// Values SQL can see through: p and o.y only ever hold these, so their conditions are pushed down.
	pure := []string{`1`, `2`, `2.5`, `{"$numberLong":"3"}`, `-1`, `0`, `"1"`, `"a"`, `"b"`, `""`, `true`, `false`, `null`,
		`{"x":1}`, `{"$date":"2024-01-01T00:00:00Z"}`, `{"$numberDouble":"-0.0"}`}
	db := openTest(t)
	var all []bson.D
	for i := 0; i < 300; i++ {
		var fields []string
		fields = append(fields, fmt.Sprintf(`"_id":"d%03d"`, i))
		for _, f := range []string{"a", "b"} {
			if rng.IntN(5) > 0 {
				fields = append(fields, fmt.Sprintf(`"%s":%s`, f, values[rng.IntN(len(values))]))
			}
		}
		if rng.IntN(3) == 0 {
			fields = append(fields, fmt.Sprintf(`"o":{"x":%s,"y":%s}`, values[rng.IntN(len(values))], pure[rng.IntN(len(pure))]))
		}
		if rng.IntN(6) > 0 {
			fields = append(fields, fmt.Sprintf(`"p":%s`, pure[rng.IntN(len(pure))]))
		}
		doc := "{" + strings.Join(fields, ",") + "}"
		// Arrays appear only late for some paths, so early queries plan with pushdown first.
		insert(t, db, "mix", doc)
		all = append(all, ej(t, doc))
	}
	queries := []string{}
	for _, p := range []string{"a", "b", "o.x", "p", "o.y"} {
		for _, v := range []string{`1`, `2`, `2.5`, `3`, `"a"`, `"1"`, `true`, `0`, `""`} {
			queries = append(queries, fmt.Sprintf(`{%q:%s}`, p, v))
			for _, op := range []string{"$gt", "$gte", "$lt", "$lte", "$eq"} {
				queries = append(queries, fmt.Sprintf(`{%q:{%q:%s}}`, p, op, v))
			}
		}
		queries = append(queries, fmt.Sprintf(`{%q:{"$in":[1,"a",true]}}`, p), fmt.Sprintf(`{%q:{"$gt":1,"$lt":3}}`, p),
			fmt.Sprintf(`{%q:{"$gte":"a","$lte":"b"}}`, p))
	}
	queries = append(queries, `{"_id":"d007"}`, `{"_id":{"$in":["d001","d299","nope"]}}`, `{"a":1,"b":{"$gt":0}}`, `{"$and":[{"a":{"$gte":1}},{"o.x":{"$lt":3}}]}`)
	for _, q := range []string{`{"p":1}`, `{"o.y":{"$gt":"a"}}`} {
		plan, err := db.Explain(t.Context(), "env", "mix", q)
		if err != nil || !strings.Contains(plan, "USING INDEX") {
			t.Fatalf("%s should be pushed down: %s %v", q, plan, err)
		}
	}
	for _, q := range queries {
		f, err := CompileFilter(ej(t, q))
		if err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		var want []string
		for _, d := range all {
			if f.Match(d) {
				id, _ := lookupField(d, "_id")
				want = append(want, id.(string))
			}
		}
		got := ids(t, list(t, call(t, db, "database.getDocument", map[string]any{"collectionName": "mix", "query": q, "limit": 1000})))
		sort.Strings(got)
		if strings.Join(got, ",") != strings.Join(want, ",") {
			t.Errorf("%s:\n got %v\nwant %v", q, got, want)
		}
	}
}

func ids(t testing.TB, docs []map[string]any) []string {
	out := []string{}
	for _, d := range docs {
		out = append(out, fmt.Sprint(d["_id"]))
	}
	return out
}

// TestSortPushdownIsExact compares sorted pages answered by SQL (a path holding only null,
// numbers, strings and booleans) with the matcher and the BSON-order sort.
func TestSortPushdownIsExact(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	scalars := []string{`1`, `-2`, `2.5`, `{"$numberLong":"3"}`, `0`, `"1"`, `"a"`, `"B"`, `""`, `"ab"`, `true`, `false`, `null`, `1e10`}
	noBools := []string{`1`, `-2`, `2.5`, `0`, `"1"`, `"a"`, `""`, `null`, `-1e10`}
	db := openTest(t)
	var all []bson.D
	for i := 0; i < 200; i++ {
		fields := []string{fmt.Sprintf(`"_id":"d%03d"`, i), fmt.Sprintf(`"g":%d`, i%3)}
		if rng.IntN(6) > 0 {
			fields = append(fields, `"q":`+scalars[rng.IntN(len(scalars))])
		}
		fields = append(fields, `"r":`+scalars[rng.IntN(len(scalars))])
		if rng.IntN(5) > 0 {
			fields = append(fields, `"n":`+noBools[rng.IntN(len(noBools))])
		}
		doc := "{" + strings.Join(fields, ",") + "}"
		insert(t, db, "s", doc)
		all = append(all, ej(t, doc))
	}
	cid, _, _ := db.be.Collection(t.Context(), "env", "s", false)
	for _, order := range []string{`{"q":1}`, `{"q":-1}`, `{"q":1,"r":-1}`, `{"r":-1,"q":1}`, `{"g":-1,"q":1}`, `{"n":-1}`, `{"n":1,"g":1}`} {
		keys, _ := parseSort(ej(t, order))
		if _, ok := sortable(keys, db.be.ImpurePaths(cid)); !ok {
			t.Fatalf("%s should sort in SQL", order)
		}
		for _, q := range []string{`{}`, `{"g":1}`, `{"q":{"$gt":0}}`} {
			f, _ := CompileFilter(ej(t, q))
			var want []string
			var matched []bson.D
			for _, d := range all {
				if f.Match(d) {
					matched = append(matched, d)
				}
			}
			sort.SliceStable(matched, func(i, j int) bool { return compareBySort(matched[i], matched[j], keys) < 0 })
			for i, d := range matched {
				if i >= 3 && i < 3+15 {
					id, _ := lookupField(d, "_id")
					want = append(want, id.(string))
				}
			}
			got := ids(t, list(t, call(t, db, "database.getDocument", map[string]any{"collectionName": "s", "query": q, "order": order, "offset": 3, "limit": 15})))
			if strings.Join(got, ",") != strings.Join(want, ",") {
				t.Errorf("%s %s:\n got %v\nwant %v", q, order, got, want)
			}
		}
	}
	// Without booleans the sort is the index's.
	var detail string
	rows, err := db.be.(*sqliteBackend).db.Query(`EXPLAIN QUERY PLAN SELECT id FROM ` + table(cid) + orderBy([]OrderKey{{Path: "n", Desc: true}}) + ` LIMIT 5`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var a, b, c int
		var d string
		rows.Scan(&a, &b, &c, &d)
		detail += d + "\n"
	}
	rows.Close()
	if !strings.Contains(detail, "USING INDEX") {
		t.Errorf("a sort on a path without booleans should use its index:\n%s", detail)
	}
	// A path that held an object or a date is sorted in Go.
	insert(t, db, "s", `{"_id":"x","q":{"$date":"2024-01-01T00:00:00Z"}}`)
	keys, _ := parseSort(ej(t, `{"q":1}`))
	if _, ok := sortable(keys, db.be.ImpurePaths(cid)); ok {
		t.Error("a path holding a date still sorts in SQL")
	}
	got := ids(t, list(t, call(t, db, "database.getDocument", map[string]any{"collectionName": "s", "order": `{"q":-1}`, "limit": 1})))
	if len(got) != 1 || got[0] != "x" {
		t.Errorf("dates sort after booleans: %v", got)
	}
}
