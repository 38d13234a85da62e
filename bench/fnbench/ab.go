//go:build unix

package main

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"time"
)

// abBench serves the same functions from two fn binaries (fn dev each) and drives both, with bare
// node:http, in interleaved rounds: a before/after comparison within one run (bench/ab.sh).
func abBench(before, after, nodeModules string) {
	abBuilds(before, after, nodeModules)
	dir, _ := os.MkdirTemp("", "fnbench-ab-")
	defer os.RemoveAll(dir)
	write := func(rel, s string) string {
		p := filepath.Join(dir, rel)
		os.MkdirAll(filepath.Dir(p), 0o755)
		os.WriteFile(p, []byte(s), 0o644)
		return p
	}
	for _, side := range []string{"a", "b"} {
		write(side+"/wx/fn.yaml", "name: ab\ndialect: wx\nfunctions:\n  conc:\n    concurrency: 32\n    maxInstances: 2\n")
		write(side+"/wx/functions/hello/index.js", fnSource)
		write(side+"/wx/functions/conc/index.js", fnSource)
		write(side+"/lean/fn.yaml", "name: ab\ndialect: lean\nlean:\n  appId: bench-fnDev\n  appKey: benchKey\n  masterKey: benchMaster\n  hookKey: benchHook\n")
		write(side+"/lean/cloud.js", "const AV = require('leanengine')\nAV.Cloud.define('hello', async (req) => ({ ok: true, n: req.params.n }))\n")
		os.MkdirAll(filepath.Join(dir, side, "lean", "node_modules"), 0o755)
		for _, pkg := range []string{"leanengine", "leancloud-storage"} {
			os.Symlink(filepath.Join(nodeModules, pkg), filepath.Join(dir, side, "lean", "node_modules", pkg))
		}
	}
	bare := write("bare.js", bareServer)
	fnFile := write("hello.js", fnSource)
	bareURL, barePID, stopBare := startNode(nil, bare, fnFile)
	defer stopBare()
	lean := leanHeader("bench-fnDev", "benchKey")
	targets := []target{{name: "bare node:http", url: bareURL, pid: barePID}}
	for _, s := range []struct{ label, bin, side string }{{"before", before, "a"}, {"after", after, "b"}} {
		wx := startFnDev(s.bin, filepath.Join(dir, s.side, "wx"))
		defer wx.stop()
		ld := startFnDev(s.bin, filepath.Join(dir, s.side, "lean"))
		defer ld.stop()
		serveURL, serveHeader, stopServe := abServe(s.bin, filepath.Join(dir, s.side, "serve"), filepath.Join(dir, s.side, "lean"))
		defer stopServe()
		targets = append(targets,
			target{name: s.label + ": fn dev lean `hello`", url: ld.url + "/1.1/functions/hello", header: lean, pid: ld.cmd.Process.Pid},
			target{name: s.label + ": fn serve lean `hello`", url: serveURL, header: serveHeader},
			target{name: s.label + ": fn dev wx `hello` (one call per instance)", url: wx.url + "/wx/functions/hello", pid: wx.cmd.Process.Pid},
			target{name: s.label + ": fn dev wx, `concurrency: 32`", url: wx.url + "/wx/functions/conc", pid: wx.cmd.Process.Pid})
	}
	for _, t := range targets {
		load(t, 4, opt.dur/3) // warm up
	}
	printf("## Before and after\n\n%s (before) and %s (after), %d interleaved rounds of %v:\n\n", before, after, opt.rounds, opt.dur)
	loadTable(targets, []int{1, 32})
}

// abBuilds times production fn build of both binaries in interleaved runs: cold (no .fn/) and
// after a source edit of a function that requires the SDK (.fn/ kept, its dependency cache too).
func abBuilds(before, after, nodeModules string) {
	tmp, _ := os.MkdirTemp("", "fnbench-abbuild-")
	defer os.RemoveAll(tmp)
	printf("## fn build, before and after\n\n%s (before) and %s (after), %d interleaved runs each:\n\n", before, after, reps(10))
	printf("| build | template | before p50 | before p95 | after p50 | after p95 |\n|---|---|---|---|---|---|\n")
	for _, tpl := range []string{"wx", "lean"} {
		dirs := map[string]string{}
		for _, bin := range []string{before, after} {
			dir := filepath.Join(tmp, tpl+strconv.Itoa(len(dirs)))
			if _, err := run(tmp, bin, "init", dir, "--template", tpl, "--no-install"); err != nil {
				must(fmt.Errorf("fn init %s: %w", dir, err))
			}
			os.Symlink(nodeModules, filepath.Join(dir, "node_modules"))
			dirs[bin] = dir
		}
		src := func(dir string) string {
			if tpl == "lean" {
				return filepath.Join(dir, "cloud.js")
			}
			return filepath.Join(dir, "functions", "login", "index.js")
		}
		for _, kind := range []string{"cold", "after a source edit"} {
			times := map[string][]time.Duration{}
			for i := 0; i < reps(10); i++ {
				for _, bin := range []string{before, after} {
					dir := dirs[bin]
					if kind == "cold" {
						os.RemoveAll(filepath.Join(dir, ".fn"))
					} else {
						f, err := os.OpenFile(src(dir), os.O_APPEND|os.O_WRONLY, 0)
						must(err)
						fmt.Fprintf(f, "\n// edit %d\n", i)
						f.Close()
					}
					d, err := run(dir, bin, "build")
					must(err)
					times[bin] = append(times[bin], d)
				}
			}
			b, a := summarize(times[before]), summarize(times[after])
			printf("| %s | %s | %s | %s | %s | %s |\n", kind, tpl, ms(b.p50), ms(b.p95), ms(a.p50), ms(a.p95))
		}
	}
	printf("\n")
}

// abServe starts fn serve from bin with a data directory under tmp, creates the app named like
// the lean project in dir, deploys dir to production and returns the function's URL, the app's
// headers and a stop function.
func abServe(bin, tmp, dir string) (string, http.Header, func()) {
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	url := fmt.Sprintf("http://127.0.0.1:%d", port)
	srv := exec.Command(bin, "serve", "--listen", fmt.Sprintf("127.0.0.1:%d", port), "--data-dir", filepath.Join(tmp, "data"))
	srv.Env = append(os.Environ(), "FN_ADMIN_TOKEN=benchtoken", "XDG_CONFIG_HOME="+filepath.Join(tmp, "cfg"))
	srv.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	must(srv.Start())
	stop := func() { srv.Process.Signal(syscall.SIGTERM); srv.Wait() }
	for i := 0; i < 200; i++ {
		if resp, err := http.Get(url + "/__fn/whoami"); err == nil {
			resp.Body.Close()
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	env := append(os.Environ(), "FN_SERVER="+url, "FN_TOKEN=benchtoken", "XDG_CONFIG_HOME="+filepath.Join(tmp, "cfg"))
	runFn := func(args ...string) string {
		cmd := exec.Command(bin, args...)
		cmd.Dir, cmd.Env = dir, env
		out, err := cmd.CombinedOutput()
		if err != nil {
			must(fmt.Errorf("fn %v: %v\n%s", args, err, out))
		}
		return string(out)
	}
	var app map[string]any
	json.Unmarshal([]byte(runFn("apps", "create", "ab", "--json")), &app)
	runFn("deploy", "--env", "production")
	return url + "/1.1/functions/hello", leanHeader(app["appId"].(string), app["appKey"].(string)), stop
}
