package clustertest

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	neturl "net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/fnhq/fn/internal/pgtest"
	"github.com/fnhq/fn/internal/testutil"
	"github.com/jackc/pgx/v5"
)

func TestMain(m *testing.M) {
	code := m.Run()
	pgtest.Stop()
	if binPath != "" {
		os.RemoveAll(filepath.Dir(binPath))
	}
	os.Exit(code)
}

const token = "fnadm_cluster_test_token"

var (
	binOnce sync.Once
	binPath string
	binErr  error
)

func fnBinary(t *testing.T) string {
	t.Helper()
	binOnce.Do(func() {
		dir, err := os.MkdirTemp("", "fn-cluster-bin-")
		if err != nil {
			binErr = err
			return
		}
		binPath = filepath.Join(dir, "fn")
		out, err := exec.Command("go", "build", "-o", binPath, filepath.Join(testutil.RepoRoot(), "cmd", "fn")).CombinedOutput()
		if err != nil {
			binErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if binErr != nil {
		t.Fatal(binErr)
	}
	return binPath
}

type replica struct {
	cmd *exec.Cmd
	url string
	out *bytes.Buffer
	mu  sync.Mutex
}

type lockedWriter struct {
	r *replica
}

func (w lockedWriter) Write(p []byte) (int, error) {
	w.r.mu.Lock()
	defer w.r.mu.Unlock()
	return w.r.out.Write(p)
}

func freePort(t *testing.T) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// startReplica runs a real fn serve --db on a free port and waits for its health check.
func startReplica(t *testing.T, dsn string) *replica {
	t.Helper()
	return startReplicaWith(t, dsn, token)
}

// startReplicaWith is startReplica with another admin token.
func startReplicaWith(t *testing.T, dsn, adminToken string) *replica {
	t.Helper()
	url := fmt.Sprintf("http://127.0.0.1:%d", freePort(t))
	cmd := exec.Command(fnBinary(t), "serve", "--listen", strings.TrimPrefix(url, "http://"), "--data-dir", t.TempDir(), "--db", dsn,
		"--wechat-api", "http://127.0.0.1:1")
	cmd.Env = append(os.Environ(), "FN_ADMIN_TOKEN="+adminToken, "NO_COLOR=1")
	r := &replica{cmd: cmd, url: url, out: &bytes.Buffer{}}
	cmd.Stdout, cmd.Stderr = lockedWriter{r}, lockedWriter{r}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Signal(syscall.SIGTERM)
			done := make(chan struct{})
			go func() { cmd.Wait(); close(done) }()
			select {
			case <-done:
			case <-time.After(20 * time.Second):
				cmd.Process.Kill()
				<-done
			}
		}
		if t.Failed() {
			r.mu.Lock()
			t.Logf("replica %s output:\n%s", url, r.out.String())
			r.mu.Unlock()
		}
	})
	testutil.Eventually(t, 30*time.Second, "fn serve --db to become healthy", func() bool {
		resp, err := http.Get(url + "/__fn/health")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	})
	return r
}

// kill ends a replica at once, as a crash would.
func (r *replica) kill(t *testing.T) {
	r.cmd.Process.Kill()
	r.cmd.Wait()
}

// cli runs the fn binary against a replica.
func cli(t *testing.T, dir, server string, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(fnBinary(t), args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "FN_SERVER="+server, "FN_TOKEN="+token, "NO_COLOR=1", "XDG_CONFIG_HOME="+t.TempDir())
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	if err != nil {
		return out.String(), fmt.Errorf("fn %s: %v: %s", strings.Join(args, " "), err, errOut.String())
	}
	return out.String(), nil
}

type app struct{ id, key, master string }

// client calls the LeanEngine and LeanStorage routes of an app on any replica.
type client struct {
	t    *testing.T
	app  app
	http *http.Client
}

func (c *client) do(base, method, path, body string, hdr map[string]string) (int, map[string]any, error) {
	req, err := http.NewRequest(method, base+path, strings.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("X-LC-Id", c.app.id)
	req.Header.Set("X-LC-Key", c.app.key)
	req.Header.Set("Content-Type", "application/json")
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return resp.StatusCode, nil, err
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		return resp.StatusCode, nil, fmt.Errorf("%s %s: %d %q", method, path, resp.StatusCode, b)
	}
	return resp.StatusCode, m, nil
}

// version is what the deployed ver function answers on a replica.
func (c *client) version(base string) (string, error) {
	status, m, err := c.do(base, "POST", "/1.1/functions/ver", `{}`, nil)
	if err != nil {
		return "", err
	}
	if status != 200 {
		return "", fmt.Errorf("ver: %d %v", status, m)
	}
	v, _ := m["result"].(string)
	return v, nil
}

const cloudJS = `const AV = require('leanengine')
AV.Cloud.define('ver', () => '%s')
AV.Cloud.define('tick', async () => { await new AV.Object('Run').save({ by: 'timer' }) })
AV.Cloud.define('greeting', () => process.env.GREETING || '')
`

// project writes a lean project whose ver function answers version, with a 1 s timer when
// timer is set.
func project(t *testing.T, dir, version string, timer bool) {
	t.Helper()
	yaml := "name: app\ndialect: lean\nentry: cloud.js\n"
	if timer {
		yaml += "timers:\n  tick:\n    function: tick\n    interval: 1\n    environments: [production]\n"
	}
	testutil.WriteFile(t, dir, "fn.yaml", yaml)
	testutil.WriteFile(t, dir, "cloud.js", fmt.Sprintf(cloudJS, version))
	if _, err := os.Lstat(filepath.Join(dir, "node_modules")); err != nil {
		testutil.WriteFile(t, dir, "package.json", `{"name":"app","version":"1.0.0","private":true,"dependencies":{"leancloud-storage":"4.15.2","leanengine":"3.8.0"}}`)
		testutil.LinkNodeModules(t, dir)
	}
}

func deploy(t *testing.T, dir, server, version string, timer bool) {
	t.Helper()
	project(t, dir, version, timer)
	if _, err := cli(t, dir, server, "deploy", "--env", "production", "--app", "app", "-m", version); err != nil {
		t.Fatal(err)
	}
}

func TestReplicas(t *testing.T) {
	if _, err := exec.LookPath("node"); err != nil {
		t.Skip("node is not installed")
	}
	testutil.NodeModules(t)
	dsn := pgtest.DSN(t)
	parent := t // replicas started in a subtest outlive it
	// replicas starting together migrate the schema once
	var reps [3]*replica
	var wg sync.WaitGroup
	for i := range reps {
		wg.Add(1)
		go func() { defer wg.Done(); reps[i] = startReplica(t, dsn) }()
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	out, err := cli(t, ".", reps[0].url, "apps", "create", "app", "--json")
	if err != nil {
		t.Fatal(err)
	}
	var created map[string]any
	if err := json.Unmarshal([]byte(out), &created); err != nil {
		t.Fatalf("apps create: %v %s", err, out)
	}
	c := &client{t: t, app: app{id: created["appId"].(string), key: created["appKey"].(string), master: created["masterKey"].(string)},
		http: &http.Client{Timeout: 20 * time.Second}}
	dir := filepath.Join(t.TempDir(), "app")
	deploy(t, dir, reps[0].url, "v1", false)
	for i, r := range reps {
		testutil.Eventually(t, 20*time.Second, fmt.Sprintf("replica %d to serve v1", i), func() bool {
			v, _ := c.version(r.url)
			return v == "v1"
		})
	}

	t.Run("DeployThroughOneUnderLoad", func(t *testing.T) {
		var stop atomic.Bool
		var calls, failures atomic.Int64
		var firstFailure atomic.Value
		seen := make([]atomic.Value, len(reps))    // the latest version each replica answered
		firstV2 := make([]atomic.Int64, len(reps)) // when each replica first answered v2 (unix ns)
		var lg sync.WaitGroup
		for w := 0; w < 6; w++ {
			lg.Add(1)
			go func() {
				defer lg.Done()
				for n := w; !stop.Load(); n++ {
					i := n % len(reps)
					v, err := c.version(reps[i].url)
					calls.Add(1)
					if err != nil || (v != "v1" && v != "v2") {
						failures.Add(1)
						firstFailure.CompareAndSwap(nil, fmt.Sprintf("replica %d: %q %v", i, v, err))
						continue
					}
					seen[i].Store(v)
					if v == "v2" {
						firstV2[i].CompareAndSwap(0, time.Now().UnixNano())
					}
				}
			}()
		}
		deployed := time.Now()
		deploy(t, dir, reps[1].url, "v2", false)
		returned := time.Now()
		var lags []time.Duration
		for i := range reps {
			testutil.Eventually(t, 20*time.Second, fmt.Sprintf("replica %d to serve v2", i), func() bool { return seen[i].Load() == "v2" })
			lags = append(lags, time.Unix(0, firstV2[i].Load()).Sub(returned))
		}
		stop.Store(true)
		lg.Wait()
		if n := failures.Load(); n != 0 {
			t.Fatalf("%d of %d requests failed during the deploy, e.g. %v", n, calls.Load(), firstFailure.Load())
		}
		t.Logf("%d requests, none failed; the deploy through replica 1 took %v; each replica first answered v2 this long after it returned (negative: before): %v",
			calls.Load(), returned.Sub(deployed), lags)
	})

	t.Run("SecretSetOnOneReachesAll", func(t *testing.T) {
		if _, err := cli(t, dir, reps[0].url, "secrets", "set", "GREETING", "--value", "hello from replica 0", "--app", "app"); err != nil {
			t.Fatal(err)
		}
		for i, r := range reps {
			testutil.Eventually(t, 20*time.Second, fmt.Sprintf("replica %d to run with the secret", i), func() bool {
				status, m, err := c.do(r.url, "POST", "/1.1/functions/greeting", `{}`, nil)
				return err == nil && status == 200 && m["result"] == "hello from replica 0"
			})
		}
	})

	t.Run("DataAndSessionsEverywhere", func(t *testing.T) {
		status, user, err := c.do(reps[0].url, "POST", "/1.1/users", `{"username":"alice","password":"secret"}`, nil)
		if err != nil || status != 201 {
			t.Fatalf("signup on replica 0: %d %v %v", status, user, err)
		}
		tok := user["sessionToken"].(string)
		for i, r := range reps {
			status, me, err := c.do(r.url, "GET", "/1.1/users/me", "", map[string]string{"X-LC-Session": tok})
			if err != nil || status != 200 || me["username"] != "alice" {
				t.Fatalf("users/me on replica %d: %d %v %v", i, status, me, err)
			}
		}
		// the same username on another replica is taken
		if status, m, _ := c.do(reps[2].url, "POST", "/1.1/users", `{"username":"alice","password":"x"}`, nil); status != 400 || m["code"] != 202.0 {
			t.Fatalf("second signup of alice on replica 2: %d %v", status, m)
		}
		status, obj, err := c.do(reps[2].url, "POST", "/1.1/classes/Note", `{"text":"from replica 2"}`, nil)
		if err != nil || status != 201 {
			t.Fatalf("create on replica 2: %d %v %v", status, obj, err)
		}
		status, got, err := c.do(reps[0].url, "GET", "/1.1/classes/Note/"+obj["objectId"].(string), "", nil)
		if err != nil || status != 200 || got["text"] != "from replica 2" {
			t.Fatalf("read on replica 0: %d %v %v", status, got, err)
		}
	})

	t.Run("ConcurrentIncrements", func(t *testing.T) {
		status, obj, err := c.do(reps[0].url, "POST", "/1.1/classes/Counter", `{"n":0}`, nil)
		if err != nil || status != 201 {
			t.Fatalf("create: %d %v", status, err)
		}
		id := obj["objectId"].(string)
		const each = 40
		var ig sync.WaitGroup
		var failed atomic.Int64
		for i := range reps {
			for w := 0; w < 2; w++ {
				ig.Add(1)
				go func() {
					defer ig.Done()
					for k := 0; k < each/2; k++ {
						status, _, err := c.do(reps[i].url, "PUT", "/1.1/classes/Counter/"+id, `{"n":{"__op":"Increment","amount":1}}`, nil)
						if err != nil || status != 200 {
							failed.Add(1)
						}
					}
				}()
			}
		}
		ig.Wait()
		if failed.Load() != 0 {
			t.Fatalf("%d increments failed", failed.Load())
		}
		_, got, _ := c.do(reps[1].url, "GET", "/1.1/classes/Counter/"+id, "", nil)
		if got["n"] != float64(each*len(reps)) {
			t.Fatalf("after %d increments from %d replicas the counter is %v", each*len(reps), len(reps), got["n"])
		}
	})

	t.Run("FollowLogsOfEveryReplica", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		follow := exec.CommandContext(ctx, fnBinary(t), "logs", "-f", "--json", "--app", "app")
		follow.Env = append(os.Environ(), "FN_SERVER="+reps[0].url, "FN_TOKEN="+token, "XDG_CONFIG_HOME="+t.TempDir())
		stdout, _ := follow.StdoutPipe()
		if err := follow.Start(); err != nil {
			t.Fatal(err)
		}
		defer func() { cancel(); follow.Wait() }()
		recs := make(chan map[string]any, 10000)
		go func() {
			sc := bufio.NewScanner(stdout)
			sc.Buffer(make([]byte, 1<<20), 1<<20)
			for sc.Scan() {
				var m map[string]any
				if json.Unmarshal(sc.Bytes(), &m) == nil {
					recs <- m
				}
			}
			close(recs)
		}()
		// the follower is connected once it has sent its first records (the tail)
		testutil.Eventually(t, 10*time.Second, "the follower's first records", func() bool { return len(recs) > 0 })
		const per = 15
		for i := 1; i < len(reps); i++ {
			for k := 0; k < per; k++ {
				if _, err := c.version(reps[i].url); err != nil {
					t.Fatal(err)
				}
			}
		}
		var last float64
		got := 0
		deadline := time.After(20 * time.Second)
		for got < per*(len(reps)-1) {
			select {
			case m, ok := <-recs:
				if !ok {
					t.Fatal("the follower ended")
				}
				id, _ := m["id"].(float64)
				if id <= last {
					t.Fatalf("record %v after %v: out of order or repeated", id, last)
				}
				last = id
				if m["function"] == "ver" && m["invocation"] == true {
					got++
				}
			case <-deadline:
				t.Fatalf("the follower on replica 0 saw %d of the %d calls served by the other replicas", got, per*(len(reps)-1))
			}
		}
	})

	t.Run("FollowAcrossAReplicaCrash", func(t *testing.T) {
		// a load balancer the test steers: the follower's stream goes to replica 2, which dies
		var target atomic.Value
		target.Store(reps[2].url)
		lb := httptest.NewServer(&httputil.ReverseProxy{FlushInterval: -1, Rewrite: func(r *httputil.ProxyRequest) {
			u, _ := neturl.Parse(target.Load().(string))
			r.SetURL(u)
		}})
		defer lb.Close()
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		follow := exec.CommandContext(ctx, fnBinary(t), "logs", "-f", "--json", "--app", "app")
		follow.Env = append(os.Environ(), "FN_SERVER="+lb.URL, "FN_TOKEN="+token, "XDG_CONFIG_HOME="+t.TempDir())
		stdout, _ := follow.StdoutPipe()
		if err := follow.Start(); err != nil {
			t.Fatal(err)
		}
		defer func() { cancel(); follow.Wait() }()
		var mu sync.Mutex
		var ids []int64
		go func() {
			sc := bufio.NewScanner(stdout)
			sc.Buffer(make([]byte, 1<<20), 1<<20)
			for sc.Scan() {
				var m struct{ ID int64 }
				if json.Unmarshal(sc.Bytes(), &m) == nil && m.ID > 0 {
					mu.Lock()
					ids = append(ids, m.ID)
					mu.Unlock()
				}
			}
		}()
		seen := func() int { mu.Lock(); defer mu.Unlock(); return len(ids) }
		testutil.Eventually(t, 10*time.Second, "the follower's first records", func() bool { return seen() > 0 })
		var stop atomic.Bool
		loadDone := make(chan struct{})
		go func() {
			defer close(loadDone)
			for n := 0; !stop.Load(); n++ {
				c.version(reps[n%2].url) // replicas 0 and 1 stay up
			}
		}()
		before := seen()
		testutil.Eventually(t, 20*time.Second, "records streamed through replica 2", func() bool { return seen() > before+20 })
		target.Store(reps[0].url)
		reps[2].kill(t)
		atKill := seen()
		testutil.Eventually(t, 30*time.Second, "records streamed after replica 2 died", func() bool { return seen() > atKill+40 })
		stop.Store(true)
		<-loadDone
		conn, err := pgx.Connect(context.Background(), dsn)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(context.Background())
		var want []int64
		testutil.Eventually(t, 20*time.Second, "the follower to catch up with the database", func() bool {
			mu.Lock()
			first, last := ids[0], ids[len(ids)-1]
			mu.Unlock()
			rows, err := conn.Query(context.Background(), `SELECT id FROM fn_logs WHERE app = $1 AND id >= $2 ORDER BY id`, c.app.id, first)
			if err != nil {
				t.Fatal(err)
			}
			want, err = pgx.CollectRows(rows, pgx.RowTo[int64])
			return err == nil && len(want) > 0 && want[len(want)-1] == last
		})
		mu.Lock()
		got := append([]int64(nil), ids...)
		mu.Unlock()
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("the follower saw %d records, the database holds %d in that range: gaps or duplicates across the reconnect", len(got), len(want))
		}
		t.Logf("%d records followed across replica 2's crash (%d before it), none missing or repeated", len(got), atKill)
		reps[2] = startReplica(parent, dsn)
	})

	t.Run("SIGKILLUnderLoad", func(t *testing.T) {
		type ack struct {
			id, text string
		}
		var mu sync.Mutex
		var acked []ack
		var stop atomic.Bool
		var survivorsFailed atomic.Int64
		var firstFailure atomic.Value
		var killed atomic.Bool
		var lg sync.WaitGroup
		for w := 0; w < 6; w++ {
			lg.Add(1)
			go func() {
				defer lg.Done()
				for n := 0; !stop.Load(); n++ {
					i := (w + n) % len(reps)
					text := fmt.Sprintf("w%d-%d", w, n)
					status, obj, err := c.do(reps[i].url, "POST", "/1.1/classes/Write", `{"text":"`+text+`"}`, nil)
					if err == nil && status == 201 {
						mu.Lock()
						acked = append(acked, ack{obj["objectId"].(string), text})
						mu.Unlock()
						continue
					}
					if i != 2 || !killed.Load() {
						survivorsFailed.Add(1)
						firstFailure.CompareAndSwap(nil, fmt.Sprintf("replica %d: %d %v %v", i, status, obj, err))
					}
				}
			}()
		}
		testutil.Eventually(t, 20*time.Second, "some writes acknowledged", func() bool { mu.Lock(); defer mu.Unlock(); return len(acked) > 60 })
		killed.Store(true)
		reps[2].kill(t)
		mu.Lock()
		atKill := len(acked)
		mu.Unlock()
		testutil.Eventually(t, 20*time.Second, "writes after the kill", func() bool { mu.Lock(); defer mu.Unlock(); return len(acked) > atKill+100 })
		stop.Store(true)
		lg.Wait()
		if n := survivorsFailed.Load(); n != 0 {
			t.Fatalf("%d requests to the surviving replicas failed, e.g. %v", n, firstFailure.Load())
		}
		for _, a := range acked {
			status, got, err := c.do(reps[0].url, "GET", "/1.1/classes/Write/"+a.id, "", nil)
			if err != nil || status != 200 || got["text"] != a.text {
				t.Fatalf("acknowledged write %s (%s) lost: %d %v %v", a.id, a.text, status, got, err)
			}
		}
		t.Logf("%d writes acknowledged (%d before the SIGKILL), all readable", len(acked), atKill)
	})

	t.Run("TimerFiresOncePerScheduledTime", func(t *testing.T) {
		if testing.Short() {
			t.Skip("a minute of timer fires")
		}
		// three live replicas again: a new one replaces the killed one
		reps[2] = startReplica(parent, dsn)
		testutil.Eventually(t, 20*time.Second, "the new replica to serve v2", func() bool { v, _ := c.version(reps[2].url); return v == "v2" })
		deploy(t, dir, reps[0].url, "v3", true)
		ctx := context.Background()
		conn, err := pgx.Connect(ctx, dsn)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(ctx)
		key := c.app.id + "/" + c.app.id + "/production/tick"
		claims := func() []time.Time {
			rows, err := conn.Query(ctx, `SELECT at FROM fn_timer_fires WHERE key = $1 ORDER BY at`, key)
			if err != nil {
				t.Fatal(err)
			}
			ats, err := pgx.CollectRows(rows, pgx.RowTo[time.Time])
			if err != nil {
				t.Fatal(err)
			}
			return ats
		}
		const fires = 60
		testutil.Eventually(t, 120*time.Second, fmt.Sprintf("%d scheduled fires claimed", fires), func() bool { return len(claims()) >= fires })
		// stop the timer everywhere: a version without it
		deploy(t, dir, reps[1].url, "v4", false)
		for i, r := range reps {
			testutil.Eventually(t, 20*time.Second, fmt.Sprintf("replica %d to serve v4", i), func() bool { v, _ := c.version(r.url); return v == "v4" })
		}
		ats := claims()
		// every scheduled second between the first and the last fire was claimed once (the
		// primary key makes twice impossible): none was lost
		for i := 1; i < len(ats); i++ {
			if d := ats[i].Sub(ats[i-1]); d != time.Second {
				t.Fatalf("fires %v and %v are %v apart: a scheduled fire was lost", ats[i-1], ats[i], d)
			}
		}
		// and each claim ran the function exactly once
		runs := func() float64 {
			_, m, err := c.do(reps[0].url, "GET", "/1.1/classes/Run?count=1&limit=0", "", map[string]string{"X-LC-Key": c.app.master + ",master"})
			if err != nil {
				t.Fatal(err)
			}
			n, _ := m["count"].(float64)
			return n
		}
		testutil.Eventually(t, 20*time.Second, fmt.Sprintf("%d runs for %d claimed fires", len(ats), len(ats)), func() bool { return runs() == float64(len(ats)) })
		var invocations int
		if err := conn.QueryRow(ctx, `SELECT count(*) FROM fn_logs WHERE app = $1 AND function = 'tick' AND invocation AND kind = 'timer' AND status = 200`,
			c.app.id).Scan(&invocations); err != nil {
			t.Fatal(err)
		}
		if invocations != len(ats) {
			t.Fatalf("%d timer invocations logged for %d claimed fires", invocations, len(ats))
		}
		t.Logf("%d consecutive fires (%v … %v), %d runs, exactly one per scheduled time", len(ats), ats[0].Format("15:04:05"), ats[len(ats)-1].Format("15:04:05"), len(ats))
	})
}

// fn serve --check tells a database without fn's schema from a ready one; the health check
// answers 200 while a replica serves and 503 while it drains after SIGTERM, and needs no token.
func TestCheckAndHealth(t *testing.T) {
	dsn := pgtest.DSN(t)
	check := func() (string, error) {
		cmd := exec.Command(fnBinary(t), "serve", "--check", "--db", dsn)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	if out, err := check(); err == nil || !strings.Contains(out, "no fn schema yet") {
		t.Fatalf("--check of an empty database: %v %s", err, out)
	}
	if out, err := exec.Command(fnBinary(t), "serve", "--check", "--db", "mysql://x").CombinedOutput(); err == nil || !strings.Contains(string(out), "postgres://") {
		t.Fatalf("--check with a non-PostgreSQL URL: %v %s", err, out)
	}
	url := fmt.Sprintf("http://127.0.0.1:%d", freePort(t))
	cmd := exec.Command(fnBinary(t), "serve", "--listen", strings.TrimPrefix(url, "http://"), "--data-dir", t.TempDir(), "--db", dsn,
		"--shutdown-delay", "30s")
	cmd.Env = append(os.Environ(), "FN_ADMIN_TOKEN="+token)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	health := func() (int, string) {
		resp, err := http.Get(url + "/__fn/health")
		if err != nil {
			return 0, err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	testutil.Eventually(t, 30*time.Second, "the replica to be healthy", func() bool { s, _ := health(); return s == 200 })
	if out, err := check(); err != nil || !strings.Contains(out, "schema is current") {
		t.Fatalf("--check after a replica migrated: %v %s", err, out)
	}
	if _, body := health(); strings.Contains(body, token) || strings.Contains(body, "postgres") {
		t.Fatalf("the health answer shows configuration: %s", body)
	}
	cmd.Process.Signal(syscall.SIGTERM)
	testutil.Eventually(t, 10*time.Second, "the health check to fail while draining", func() bool {
		s, body := health()
		return s == 503 && strings.Contains(body, "draining")
	})
	resp, err := http.Get(url + "/__fn/health?probe=live")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("liveness while draining: %v %v", resp, err)
	}
	resp.Body.Close()
}
