package deployer

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/fnhq/fn/api"
)

// A follow stream that drops resumes after the last record seen: no gaps, no duplicates.
func TestLogsFollowResumesAfterADroppedConnection(t *testing.T) {
	var mu sync.Mutex
	var afters []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer tok" || r.URL.Query().Get("follow") != "1" {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		after := r.URL.Query().Get("after")
		mu.Lock()
		afters = append(afters, after)
		mu.Unlock()
		var from int64
		fmt.Sscan(after, &from)
		enc := json.NewEncoder(w)
		// each connection sends the next three records (and one it already sent), then drops
		for id := from; id <= from+3; id++ {
			if id == 0 {
				continue
			}
			enc.Encode(api.LogRecord{ID: id, Message: fmt.Sprint("m", id)})
		}
	}))
	defer srv.Close()
	c := New(Credentials{Server: srv.URL, Token: "tok"})
	ctx, cancel := context.WithCancel(context.Background())
	var got []int64
	err := c.Logs(ctx, AppLogsPath("app"), LogQuery{Follow: true}, func(r api.LogRecord) {
		got = append(got, r.ID)
		if len(got) == 9 {
			cancel()
		}
	})
	if err != nil && ctx.Err() == nil {
		t.Fatal(err)
	}
	for i, id := range got {
		if id != int64(i+1) {
			t.Fatalf("records out of order, duplicated or missing: %v", got)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(afters) < 3 || afters[0] != "" || afters[1] != "3" {
		t.Fatalf("reconnects did not resume after the last record: %v", afters)
	}
}
