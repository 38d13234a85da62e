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
	"sort"
	"strconv"
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

// leanengineServer is the real leanengine middleware on express running the same function: the
// platform fn dev replaces.
const leanengineServer = `const AV = require('leanengine')
const express = require('express')
AV.init({ appId: process.env.LEANCLOUD_APP_ID, appKey: process.env.LEANCLOUD_APP_KEY,
  masterKey: process.env.LEANCLOUD_APP_MASTER_KEY, serverURLs: 'http://127.0.0.1:9' })
AV.Cloud.define('hello', async (req) => ({ ok: true, n: req.params.n }))
const app = express()
app.use(AV.express())
const server = app.listen(0, '127.0.0.1', () => console.log(server.address().port))
`

// target is one server under load: its URL and the headers each request carries.
type target struct {
	name   string
	url    string
	header http.Header
	pid    int // the server's process (0: not known), whose tree's CPU time the table reports
}

// leanHeader is a LeanEngine app's credentials.
func leanHeader(id, key string) http.Header {
	return http.Header{"X-Lc-Id": {id}, "X-Lc-Key": {key}}
}

// load drives t with c keep-alive clients for d and returns req/s, latency stats and errors.
func load(t target, c int, d time.Duration) (float64, stats, int) {
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
				req, _ := http.NewRequest(http.MethodPost, t.url, strings.NewReader(`{"n":1}`))
				req.Header.Set("Content-Type", "application/json")
				for k, v := range t.header {
					req.Header[k] = v
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
	if len(all) == 0 {
		must(fmt.Errorf("%s: no request succeeded (%d errors)", t.name, errors))
	}
	return float64(len(all)) / d.Seconds(), summarize(all), errors
}

// loadTable runs every target at each concurrency in interleaved rounds (so that machine noise
// hits all alike) and prints req/s, latency, the ratio to the first target and the CPU time the
// server's processes (the target's pid and its descendants) spent per request.
func loadTable(targets []target, concurrencies []int) {
	printf("| server | concurrency | req/s | p50 | p99 | × %s | CPU per request | errors |\n|---|---|---|---|---|---|---|---|\n", targets[0].name)
	for _, c := range concurrencies {
		rps := map[string][]float64{}
		cpu := map[string][]float64{}
		lat := map[string][]stats{}
		errs := map[string]int{}
		for round := 0; round < opt.rounds; round++ {
			for _, t := range targets {
				before := treeCPU(t.pid)
				r, s, e := load(t, c, opt.dur)
				if t.pid > 0 && r > 0 {
					cpu[t.name] = append(cpu[t.name], float64(treeCPU(t.pid)-before)/(r*opt.dur.Seconds()))
				}
				rps[t.name] = append(rps[t.name], r)
				lat[t.name] = append(lat[t.name], s)
				errs[t.name] += e
			}
		}
		median := func(xs []float64) float64 {
			c := append([]float64(nil), xs...)
			sort.Float64s(c)
			return c[len(c)/2]
		}
		base := median(rps[targets[0].name])
		for _, t := range targets {
			r := median(rps[t.name])
			s := lat[t.name][len(lat[t.name])/2]
			perReq := "–"
			if len(cpu[t.name]) > 0 {
				perReq = fmt.Sprintf("%.0f µs", median(cpu[t.name])/1e3)
			}
			printf("| %s | %d | %.0f | %s | %s | %.2f | %s | %d |\n", t.name, c, r, us(s.p50), us(s.p99), r/base, perReq, errs[t.name])
		}
	}
	printf("\n")
}

// clockTick is the unit of the CPU times in /proc/<pid>/stat (USER_HZ, 100 on Linux).
const clockTick = 10 * time.Millisecond

// treeCPU is the CPU time (user and system, in ns) that process pid and its descendants have
// used so far (0 for pid 0).
func treeCPU(pid int) int64 {
	if pid <= 0 {
		return 0
	}
	stats := procStats()
	var total int64
	for _, p := range processTree(stats, pid) {
		// state ppid … utime (12th) stime (13th)
		if f := stats[p]; len(f) > 12 {
			u, _ := strconv.ParseInt(f[11], 10, 64)
			s, _ := strconv.ParseInt(f[12], 10, 64)
			total += (u + s) * int64(clockTick)
		}
	}
	return total
}

// procStats is, for every process, the fields of /proc/<pid>/stat after its command name
// (state, ppid, …): comm may hold spaces, so they are read after the last ')'.
func procStats() map[int][]string {
	stats := map[int][]string{}
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		stats[p] = strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
	}
	return stats
}

// processTree is pid and its descendants among stats.
func processTree(stats map[int][]string, pid int) []int {
	children := map[int][]int{}
	for p, f := range stats {
		if len(f) > 1 {
			pp, _ := strconv.Atoi(f[1])
			children[pp] = append(children[pp], p)
		}
	}
	tree := []int{pid}
	for i := 0; i < len(tree); i++ {
		tree = append(tree, children[tree[i]]...)
	}
	return tree
}

// treeRSS is the resident memory of a process and all its descendants: the sum of their RSS,
// which counts the pages they share (the node binary's, mostly) once per process, and the sum
// of their PSS, which divides each shared page among its sharers (the tree's physical memory).
func treeRSS(pid int) string {
	rss, pss := 0, 0
	tree := processTree(procStats(), pid)
	for _, p := range tree {
		rss += procKB(p, "status", "VmRSS:")
		pss += procKB(p, "smaps_rollup", "Pss:")
	}
	return fmt.Sprintf("RSS %.1f MB in %d processes (the first %.1f MB), PSS %.1f MB", mb(rss), len(tree), mb(procKB(pid, "status", "VmRSS:")), mb(pss))
}

func mb(kb int) float64 { return float64(kb) / 1024 }

// procKB reads the kB figure on the line of /proc/pid/file that starts with key (0 if none).
func procKB(pid int, file, key string) int {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/%s", pid, file))
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, key) {
			kb, _ := strconv.Atoi(strings.Fields(l)[1])
			return kb
		}
	}
	return 0
}

// startNode starts a node server that prints its port; it returns its URL, pid and stop.
func startNode(env []string, args ...string) (string, int, func()) {
	cmd := exec.Command("node", args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	out, _ := cmd.StdoutPipe()
	must(cmd.Start())
	line, _ := bufio.NewReader(out).ReadString('\n')
	return "http://127.0.0.1:" + strings.TrimSpace(line) + "/", cmd.Process.Pid, func() {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		cmd.Wait()
	}
}

type devServer struct {
	cmd  *exec.Cmd
	url  string
	keys struct{ AppID, AppKey string }
}

func startFnDev(fn, dir string) *devServer {
	d, err := tryFnDev(fn, dir)
	must(err)
	return d
}

// tryFnDev starts fn dev in dir and returns once it says it is ready.
func tryFnDev(fn, dir string) (*devServer, error) {
	cmd := exec.Command(fn, "dev", "--port", "0", "--json")
	cmd.Dir = dir
	out, _ := cmd.StdoutPipe()
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		var ev map[string]any
		if json.Unmarshal(sc.Bytes(), &ev) == nil && ev["event"] == "ready" {
			go io.Copy(io.Discard, out)
			d := &devServer{cmd: cmd, url: ev["url"].(string)}
			if k, ok := ev["keys"].(map[string]any); ok {
				d.keys.AppID, _ = k["appId"].(string)
				d.keys.AppKey, _ = k["appKey"].(string)
			}
			return d, nil
		}
	}
	cmd.Process.Kill()
	cmd.Wait()
	return nil, fmt.Errorf("fn dev in %s did not start: %s", dir, stderr.String())
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
	write("leanengine.js", leanengineServer)
	for _, pkg := range []string{"express", "wx-server-sdk"} {
		os.Symlink(filepath.Join(nodeModules, pkg), filepath.Join(dir, "node_modules", pkg))
	}

	d := startFnDev(fn, dir)
	defer d.stop()
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
	// a line of console output per call, in a project of its own (the wx tree's memory above stays
	// comparable): fn dev groups each call's output under the call's line in its request log
	logDir := filepath.Join(dir, "logs")
	os.MkdirAll(filepath.Join(logDir, "functions", "logs"), 0o755)
	os.WriteFile(filepath.Join(logDir, "fn.yaml"), []byte("name: logbench\ndialect: wx\nfunctions:\n  logs:\n    concurrency: 32\n"), 0o644)
	os.WriteFile(filepath.Join(logDir, "functions", "logs", "index.js"), []byte("exports.main = async (event) => { console.log('called', event.n); return { ok: true, n: event.n } }\n"), 0o644)
	lg := startFnDev(fn, logDir)
	defer lg.stop()
	nodeEnv := []string{"NODE_PATH=" + nodeModules, "LEANCLOUD_APP_ID=bench-fnDev", "LEANCLOUD_APP_KEY=benchKey", "LEANCLOUD_APP_MASTER_KEY=benchMaster"}
	fnFile := filepath.Join(dir, "functions/hello/index.js")
	bareURL, barePID, stopBare := startNode(nodeEnv, filepath.Join(dir, "bare.js"), fnFile)
	defer stopBare()
	floorURL, floorPID, stopFloor := startFloor(dir, fnFile)
	defer stopFloor()
	expURL, expPID, stopExp := startNode(nodeEnv, filepath.Join(dir, "express.js"), fnFile)
	defer stopExp()
	leURL, lePID, stopLE := startNode(nodeEnv, filepath.Join(dir, "leanengine.js"))
	defer stopLE()
	lean := leanHeader("bench-fnDev", "benchKey")
	wxPID, leanPID := d.cmd.Process.Pid, ld.cmd.Process.Pid
	targets := []target{
		{name: "bare node:http", url: bareURL, pid: barePID},
		{name: floorName, url: floorURL, pid: floorPID},
		{name: "fn dev wx (POST /wx/functions/hello, one call per instance)", url: d.url + "/wx/functions/hello", pid: wxPID},
		{name: "fn dev wx, `concurrency: 32`", url: d.url + "/wx/functions/conc", pid: wxPID},
		{name: "fn dev wx, `concurrency: 32`, a line of console output per call", url: lg.url + "/wx/functions/logs", pid: lg.cmd.Process.Pid},
		{name: "fn dev lean (POST /1.1/functions/hello)", url: ld.url + "/1.1/functions/hello", header: lean, pid: leanPID},
		{name: "express 4", url: expURL, pid: expPID},
		{name: "leanengine 3.8 + express (the platform's own)", url: leURL + "1.1/functions/hello", header: lean, pid: lePID},
	}
	for _, t := range targets {
		load(t, 4, opt.dur/3) // warm up (fn dev grows its pool)
	}
	printf("## fn dev\n\nSame trivial function behind each server; Go load generator on the same machine (keep-alive),\n%d interleaved rounds of %v per target and concurrency; the ratio is to bare node:http in the same run.\n\n", opt.rounds, opt.dur)
	loadTable(targets, []int{1, 32})
	printf("- RSS after the load above: fn dev wx (fn and all its workers) %s; fn dev lean %s; bare node:http %s; fn dev with the function that logs %s\n",
		treeRSS(d.cmd.Process.Pid), treeRSS(ld.cmd.Process.Pid), treeRSS(barePID), treeRSS(lg.cmd.Process.Pid))

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
	for i := 1; i <= reps(50); i++ {
		want := fmt.Sprintf(`"v":%d`, i)
		start := time.Now()
		write("functions/edit/index.js", fmt.Sprintf("exports.main = async () => ({ v: %d })\n", i))
		poll(d.url+"/wx/functions/edit", want)
		src = append(src, time.Since(start))
		time.Sleep(20 * time.Millisecond) // let the file system settle between edits
	}
	ss := summarize(src)
	var dep []time.Duration
	for i := 1; i <= reps(10); i++ {
		want := fmt.Sprintf(`"v":%d`, i)
		start := time.Now()
		write("node_modules/localdep/index.js", fmt.Sprintf("exports.v = %d\n", i))
		write("package.json", fmt.Sprintf(`{"name":"devbench","private":true,"version":"1.0.%d"}`, i))
		poll(d.url+"/wx/functions/dep", want)
		dep = append(dep, time.Since(start))
		// two installs are seconds apart: the spare the fresh worker came from starts again
		// meanwhile (a Node start, 100–200 ms here), as it would between a user's installs
		time.Sleep(500 * time.Millisecond)
	}
	ds := summarize(dep)
	printf("- save → first response with the new code, source edit (%d edits): p50 %s, p95 %s (goal ≤ 20 ms p50)\n", len(src), ms(ss.p50), ms(ss.p95))
	printf("- save → first response, dependency change (package.json + package code, fresh workers; %d edits): p50 %s, p95 %s (goal ≤ 100 ms)\n\n", len(dep), ms(ds.p50), ms(ds.p95))
}
