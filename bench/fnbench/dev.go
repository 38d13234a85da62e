//go:build unix

package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

// expressServer is express running the same function: the baseline users know.
const expressServer = `const express = require('express')
const fn = require(process.argv[2])
const app = express()
app.use(express.json())
app.post('/', async (req, res) => res.json(await fn.main(req.body, {})))
const server = app.listen(0, '127.0.0.1', () => console.log(server.address().port))
`

type target struct {
	name string
	url  string
}

// loadLean drives a LeanEngine URL with an app's id and key.
func loadLean(url, id, key string, c int, d time.Duration) (float64, stats) {
	leanAuth = [2]string{id, key}
	r, s, _ := load(url, c, d)
	return r, s
}

// leanAuth is the id and key load sends to LeanEngine URLs (marked by a trailing '?').
var leanAuth = [2]string{"bench-fnDev", "benchKey"}

// load drives url with c keep-alive clients for d and returns req/s and latency stats.
func load(url string, c int, d time.Duration) (float64, stats, int) {
	tr := &http.Transport{MaxIdleConnsPerHost: c, MaxConnsPerHost: c}
	client := &http.Client{Transport: tr}
	defer tr.CloseIdleConnections()
	var mu sync.Mutex
	var all []time.Duration
	errors := 0
	deadline := time.Now().Add(d)
	var wg sync.WaitGroup
	for i := 0; i < c; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var local []time.Duration
			bad := 0
			for time.Now().Before(deadline) {
				start := time.Now()
				req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(`{"n":1}`))
				req.Header.Set("Content-Type", "application/json")
				if strings.HasSuffix(url, "?") { // LeanEngine: app id and key
					req.Header.Set("X-LC-Id", leanAuth[0])
					req.Header.Set("X-LC-Key", leanAuth[1])
				}
				resp, err := client.Do(req)
				if err != nil {
					bad++
					continue
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					bad++
				}
				local = append(local, time.Since(start))
			}
			mu.Lock()
			all = append(all, local...)
			errors += bad
			mu.Unlock()
		}()
	}
	wg.Wait()
	return float64(len(all)) / d.Seconds(), summarize(all), errors
}

func startNode(args ...string) (string, func()) {
	cmd := exec.Command("node", args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	out, _ := cmd.StdoutPipe()
	must(cmd.Start())
	line, _ := bufio.NewReader(out).ReadString('\n')
	return "http://127.0.0.1:" + strings.TrimSpace(line) + "/", func() {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		cmd.Wait()
	}
}

type devServer struct {
	cmd *exec.Cmd
	url string
}

func startFnDev(fn, dir string) *devServer {
	cmd := exec.Command(fn, "dev", "--port", "0", "--json")
	cmd.Dir = dir
	out, _ := cmd.StdoutPipe()
	cmd.Stderr = io.Discard
	must(cmd.Start())
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		var ev map[string]any
		if json.Unmarshal(sc.Bytes(), &ev) == nil && ev["event"] == "ready" {
			go io.Copy(io.Discard, out)
			return &devServer{cmd: cmd, url: ev["url"].(string)}
		}
	}
	must(fmt.Errorf("fn dev did not start"))
	return nil
}

func (d *devServer) stop() {
	d.cmd.Process.Signal(syscall.SIGINT)
	d.cmd.Wait()
}

func devBench(fn, nodeModules string) {
	dir, _ := os.MkdirTemp("", "fnbench-dev-")
	defer os.RemoveAll(dir)
	write := func(rel, s string) {
		os.MkdirAll(filepath.Dir(filepath.Join(dir, rel)), 0o755)
		os.WriteFile(filepath.Join(dir, rel), []byte(s), 0o644)
	}
	write("fn.yaml", "name: devbench\ndialect: wx\nfunctions:\n  conc:\n    concurrency: 32\n    maxInstances: 2\n")
	write("package.json", `{"name":"devbench","private":true}`)
	write("functions/hello/index.js", fnSource)
	write("functions/conc/index.js", fnSource)
	write("functions/edit/index.js", "exports.main = async () => ({ v: 0 })\n")
	write("functions/dep/index.js", "const dep = require('localdep')\nexports.main = async () => ({ v: dep.v })\n")
	write("node_modules/localdep/index.js", "exports.v = 0\n")
	write("bare.js", bareServer)
	write("express.js", expressServer)
	for _, pkg := range []string{"express", "wx-server-sdk"} {
		os.Symlink(filepath.Join(nodeModules, pkg), filepath.Join(dir, "node_modules", pkg))
	}
	// express's own dependencies resolve from the fixture
	os.Setenv("NODE_PATH", nodeModules)

	d := startFnDev(fn, dir)
	defer d.stop()
	fnURL := d.url + "/wx/functions/hello"
	// the same function as LeanEngine cloud code: many invocations share one worker
	leanDir := filepath.Join(dir, "lean")
	os.MkdirAll(filepath.Join(leanDir, "node_modules"), 0o755)
	os.WriteFile(filepath.Join(leanDir, "fn.yaml"), []byte("name: leanbench\ndialect: lean\nlean:\n  appId: bench-fnDev\n  appKey: benchKey\n  masterKey: benchMaster\n  hookKey: benchHook\n"), 0o644)
	os.WriteFile(filepath.Join(leanDir, "cloud.js"), []byte("const AV = require('leanengine')\nAV.Cloud.define('hello', async (req) => ({ ok: true, n: req.params.n }))\n"), 0o644)
	for _, pkg := range []string{"leanengine", "leancloud-storage"} {
		os.Symlink(filepath.Join(nodeModules, pkg), filepath.Join(leanDir, "node_modules", pkg))
	}
	ld := startFnDev(fn, leanDir)
	defer ld.stop()
	leanURL := ld.url + "/1.1/functions/hello?"
	leanAuth = [2]string{"bench-fnDev", "benchKey"}
	bareURL, stopBare := startNode(filepath.Join(dir, "bare.js"), filepath.Join(dir, "functions/hello/index.js"))
	defer stopBare()
	expURL, stopExp := startNode(filepath.Join(dir, "express.js"), filepath.Join(dir, "functions/hello/index.js"))
	defer stopExp()
	targets := []target{{"bare node:http", bareURL}, {"fn dev wx (POST /wx/functions/hello)", fnURL},
		{"fn dev wx, `concurrency: 32` (opt-in)", d.url + "/wx/functions/conc"},
		{"fn dev lean (POST /1.1/functions/hello)", leanURL}, {"express 4", expURL}}
	for _, t := range targets {
		load(t.url, 4, time.Second) // warm up (fn dev grows its pool)
	}
	fmt.Printf("## fn dev\n\nSame trivial function behind each server; Go load generator on the same machine (keep-alive),\n3 interleaved rounds of 3 s per target and concurrency.\n\n")
	fmt.Printf("| server | concurrency | req/s | p50 | p99 | × bare node | errors |\n|---|---|---|---|---|---|---|\n")
	for _, c := range []int{1, 32} {
		rps := map[string][]float64{}
		lat := map[string][]stats{}
		errs := map[string]int{}
		for round := 0; round < 3; round++ {
			for _, t := range targets {
				r, s, e := load(t.url, c, 3*time.Second)
				rps[t.name] = append(rps[t.name], r)
				lat[t.name] = append(lat[t.name], s)
				errs[t.name] += e
			}
		}
		median := func(xs []float64) float64 {
			c := append([]float64(nil), xs...)
			for i := range c {
				for j := i + 1; j < len(c); j++ {
					if c[j] < c[i] {
						c[i], c[j] = c[j], c[i]
					}
				}
			}
			return c[len(c)/2]
		}
		base := median(rps["bare node:http"])
		for _, t := range targets {
			r := median(rps[t.name])
			s := lat[t.name][1]
			fmt.Printf("| %s | %d | %.0f | %s | %s | %.2f | %d |\n", t.name, c, r, us(s.p50), us(s.p99), r/base, errs[t.name])
		}
	}
	fmt.Println()

	// Save → first response with the new code.
	poll := func(url, want string) time.Duration {
		start := time.Now()
		for time.Since(start) < 10*time.Second {
			resp, err := http.Post(url, "application/json", strings.NewReader(`{}`))
			if err == nil {
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if strings.Contains(string(b), want) {
					return time.Since(start)
				}
			}
		}
		must(fmt.Errorf("new code not served within 10 s (%s)", want))
		return 0
	}
	var src []time.Duration
	for i := 1; i <= 50; i++ {
		want := fmt.Sprintf(`"v":%d`, i)
		start := time.Now()
		write("functions/edit/index.js", fmt.Sprintf("exports.main = async () => ({ v: %d })\n", i))
		poll(d.url+"/wx/functions/edit", want)
		src = append(src, time.Since(start))
		time.Sleep(20 * time.Millisecond) // let the file system settle between edits
	}
	ss := summarize(src)
	var dep []time.Duration
	for i := 1; i <= 10; i++ {
		want := fmt.Sprintf(`"v":%d`, i)
		start := time.Now()
		write("node_modules/localdep/index.js", fmt.Sprintf("exports.v = %d\n", i))
		write("package.json", fmt.Sprintf(`{"name":"devbench","private":true,"version":"1.0.%d"}`, i))
		poll(d.url+"/wx/functions/dep", want)
		dep = append(dep, time.Since(start))
		time.Sleep(50 * time.Millisecond)
	}
	ds := summarize(dep)
	fmt.Printf("- save → first response with the new code, source edit (50 edits): p50 %s, p95 %s (goal ≤ 20 ms p50)\n", ms(ss.p50), ms(ss.p95))
	fmt.Printf("- save → first response, dependency change (package.json + package code, fresh workers; 10 edits): p50 %s, p95 %s (goal ≤ 150 ms)\n\n", ms(ds.p50), ms(ds.p95))
}
