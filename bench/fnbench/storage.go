//go:build unix

package main

import (
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// storageBench measures LeanStorage through fn dev: object creation with and without a
// beforeSave hook, and a simple query.
func storageBench(fn, nodeModules string) {
	dir, _ := os.MkdirTemp("", "fnbench-storage-")
	defer os.RemoveAll(dir)
	os.MkdirAll(filepath.Join(dir, "node_modules"), 0o755)
	os.WriteFile(filepath.Join(dir, "fn.yaml"), []byte("name: storebench\ndialect: lean\nlean:\n  appId: sb-fnDev\n  appKey: sbKey\n  masterKey: sbMaster\n  hookKey: sbHook\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "cloud.js"), []byte("const AV = require('leanengine')\nAV.Cloud.beforeSave('Hooked', (req) => { req.object.set('checked', true) })\n"), 0o644)
	for _, pkg := range []string{"leanengine", "leancloud-storage"} {
		os.Symlink(filepath.Join(nodeModules, pkg), filepath.Join(dir, "node_modules", pkg))
	}
	d := startFnDev(fn, dir)
	defer d.stop()
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 8}}
	do := func(method, path, body string) error {
		req, _ := http.NewRequest(method, d.url+path, strings.NewReader(body))
		req.Header.Set("X-LC-Id", "sb-fnDev")
		req.Header.Set("X-LC-Key", "sbKey")
		req.Header.Set("Content-Type", "application/json")
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode >= 300 {
			return fmt.Errorf("%s %s: %d", method, path, resp.StatusCode)
		}
		return nil
	}
	run := func(c int, dur time.Duration, f func() error) (float64, stats) {
		var mu sync.Mutex
		var all []time.Duration
		deadline := time.Now().Add(dur)
		var wg sync.WaitGroup
		for i := 0; i < c; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for time.Now().Before(deadline) {
					start := time.Now()
					must(f())
					mu.Lock()
					all = append(all, time.Since(start))
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		return float64(len(all)) / dur.Seconds(), summarize(all)
	}
	printf("## LeanStorage through fn dev\n\n| operation | concurrency | req/s | p50 | p99 |\n|---|---|---|---|---|\n")
	for _, c := range []int{1, 8} {
		for _, class := range []string{"Plain", "Hooked"} {
			rps, s := run(c, opt.dur, func() error { return do(http.MethodPost, "/1.1/classes/"+class, `{"n":1,"text":"hello"}`) })
			label := "create, no hook"
			if class == "Hooked" {
				label = "create, with a beforeSave hook"
			}
			printf("| %s | %d | %.0f | %s | %s |\n", label, c, rps, us(s.p50), us(s.p99))
		}
	}
	where := url.QueryEscape(`{"n":1}`)
	rps, s := run(8, opt.dur, func() error { return do(http.MethodGet, "/1.1/classes/Plain?limit=10&where="+where, "") })
	printf("| query `where={\"n\":1}` limit 10 (class with the objects created above) | 8 | %.0f | %s | %s |\n\n", rps, us(s.p50), us(s.p99))
}
