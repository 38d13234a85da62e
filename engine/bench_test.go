package engine

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/fnhq/fn/bundler"
)

// BenchmarkInvokeWX is a warm invocation of a trivial function through the engine (no HTTP).
func BenchmarkInvokeWX(b *testing.B) {
	t := &testing.T{}
	f := newFixture(t, map[string]string{"fn.yaml": "name: bench\ndialect: wx\n", "functions/hello/index.js": "exports.main = async (e) => ({ ok: true })\n"}, bundler.Dev, Config{})
	defer f.e.Close(time.Second)
	ctx := context.Background()
	data := json.RawMessage(`{"n":1}`)
	id := &WXIdentity{OpenID: "o", AppID: "a"}
	for i := 0; i < 200; i++ {
		f.e.InvokeWX(ctx, WXRequest{Function: "hello", Data: data, Identity: id, UserInfo: true})
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if r := f.e.InvokeWX(ctx, WXRequest{Function: "hello", Data: data, Identity: id, UserInfo: true}); r.Err != nil {
			b.Fatal(r.Err)
		}
	}
}

// BenchmarkPing is the protocol's floor: one line to a worker and one back.
func BenchmarkPing(b *testing.B) {
	t := &testing.T{}
	f := newFixture(t, map[string]string{"fn.yaml": "name: bench\ndialect: wx\n", "functions/hello/index.js": "exports.main = async (e) => ({ ok: true })\n"}, bundler.Dev, Config{})
	defer f.e.Close(time.Second)
	p, _ := f.e.pool("hello")
	w, err := p.acquire(context.Background())
	if err != nil {
		b.Fatal(err)
	}
	defer p.release(w)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if !w.ping(time.Second) {
			b.Fatal("no pong")
		}
	}
}
