package localrun

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fnhq/fn/internal/testutil"
	"github.com/fnhq/fn/project"
)

// An SDK-like function: what wx-server-sdk 1.x/2.1/2.2 do (https to tcb-admin.tencentcloudapi.com),
// a call to WeChat's HTTP API, a request to another Tencent Cloud endpoint, and third-party
// requests through http.request and fetch.
const outboundFunction = `const https = require('https')
const http = require('http')
function send(mod, url, opts, body) {
  return new Promise((resolve, reject) => {
    const req = mod.request(url, opts, (res) => {
      let data = ''
      res.setEncoding('utf8')
      res.on('data', (c) => { data += c })
      res.on('end', () => resolve({ status: res.statusCode, body: data }))
    })
    req.on('error', (e) => reject(e))
    req.end(body)
  })
}
const err = (e) => ({ code: e.code || (e.cause && e.cause.code), message: e.message + (e.cause ? ' ' + e.cause.message : '') })
exports.main = async (event) => {
  const out = {}
  if (event.cloud) {
    const admin = await send(https, 'https://tcb-admin.tencentcloudapi.com/admin', { method: 'POST', headers: { 'content-type': 'application/json' } },
      JSON.stringify({ action: 'functions.invokeFunction', function_name: 'callee', request_data: '{"x":1}' }))
    out.admin = JSON.parse(admin.body)
    try { await send(https, 'https://scf.tencentcloudapi.com/', { method: 'POST' }, '{}'); out.scf = 'reached' } catch (e) { out.scf = err(e) }
    try { await fetch('https://cos.ap-shanghai.tcloudbase.com/x'); out.tcloudbase = 'reached' } catch (e) { out.tcloudbase = err(e) }
    const wx = await fetch('https://api.weixin.qq.com/cgi-bin/message/subscribe/send?access_token=t', { method: 'POST',
      body: JSON.stringify({ touser: 'oZed', template_id: 'tm', data: { a: { value: 'b' } } }) })
    out.wx = await wx.json()
    out.metadata = await send(http, 'http://metadata.tencentyun.com/latest/meta-data/app-id', { method: 'GET' }, '')
    try { await send(http, 'http://other.tencentyun.com/x', { method: 'GET' }, ''); out.tencentyun = 'reached' } catch (e) { out.tencentyun = err(e) }
  }
  if (event.url) {
    try { out.http = await send(http, event.url + '/a?q=1', { method: 'POST', headers: { 'content-type': 'text/plain' } }, 'hello') } catch (e) { out.http = err(e) }
    try { const r = await fetch(event.url + '/b'); out.fetch = { status: r.status, body: await r.text() } } catch (e) { out.fetch = err(e) }
  }
  return out
}
`

func startDevIn(t *testing.T, dir string, o DevOptions) (*recorder, func()) {
	t.Helper()
	p, err := project.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	rec := newRecorder()
	o.Node, o.Host, o.Events = "node", "127.0.0.1", rec
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- RunDev(ctx, p, o) }()
	stop := func() { cancel(); <-done }
	select {
	case <-rec.ready:
	case err := <-done:
		t.Fatalf("fn dev stopped: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("fn dev did not start")
	}
	return rec, stop
}

func callWX(t *testing.T, url, fn, body string) map[string]any {
	t.Helper()
	res, err := http.Post(url+"/wx/functions/"+fn, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	var m map[string]any
	json.Unmarshal(b, &m)
	r, ok := m["result"].(map[string]any)
	if !ok {
		t.Fatalf("%s: %s", fn, b)
	}
	return r
}

func TestOutboundHTTPRoutedRecordedAndReplayed(t *testing.T) {
	dir := t.TempDir()
	testutil.WriteFile(t, dir, "fn.yaml", "name: ob\ndialect: wx\nidentities:\n  zed: {openid: oZed, appid: wxZ}\n")
	testutil.WriteFile(t, dir, "functions/outbound/index.js", outboundFunction)
	testutil.WriteFile(t, dir, "functions/callee/index.js", "const cloud = require('wx-server-sdk')\ncloud.init()\nexports.main = async (event) => ({ x: event.x, openid: cloud.getWXContext().OPENID })\n")
	testutil.LinkNodeModules(t, dir)

	var hits atomic.Int32
	third := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		b, _ := io.ReadAll(r.Body)
		w.Header().Set("Content-Type", "text/plain")
		fmt.Fprintf(w, "%s %s %s", r.Method, r.URL.RequestURI(), b)
	}))

	rec, stop := startDevIn(t, dir, DevOptions{HTTPMode: "record"})
	// old SDKs' hosts come to fn, other Tencent endpoints are refused, WeChat's API is emulated
	out := callWX(t, rec.url, "outbound", `{"cloud": true}`)
	admin, _ := out["admin"].(map[string]any)
	data, _ := admin["data"].(map[string]any)
	if rd, _ := data["response_data"].(string); !strings.Contains(rd, `"x":1`) || !strings.Contains(rd, `"openid":"oZed"`) {
		t.Errorf("tcb-admin.tencentcloudapi.com routed to fn's /admin with the caller's identity: %v", out["admin"])
	}
	// the SDK's "am I in Tencent Cloud" probe gets a quick, cacheable no
	if m, _ := out["metadata"].(map[string]any); m == nil || m["status"] != 200.0 || m["body"] != "" {
		t.Errorf("metadata.tencentyun.com: %v", out["metadata"])
	}
	for _, k := range []string{"scf", "tcloudbase", "tencentyun"} {
		if e, _ := out[k].(map[string]any); e == nil || e["code"] != "FN_BLOCKED_CLOUD_ENDPOINT" || !strings.Contains(e["message"].(string), "Tencent Cloud endpoint") {
			t.Errorf("%s: %v", k, out[k])
		}
	}
	if wx, _ := out["wx"].(map[string]any); wx == nil || wx["errcode"] != 0.0 {
		t.Errorf("api.weixin.qq.com: %v", out["wx"])
	}
	// third-party requests are made and recorded
	out = callWX(t, rec.url, "outbound", fmt.Sprintf(`{"url": %q}`, third.URL))
	if h, _ := out["http"].(map[string]any); h == nil || h["body"] != "POST /a?q=1 hello" || h["status"] != 200.0 {
		t.Errorf("recorded http.request: %v", out["http"])
	}
	if f, _ := out["fetch"].(map[string]any); f == nil || f["body"] != "GET /b " {
		t.Errorf("recorded fetch: %v", out["fetch"])
	}
	stop()
	if hits.Load() != 2 {
		t.Fatalf("the third-party server got %d requests, want 2", hits.Load())
	}
	recFile := filepath.Join(dir, "recordings", "outbound.jsonl")
	b, err := os.ReadFile(recFile)
	if err != nil {
		t.Fatal(err)
	}
	if lines := strings.Split(strings.TrimSpace(string(b)), "\n"); len(lines) != 2 || !strings.Contains(lines[0], `"text":"POST /a?q=1 hello"`) {
		t.Fatalf("recordings:\n%s", b)
	}
	third.Close()

	// offline: the same requests are answered from the file; another one fails naming itself
	rec, stop = startDevIn(t, dir, DevOptions{HTTPMode: "replay"})
	defer stop()
	out = callWX(t, rec.url, "outbound", fmt.Sprintf(`{"url": %q}`, third.URL))
	if h, _ := out["http"].(map[string]any); h == nil || h["body"] != "POST /a?q=1 hello" {
		t.Errorf("replayed http.request: %v", out["http"])
	}
	if f, _ := out["fetch"].(map[string]any); f == nil || f["body"] != "GET /b " {
		t.Errorf("replayed fetch: %v", out["fetch"])
	}
	out = callWX(t, rec.url, "outbound", `{"url": "http://example.invalid"}`)
	if e, _ := out["http"].(map[string]any); e == nil || e["code"] != "FN_HTTP_NOT_RECORDED" || !strings.Contains(e["message"].(string), "POST http://example.invalid/a?q=1") {
		t.Errorf("an unrecorded request: %v", out["http"])
	}
	if hits.Load() != 2 {
		t.Errorf("replay reached the network: %d requests", hits.Load())
	}
}
