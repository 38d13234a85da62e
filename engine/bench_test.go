package engine

import (
	"context"
	"encoding/json"
	"sync"
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

// BenchmarkInvokeWXParallel is 32 callers sharing a wx function with the platform's default of one
// call per instance: the pool hands workers from caller to caller.
func BenchmarkInvokeWXParallel(b *testing.B) {
	t := &testing.T{}
	f := newFixture(t, map[string]string{"fn.yaml": "name: bench\ndialect: wx\n", "functions/hello/index.js": "exports.main = async (e) => ({ ok: true })\n"}, bundler.Dev, Config{})
	defer f.e.Close(time.Second)
	ctx := context.Background()
	data := json.RawMessage(`{"n":1}`)
	id := &WXIdentity{OpenID: "o", AppID: "a"}
	warm(32, func() { f.e.InvokeWX(ctx, WXRequest{Function: "hello", Data: data, Identity: id, UserInfo: true}) })
	b.SetParallelism(16) // × GOMAXPROCS (2 here): 32 callers
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if r := f.e.InvokeWX(ctx, WXRequest{Function: "hello", Data: data, Identity: id, UserInfo: true}); r.Err != nil {
				b.Error(r.Err)
				return
			}
		}
	})
}

// BenchmarkInvokeLeanParallel is 32 callers of one cloud function on a shared lean worker.
func BenchmarkInvokeLeanParallel(b *testing.B) {
	t := &testing.T{}
	f := newFixture(t, map[string]string{"fn.yaml": "name: bench\ndialect: lean\n", "cloud.js": "const AV = require('leanengine')\nAV.Cloud.define('hello', async (req) => ({ ok: true, n: req.params.n }))\n"}, bundler.Dev, Config{})
	defer f.e.Close(time.Second)
	ctx := context.Background()
	params := json.RawMessage(`{"n":1}`)
	warm(32, func() { f.e.InvokeLean(ctx, LeanRequest{Kind: LeanFunction, Name: "hello", Params: params}) })
	b.SetParallelism(16) // × GOMAXPROCS (2 here): 32 callers
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if r := f.e.InvokeLean(ctx, LeanRequest{Kind: LeanFunction, Name: "hello", Params: params}); r.Status != 200 {
				b.Errorf("status %d: %s", r.Status, r.Body)
				return
			}
		}
	})
}

// warm makes c calls at once, 10 times, so that the pool has grown before the timer starts.
func warm(c int, call func()) {
	for i := 0; i < 10; i++ {
		var wg sync.WaitGroup
		for j := 0; j < c; j++ {
			wg.Add(1)
			go func() { defer wg.Done(); call() }()
		}
		wg.Wait()
	}
}
