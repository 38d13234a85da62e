//go:build unix

// Command fnbench measures fn side by side with its baselines in one run, because this machine is
// noisy: CLI start-up and cold builds, and the engine against a bare node:http server running the
// same function. It prints a Markdown report (docs/benchmarks.md keeps the figures).
//
//	go run ./bench/fnbench -fn bin/fn -fixture testdata/npm/node_modules [-only cli|engine]
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/fnhq/fn/bundler"
	"github.com/fnhq/fn/engine"
	"github.com/fnhq/fn/project"
)

func main() {
	fnBin := flag.String("fn", "bin/fn", "the fn binary to measure")
	fixture := flag.String("fixture", "testdata/npm/node_modules", "node_modules with the real SDKs")
	only := flag.String("only", "", "run only one group: cli, engine, dev, storage or serve")
	n := flag.Int("n", 5000, "warm invocations per side")
	flag.Parse()
	fnPath, _ := filepath.Abs(*fnBin)
	nm, _ := filepath.Abs(*fixture)
	nodeV, _ := exec.Command("node", "--version").Output()
	fmt.Printf("# fnbench %s\n\nmachine: %d cores, node %s, %s\n\n", time.Now().UTC().Format(time.RFC3339), numCPU(), strings.TrimSpace(string(nodeV)), goVersion())
	if *only == "" || *only == "cli" {
		cli(fnPath, nm)
	}
	if *only == "" || *only == "engine" {
		engineBench(nm, *n)
	}
	if *only == "" || *only == "dev" {
		devBench(fnPath, nm)
	}
	if *only == "" || *only == "storage" {
		storageBench(fnPath, nm)
	}
	if *only == "" || *only == "serve" {
		serveBench(fnPath, nm)
	}
	if *only == "scale" { // needs FN_BENCH_DSN, so never part of the default run
		scaleBench(fnPath, nm)
	}
}

func numCPU() int {
	b, _ := os.ReadFile("/proc/cpuinfo")
	return strings.Count(string(b), "processor\t:")
}

func goVersion() string {
	out, _ := exec.Command("go", "version").Output()
	return strings.TrimSpace(string(out))
}

type stats struct{ p50, p95, p99, mean time.Duration }

func summarize(ds []time.Duration) stats {
	sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
	var sum time.Duration
	for _, d := range ds {
		sum += d
	}
	at := func(q float64) time.Duration { return ds[int(q*float64(len(ds)-1))] }
	return stats{p50: at(0.50), p95: at(0.95), p99: at(0.99), mean: sum / time.Duration(len(ds))}
}

func ms(d time.Duration) string {
	return strconv.FormatFloat(float64(d.Microseconds())/1000, 'f', 2, 64) + " ms"
}
func us(d time.Duration) string {
	return strconv.FormatFloat(float64(d.Nanoseconds())/1000, 'f', 1, 64) + " µs"
}

func run(dir string, name string, args ...string) (time.Duration, error) {
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = io.Discard, io.Discard
	start := time.Now()
	err := cmd.Run()
	return time.Since(start), err
}

func repeat(n int, f func() (time.Duration, error)) stats {
	var ds []time.Duration
	for i := 0; i < n; i++ {
		d, err := f()
		if err != nil {
			fmt.Fprintln(os.Stderr, "fnbench:", err)
			os.Exit(1)
		}
		ds = append(ds, d)
	}
	return summarize(ds)
}

func cli(fn, nodeModules string) {
	fmt.Printf("## CLI\n\n| what | runs | p50 | p95 | goal |\n|---|---|---|---|---|\n")
	s := repeat(30, func() (time.Duration, error) { return run(".", fn, "--version") })
	fmt.Printf("| `fn --version` | 30 | %s | %s | ≤ 20 ms |\n", ms(s.p50), ms(s.p95))
	s = repeat(30, func() (time.Duration, error) { return run(".", "true") })
	fmt.Printf("| `true` (process start-up floor) | 30 | %s | %s | |\n", ms(s.p50), ms(s.p95))
	s = repeat(30, func() (time.Duration, error) { return run(".", "node", "-e", "0") })
	fmt.Printf("| `node -e 0` (reference) | 30 | %s | %s | |\n", ms(s.p50), ms(s.p95))
	tmp, _ := os.MkdirTemp("", "fnbench-cli-")
	defer os.RemoveAll(tmp)
	for _, tpl := range []string{"wx", "lean"} {
		for _, lang := range []string{"js", "ts"} {
			dir := filepath.Join(tmp, tpl+"-"+lang)
			if _, err := run(tmp, fn, "init", dir, "--template", tpl, "--lang", lang, "--no-install"); err != nil {
				fmt.Fprintln(os.Stderr, "init:", err)
				os.Exit(1)
			}
			os.Symlink(nodeModules, filepath.Join(dir, "node_modules"))
			s = repeat(10, func() (time.Duration, error) {
				os.RemoveAll(filepath.Join(dir, ".fn"))
				return run(dir, fn, "build")
			})
			fmt.Printf("| cold `fn build`, %s-%s (production: dependencies bundled) | 10 | %s | %s | ≤ 100 ms |\n", tpl, lang, ms(s.p50), ms(s.p95))
			s = repeat(10, func() (time.Duration, error) {
				os.RemoveAll(filepath.Join(dir, ".fn"))
				return run(dir, fn, "build", "--dev")
			})
			fmt.Printf("| cold `fn build --dev`, %s-%s (dependencies left in node_modules) | 10 | %s | %s | ≤ 100 ms |\n", tpl, lang, ms(s.p50), ms(s.p95))
		}
	}
	wx := filepath.Join(tmp, "wx-js")
	s = repeat(10, func() (time.Duration, error) { return run(wx, fn, "invoke", "sum", "--data", `{"a":1,"b":2}`) })
	fmt.Printf("| `fn invoke sum` one-shot (wx, no SDK) | 10 | %s | %s | ≤ 250 ms |\n", ms(s.p50), ms(s.p95))
	s = repeat(10, func() (time.Duration, error) { return run(wx, fn, "invoke", "login") })
	fmt.Printf("| `fn invoke login` one-shot (wx-server-sdk loaded) | 10 | %s | %s | ≤ 250 ms |\n", ms(s.p50), ms(s.p95))
	lean := filepath.Join(tmp, "lean-js")
	s = repeat(10, func() (time.Duration, error) { return run(lean, fn, "invoke", "hello") })
	fmt.Printf("| `fn invoke hello` one-shot (lean, leanengine loaded) | 10 | %s | %s | ≤ 250 ms |\n\n", ms(s.p50), ms(s.p95))
}

const fnSource = `exports.main = async (event) => ({ ok: true, n: event.n })
`

// bareServer is node:http running the same function: the baseline the engine is compared with.
const bareServer = `const http = require('http')
const fn = require(process.argv[2])
const server = http.createServer((req, res) => {
  let body = ''
  req.on('data', (c) => (body += c))
  req.on('end', async () => {
    const out = await fn.main(JSON.parse(body || '{}'), {})
    res.setHeader('content-type', 'application/json')
    res.end(JSON.stringify(out))
  })
})
server.listen(0, '127.0.0.1', () => console.log(server.address().port))
`

func engineBench(nodeModules string, n int) {
	dir, _ := os.MkdirTemp("", "fnbench-engine-")
	defer os.RemoveAll(dir)
	write := func(rel, s string) {
		os.MkdirAll(filepath.Dir(filepath.Join(dir, rel)), 0o755)
		os.WriteFile(filepath.Join(dir, rel), []byte(s), 0o644)
	}
	write("fn.yaml", "name: bench\ndialect: wx\nfunctions:\n  spin:\n    timeout: 1\n")
	write("functions/hello/index.js", fnSource)
	write("functions/login/index.js", "const cloud = require('wx-server-sdk')\ncloud.init({ env: cloud.DYNAMIC_CURRENT_ENV })\nexports.main = async () => cloud.getWXContext()\n")
	write("functions/spin/index.js", "exports.main = (e) => { if (e.ok) return 1; for (;;) {} }\n")
	write("bare.js", bareServer)
	os.Symlink(nodeModules, filepath.Join(dir, "node_modules"))
	p, err := project.Load(dir)
	must(err)
	entries, err := p.Entries()
	must(err)
	b, err := bundler.New(bundler.Options{ProjectDir: dir, OutDir: p.StatePath("dev"), Dialect: p.Dialect, Target: "node18", Mode: bundler.Dev}, entries)
	must(err)
	defer b.Dispose()
	m, _, err := b.Build()
	must(err)
	bundles := func(names ...string) []engine.Bundle {
		var out []engine.Bundle
		for _, a := range m.Bundles {
			for _, nm := range names {
				if a.Name == nm {
					out = append(out, engine.Bundle{Name: a.Name, File: p.StatePath("dev", a.File), Hash: a.Hash, Config: p.Function(a.Name)})
				}
			}
		}
		return out
	}
	newEngine := func() *engine.Engine {
		e, err := engine.New(engine.Config{Node: "node", Dir: dir, Dialect: project.WX, EnvID: "bench", FastReload: true})
		must(err)
		return e
	}

	fmt.Printf("## Engine\n\n")
	// Worker start: spawn → ready → bundle loaded, for a trivial function and one that loads wx-server-sdk.
	for _, name := range []string{"hello", "login"} {
		s := repeat(10, func() (time.Duration, error) {
			e := newEngine()
			defer e.Close(time.Second)
			start := time.Now()
			_, err := e.Load(context.Background(), bundles(name), engine.LoadOptions{})
			return time.Since(start), err
		})
		fmt.Printf("- worker start (spawn, ready, load `%s`): p50 %s, p95 %s (goal ≤ 100 ms)\n", name, ms(s.p50), ms(s.p95))
	}

	// With a spare worker ready (fn dev, fn invoke): Node is already up, only the bundle loads.
	s := repeat(10, func() (time.Duration, error) {
		e, err := engine.New(engine.Config{Node: "node", Dir: dir, Dialect: project.WX, EnvID: "bench", Spare: true})
		must(err)
		defer e.Close(time.Second)
		for i := 0; i < 300 && !e.SpareReady(); i++ { // wait for the spare (bounded)
			time.Sleep(10 * time.Millisecond)
		}
		start := time.Now()
		_, err = e.Load(context.Background(), bundles("hello"), engine.LoadOptions{})
		return time.Since(start), err
	})
	fmt.Printf("- worker start with a spare ready (fn dev, fn invoke keep one): p50 %s, p95 %s\n", ms(s.p50), ms(s.p95))

	e := newEngine()
	defer e.Close(time.Second)
	_, err = e.Load(context.Background(), bundles("hello", "login", "spin"), engine.LoadOptions{})
	must(err)
	for _, w := range e.Stats().Workers {
		fmt.Printf("- idle worker RSS right after start, `%s`: %s (goal ≤ 60 MB)\n", w.Bundle, rss(w.PID))
	}
	ctx := context.Background()
	data := json.RawMessage(`{"n":1}`)
	for i := 0; i < 500; i++ {
		e.InvokeWX(ctx, engine.WXRequest{Function: "hello", Data: data})
	}

	// Bare node:http with the same function, driven by the same Go client loop.
	bare := exec.Command("node", filepath.Join(dir, "bare.js"), filepath.Join(dir, "functions/hello/index.js"))
	bare.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	stdout, _ := bare.StdoutPipe()
	must(bare.Start())
	defer func() { syscall.Kill(-bare.Process.Pid, syscall.SIGKILL); bare.Wait() }()
	line, _ := bufio.NewReader(stdout).ReadString('\n')
	url := "http://127.0.0.1:" + strings.TrimSpace(line) + "/"
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4, DialContext: (&net.Dialer{}).DialContext}}
	post := func() error {
		resp, err := client.Post(url, "application/json", strings.NewReader(`{"n":1}`))
		if err != nil {
			return err
		}
		io.Copy(io.Discard, resp.Body)
		return resp.Body.Close()
	}
	for i := 0; i < 500; i++ {
		must(post())
	}
	// interleave the two sides in rounds so that machine noise hits both alike
	var engineDs, bareDs []time.Duration
	for round := 0; round < 10; round++ {
		for i := 0; i < n/10; i++ {
			start := time.Now()
			r := e.InvokeWX(ctx, engine.WXRequest{Function: "hello", Data: data})
			engineDs = append(engineDs, time.Since(start))
			if r.Err != nil {
				must(r.Err)
			}
		}
		for i := 0; i < n/10; i++ {
			start := time.Now()
			must(post())
			bareDs = append(bareDs, time.Since(start))
		}
	}
	es, bs := summarize(engineDs), summarize(bareDs)
	fmt.Printf("- warm invoke at concurrency 1, %d calls each, interleaved:\n", n)
	fmt.Printf("  - engine (Go → pipe → worker → Go, no HTTP): p50 %s, p99 %s\n", us(es.p50), us(es.p99))
	fmt.Printf("  - bare node:http, same function, Go HTTP client (keep-alive): p50 %s, p99 %s\n", us(bs.p50), us(bs.p99))
	fmt.Printf("  - engine p50 minus bare node p50: %s (goal ≤ +50 µs)\n", us(es.p50-bs.p50))

	// Changed-bundle swap (fast path: re-evaluate inside the running worker).
	var swaps []time.Duration
	hello := filepath.Join(dir, "functions/hello/index.js")
	for i := 0; i < 20; i++ {
		os.WriteFile(hello, []byte(fmt.Sprintf("exports.main = async (event) => ({ ok: true, v: %d })\n", i)), 0o644)
		m2, _, err := b.Rebuild([]string{"hello"})
		must(err)
		a, _ := m2.Bundle("hello")
		start := time.Now()
		rep, err := e.Load(ctx, []engine.Bundle{{Name: "hello", File: p.StatePath("dev", a.File), Hash: a.Hash, Config: p.Function("hello")}, bundles("login")[0], bundles("spin")[0]}, engine.LoadOptions{})
		swaps = append(swaps, time.Since(start))
		must(err)
		if !rep.Fast {
			fmt.Fprintln(os.Stderr, "fnbench: swap was not fast")
		}
	}
	ss := summarize(swaps)
	fmt.Printf("- changed-bundle swap (engine.Load, in-worker re-evaluation): p50 %s, p95 %s (goal ≤ 10 ms)\n", ms(ss.p50), ms(ss.p95))

	// Stuck-worker recovery: a synchronous loop past its 1 s timeout; time from the timeout answer
	// until the next call to that function has been served.
	var rec []time.Duration
	for i := 0; i < 5; i++ {
		e.InvokeWX(ctx, engine.WXRequest{Function: "spin", Data: json.RawMessage(`{"ok":true}`)})
		r := e.InvokeWX(ctx, engine.WXRequest{Function: "spin", Data: json.RawMessage(`{}`)})
		if r.Err == nil || r.Err.Kind != engine.KindTimeout {
			must(fmt.Errorf("expected a timeout, got %+v", r.Err))
		}
		start := time.Now()
		ok := e.InvokeWX(ctx, engine.WXRequest{Function: "spin", Data: json.RawMessage(`{"ok":true}`)})
		must(errOf(ok))
		rec = append(rec, time.Since(start))
	}
	rs := summarize(rec)
	fmt.Printf("- stuck-worker recovery (timeout answered → next call served): p50 %s, max %s (goal ≤ 300 ms)\n", ms(rs.p50), ms(rec[len(rec)-1]))

	// Idle worker memory after the traffic above.
	for _, w := range e.Stats().Workers {
		fmt.Printf("- idle worker RSS after the runs above, `%s` (%d reloads): %s\n", w.Bundle, w.Reloads, rss(w.PID))
	}
	fmt.Println()
}

func errOf(r *engine.Result) error {
	if r.Err != nil {
		return r.Err
	}
	return nil
}

func rss(pid int) string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return "?"
	}
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "VmRSS:") {
			f := strings.Fields(l)
			kb, _ := strconv.Atoi(f[1])
			return fmt.Sprintf("%.1f MB", float64(kb)/1024)
		}
	}
	return "?"
}

func must(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, "fnbench:", err)
		os.Exit(1)
	}
}
