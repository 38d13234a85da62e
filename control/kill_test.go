package control_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"

	"github.com/fnhq/fn/api"
	"github.com/fnhq/fn/control"
)

const killChildEnv = "FN_CONTROL_KILL_CHILD"

var (
	killApps = []string{"shop", "blog"}
	killEnvs = []string{"production", "staging"}
)

// deployLoop is the child process, a stand-in for fn serve: it deploys to two environments of
// two apps at once until it is killed, printing each version once its activation is
// acknowledged.
func deployLoop(path string) {
	ctx := context.Background()
	p, err := control.OpenSQLite(path)
	if err != nil {
		fmt.Println("error", err)
		os.Exit(1)
	}
	var mu sync.Mutex
	out := bufio.NewWriter(os.Stdout)
	say := func(format string, args ...any) {
		mu.Lock()
		fmt.Fprintf(out, format+"\n", args...)
		out.Flush()
		mu.Unlock()
	}
	var wg sync.WaitGroup
	for _, name := range killApps {
		for _, env := range killEnvs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					v, err := p.CreateVersion(ctx, name+"-id", api.Version{Env: env, Digest: "d"})
					if err == nil {
						err = p.Activate(ctx, name+"-id", env, v.ID)
					}
					if err != nil {
						say("error %v", err)
						os.Exit(1)
					}
					say("ack %s %s %d", name, env, v.ID)
				}
			}()
		}
	}
	wg.Wait()
}

// A process deploying to two environments of two apps at once is killed: the versions it
// acknowledged have distinct ids per app, and the latest acknowledged one of each environment
// (or a later one) is active after the restart.
func TestSQLiteSurvivesKill(t *testing.T) {
	if path := os.Getenv(killChildEnv); path != "" {
		deployLoop(path)
		return
	}
	if testing.Short() {
		t.Skip("starts a process")
	}
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "control.db")
	p, err := control.OpenSQLite(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range killApps {
		if err := p.CreateApp(ctx, api.App{ID: name + "-id", Name: name}, ""); err != nil {
			t.Fatal(err)
		}
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}

	cmd := exec.Command(os.Args[0], "-test.run=^TestSQLiteSurvivesKill$")
	cmd.Env = append(os.Environ(), killChildEnv+"="+path)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	type key struct{ app, env string }
	acked := map[key][]int{}
	sc := bufio.NewScanner(stdout)
	enough := func() bool {
		for _, a := range killApps {
			for _, e := range killEnvs {
				if len(acked[key{a, e}]) < 20 {
					return false
				}
			}
		}
		return true
	}
	killed := false
	for sc.Scan() {
		var k key
		var id int
		if _, err := fmt.Sscanf(sc.Text(), "ack %s %s %d", &k.app, &k.env, &id); err != nil {
			t.Fatalf("the child said %q", sc.Text())
		}
		acked[k] = append(acked[k], id)
		if !killed && enough() {
			// mid-flight: the lines already written still count as acknowledged
			cmd.Process.Kill()
			killed = true
		}
	}
	cmd.Wait()
	if !killed {
		t.Fatalf("the child ended before it was killed, after %v", acked)
	}

	p, err = control.OpenSQLite(path)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	owner := map[string]map[int]string{}
	for k, ids := range acked {
		if owner[k.app] == nil {
			owner[k.app] = map[int]string{}
		}
		for _, id := range ids {
			if other, dup := owner[k.app][id]; dup {
				t.Fatalf("app %s: version id %d was acknowledged to %s and %s", k.app, id, other, k.env)
			}
			owner[k.app][id] = k.env
			v, err := p.Version(ctx, k.app+"-id", id)
			if err != nil || v.Env != k.env {
				t.Fatalf("acknowledged version %d of %s/%s after the kill: %+v, %v", id, k.app, k.env, v, err)
			}
		}
		act, err := p.Active(ctx, k.app+"-id", k.env)
		if err != nil {
			t.Fatalf("%s/%s after the kill: %v", k.app, k.env, err)
		}
		if last := ids[len(ids)-1]; act.ID < last || act.Env != k.env {
			t.Fatalf("%s/%s runs version %d (%s) after the kill; version %d was acknowledged", k.app, k.env, act.ID, act.Env, last)
		}
	}
	t.Logf("acknowledged deploys before the kill: %v", func() map[key]int {
		n := map[key]int{}
		for k, ids := range acked {
			n[k] = len(ids)
		}
		return n
	}())
}
