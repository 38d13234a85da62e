package pg_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand"
	"net/url"
	"path/filepath"
	"reflect"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fnhq/fn/internal/pgdb"
	"github.com/fnhq/fn/internal/pgtest"
	"github.com/fnhq/fn/leanstorage"
	"github.com/fnhq/fn/store"
	"github.com/fnhq/fn/store/pg"
)

// scanCounter is the PostgreSQL store with its whole-class scans counted.
type scanCounter struct {
	*pg.Store
	scans atomic.Int64
}

func (s *scanCounter) Scan(ctx context.Context, class string) ([]*store.Object, error) {
	s.scans.Add(1)
	return s.Store.Scan(ctx, class)
}

// objects is a class with every kind of value the operators meet: numbers, numeric strings,
// arrays, pointers, dates, nulls, missing fields, ACLs for the public, a user and a role.
func objects(class string) []*store.Object {
	r := rand.New(rand.NewSource(7))
	base := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	var out []*store.Object
	for i := 0; i < 240; i++ {
		f := map[string]any{}
		switch i % 6 {
		case 0:
			f["n"] = float64(r.Intn(20))
		case 1:
			f["n"] = fmt.Sprint(r.Intn(20)) // a string that looks like a number
		case 2:
			f["n"] = []any{float64(r.Intn(20)), float64(r.Intn(20))}
		case 3:
			f["n"] = nil
		case 4:
			f["n"] = float64(r.Intn(20)) + 0.5
		}
		f["s"] = []string{"apple", "Apple", "banana", "b", "", "日本"}[r.Intn(6)]
		if i%4 == 0 {
			f["tags"] = []any{"red", []string{"green", "blue"}[r.Intn(2)]}
		} else if i%4 == 1 {
			f["tags"] = "red"
		}
		f["ok"] = i%3 == 0
		f["owner"] = map[string]any{"__type": "Pointer", "className": "_User", "objectId": fmt.Sprint("u", r.Intn(4))}
		if i%5 == 0 {
			f["when"] = map[string]any{"__type": "Date", "iso": base.Add(time.Duration(i) * time.Hour).Format("2006-01-02T15:04:05.000Z")}
		}
		switch i % 7 {
		case 1:
			f["ACL"] = map[string]any{"*": map[string]any{"read": true}}
		case 2:
			f["ACL"] = map[string]any{"u1": map[string]any{"read": true, "write": true}}
		case 3:
			f["ACL"] = map[string]any{"role:staff": map[string]any{"read": true}}
		case 4:
			f["ACL"] = map[string]any{}
		case 5:
			if i%2 == 0 {
				f["ACL"] = map[string]any{"u1": map[string]any{"read": true}, "role:staff": map[string]any{"write": true}}
			}
		}
		// several objects share a creation time: ties are broken by id
		created := base.Add(time.Duration(i/3) * time.Minute)
		out = append(out, &store.Object{Class: class, ID: fmt.Sprintf("o%03d", (i*37)%240), CreatedAt: created,
			UpdatedAt: created.Add(time.Duration(r.Intn(100)) * time.Second), Fields: f})
	}
	return out
}

func seed(t *testing.T, st store.Store) {
	ctx := context.Background()
	for _, o := range objects("Item") {
		if err := st.Insert(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, u := range []string{"u1", "u2"} {
		if err := st.Insert(ctx, &store.Object{Class: "_User", ID: u, CreatedAt: now, UpdatedAt: now, Fields: map[string]any{"username": u}}); err != nil {
			t.Fatal(err)
		}
		if err := st.PutSession(ctx, "tok-"+u, u); err != nil {
			t.Fatal(err)
		}
	}
	if err := st.Insert(ctx, &store.Object{Class: "_Role", ID: "r1", CreatedAt: now, UpdatedAt: now,
		Fields: map[string]any{"name": "staff", "ACL": map[string]any{"*": map[string]any{"read": true}}}}); err != nil {
		t.Fatal(err)
	}
	if err := st.AddRelation(ctx, store.Relation{OwnerClass: "_Role", OwnerID: "r1", Key: "users"}, "_User", []string{"u2"}); err != nil {
		t.Fatal(err)
	}
}

// The same queries through leanstorage on SQLite (the matcher over Scan) and on PostgreSQL
// (pushed down) answer the same bodies; the shapes that push down scan no class in Go.
func TestDifferential(t *testing.T) {
	ctx := context.Background()
	lite, err := store.OpenSQLite(filepath.Join(t.TempDir(), "data.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer lite.Close()
	pool, err := pgdb.Open(ctx, pgtest.DSN(t))
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	pgs := &scanCounter{Store: pg.New(pool, "diff")}
	seed(t, lite)
	seed(t, pgs)
	a, b := leanstorage.New(lite, nil, nil), leanstorage.New(pgs, nil, nil)

	type q struct {
		where, order, limit, skip, count, keys string
		pushed                                 bool // the whole query runs in SQL
	}
	queries := []q{
		{where: `{}`, pushed: true},
		{where: `{"n": 5}`, pushed: true},
		{where: `{"n": "5"}`, pushed: true},
		{where: `{"n": 5.5}`, pushed: true},
		{where: `{"n": {"$gt": 5}}`, pushed: true},
		{where: `{"n": {"$gte": 3, "$lt": 9}}`, pushed: true},
		{where: `{"n": {"$lte": "5"}}`, pushed: true},
		{where: `{"s": {"$gt": "b"}}`, pushed: true},
		{where: `{"s": {"$lt": "a"}}`, pushed: true},
		{where: `{"s": "apple"}`, pushed: true},
		{where: `{"s": ""}`, pushed: true},
		{where: `{"s": {"$in": ["apple", "b", "日本"]}}`, pushed: true},
		{where: `{"n": {"$in": [1, 2, 3, "4"]}}`, pushed: true},
		{where: `{"n": {"$in": []}}`, pushed: true},
		{where: `{"tags": "red"}`, pushed: true},
		{where: `{"tags": "green", "ok": true}`, pushed: true},
		{where: `{"ok": false}`, pushed: true},
		{where: `{"n": {"$exists": true}}`, pushed: true},
		{where: `{"when": {"$exists": true}, "s": "b"}`, pushed: true},
		{where: `{"owner": {"__type": "Pointer", "className": "_User", "objectId": "u2"}}`, pushed: true},
		{where: `{"objectId": "o005"}`, pushed: true},
		{where: `{"objectId": {"$in": ["o001", "o100", "zzz"]}}`, pushed: true},
		{where: `{"createdAt": {"$gte": {"__type": "Date", "iso": "2026-01-02T04:00:00.000Z"}}}`, pushed: true},
		{where: `{"updatedAt": {"$lt": "2026-01-02T03:30:00.000Z"}}`, pushed: true},
		{where: `{"n": {"$gt": 2}}`, order: "-createdAt", limit: "7", skip: "3", count: "1", pushed: true},
		{where: `{"s": "b"}`, order: "updatedAt,-objectId", limit: "20", pushed: true},
		{where: `{}`, order: "objectId", limit: "5", skip: "200", count: "1", pushed: true},
		{where: `{"ok": true}`, limit: "0", count: "1", pushed: true},
		{where: `{"s": "apple"}`, keys: "s,n", pushed: true},
		// left (wholly or partly) to the matcher
		{where: `{"n": {"$ne": 5}}`},
		{where: `{"n": {"$gt": 5, "$ne": 8}}`},
		{where: `{"$or": [{"n": 1}, {"s": "b"}]}`},
		{where: `{"s": {"$regex": "^a"}}`},
		{where: `{"s": "apple"}`, order: "-n", limit: "10"},
		{where: `{"when": {"$gt": {"__type": "Date", "iso": "2026-01-03T00:00:00.000Z"}}}`},
		{where: `{"tags": {"$all": ["red", "blue"]}}`},
		{where: `{"n": null}`},
		{where: `{"n": {"$exists": false}}`},
	}
	auths := map[string]leanstorage.Auth{
		"master":     {Master: true},
		"anonymous":  {},
		"u1":         {SessionToken: "tok-u1"},
		"u2 (staff)": {SessionToken: "tok-u2"},
	}
	for _, qq := range queries {
		for who, auth := range auths {
			v := url.Values{"where": {qq.where}}
			for k, val := range map[string]string{"order": qq.order, "limit": qq.limit, "skip": qq.skip, "count": qq.count, "keys": qq.keys} {
				if val != "" {
					v.Set(k, val)
				}
			}
			before := pgs.scans.Load()
			ra := a.Serve(ctx, "GET", "classes/Item", v, nil, auth)
			rb := b.Serve(ctx, "GET", "classes/Item", v, nil, auth)
			ja, jb := canonical(t, ra.Body), canonical(t, rb.Body)
			if ra.Status != rb.Status || !reflect.DeepEqual(ja, jb) {
				t.Errorf("%s as %s: SQLite %d %s\nPostgreSQL %d %s", v.Encode(), who, ra.Status, short(ja), rb.Status, short(jb))
			}
			if res, ok := ja.(map[string]any)["results"].([]any); ok && len(res) == 0 && qq.where == `{}` && qq.skip == "" {
				t.Errorf("%s as %s: no results at all; the test data is wrong", v.Encode(), who)
			}
			if qq.pushed && pgs.scans.Load() != before {
				t.Errorf("%s: the PostgreSQL store scanned the class in Go", v.Encode())
			}
		}
	}
}

// The ACLs in the data do decide: each principal sees another number of objects.
func TestDifferentialACLs(t *testing.T) {
	ctx := context.Background()
	pool, err := pgdb.Open(ctx, pgtest.DSN(t))
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	st := pg.New(pool, "acl")
	seed(t, st)
	s := leanstorage.New(st, nil, nil)
	count := func(auth leanstorage.Auth) float64 {
		r := s.Serve(ctx, "GET", "classes/Item", url.Values{"count": {"1"}, "limit": {"0"}}, nil, auth)
		n, _ := canonical(t, r.Body).(map[string]any)["count"].(float64)
		return n
	}
	master, anon, u1, u2 := count(leanstorage.Auth{Master: true}), count(leanstorage.Auth{}), count(leanstorage.Auth{SessionToken: "tok-u1"}),
		count(leanstorage.Auth{SessionToken: "tok-u2"})
	if !(master == 240 && anon < u1 && anon < u2 && u1 < master && u2 < master && u1 != u2) {
		t.Fatalf("counts: master %v, anonymous %v, u1 %v, u2 (staff) %v", master, anon, u1, u2)
	}
}

func canonical(t *testing.T, body any) any {
	b, err := json.Marshal(body)
	if err != nil {
		t.Fatal(err)
	}
	var out any
	json.Unmarshal(b, &out)
	return out
}

func short(v any) string {
	b, _ := json.Marshal(v)
	if len(b) > 600 {
		return string(b[:600]) + "…"
	}
	return string(b)
}

// Signups of one username racing on several replicas: one user is created, the others get
// LeanCloud's 202, whatever the check before the write saw.
func TestConcurrentSignups(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.DSN(t)
	var services []*leanstorage.Service
	for i := 0; i < 3; i++ {
		pool, err := pgdb.Open(ctx, dsn)
		if err != nil {
			t.Fatal(err)
		}
		defer pool.Close()
		services = append(services, leanstorage.New(pg.New(pool, "app"), nil, nil))
	}
	type answer struct {
		status int
		code   float64
	}
	answers := make(chan answer, 12)
	for i := 0; i < 12; i++ {
		go func() {
			r := services[i%3].Serve(ctx, "POST", "users", nil, []byte(`{"username":"alice","password":"pw"}`), leanstorage.Auth{})
			a := answer{status: r.Status}
			if r.Status != 201 {
				a.code, _ = canonical(t, r.Body).(map[string]any)["code"].(float64)
			}
			answers <- a
		}()
	}
	created := 0
	for i := 0; i < 12; i++ {
		a := <-answers
		if a.status == 201 {
			created++
		} else if a.code != 202 {
			t.Fatalf("a refused signup answered %d code %v, want 202", a.status, a.code)
		}
	}
	if created != 1 {
		t.Fatalf("%d signups of one username succeeded, want 1", created)
	}
}

// Conditional updates racing on three replicas: a stock of 10 decremented "where stock > 0"
// by 30 buyers sells exactly 10, the others get 305; AddUnique from all of them keeps each
// value once.
func TestConditionalUpdatesAcrossReplicas(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.DSN(t)
	var services []*leanstorage.Service
	for i := 0; i < 3; i++ {
		pool, err := pgdb.Open(ctx, dsn)
		if err != nil {
			t.Fatal(err)
		}
		defer pool.Close()
		services = append(services, leanstorage.New(pg.New(pool, "app"), nil, nil))
	}
	master := leanstorage.Auth{Master: true}
	r := services[0].Serve(ctx, "POST", "classes/Item", nil, []byte(`{"stock":10,"buyers":[]}`), master)
	if r.Status != 201 {
		t.Fatalf("create: %d %v", r.Status, r.Body)
	}
	id := canonical(t, r.Body).(map[string]any)["objectId"].(string)
	type answer struct {
		status int
		code   float64
	}
	answers := make(chan answer, 30)
	for i := 0; i < 30; i++ {
		go func() {
			body := fmt.Sprintf(`{"stock":{"__op":"Decrement","amount":1},"buyers":{"__op":"AddUnique","objects":["b%d","all"]}}`, i)
			r := services[i%3].Serve(ctx, "PUT", "classes/Item/"+id, url.Values{"where": {`{"stock":{"$gt":0}}`}}, []byte(body), master)
			a := answer{status: r.Status}
			if r.Status != 200 {
				a.code, _ = canonical(t, r.Body).(map[string]any)["code"].(float64)
			}
			answers <- a
		}()
	}
	sold := 0
	for i := 0; i < 30; i++ {
		a := <-answers
		switch {
		case a.status == 200:
			sold++
		case a.code != 305:
			t.Fatalf("a refused purchase answered %d code %v, want 305", a.status, a.code)
		}
	}
	got := canonical(t, services[1].Serve(ctx, "GET", "classes/Item/"+id, nil, nil, master).Body).(map[string]any)
	buyers, _ := got["buyers"].([]any)
	if sold != 10 || got["stock"] != 0.0 || len(buyers) != 11 {
		t.Fatalf("%d sold, stock %v, %d distinct buyers (want 10, 0, 11: ten buyers and \"all\" once)", sold, got["stock"], len(buyers))
	}
}

// A pointer against a relation field (AV.Relation.reverseQuery, user.getRoles()) finds the
// owners whose relation holds it on PostgreSQL too, where pointer equality is otherwise SQL's.
func TestReverseRelationQuery(t *testing.T) {
	ctx := context.Background()
	pool, err := pgdb.Open(ctx, pgtest.DSN(t))
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	st := pg.New(pool, "reverse")
	s := leanstorage.New(st, nil, nil)
	master := leanstorage.Auth{Master: true}
	do := func(method, path string, q url.Values, body string) map[string]any {
		t.Helper()
		r := s.Serve(ctx, method, path, q, []byte(body), master)
		m, _ := canonical(t, r.Body).(map[string]any)
		if r.Status >= 300 {
			t.Fatalf("%s %s: %d %v", method, path, r.Status, m)
		}
		return m
	}
	u := do("POST", "classes/Fan", nil, `{"name":"u"}`)["objectId"].(string)
	other := do("POST", "classes/Fan", nil, `{"name":"o"}`)["objectId"].(string)
	ptr := func(id string) string { return `{"__type":"Pointer","className":"Fan","objectId":"` + id + `"}` }
	liked := do("POST", "classes/Post", nil, `{"likes":{"__op":"AddRelation","objects":[`+ptr(u)+`]}}`)["objectId"].(string)
	do("POST", "classes/Post", nil, `{"author":`+ptr(u)+`}`)
	find := func(where string) []any {
		rs, _ := do("GET", "classes/Post", url.Values{"where": {where}}, "")["results"].([]any)
		return rs
	}
	if rs := find(`{"likes":` + ptr(u) + `}`); len(rs) != 1 || rs[0].(map[string]any)["objectId"] != liked {
		t.Errorf("reverse query: %v", rs)
	}
	if rs := find(`{"likes":` + ptr(other) + `}`); len(rs) != 0 {
		t.Errorf("reverse query of a fan who likes nothing: %v", rs)
	}
	if rs := find(`{"author":` + ptr(u) + `}`); len(rs) != 1 {
		t.Errorf("a plain pointer query: %v", rs)
	}
}
