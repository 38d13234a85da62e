//go:build unix

package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
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
	bareURL, _, stopBare := startNode(nil, bare, fnFile)
	defer stopBare()
	lean := leanHeader("bench-fnDev", "benchKey")
	targets := []target{{name: "bare node:http", url: bareURL}}
	for _, s := range []struct{ label, bin, side string }{{"before", before, "a"}, {"after", after, "b"}} {
		wx := startFnDev(s.bin, filepath.Join(dir, s.side, "wx"))
		defer wx.stop()
		ld := startFnDev(s.bin, filepath.Join(dir, s.side, "lean"))
		defer ld.stop()
		targets = append(targets,
			target{name: s.label + ": fn dev lean `hello`", url: ld.url + "/1.1/functions/hello", header: lean},
			target{name: s.label + ": fn dev wx `hello` (one call per instance)", url: wx.url + "/wx/functions/hello"},
			target{name: s.label + ": fn dev wx, `concurrency: 32`", url: wx.url + "/wx/functions/conc"})
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
