package server

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fnhq/fn/engine"
	"github.com/fnhq/fn/project"
)

type leanEcho struct{}

func (leanEcho) InvokeWX(context.Context, engine.WXRequest) *engine.Result {
	return &engine.Result{Value: []byte(`{"ok":true}`), RequestID: "rid-wx"}
}
func (leanEcho) WXCaller(string) (engine.WXCaller, bool) { return engine.WXCaller{}, false }
func (leanEcho) Functions() []string                     { return []string{"hello"} }
func (leanEcho) InvokeLean(_ context.Context, req engine.LeanRequest) *engine.LeanResult {
	return &engine.LeanResult{Status: 200, Body: []byte(`{"result":` + string(req.Params) + `}`), RequestID: "rid-lean"}
}

// A call's answer goes out before AfterResponse runs, its record (OnInvocation) before the
// answer, and the answer is a plain one with its length (not chunked).
func TestAnswerSentBeforeAfterResponse(t *testing.T) {
	for _, c := range []struct {
		dialect project.Dialect
		path    string
		header  http.Header
	}{
		{project.Lean, "/1.1/functions/hello", http.Header{"X-Lc-Id": {"app"}, "X-Lc-Key": {"key"}}},
		{project.WX, "/wx/functions/hello", nil},
	} {
		t.Run(string(c.dialect), func(t *testing.T) {
			var mu sync.Mutex
			var order []string
			note := func(s string) { mu.Lock(); order = append(order, s); mu.Unlock() }
			answered := make(chan struct{})
			after := make(chan bool, 1)
			h := New(Options{Dialect: c.dialect, Invoker: leanEcho{}, Keys: LeanKeys{AppID: "app", AppKey: "key", MasterKey: "master"},
				WXIdentity:   func(*http.Request) (*engine.WXIdentity, string, error) { return nil, "", nil },
				OnInvocation: func(inv Invocation) { note("record " + inv.RequestID) },
				AfterResponse: func(inv Invocation) {
					select {
					case <-answered:
						after <- true
					case <-time.After(10 * time.Second): // the client never got the answer while this ran
						after <- false
					}
					note("after " + inv.RequestID)
				}})
			srv := httptest.NewServer(h)
			defer srv.Close()
			req, _ := http.NewRequest(http.MethodPost, srv.URL+c.path, strings.NewReader(`{"n":1}`))
			for k, v := range c.header {
				req.Header[k] = v
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			close(answered)
			if resp.StatusCode != 200 || resp.ContentLength != int64(len(body)) || len(resp.TransferEncoding) != 0 {
				t.Fatalf("status %d, length %d, transfer encoding %v for %d bytes %q; want 200 with its length", resp.StatusCode, resp.ContentLength, resp.TransferEncoding, len(body), body)
			}
			if !<-after {
				t.Fatal("AfterResponse ran before the client had the answer")
			}
			mu.Lock()
			defer mu.Unlock()
			if len(order) != 2 || !strings.HasPrefix(order[0], "record rid-") || !strings.HasPrefix(order[1], "after rid-") {
				t.Fatalf("order %q; want the record, then AfterResponse", order)
			}
		})
	}
}

// A body is read whole whether its length is declared or it comes in chunks, and one over
// MaxBody is refused either way, before the call.
func TestBodiesDeclaredAndChunkedUpToTheLimit(t *testing.T) {
	h := New(Options{Dialect: project.Lean, Invoker: leanEcho{}, Keys: LeanKeys{AppID: "app", AppKey: "key", MasterKey: "master"}, MaxBody: 64})
	srv := httptest.NewServer(h)
	defer srv.Close()
	fits := `{"s":"` + strings.Repeat("x", 64-8) + `"}`
	over := `{"s":"` + strings.Repeat("x", 64-7) + `"}`
	for _, c := range []struct {
		name, body string
		chunked    bool
		status     int
	}{
		{"declared", fits, false, 200},
		{"chunked", fits, true, 200},
		{"declared over the limit", over, false, 413},
		{"chunked over the limit", over, true, 413},
	} {
		t.Run(c.name, func(t *testing.T) {
			var rd io.Reader = strings.NewReader(c.body)
			if c.chunked {
				rd = io.MultiReader(rd) // no length known: the client sends it in chunks
			}
			req, _ := http.NewRequest(http.MethodPost, srv.URL+"/1.1/functions/hello", rd)
			req.Header.Set("X-LC-Id", "app")
			req.Header.Set("X-LC-Key", "key")
			if got := req.ContentLength; (got == int64(len(c.body))) == c.chunked {
				t.Fatalf("the request's length is %d", got)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != c.status {
				t.Fatalf("status %d (%s); want %d", resp.StatusCode, body, c.status)
			}
			if c.status == 200 && strings.TrimSpace(string(body)) != `{"result":`+c.body+`}` {
				t.Fatalf("answer %s; want the params echoed whole", body)
			}
		})
	}
}

// A declared length is a claim: a client that declares a body of MaxBody and sends none of it
// costs fn no more than a small buffer while it waits (the allocation is measured on the server's
// goroutine through the body it is reading, with the sender stalled).
func TestADeclaredLengthReservesNoMemoryUpFront(t *testing.T) {
	s := &api{o: Options{MaxBody: 20 << 20}}
	stalled, release := io.Pipe()
	defer release.Close()
	r := httptest.NewRequest(http.MethodPost, "/1.1/functions/hello", stalled)
	r.ContentLength = 20 << 20
	done := make(chan struct{})
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	go func() {
		defer close(done)
		s.readBody(httptest.NewRecorder(), r, func() {})
	}()
	release.Write([]byte("{")) // the reader is inside readBody, waiting for more
	runtime.ReadMemStats(&after)
	release.CloseWithError(io.ErrUnexpectedEOF)
	<-done
	if grew := after.TotalAlloc - before.TotalAlloc; grew > 1<<20 {
		t.Fatalf("reading a declared 20 MB body that had sent 1 byte allocated %d bytes", grew)
	}
}
