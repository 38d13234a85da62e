package lcimport

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeLeanCloud serves the scan API as LeanCloud documents it: master key only, limit up to
// 1000 (default 100), results in objectId order, an opaque cursor that expires 10 minutes after
// it was handed out (on a clock the test moves), null at the end, where={"objectId":{"$gt":…}}.
// fail decides, per scan request number, to answer 429 or 503 instead.
type fakeLeanCloud struct {
	appID, master string

	mu       sync.Mutex
	classes  map[string][]map[string]any // sorted by objectId
	now      time.Time
	cursors  map[string]fakeCursor
	scans    int
	requests []string
	fail     func(n int) int
	onPage   func(n int) // after serving scan request n
}

type fakeCursor struct {
	class  string
	after  string
	where  string
	issued time.Time
}

func newFake(classes map[string]int) *fakeLeanCloud {
	f := &fakeLeanCloud{appID: "app1", master: "m-secret", classes: map[string][]map[string]any{}, now: time.Unix(1700000000, 0),
		cursors: map[string]fakeCursor{}}
	for c, n := range classes {
		for i := 0; i < n; i++ {
			f.classes[c] = append(f.classes[c], map[string]any{"objectId": fmt.Sprintf("%s%06d", strings.ToLower(c[:1]), i),
				"createdAt": "2020-01-01T00:00:00.000Z", "updatedAt": "2020-01-01T00:00:00.000Z", "n": i})
		}
	}
	return f
}

func (f *fakeLeanCloud) advance(d time.Duration) { f.mu.Lock(); f.now = f.now.Add(d); f.mu.Unlock() }

func lcError(w http.ResponseWriter, status, code int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]any{"code": code, "error": msg})
}

func (f *fakeLeanCloud) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("X-LC-Id") != f.appID || r.Header.Get("X-LC-Key") != f.master+",master" {
		lcError(w, 401, 401, "Unauthorized.")
		return
	}
	if r.URL.Path == "/1.1/schemas" {
		out := map[string]any{}
		for c := range f.classes {
			out[c] = map[string]any{"objectId": map[string]any{"type": "String"}}
		}
		json.NewEncoder(w).Encode(out)
		return
	}
	class, ok := strings.CutPrefix(r.URL.Path, "/1.1/scan/classes/")
	if !ok {
		lcError(w, 404, 1, "no such API")
		return
	}
	f.mu.Lock()
	f.scans++
	n := f.scans
	f.requests = append(f.requests, r.URL.RawQuery)
	status := 0
	if f.fail != nil {
		status = f.fail(n)
	}
	f.mu.Unlock()
	if status != 0 {
		w.Header().Set("Retry-After", "0")
		lcError(w, status, status, "Too many requests.")
		return
	}
	q := r.URL.Query()
	limit := 100
	if l := q.Get("limit"); l != "" {
		limit, _ = strconv.Atoi(l)
		if limit <= 0 || limit > 1000 {
			lcError(w, 400, 1, "limit must be in 1..1000")
			return
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	after, where := "", q.Get("where")
	if c := q.Get("cursor"); c != "" {
		cur, ok := f.cursors[c]
		if !ok || cur.class != class || f.now.Sub(cur.issued) > 10*time.Minute {
			lcError(w, 400, 1, "Cursor is invalid or expired.")
			return
		}
		after, where = cur.after, cur.where
	}
	if where != "" {
		var wq struct {
			ObjectID struct {
				Gt string `json:"$gt"`
			} `json:"objectId"`
		}
		if err := json.Unmarshal([]byte(where), &wq); err != nil {
			lcError(w, 400, 107, "bad where")
			return
		}
		if wq.ObjectID.Gt > after {
			after = wq.ObjectID.Gt
		}
	}
	objs := f.classes[class]
	i := sort.Search(len(objs), func(i int) bool { return objs[i]["objectId"].(string) > after })
	end := min(i+limit, len(objs))
	page := objs[i:end]
	var cursor any
	if end < len(objs) {
		id := fmt.Sprintf("c%d", len(f.cursors)+1)
		f.cursors[id] = fakeCursor{class: class, after: page[len(page)-1]["objectId"].(string), where: where, issued: f.now}
		cursor = id
	}
	json.NewEncoder(w).Encode(map[string]any{"results": page, "cursor": cursor})
	if f.onPage != nil {
		f.onPage(n)
	}
}

func remoteOpts(srv *httptest.Server, fake *fakeLeanCloud, state string) RemoteOptions {
	return RemoteOptions{AppID: fake.appID, MasterKey: fake.master, ServerURL: srv.URL, StatePath: state,
		Sleep: func(ctx context.Context, d time.Duration) error { return ctx.Err() }}
}

func TestRemoteScanWithRetriesAndCursorExpiry(t *testing.T) {
	fake := newFake(map[string]int{"Post": 2500, "_User": 3})
	var waits []time.Duration
	fake.fail = func(n int) int {
		switch n {
		case 2:
			return 429
		case 3:
			return 503
		}
		return 0
	}
	// the import is slow: 11 minutes pass after the page that the 4th request fetched
	fake.onPage = func(n int) {
		if n == 4 {
			fake.now = fake.now.Add(11 * time.Minute)
		}
	}
	srv := httptest.NewServer(fake)
	defer srv.Close()
	opts := remoteOpts(srv, fake, filepath.Join(t.TempDir(), "state.json"))
	opts.Sleep = func(ctx context.Context, d time.Duration) error { waits = append(waits, d); return nil }
	r, err := OpenRemote(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	st := openStore(t)
	rep, err := Import(context.Background(), r, &StoreTarget{Store: st}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	r.Close()
	if rep.Classes["Post"].Added != 2500 || rep.Classes["_User"].Added != 3 || rep.Totals().Failed != 0 {
		t.Fatalf("report %+v %+v %v", rep.Classes["Post"], rep.Classes["_User"], rep.Errors)
	}
	if r.Retries != 2 || len(waits) != 2 {
		t.Errorf("retries %d, waits %v", r.Retries, waits)
	}
	if r.Restarts != 1 {
		t.Errorf("cursor restarts = %d; requests %v", r.Restarts, fake.requests)
	}
	restart := fake.requests[5]
	if !strings.Contains(restart, "where=") || strings.Contains(restart, "cursor=") {
		t.Errorf("after the expired cursor: %q", restart)
	}
	objs, _ := st.Scan(context.Background(), "Post")
	if len(objs) != 2500 {
		t.Errorf("stored %d posts", len(objs))
	}
	state := r.State()
	if !state.Classes["Post"].Done || state.Classes["Post"].LastID != "p002499" || state.Classes["Post"].Count != 2500 {
		t.Errorf("state %+v", state.Classes["Post"])
	}
	b, _ := os.ReadFile(opts.StatePath)
	if strings.Contains(string(b), fake.master) {
		t.Error("the state file holds the master key")
	}
}

func TestRemoteScanResumesAfterInterruption(t *testing.T) {
	fake := newFake(map[string]int{"Post": 2500, "Tag": 10})
	srv := httptest.NewServer(fake)
	defer srv.Close()
	statePath := filepath.Join(t.TempDir(), "state.json")
	st := openStore(t)

	ctx, cancel := context.WithCancel(context.Background())
	r, err := OpenRemote(ctx, remoteOpts(srv, fake, statePath))
	if err != nil {
		t.Fatal(err)
	}
	_, err = Import(ctx, r, &StoreTarget{Store: st}, Options{ProgressEvery: 100, Progress: func(p Progress) {
		if p.Records == 1300 {
			cancel() // Ctrl-C in the middle of the second page
		}
	}})
	if err == nil {
		t.Fatal("the interrupted import reported success")
	}
	r.Close()
	var state RemoteState
	b, _ := os.ReadFile(statePath)
	json.Unmarshal(b, &state)
	post := state.Classes["Post"]
	if post == nil || post.Done || post.LastID == "" || post.Count < 1000 || post.Count >= 1300 {
		t.Fatalf("saved state %+v", post)
	}
	stored, _ := st.Scan(context.Background(), "Post")
	if len(stored) != post.Count {
		t.Fatalf("stored %d, state says %d", len(stored), post.Count)
	}

	fake.requests = nil
	r2, err := OpenRemote(context.Background(), remoteOpts(srv, fake, statePath))
	if err != nil {
		t.Fatal(err)
	}
	rep, err := Import(context.Background(), r2, &StoreTarget{Store: st}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	r2.Close()
	if !strings.Contains(fake.requests[0], url.QueryEscape(`{"objectId":{"$gt":"`+post.LastID+`"}}`)) {
		t.Errorf("resumed with %q", fake.requests[0])
	}
	if c := rep.Classes["Post"]; c.Added != 2500-post.Count || c.Unchanged != 0 || c.Failed != 0 {
		t.Errorf("resumed Post %+v (state had %d)", c, post.Count)
	}
	if rep.Classes["Tag"].Added != 10 {
		t.Errorf("Tag %+v", rep.Classes["Tag"])
	}
	stored, _ = st.Scan(context.Background(), "Post")
	if len(stored) != 2500 {
		t.Errorf("stored %d posts", len(stored))
	}

	// a finished scan has nothing left to do
	fake.requests = nil
	r3, _ := OpenRemote(context.Background(), remoteOpts(srv, fake, statePath))
	rep, err = Import(context.Background(), r3, &StoreTarget{Store: st}, Options{})
	if err != nil || len(fake.requests) != 0 || len(rep.Classes) != 0 {
		t.Errorf("third run: %v, %d requests, %v", err, len(fake.requests), rep.Classes)
	}
}

func TestRemoteErrors(t *testing.T) {
	fake := newFake(map[string]int{"Post": 5})
	srv := httptest.NewServer(fake)
	defer srv.Close()
	opts := remoteOpts(srv, fake, "")
	opts.MasterKey = "wrong-key"
	_, err := OpenRemote(context.Background(), opts)
	if err == nil || !strings.Contains(err.Error(), "HTTP 401") || strings.Contains(err.Error(), "wrong-key") {
		t.Errorf("bad key: %v", err)
	}

	fake.fail = func(int) int { return 503 }
	opts = remoteOpts(srv, fake, "")
	opts.Attempts = 3
	r, err := OpenRemote(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	_, err = Import(context.Background(), r, &StoreTarget{Store: openStore(t)}, Options{})
	if err == nil || !strings.Contains(err.Error(), "HTTP 503") || r.Retries != 2 {
		t.Errorf("503 forever: %v (retries %d)", err, r.Retries)
	}

	// an object over 16 MB is refused, the others go in
	fake.fail = nil
	fake.classes["Post"][2]["text"] = strings.Repeat("x", MaxObjectSize)
	r, err = OpenRemote(context.Background(), remoteOpts(srv, fake, ""))
	if err != nil {
		t.Fatal(err)
	}
	rep, err := Import(context.Background(), r, &StoreTarget{Store: openStore(t)}, Options{})
	if err != nil || rep.Classes["Post"].Added != 4 || len(rep.Errors) != 1 || rep.Errors[0] != "leancloud:Post:3: Post: object larger than 16 MB" {
		t.Errorf("oversized: %v %+v %q", err, rep.Classes["Post"], rep.Errors)
	}

	other := filepath.Join(t.TempDir(), "state.json")
	os.WriteFile(other, []byte(`{"appId":"another","classes":{}}`), 0o644)
	if _, err := OpenRemote(context.Background(), remoteOpts(srv, fake, other)); err == nil || !strings.Contains(err.Error(), "another") {
		t.Errorf("state of another app: %v", err)
	}
}
