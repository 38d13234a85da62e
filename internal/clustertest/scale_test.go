package clustertest

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fnhq/fn/internal/pgtest"
	"github.com/fnhq/fn/internal/testutil"
	"github.com/jackc/pgx/v5"
)

// load calls ver round robin on the replicas until stop is called, accepting only the given
// answers; stop returns how many calls were made and the first failure.
func load(c *client, reps []*replica, accept func(string) bool) (stop func() (int64, int64, any)) {
	var done atomic.Bool
	var calls, failures atomic.Int64
	var first atomic.Value
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := w; !done.Load(); n++ {
				i := n % len(reps)
				v, err := c.version(reps[i].url)
				calls.Add(1)
				if err != nil || !accept(v) {
					failures.Add(1)
					first.CompareAndSwap(nil, fmt.Sprintf("replica %d: %q %v", i, v, err))
				}
			}
		}()
	}
	return func() (int64, int64, any) {
		done.Store(true)
		wg.Wait()
		return calls.Load(), failures.Load(), first.Load()
	}
}

// switchNote is what a replica records when it switches to a version another replica
// activated: whether it had prepared it, and how long after hearing of the activation the
// new version served.
var switchNote = regexp.MustCompile(`^switched to version (\d+), activated by another replica: (prepared before the activation|loaded after the activation).*serving ([0-9.]+) ms after the activation was heard`)

type switchRecord struct {
	version  int
	prepared bool
	lag      time.Duration
}

func switches(t *testing.T, db *pgx.Conn, appID string) []switchRecord {
	t.Helper()
	rows, err := db.Query(context.Background(), `SELECT message FROM fn_logs WHERE app = $1 AND stream = 'fn' AND message LIKE 'switched to version %' ORDER BY id`, appID)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []switchRecord
	for rows.Next() {
		var msg string
		if err := rows.Scan(&msg); err != nil {
			t.Fatal(err)
		}
		m := switchNote.FindStringSubmatch(msg)
		if m == nil {
			t.Fatalf("a switch note in an unexpected form: %q", msg)
		}
		v, _ := strconv.Atoi(m[1])
		lag, _ := strconv.ParseFloat(m[3], 64)
		out = append(out, switchRecord{version: v, prepared: m[2] == "prepared before the activation", lag: time.Duration(lag * float64(time.Millisecond))})
	}
	return out
}

func TestScaleOut(t *testing.T) {
	if _, err := exec.LookPath("node"); err != nil {
		t.Skip("node is not installed")
	}
	testutil.NodeModules(t)
	dsn := pgtest.DSN(t)
	reps := []*replica{startReplica(t, dsn), startReplica(t, dsn)}
	db, err := pgx.Connect(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close(context.Background())
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
	serve := func(want string) {
		t.Helper()
		for i, r := range reps {
			testutil.Eventually(t, 30*time.Second, fmt.Sprintf("replica %d to serve %s", i, want), func() bool {
				v, _ := c.version(r.url)
				return v == want
			})
		}
	}
	serve("v1")

	t.Run("PreparedBeforeActivation", func(t *testing.T) {
		for _, ver := range []string{"v2", "v3"} {
			prev := map[string]string{"v2": "v1", "v3": "v2"}[ver]
			stop := load(c, reps, func(v string) bool { return v == prev || v == ver })
			deploy(t, dir, reps[0].url, ver, false)
			serve(ver)
			calls, failures, first := stop()
			if failures != 0 {
				t.Fatalf("%d of %d requests failed during the deploy of %s, e.g. %v", failures, calls, ver, first)
			}
			var id int
			if err := db.QueryRow(context.Background(), `SELECT version_id FROM fn_active WHERE app_id = $1 AND env = 'production'`, c.app.id).Scan(&id); err != nil {
				t.Fatal(err)
			}
			// replica 1 did not receive the deploy: it prepared the version while replica 0
			// loaded it, and the switch itself was a swap
			var rec *switchRecord
			testutil.Eventually(t, 10*time.Second, "replica 1's note of the switch", func() bool {
				for _, s := range switches(t, db, c.app.id) {
					if s.version == id {
						rec = &s
						return true
					}
				}
				return false
			})
			if !rec.prepared {
				t.Fatalf("replica 1 loaded version %d only after its activation", id)
			}
			// the lag itself (goal ≤ 1 s) is a wall-clock figure: it is reported (docs/scale-out.md,
			// docs/benchmarks.md), not asserted, since a loaded machine stretches the load it waits for
			t.Logf("%s (version %d): %d requests, none failed; replica 1 had prepared it and served it %v after hearing of the activation", ver, id, calls, rec.lag)
		}
	})

	t.Run("ConcurrentDeploysLaterWins", func(t *testing.T) {
		prev := "v3"
		for round := range 2 {
			a, b := fmt.Sprintf("r%da", round), fmt.Sprintf("r%db", round)
			dirs := []string{filepath.Join(t.TempDir(), "a"), filepath.Join(t.TempDir(), "b")}
			for i, d := range dirs {
				project(t, d, []string{a, b}[i], false)
			}
			stop := load(c, reps, func(v string) bool { return v == prev || v == a || v == b })
			var wg sync.WaitGroup
			errs := make([]error, 2)
			for i := range 2 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					_, errs[i] = cli(t, dirs[i], reps[i].url, "deploy", "--env", "production", "--app", "app", "-m", []string{a, b}[i])
				}()
			}
			wg.Wait()
			var active int
			var winner string
			if err := db.QueryRow(context.Background(), `SELECT a.version_id, v.message FROM fn_active a JOIN fn_versions v ON v.app_id = a.app_id AND v.id = a.version_id
				WHERE a.app_id = $1 AND a.env = 'production'`, c.app.id).Scan(&active, &winner); err != nil {
				t.Fatal(err)
			}
			var latest int
			if err := db.QueryRow(context.Background(), `SELECT max(id) FROM fn_versions WHERE app_id = $1 AND env = 'production'`, c.app.id).Scan(&latest); err != nil {
				t.Fatal(err)
			}
			if active != latest {
				t.Fatalf("round %d: version %d (%s) is active, but %d is the later deploy (errors: %v)", round, active, winner, latest, errs)
			}
			// the winner's deploy succeeded; the other either finished first or was refused
			wi := map[string]int{a: 0, b: 1}[winner]
			if errs[wi] != nil {
				t.Fatalf("round %d: the winning deploy %s failed: %v", round, winner, errs[wi])
			}
			if errs[1-wi] != nil && !regexp.MustCompile(`was not activated`).MatchString(errs[1-wi].Error()) {
				t.Fatalf("round %d: the other deploy failed for another reason: %v", round, errs[1-wi])
			}
			serve(winner)
			calls, failures, first := stop()
			if failures != 0 {
				t.Fatalf("round %d: %d of %d requests failed, e.g. %v", round, failures, calls, first)
			}
			// and it stays: no replica goes back to the other
			for i, r := range reps {
				for range 5 {
					if v, err := c.version(r.url); err != nil || v != winner {
						t.Fatalf("round %d: replica %d answered %q %v after converging on %s", round, i, v, err, winner)
					}
				}
			}
			t.Logf("round %d: %s won (version %d), the other deploy: %v; %d requests, none failed", round, winner, active, errs[1-wi], calls)
			prev = winner
		}
	})

	t.Run("SimultaneousLogins", func(t *testing.T) {
		status, user, err := c.do(reps[0].url, "POST", "/1.1/users", `{"username":"bob","password":"pw-bob"}`, nil)
		if err != nil || status != 201 {
			t.Fatalf("signup: %d %v %v", status, user, err)
		}
		first := user["sessionToken"].(string)
		login := func() []string {
			tokens := make([]string, 8)
			var wg sync.WaitGroup
			for i := range tokens {
				wg.Add(1)
				go func() {
					defer wg.Done()
					status, m, err := c.do(reps[i%2].url, "POST", "/1.1/login", `{"username":"bob","password":"pw-bob"}`, nil)
					if err != nil || status != 200 {
						t.Errorf("login on replica %d: %d %v %v", i%2, status, m, err)
						return
					}
					tokens[i], _ = m["sessionToken"].(string)
				}()
			}
			wg.Wait()
			return tokens
		}
		valid := func(tok string) {
			t.Helper()
			for i, r := range reps {
				status, me, err := c.do(r.url, "GET", "/1.1/users/me", "", map[string]string{"X-LC-Session": tok})
				if err != nil || status != 200 || me["username"] != "bob" {
					t.Fatalf("users/me with %s… on replica %d: %d %v %v", tok[:6], i, status, me, err)
				}
			}
		}
		// LeanCloud's rule: a login answers the user's session token, the same on every replica
		for i, tok := range login() {
			if tok != first {
				t.Fatalf("login %d on replica %d answered another token than the user's session", i, i%2)
			}
		}
		valid(first)
		// a refreshed token replaces it everywhere; logins on both replicas then answer the new one
		status, m, err := c.do(reps[1].url, "PUT", "/1.1/users/"+user["objectId"].(string)+"/refreshSessionToken", "",
			map[string]string{"X-LC-Session": first})
		if err != nil || status != 200 {
			t.Fatalf("refreshSessionToken: %d %v %v", status, m, err)
		}
		second := m["sessionToken"].(string)
		for i, tok := range login() {
			if tok != second {
				t.Fatalf("login %d on replica %d after the refresh: not the refreshed token", i, i%2)
			}
		}
		valid(second)
		for i, r := range reps {
			if status, _, _ := c.do(r.url, "GET", "/1.1/users/me", "", map[string]string{"X-LC-Session": first}); status == 200 {
				t.Fatalf("the replaced token still works on replica %d", i)
			}
		}
	})

	t.Run("ReplacedAdminTokenStopsEverywhere", func(t *testing.T) {
		admin := func(r *replica, tok string) int {
			req, _ := http.NewRequest("GET", r.url+"/__fn/apps", nil)
			req.Header.Set("Authorization", "Bearer "+tok)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				return 0
			}
			resp.Body.Close()
			return resp.StatusCode
		}
		for i, r := range reps {
			for range 3 { // cached now
				if s := admin(r, token); s != 200 {
					t.Fatalf("replica %d: the admin token answered %d", i, s)
				}
			}
		}
		// a replica started with a new token replaces it in the database
		const newToken = "fnadm_cluster_test_rotated"
		reps = append(reps, startReplicaWith(t, dsn, newToken))
		for i, r := range reps {
			testutil.Eventually(t, 10*time.Second, fmt.Sprintf("replica %d to refuse the replaced token", i), func() bool {
				return admin(r, token) == 401
			})
			if s := admin(r, newToken); s != 200 {
				t.Fatalf("replica %d: the new admin token answered %d", i, s)
			}
		}
	})
}
