//go:build unix

package main

// The scale-out group (-only scale): fn serve on PostgreSQL. It needs a PostgreSQL server
// whose DSN (a superuser's: each measurement creates and drops its own database) is in
// FN_BENCH_DSN; FN_BENCH_SCALE=latency,throughput,large picks parts. It measures the latency of each operation through HTTP on SQLite and on
// PostgreSQL, the throughput of 1, 2 and 3 replicas with the CPU each component spent per
// request, and an indexed query on a class of FN_BENCH_OBJECTS objects (default 1000000),
// seeded with COPY.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
)

const scaleToken = "fnadm_bench_scale"

const scaleCloudJS = `const AV = require('leanengine')
AV.Cloud.define('hello', () => 'hi')
`

func scaleBench(fn, nodeModules string) {
	dsn := os.Getenv("FN_BENCH_DSN")
	if dsn == "" {
		must(fmt.Errorf("-only scale needs FN_BENCH_DSN: a PostgreSQL superuser's DSN (each measurement creates its own database)"))
	}
	seconds := scaleEnvInt("FN_BENCH_SECONDS", 10)
	objects := scaleEnvInt("FN_BENCH_OBJECTS", 1000000)
	tmp, _ := os.MkdirTemp("", "fnbench-scale-")
	defer os.RemoveAll(tmp)
	s := &scaleRun{fn: fn, nodeModules: nodeModules, admin: dsn, tmp: tmp}
	defer s.stopAll()
	var pgVersion string
	if conn, err := pgx.Connect(context.Background(), dsn); err == nil {
		conn.QueryRow(context.Background(), "SHOW server_version").Scan(&pgVersion)
		var fsync, syncCommit string
		conn.QueryRow(context.Background(), "SHOW fsync").Scan(&fsync)
		conn.QueryRow(context.Background(), "SHOW synchronous_commit").Scan(&syncCommit)
		pgVersion += ", fsync " + fsync + ", synchronous_commit " + syncCommit
		conn.Close(context.Background())
	}
	fmt.Printf("## Scale-out (fn serve on PostgreSQL %s, same machine)\n\n", pgVersion)

	parts := os.Getenv("FN_BENCH_SCALE") // a comma-separated subset of latency,throughput,large
	part := func(name string) bool { return parts == "" || strings.Contains(","+parts+",", ","+name+",") }
	if part("latency") {
		s.latencyTable()
	}
	if part("throughput") {
		s.throughputTable(seconds)
	}
	if part("large") {
		fmt.Printf("### A class of %d objects (seeded with COPY)\n\n", objects)
		s.largeClass(objects)
	}
}

// latencyTable is the latency per operation, one client, SQLite next to PostgreSQL.
func (s *scaleRun) latencyTable() {
	fmt.Printf("### Latency per operation through HTTP (one client, sequential, 300 each)\n\n| operation | SQLite p50 | SQLite p99 | PostgreSQL p50 | PostgreSQL p99 |\n|---|---|---|---|---|\n")
	sq := s.latencies("")
	pg := s.latencies(s.database())
	for _, op := range scaleOps {
		fmt.Printf("| %s | %s | %s | %s | %s |\n", op, scaleMs(sq[op].p50), scaleMs(sq[op].p99), scaleMs(pg[op].p50), scaleMs(pg[op].p99))
	}
	fmt.Println()
}

// throughputTable is the throughput of 1, 2 and 3 replicas.
func (s *scaleRun) throughputTable(seconds int) {
	fmt.Printf("### Throughput of N replicas on one machine (%d cores), 16 clients round robin, %d s each\n\n", numCPU(), seconds)
	fmt.Printf("| workload | replicas | req/s | p50 | p99 | CPU s per 1000 req: fn | node | PostgreSQL | machine busy cores | req/s per busy core |\n|---|---|---|---|---|---|---|---|---|---|\n")
	for _, n := range []int{1, 2, 3} {
		for _, w := range []string{"function", "get"} {
			r := s.throughput(n, w, time.Duration(seconds)*time.Second)
			fmt.Printf("| %s | %d | %.0f | %s | %s | %.2f | %.2f | %.2f | %.2f | %.0f |\n", w, n, r.rps, scaleMs(r.p50), scaleMs(r.p99),
				r.cpuPerK["fn"], r.cpuPerK["node"], r.cpuPerK["postgres"], r.busyCores, r.rps/r.busyCores)
		}
	}
	fmt.Println()
}

func scaleEnvInt(name string, def int) int {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		must(fmt.Errorf("%s=%q: want a positive integer", name, v))
	}
	return n
}

type scaleRun struct {
	fn, nodeModules, admin, tmp string
	n                           int
	procs                       []*exec.Cmd
	dbs                         []string
}

// database creates a fresh database and returns its DSN.
func (s *scaleRun) database() string {
	s.n++
	name := fmt.Sprintf("fnbench_scale_%d_%d", os.Getpid(), s.n)
	conn, err := pgx.Connect(context.Background(), s.admin)
	must(err)
	defer conn.Close(context.Background())
	_, err = conn.Exec(context.Background(), "CREATE DATABASE "+name)
	must(err)
	s.dbs = append(s.dbs, name)
	u, err := url.Parse(s.admin)
	must(err)
	u.Path = "/" + name
	return u.String()
}

func (s *scaleRun) stopAll() {
	for _, p := range s.procs {
		s.stop(p)
	}
	s.procs = nil
	if conn, err := pgx.Connect(context.Background(), s.admin); err == nil {
		for _, db := range s.dbs {
			conn.Exec(context.Background(), "DROP DATABASE IF EXISTS "+db+" WITH (FORCE)")
		}
		conn.Close(context.Background())
	}
}

func (s *scaleRun) stop(p *exec.Cmd) {
	if p.ProcessState != nil {
		return
	}
	syscall.Kill(-p.Process.Pid, syscall.SIGTERM)
	done := make(chan struct{})
	go func() { p.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		syscall.Kill(-p.Process.Pid, syscall.SIGKILL)
		<-done
	}
}

// serve starts fn serve (on SQLite when dsn is empty) and waits for its health check.
func (s *scaleRun) serve(dsn string) (*exec.Cmd, string) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	must(err)
	addr := l.Addr().String()
	l.Close()
	args := []string{"serve", "--listen", addr, "--data-dir", filepath.Join(s.tmp, "data-"+strings.ReplaceAll(addr, ":", "-"))}
	if dsn != "" {
		args = append(args, "--db", dsn)
	}
	cmd := exec.Command(s.fn, args...)
	cmd.Env = append(os.Environ(), "FN_ADMIN_TOKEN="+scaleToken, "NO_COLOR=1")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	must(cmd.Start())
	s.procs = append(s.procs, cmd)
	base := "http://" + addr
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := http.Get(base + "/__fn/health")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return cmd, base
			}
		}
		if time.Now().After(deadline) {
			must(fmt.Errorf("fn serve on %s did not become healthy", addr))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

type scaleApp struct{ id, key, master string }

// app creates an app through base and deploys the hello function to production.
func (s *scaleRun) app(base string) scaleApp {
	dir := filepath.Join(s.tmp, fmt.Sprintf("project-%d", time.Now().UnixNano()))
	must(os.MkdirAll(dir, 0o755))
	must(os.WriteFile(filepath.Join(dir, "fn.yaml"), []byte("name: bench\ndialect: lean\nentry: cloud.js\n"), 0o644))
	must(os.WriteFile(filepath.Join(dir, "cloud.js"), []byte(scaleCloudJS), 0o644))
	must(os.WriteFile(filepath.Join(dir, "package.json"), []byte(`{"name":"bench","version":"1.0.0","private":true}`), 0o644))
	must(os.Symlink(s.nodeModules, filepath.Join(dir, "node_modules")))
	fnCmd := func(args ...string) string {
		cmd := exec.Command(s.fn, args...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "FN_SERVER="+base, "FN_TOKEN="+scaleToken, "NO_COLOR=1", "XDG_CONFIG_HOME="+filepath.Join(s.tmp, "cfg"))
		out, err := cmd.CombinedOutput()
		if err != nil {
			must(fmt.Errorf("fn %v: %v\n%s", args, err, out))
		}
		return string(out)
	}
	var created map[string]any
	must(json.Unmarshal([]byte(fnCmd("apps", "create", "bench", "--json")), &created))
	fnCmd("deploy", "--env", "production", "--app", "bench")
	return scaleApp{id: created["appId"].(string), key: created["appKey"].(string), master: created["masterKey"].(string)}
}

var scaleHTTP = &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 64}}

// call makes one LeanCloud request and decodes the answer; a status other than want fails.
func (a scaleApp) call(base, method, path, body string, want int) (map[string]any, time.Duration, error) {
	req, err := http.NewRequest(method, base+path, strings.NewReader(body))
	if err != nil {
		return nil, 0, err
	}
	req.Header.Set("X-LC-Id", a.id)
	req.Header.Set("X-LC-Key", a.key)
	req.Header.Set("Content-Type", "application/json")
	start := time.Now()
	resp, err := scaleHTTP.Do(req)
	if err != nil {
		return nil, 0, err
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	took := time.Since(start)
	if err != nil {
		return nil, took, err
	}
	if resp.StatusCode != want {
		return nil, took, fmt.Errorf("%s %s: %d %s", method, path, resp.StatusCode, bytes.TrimSpace(b))
	}
	var m map[string]any
	json.Unmarshal(b, &m)
	return m, took, nil
}

type scaleStats struct{ p50, p99 time.Duration }

func scaleSummary(ds []time.Duration) scaleStats {
	if len(ds) == 0 {
		return scaleStats{}
	}
	sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
	return scaleStats{p50: ds[len(ds)/2], p99: ds[len(ds)*99/100]}
}

func scaleMs(d time.Duration) string { return fmt.Sprintf("%.2f ms", float64(d.Microseconds())/1000) }

var scaleOps = []string{"create object", "get by id", "atomic increment", "query: equality, limit 10 (300 objects)", "cloud function call"}

// latencies measures each operation sequentially on one fn serve (SQLite when dsn is empty).
func (s *scaleRun) latencies(dsn string) map[string]scaleStats {
	p, base := s.serve(dsn)
	defer s.stop(p)
	a := s.app(base)
	// warm up the worker and the connections
	for range 20 {
		_, _, err := a.call(base, "POST", "/1.1/functions/hello", `{}`, 200)
		must(err)
	}
	const n = 300
	out := map[string]scaleStats{}
	var ids []string
	var ds []time.Duration
	for i := range n {
		m, d, err := a.call(base, "POST", "/1.1/classes/Item", fmt.Sprintf(`{"n":%d,"tag":"t%d"}`, i, i%30), 201)
		must(err)
		ids = append(ids, m["objectId"].(string))
		ds = append(ds, d)
	}
	out[scaleOps[0]] = scaleSummary(ds)
	ds = nil
	for i := range n {
		_, d, err := a.call(base, "GET", "/1.1/classes/Item/"+ids[i], "", 200)
		must(err)
		ds = append(ds, d)
	}
	out[scaleOps[1]] = scaleSummary(ds)
	ds = nil
	for i := range n {
		_, d, err := a.call(base, "PUT", "/1.1/classes/Item/"+ids[i%10], `{"n":{"__op":"Increment","amount":1}}`, 200)
		must(err)
		ds = append(ds, d)
	}
	out[scaleOps[2]] = scaleSummary(ds)
	ds = nil
	for i := range n {
		q := url.Values{"where": {fmt.Sprintf(`{"tag":"t%d"}`, i%30)}, "limit": {"10"}}
		m, d, err := a.call(base, "GET", "/1.1/classes/Item?"+q.Encode(), "", 200)
		must(err)
		if r, _ := m["results"].([]any); len(r) != 10 {
			must(fmt.Errorf("query answered %d results, want 10", len(r)))
		}
		ds = append(ds, d)
	}
	out[scaleOps[3]] = scaleSummary(ds)
	ds = nil
	for range n {
		_, d, err := a.call(base, "POST", "/1.1/functions/hello", `{}`, 200)
		must(err)
		ds = append(ds, d)
	}
	out[scaleOps[4]] = scaleSummary(ds)
	return out
}

type scaleResult struct {
	rps, busyCores float64
	p50, p99       time.Duration
	cpuPerK        map[string]float64 // CPU seconds per 1000 requests by component
}

// throughput runs n replicas on a fresh database and loads them round robin with 16 clients.
func (s *scaleRun) throughput(n int, workload string, d time.Duration) scaleResult {
	dsn := s.database()
	var reps []*exec.Cmd
	var bases []string
	for range n {
		p, base := s.serve(dsn)
		reps, bases = append(reps, p), append(bases, base)
	}
	defer func() {
		for _, p := range reps {
			s.stop(p)
		}
	}()
	a := s.app(bases[0])
	m, _, err := a.call(bases[0], "POST", "/1.1/classes/Item", `{"n":1}`, 201)
	must(err)
	id := m["objectId"].(string)
	req := func(base string) (time.Duration, error) {
		if workload == "function" {
			_, d, err := a.call(base, "POST", "/1.1/functions/hello", `{}`, 200)
			return d, err
		}
		_, d, err := a.call(base, "GET", "/1.1/classes/Item/"+id, "", 200)
		return d, err
	}
	// every replica serves the version (and has warm workers) before measuring
	for _, base := range bases {
		deadline := time.Now().Add(60 * time.Second)
		for {
			if _, err := req(base); err == nil {
				break
			}
			if time.Now().After(deadline) {
				must(fmt.Errorf("replica %s does not serve the app", base))
			}
			time.Sleep(100 * time.Millisecond)
		}
		for range 50 {
			req(base)
		}
	}
	pids := map[string][]int{"fn": nil, "postgres": {postmasterPID(s.admin)}}
	for _, p := range reps {
		pids["fn"] = append(pids["fn"], p.Process.Pid)
	}
	before, busyBefore, totalBefore := cpuByComponent(pids), machineBusy(), time.Now()
	var done atomic.Bool
	var count, failures atomic.Int64
	lats := make([][]time.Duration, 16)
	var wg sync.WaitGroup
	for c := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := c; !done.Load(); k++ {
				dur, err := req(bases[k%len(bases)])
				if err != nil {
					failures.Add(1)
					continue
				}
				count.Add(1)
				lats[c] = append(lats[c], dur)
			}
		}()
	}
	time.Sleep(d)
	done.Store(true)
	wg.Wait()
	elapsed := time.Since(totalBefore)
	after, busyAfter := cpuByComponent(pids), machineBusy()
	if f := failures.Load(); f > 0 {
		must(fmt.Errorf("%d requests failed", f))
	}
	var all []time.Duration
	for _, l := range lats {
		all = append(all, l...)
	}
	st := scaleSummary(all)
	k := float64(count.Load()) / 1000
	r := scaleResult{rps: float64(count.Load()) / elapsed.Seconds(), p50: st.p50, p99: st.p99, cpuPerK: map[string]float64{},
		busyCores: (busyAfter - busyBefore) / elapsed.Seconds()}
	for c := range after {
		r.cpuPerK[c] = (after[c] - before[c]) / k
	}
	return r
}

// postmasterPID is the PostgreSQL server's process, when it runs on this machine.
func postmasterPID(dsn string) int {
	conn, err := pgx.Connect(context.Background(), dsn)
	if err != nil {
		return 0
	}
	defer conn.Close(context.Background())
	var dir string
	if conn.QueryRow(context.Background(), "SHOW data_directory").Scan(&dir) != nil {
		return 0
	}
	b, err := os.ReadFile(filepath.Join(dir, "postmaster.pid"))
	if err != nil {
		return 0
	}
	pid, _ := strconv.Atoi(strings.SplitN(string(b), "\n", 2)[0])
	return pid
}

const clockTicks = 100 // USER_HZ on Linux

// procStat is a process's parent and its CPU time, own and of its waited-for children.
func procStat(pid int) (ppid int, comm string, cpu float64, ok bool) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, "", 0, false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, "", 0, false
	}
	comm = s[strings.IndexByte(s, '(')+1 : i]
	f := strings.Fields(s[i+2:])
	// fields after the command: state ppid ... utime(12) stime(13) cutime(14) cstime(15)
	if len(f) < 14 {
		return 0, "", 0, false
	}
	ppid, _ = strconv.Atoi(f[1])
	var t float64
	for _, k := range []int{11, 12, 13, 14} {
		v, _ := strconv.ParseFloat(f[k], 64)
		t += v
	}
	return ppid, comm, t / clockTicks, true
}

// cpuByComponent sums CPU seconds of the fn processes, their node descendants and the
// PostgreSQL server with its backends.
func cpuByComponent(roots map[string][]int) map[string]float64 {
	parent := map[int]int{}
	comms := map[int]string{}
	cpu := map[int]float64{}
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if pp, comm, c, ok := procStat(pid); ok {
			parent[pid], comms[pid], cpu[pid] = pp, comm, c
		}
	}
	rootOf := map[int]string{}
	for comp, pids := range roots {
		for _, p := range pids {
			rootOf[p] = comp
		}
	}
	out := map[string]float64{"fn": 0, "node": 0, "postgres": 0}
	for pid, c := range cpu {
		for p, depth := pid, 0; p > 1 && depth < 10; p, depth = parent[p], depth+1 {
			comp, ok := rootOf[p]
			if !ok {
				continue
			}
			if comp == "fn" && p != pid {
				comp = "node" // a worker (or its descendants) of a replica
			}
			out[comp] += c
			break
		}
	}
	return out
}

// machineBusy is the CPU seconds every core has spent not idle since boot.
func machineBusy() float64 {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0
	}
	f := strings.Fields(strings.SplitN(string(b), "\n", 2)[0])
	var busy float64
	for i, v := range f[1:] {
		x, _ := strconv.ParseFloat(v, 64)
		if i != 3 && i != 4 { // idle, iowait
			busy += x
		}
	}
	return busy / clockTicks
}

// largeClass seeds a class of n objects with COPY and measures indexed queries through HTTP.
func (s *scaleRun) largeClass(n int) {
	dsn := s.database()
	p, base := s.serve(dsn)
	defer s.stop(p)
	a := s.app(base)
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	must(err)
	defer conn.Close(ctx)
	users := n/10 + 1
	start := time.Now()
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	i := 0
	_, err = conn.CopyFrom(ctx, pgx.Identifier{"fn_objects"}, []string{"app", "class", "id", "created_at", "updated_at", "fields"},
		pgx.CopyFromFunc(func() ([]any, error) {
			if i == n {
				return nil, nil
			}
			f, _ := json.Marshal(map[string]any{"user": fmt.Sprint("u", i%users), "score": i % 1000, "title": fmt.Sprint("post ", i)})
			t := t0.Add(time.Duration(i) * time.Millisecond)
			row := []any{a.id, "Post", fmt.Sprintf("p%09d", i), t, t, string(f)}
			i++
			return row, nil
		}))
	must(err)
	_, err = conn.Exec(ctx, "ANALYZE fn_objects")
	must(err)
	seeded := time.Since(start)
	measure := func(q func(k int) url.Values, want int) scaleStats {
		var ds []time.Duration
		for k := range 300 {
			m, d, err := a.call(base, "GET", "/1.1/classes/Post?"+q(k).Encode(), "", 200)
			must(err)
			if r, _ := m["results"].([]any); len(r) != want {
				must(fmt.Errorf("the query answered %d results, want %d", len(r), want))
			}
			ds = append(ds, d)
		}
		return scaleSummary(ds)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	eq := measure(func(int) url.Values {
		return url.Values{"where": {fmt.Sprintf(`{"user":"u%d"}`, rng.IntN(users-1))}, "order": {"-createdAt"}, "limit": {"20"}}
	}, 10)
	in := measure(func(int) url.Values {
		u := rng.IntN(users - 2)
		return url.Values{"where": {fmt.Sprintf(`{"user":{"$in":["u%d","u%d"]}}`, u, u+1)}, "order": {"-createdAt"}, "limit": {"20"}}
	}, 20)
	var ds []time.Duration
	for range 300 {
		_, d, err := a.call(base, "GET", fmt.Sprintf("/1.1/classes/Post/p%09d", rng.IntN(n)), "", 200)
		must(err)
		ds = append(ds, d)
	}
	get := scaleSummary(ds)
	fmt.Printf("seeded in %s (COPY + ANALYZE); through HTTP, one client, 300 queries each:\n\n| query | p50 | p99 |\n|---|---|---|\n", seeded.Round(time.Millisecond))
	fmt.Printf("| `where {user: …}` (10 matches) + `order=-createdAt` + `limit=20` | %s | %s |\n", scaleMs(eq.p50), scaleMs(eq.p99))
	fmt.Printf("| `where {user: {$in: [2 users]}}` + `order=-createdAt` + `limit=20` | %s | %s |\n", scaleMs(in.p50), scaleMs(in.p99))
	fmt.Printf("| get by id | %s | %s |\n\n", scaleMs(get.p50), scaleMs(get.p99))
}
