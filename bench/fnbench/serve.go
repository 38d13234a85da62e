//go:build unix

package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// serveBench measures the ship loop against a real fn serve: deploy wall times, the latency of a
// console.log to fn logs -f, and invocation throughput through fn serve next to fn dev.
func serveBench(fn, nodeModules string) {
	tmp, _ := os.MkdirTemp("", "fnbench-serve-")
	defer os.RemoveAll(tmp)
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	url := fmt.Sprintf("http://127.0.0.1:%d", port)
	srv := exec.Command(fn, "serve", "--listen", fmt.Sprintf("127.0.0.1:%d", port), "--data-dir", filepath.Join(tmp, "data"))
	srv.Env = append(os.Environ(), "FN_ADMIN_TOKEN=benchtoken", "XDG_CONFIG_HOME="+filepath.Join(tmp, "cfg"))
	srv.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	must(srv.Start())
	defer func() { srv.Process.Signal(syscall.SIGTERM); srv.Wait() }()
	for i := 0; i < 200; i++ {
		if resp, err := http.Get(url + "/__fn/whoami"); err == nil {
			resp.Body.Close()
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	env := append(os.Environ(), "FN_SERVER="+url, "FN_TOKEN=benchtoken")
	runFn := func(dir string, args ...string) (time.Duration, string) {
		cmd := exec.Command(fn, args...)
		cmd.Dir, cmd.Env = dir, env
		start := time.Now()
		out, err := cmd.CombinedOutput()
		if err != nil {
			must(fmt.Errorf("fn %v: %v\n%s", args, err, out))
		}
		return time.Since(start), string(out)
	}
	printf("## fn serve\n\n| deploy | template | wall time |\n|---|---|---|\n")
	apps := map[string]string{}
	for _, tpl := range []string{"wx", "lean"} {
		dir := filepath.Join(tmp, tpl)
		runFn(tmp, "init", dir, "--template", tpl, "--no-install", "--name", "b"+tpl)
		os.Symlink(nodeModules, filepath.Join(dir, "node_modules"))
		_, out := runFn(tmp, "apps", "create", "b"+tpl, "--json")
		var app map[string]any
		json.Unmarshal([]byte(out), &app)
		apps[tpl] = app["appId"].(string) + " " + app["appKey"].(string)
		first, _ := runFn(dir, "deploy", "--env", "production")
		noop, _ := runFn(dir, "deploy", "--env", "production")
		// change one function
		target := filepath.Join(dir, "functions", "sum", "index.js")
		if tpl == "lean" {
			target = filepath.Join(dir, "cloud.js")
		}
		src, _ := os.ReadFile(target)
		os.WriteFile(target, append(src, []byte("\n// changed\nconsole.log('v2')\n")...), 0o644)
		change, _ := runFn(dir, "deploy", "--env", "production")
		printf("| first | %s | %s |\n| no-op | %s | %s |\n| one function changed | %s | %s |\n", tpl, ms(first), tpl, ms(noop), tpl, ms(change))
	}
	printf("\n")

	// console.log → fn logs -f
	ids := strings.Fields(apps["lean"])
	ctx, cancel := context.WithCancel(context.Background())
	follow := exec.CommandContext(ctx, fn, "logs", "-f", "--json", "--app", "blean", "--function", "hello")
	follow.Env = env
	out, _ := follow.StdoutPipe()
	must(follow.Start())
	got := make(chan time.Time, 100)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if strings.Contains(sc.Text(), `"invocation":true`) {
				got <- time.Now()
			}
		}
	}()
	call := func() time.Time {
		req, _ := http.NewRequest(http.MethodPost, url+"/1.1/functions/hello", strings.NewReader(`{}`))
		req.Header.Set("X-LC-Id", ids[0])
		req.Header.Set("X-LC-Key", ids[1])
		start := time.Now()
		resp, err := http.DefaultClient.Do(req)
		must(err)
		resp.Body.Close()
		return start
	}
	time.Sleep(300 * time.Millisecond) // let the follower connect before the first call is timed
	var lat []time.Duration
	for i := 0; i < reps(20); i++ {
		start := call()
		select {
		case at := <-got:
			lat = append(lat, at.Sub(start))
		case <-time.After(5 * time.Second):
			must(fmt.Errorf("fn logs -f missed a call"))
		}
	}
	cancel()
	follow.Wait()
	ls := summarize(lat)
	printf("- call → its record printed by `fn logs -f` (%d calls): p50 %s, p95 %s (goal < 100 ms p50)\n", len(lat), ms(ls.p50), ms(ls.p95))

	// the same lean function through fn serve and through fn dev
	leanDir := filepath.Join(tmp, "lean")
	d := startFnDev(fn, leanDir)
	defer d.stop()
	keys, _ := os.ReadFile(filepath.Join(leanDir, ".fn", "keys.json"))
	var dk map[string]string
	json.Unmarshal(keys, &dk)
	os.WriteFile(filepath.Join(tmp, "bare.js"), []byte(bareServer), 0o644)
	os.WriteFile(filepath.Join(tmp, "hello.js"), []byte(fnSource), 0o644)
	bareURL, barePID, stopBare := startNode(nil, filepath.Join(tmp, "bare.js"), filepath.Join(tmp, "hello.js"))
	defer stopBare()
	floorURL, floorPID, stopFloor := startFloor(tmp, filepath.Join(tmp, "hello.js"))
	defer stopFloor()
	printf("\nThe same lean function through fn serve and fn dev, next to bare node:http (%d interleaved rounds of %v):\n\n", opt.rounds, opt.dur)
	loadTable([]target{
		{name: "bare node:http", url: bareURL, pid: barePID},
		{name: floorName, url: floorURL, pid: floorPID},
		{name: "fn serve (lean hello)", url: url + "/1.1/functions/hello", header: leanHeader(ids[0], ids[1]), pid: srv.Process.Pid},
		{name: "fn dev (lean hello)", url: d.url + "/1.1/functions/hello", header: leanHeader(dk["appId"], dk["appKey"]), pid: d.cmd.Process.Pid},
	}, []int{1, 32})

}
