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

// options is how long and how often each group measures; smoke runs every row for a moment,
// to keep the harness working (the figures of a smoke run mean nothing).
type options struct {
	smoke  bool
	dur    time.Duration // one load run
	rounds int           // interleaved rounds per load table
	n      int           // warm invocations per side (engine)
}

var opt = options{dur: 3 * time.Second, rounds: 3, n: 5000}

// reps is n runs of a repeated measurement, or one in a smoke run.
func reps(n int) int {
	if opt.smoke {
		return 1
	}
	return n
}

// abBefore is the older binary the ab group compares with (-fn-before).
var abBefore string

// out receives the report.
var out io.Writer = os.Stdout

func printf(format string, args ...any) { fmt.Fprintf(out, format, args...) }

// benchError aborts a run (must); main and the smoke test recover it.
type benchError struct{ err error }

func main() {
	if os.Getenv(floorEnv) == "1" {
		floorServer()
		return
	}
	fnBin := flag.String("fn", "bin/fn", "the fn binary to measure")
	fixture := flag.String("fixture", "testdata/npm/node_modules", "node_modules with the real SDKs")
	only := flag.String("only", "", "run only these groups (comma-separated): cli, engine, dev, storage, serve, peers, ab (with -fn-before)")
	n := flag.Int("n", 5000, "warm invocations per side")
	smoke := flag.Bool("smoke", os.Getenv("FN_BENCH_SMOKE") == "1", "run every row for a moment without meaningful figures (FN_BENCH_SMOKE=1)")
	before := flag.String("fn-before", "", "an older fn binary for the ab group (bench/ab.sh)")
	peers := flag.String("peers", "bench/peers/node_modules", "node_modules installed by bench/peers.sh (the peers group is skipped when absent)")
	flag.Parse()
	opt.n = *n
	if *smoke {
		opt = options{smoke: true, dur: 200 * time.Millisecond, rounds: 1, n: 100}
	}
	abBefore = *before
	if err := runAll(*fnBin, *fixture, *peers, *only); err != nil {
		fmt.Fprintln(os.Stderr, "fnbench:", err)
		os.Exit(1)
	}
}

// runAll runs the selected groups ("" for all) and reports the first failure.
func runAll(fnBin, fixture, peers, only string) (err error) {
	defer func() {
		if r := recover(); r != nil {
			be, ok := r.(benchError)
			if !ok {
				panic(r)
			}
			err = be.err
		}
	}()
	fnPath, _ := filepath.Abs(fnBin)
	nm, _ := filepath.Abs(fixture)
	pm, _ := filepath.Abs(peers)
	want := func(g string) bool {
		if only == "" {
			return true
		}
		for _, o := range strings.Split(only, ",") {
			if strings.TrimSpace(o) == g {
				return true
			}
		}
		return false
	}
	nodeV, _ := exec.Command("node", "--version").Output()
	printf("# fnbench %s\n\nmachine: %d cores, node %s, %s\n\n", time.Now().UTC().Format(time.RFC3339), numCPU(), strings.TrimSpace(string(nodeV)), goVersion())
	if opt.smoke {
		printf("**smoke run: every row ran for a moment; the figures mean nothing**\n\n")
	}
	if want("cli") {
		cli(fnPath, nm)
	}
	if want("engine") {
		engineBench(nm, opt.n)
	}
	if want("dev") {
		devBench(fnPath, nm)
	}
	if want("storage") {
		storageBench(fnPath, nm)
	}
	if want("serve") {
		serveBench(fnPath, nm)
	}
	if only == "scale" { // needs FN_BENCH_DSN, so never part of the default run
		scaleBench(fnPath, nm)
	}
	if want("peers") {
		peersBench(fnPath, nm, pm)
	}
	if abBefore != "" && strings.Contains(only, "ab") {
		b, _ := filepath.Abs(abBefore)
		abBench(b, fnPath, nm)
	}
	return nil
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
		must(err)
		ds = append(ds, d)
	}
	return summarize(ds)
}

func cli(fn, nodeModules string) {
	printf("## CLI\n\n| what | runs | p50 | p95 | goal |\n|---|---|---|---|---|\n")
	row := func(what string, runs int, goal string, f func() (time.Duration, error)) {
		s := repeat(runs, f)
		printf("| %s | %d | %s | %s | %s |\n", what, runs, ms(s.p50), ms(s.p95), goal)
	}
	row("`fn --version`", reps(30), "≤ 8 ms", func() (time.Duration, error) { return run(".", fn, "--version") })
	row("`true` (process start-up floor)", reps(30), "", func() (time.Duration, error) { return run(".", "true") })
	row("`node -e 0` (reference)", reps(30), "", func() (time.Duration, error) { return run(".", "node", "-e", "0") })
	if os.Getenv("NODE_EXTRA_CA_CERTS") != "" || os.Getenv("NODE_OPTIONS") != "" {
		// fn's workers start without them: Node 20 parses its whole root store and the extra
		// certificates at start when NODE_EXTRA_CA_CERTS is set, which is most of this row above
		row("`node -e 0` without NODE_EXTRA_CA_CERTS and NODE_OPTIONS (as fn's workers start)", reps(30), "", func() (time.Duration, error) {
			cmd := exec.Command("node", "-e", "0")
			for _, kv := range os.Environ() {
				if !strings.HasPrefix(kv, "NODE_EXTRA_CA_CERTS=") && !strings.HasPrefix(kv, "NODE_OPTIONS=") {
					cmd.Env = append(cmd.Env, kv)
				}
			}
			start := time.Now()
			err := cmd.Run()
			return time.Since(start), err
		})
	}
	tmp, _ := os.MkdirTemp("", "fnbench-cli-")
	defer os.RemoveAll(tmp)
	for _, tpl := range []string{"wx", "lean"} {
		for _, lang := range []string{"js", "ts"} {
			dir := filepath.Join(tmp, tpl+"-"+lang)
			if _, err := run(tmp, fn, "init", dir, "--template", tpl, "--lang", lang, "--no-install"); err != nil {
				must(fmt.Errorf("fn init %s: %w", dir, err))
			}
			os.Symlink(nodeModules, filepath.Join(dir, "node_modules"))
			if opt.smoke && lang == "ts" {
				continue
			}
			row(fmt.Sprintf("cold `fn build`, %s-%s (production: dependencies bundled, no .fn/)", tpl, lang), reps(10), "", func() (time.Duration, error) {
				os.RemoveAll(filepath.Join(dir, ".fn"))
				return run(dir, fn, "build")
			})
			src := filepath.Join(dir, "functions", "sum", "index."+lang)
			if tpl == "lean" {
				src = filepath.Join(dir, "cloud."+lang)
			}
			orig, _ := os.ReadFile(src)
			i := 0
			row(fmt.Sprintf("`fn build` after a source edit, %s-%s (production, .fn/ kept)", tpl, lang), reps(10), "≤ 150 ms", func() (time.Duration, error) {
				i++
				os.WriteFile(src, append(append([]byte(nil), orig...), fmt.Sprintf("\n// edit %d\n", i)...), 0o644)
				return run(dir, fn, "build")
			})
			os.WriteFile(src, orig, 0o644)
			row(fmt.Sprintf("cold `fn build --dev`, %s-%s (dependencies left in node_modules)", tpl, lang), reps(10), "≤ 100 ms", func() (time.Duration, error) {
				os.RemoveAll(filepath.Join(dir, ".fn"))
				return run(dir, fn, "build", "--dev")
			})
		}
	}
	wx := filepath.Join(tmp, "wx-js")
	lean := filepath.Join(tmp, "lean-js")
	row("`fn invoke sum` one-shot (wx, no SDK)", reps(10), "≤ 200 ms", func() (time.Duration, error) {
		return run(wx, fn, "invoke", "sum", "--data", `{"a":1,"b":2}`)
	})
	row("`fn invoke login` one-shot (wx-server-sdk loaded)", reps(10), "≤ 200 ms", func() (time.Duration, error) { return run(wx, fn, "invoke", "login") })
	row("`fn invoke hello` one-shot (lean, leanengine loaded)", reps(10), "≤ 200 ms", func() (time.Duration, error) { return run(lean, fn, "invoke", "hello") })
	for _, d := range []struct{ name, dir string }{{"lean", lean}, {"wx", wx}} {
		row(fmt.Sprintf("`fn dev` ready, %s template, first start (no .fn/)", d.name), reps(5), "≤ 300 ms", func() (time.Duration, error) {
			os.RemoveAll(filepath.Join(d.dir, ".fn"))
			return timeFnDev(fn, d.dir)
		})
		row(fmt.Sprintf("`fn dev` ready, %s template, restart", d.name), reps(5), "≤ 300 ms", func() (time.Duration, error) { return timeFnDev(fn, d.dir) })
		row(fmt.Sprintf("`fn dev` start → first call answered, %s template (its SDK loads after the banner)", d.name), reps(5), "", func() (time.Duration, error) {
			return timeFnDevFirstCall(fn, d.dir, d.name)
		})
	}
	printf("\n")
}

// timeFnDev is the time from starting fn dev until it says it is ready.
func timeFnDev(fn, dir string) (time.Duration, error) {
	start := time.Now()
	d, err := tryFnDev(fn, dir)
	if err != nil {
		return 0, err
	}
	took := time.Since(start)
	d.stop()
	return took, nil
}

// timeFnDevFirstCall is the time from starting fn dev until its first call (lean hello, wx
// login: both load their SDK) has answered.
func timeFnDevFirstCall(fn, dir, template string) (time.Duration, error) {
	start := time.Now()
	d, err := tryFnDev(fn, dir)
	if err != nil {
		return 0, err
	}
	defer d.stop()
	req, _ := http.NewRequest("POST", d.url+"/wx/functions/login", strings.NewReader(`{}`))
	if template == "lean" {
		req, _ = http.NewRequest("POST", d.url+"/1.1/functions/hello", strings.NewReader(`{}`))
		req.Header.Set("X-LC-Id", d.keys.AppID)
		req.Header.Set("X-LC-Key", d.keys.AppKey)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		return 0, fmt.Errorf("first call to fn dev in %s: HTTP %d", dir, resp.StatusCode)
	}
	return time.Since(start), nil
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

	printf("## Engine\n\n")
	// the same cloud code as a lean project, to time a worker that loads leanengine
	leanDir := filepath.Join(dir, "lean")
	os.MkdirAll(filepath.Join(leanDir, "node_modules"), 0o755)
	os.WriteFile(filepath.Join(leanDir, "fn.yaml"), []byte("name: leanbench\ndialect: lean\n"), 0o644)
	os.WriteFile(filepath.Join(leanDir, "cloud.js"), []byte("const AV = require('leanengine')\nAV.Cloud.define('hello', async (req) => ({ ok: true }))\n"), 0o644)
	for _, pkg := range []string{"leanengine", "leancloud-storage"} {
		os.Symlink(filepath.Join(nodeModules, pkg), filepath.Join(leanDir, "node_modules", pkg))
	}
	lp, err := project.Load(leanDir)
	must(err)
	lentries, err := lp.Entries()
	must(err)
	lb, err := bundler.New(bundler.Options{ProjectDir: leanDir, OutDir: lp.StatePath("dev"), Dialect: lp.Dialect, Target: "node18", Mode: bundler.Dev}, lentries)
	must(err)
	defer lb.Dispose()
	lm, _, err := lb.Build()
	must(err)
	leanBundle := []engine.Bundle{{Name: lm.Bundles[0].Name, File: lp.StatePath("dev", lm.Bundles[0].File), Hash: lm.Bundles[0].Hash, Config: lp.Function(lm.Bundles[0].Name)}}
	// Worker start: spawn → ready → bundle loaded, from cold and with a spare ready (fn dev and
	// fn invoke keep one: Node is already up, only the bundle loads).
	starts := []struct {
		what    string
		dialect project.Dialect
		dir     string
		bundles func() []engine.Bundle
	}{
		{"`hello` (no SDK)", project.WX, dir, func() []engine.Bundle { return bundles("hello") }},
		{"`login` (wx-server-sdk)", project.WX, dir, func() []engine.Bundle { return bundles("login") }},
		{"lean cloud code (leanengine)", project.Lean, leanDir, func() []engine.Bundle { return leanBundle }},
	}
	for _, st := range starts {
		for _, spare := range []bool{false, true} {
			s := repeat(reps(10), func() (time.Duration, error) {
				// with spares: a first load (the spares start after it), then a changed bundle,
				// which without FastReload starts a fresh worker: the spare
				e, err := engine.New(engine.Config{Node: "node", Dir: st.dir, Dialect: st.dialect, EnvID: "bench", Spare: spare, SDKSpare: spare})
				must(err)
				defer e.Close(time.Second)
				bs := st.bundles()
				if spare {
					first := append([]engine.Bundle(nil), bs...)
					for i := range first {
						first[i].Hash += "-first"
					}
					_, err := e.Load(context.Background(), first, engine.LoadOptions{})
					must(err)
					for i := 0; i < 2000 && !e.SpareReady(); i++ { // wait for the spares (bounded)
						time.Sleep(5 * time.Millisecond)
					}
				}
				start := time.Now()
				_, err = e.Load(context.Background(), bs, engine.LoadOptions{})
				return time.Since(start), err
			})
			how := "cold (spawn, ready, load)"
			if spare {
				how = "with a spare ready"
			}
			printf("- worker start, %s, %s: p50 %s, p95 %s (goal ≤ 60 ms)\n", st.what, how, ms(s.p50), ms(s.p95))
		}
	}

	e := newEngine()
	defer e.Close(time.Second)
	_, err = e.Load(context.Background(), bundles("hello", "login", "spin"), engine.LoadOptions{})
	must(err)
	for _, w := range e.Stats().Workers {
		printf("- idle worker RSS right after start, `%s`: %s (goal ≤ 50 MB)\n", w.Bundle, rss(w.PID))
	}
	ctx := context.Background()
	data := json.RawMessage(`{"n":1}`)
	for i := 0; i < n/10; i++ {
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
	for i := 0; i < n/10; i++ {
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
	printf("- warm invoke at concurrency 1, %d calls each, interleaved:\n", n)
	printf("  - engine (Go → pipe → worker → Go, no HTTP): p50 %s, p99 %s\n", us(es.p50), us(es.p99))
	printf("  - bare node:http, same function, Go HTTP client (keep-alive): p50 %s, p99 %s\n", us(bs.p50), us(bs.p99))
	printf("  - engine p50 minus bare node p50: %s (goal ≤ +50 µs)\n", us(es.p50-bs.p50))

	// A worker's memory over many calls, each with its own caller (identity and request ids are
	// per call): it must level off, not grow with the calls it served.
	growth := reps(20000)
	var hw int
	for _, w := range e.Stats().Workers {
		if w.Bundle == "hello" {
			hw = w.PID
		}
	}
	before := procKB(hw, "status", "VmRSS:")
	for i := 0; i < growth; i++ {
		id := &engine.WXIdentity{OpenID: fmt.Sprintf("o-bench-%d", i), AppID: "wxbench"}
		must(errOf(e.InvokeWX(ctx, engine.WXRequest{Function: "hello", Data: data, Identity: id})))
	}
	mid := procKB(hw, "status", "VmRSS:")
	for i := 0; i < growth; i++ {
		id := &engine.WXIdentity{OpenID: fmt.Sprintf("o-bench-%d", growth+i), AppID: "wxbench"}
		must(errOf(e.InvokeWX(ctx, engine.WXRequest{Function: "hello", Data: data, Identity: id})))
	}
	printf("- wx worker RSS over %d calls, each with another caller: %.1f MB → %.1f MB after %d → %.1f MB after %d\n", 2*growth, mb(before), mb(mid), growth, mb(procKB(hw, "status", "VmRSS:")), 2*growth)

	// Changed-bundle swap (fast path: re-evaluate inside the running worker).
	var swaps []time.Duration
	hello := filepath.Join(dir, "functions/hello/index.js")
	for i := 0; i < reps(20); i++ {
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
	printf("- changed-bundle swap (engine.Load, in-worker re-evaluation): p50 %s, p95 %s (goal ≤ 10 ms)\n", ms(ss.p50), ms(ss.p95))

	// Stuck-worker recovery: a synchronous loop past its 1 s timeout; time from the timeout answer
	// until the next call to that function has been served.
	var rec []time.Duration
	for i := 0; i < reps(5); i++ {
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
	printf("- stuck-worker recovery (timeout answered → next call served): p50 %s, max %s (goal ≤ 300 ms)\n", ms(rs.p50), ms(rec[len(rec)-1]))

	// Idle worker memory after the traffic above.
	for _, w := range e.Stats().Workers {
		printf("- idle worker RSS after the runs above, `%s` (%d reloads): %s\n", w.Bundle, w.Reloads, rss(w.PID))
	}
	printf("\n")
}

func errOf(r *engine.Result) error {
	if r.Err != nil {
		return r.Err
	}
	return nil
}

// rss is a process's resident memory and its own share of it (PSS: shared pages divided among
// the processes that map them, here the engine's other workers).
func rss(pid int) string {
	kb := procKB(pid, "status", "VmRSS:")
	if kb == 0 {
		return "?"
	}
	return fmt.Sprintf("%.1f MB (PSS %.1f MB)", mb(kb), mb(procKB(pid, "smaps_rollup", "Pss:")))
}

func must(err error) {
	if err != nil {
		panic(benchError{err})
	}
}
