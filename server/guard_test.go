package server

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/fnhq/fn/engine"
	"github.com/fnhq/fn/wxdb"
)

type fakeWX struct{ calls int }

func (f *fakeWX) InvokeWX(ctx context.Context, req engine.WXRequest) *engine.Result {
	f.calls++
	return &engine.Result{RequestID: "r", Value: []byte(`"ran"`)}
}

func (f *fakeWX) WXCaller(token string) (engine.WXCaller, bool) {
	if token == "issued" {
		return engine.WXCaller{Function: "caller", RequestID: "p", Source: "wx_client"}, true
	}
	return engine.WXCaller{}, false
}

func TestWXAdminTokens(t *testing.T) {
	cases := []struct {
		trust  bool
		remote string
		token  string
		want   int
	}{
		{false, "127.0.0.1:1", "", 401},       // fn serve never trusts loopback
		{false, "127.0.0.1:1", "forged", 401}, // unknown token
		{false, "10.0.0.1:1", "issued", 200},  // a running function's token
		{true, "127.0.0.1:1", "", 200},        // fn dev's own tools
		{true, "[::1]:1", "", 200},            // fn dev's own tools over IPv6
		{true, "10.0.0.1:1", "", 401},         // fn dev on a LAN address: not a loopback client
		{true, "127.0.0.1:1", "forged", 401},  // a token that was sent must be valid
	}
	for _, c := range cases {
		inv := &fakeWX{}
		h := WXAdmin(inv, nil, WXServices{TrustLoopback: c.trust})
		body := `{"action":"functions.invokeFunction","function_name":"f","request_data":"{}","wxCloudApiToken":"` + c.token + `"}`
		r := httptest.NewRequest(http.MethodPost, "/admin", strings.NewReader(body))
		r.RemoteAddr = c.remote
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != c.want || (c.want == 401) != (inv.calls == 0) {
			t.Errorf("%+v: %d %s (calls %d)", c, w.Code, w.Body, inv.calls)
		}
	}
}

func TestSignFreshness(t *testing.T) {
	now := time.UnixMilli(1_700_000_000_000)
	s := &api{o: Options{SignWindow: DefaultSignWindow, Now: func() time.Time { return now }}, replays: newReplayGuard(DefaultSignWindow)}
	req := func(method string) *http.Request { return httptest.NewRequest(method, "/1.1/classes/X", nil) }
	sign := func(ts time.Time) string { return Sign("k", ts.UnixMilli(), false) }
	if err := s.checkSignFresh(req("GET"), sign(now.Add(-16*time.Minute)), nil); err == nil {
		t.Error("16 minutes old accepted")
	}
	if err := s.checkSignFresh(req("GET"), sign(now.Add(16*time.Minute)), nil); err == nil {
		t.Error("16 minutes ahead accepted")
	}
	old := sign(now.Add(-time.Minute))
	for i := 0; i < 2; i++ {
		if err := s.checkSignFresh(req("GET"), old, nil); err != nil {
			t.Error("a repeated read refused")
		}
	}
	if err := s.checkSignFresh(req("POST"), old, []byte(`{"a":1}`)); err != nil {
		t.Fatal(err)
	}
	if err := s.checkSignFresh(req("POST"), old, []byte(`{"a":1}`)); err == nil {
		t.Error("a replayed write accepted")
	}
	if err := s.checkSignFresh(req("POST"), old, []byte(`{"a":2}`)); err != nil {
		t.Error("another write with the same signature refused")
	}
	fresh := sign(now)
	for i := 0; i < 3; i++ {
		if err := s.checkSignFresh(req("POST"), fresh, []byte(`{"a":1}`)); err != nil {
			t.Error("identical concurrent writes signed in the same millisecond refused")
		}
	}
}

func TestLoopbackHosts(t *testing.T) {
	for host, want := range map[string]bool{"localhost": true, "localhost:3000": true, "app.localhost:1": true, "127.0.0.1:3000": true,
		"[::1]:3000": true, "127.1.2.3": true, "evil.example": false, "evil.example:3000": false, "localhost.evil.example": false,
		"10.0.0.1:3000": false, "": false} {
		if got := IsLoopbackHost(host); got != want {
			t.Errorf("IsLoopbackHost(%q) = %v", host, got)
		}
	}
}

type fakeDB struct{ calls int }

func (f *fakeDB) Handle(ctx context.Context, env string, caller wxdb.Caller, action string, body json.RawMessage) (json.RawMessage, bool) {
	f.calls++
	return json.RawMessage(`{"data":{"list":[]}}`), true
}

// The cloud database and storage actions need a running function's token as callFunction does:
// fn serve's /admin is not a back door into an app's data.
func TestWXAdminDataActionsNeedTheToken(t *testing.T) {
	for _, c := range []struct {
		token string
		want  int
	}{{"", 401}, {"forged", 401}, {"issued", 200}} {
		db := &fakeDB{}
		h := WXAdmin(&fakeWX{}, nil, WXServices{Database: db})
		body := `{"action":"database.getDocument","collectionName":"users","query":"{}","wxCloudApiToken":"` + c.token + `"}`
		r := httptest.NewRequest(http.MethodPost, "/admin", strings.NewReader(body))
		r.RemoteAddr = "127.0.0.1:1"
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != c.want || (c.want == 401) != (db.calls == 0) {
			t.Errorf("token %q: %d %s (db calls %d)", c.token, w.Code, w.Body, db.calls)
		}
	}
}
