package engine

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/fnhq/fn/bundler"
	"github.com/fnhq/fn/internal/testutil"
)

// gone reports whether no process pid exists any more, not even as a zombie: it was killed and
// reaped.
func gone(pid int) bool {
	if !errors.Is(syscall.Kill(pid, 0), syscall.ESRCH) {
		return false
	}
	_, err := os.Stat("/proc/" + strconv.Itoa(pid))
	return os.IsNotExist(err)
}

const spawnerJS = `const { spawn } = require('child_process')
exports.main = async (event) => {
  if (event.exit) process.exit(1)
  const plain = spawn('sleep', ['300'], { stdio: 'ignore' })
  const detached = spawn('sleep', ['300'], { stdio: 'ignore', detached: true })
  detached.unref()
  // a grandchild in a session of its own whose parent exits at once
  const sh = spawn('sh', ['-c', 'setsid sleep 300 >/dev/null 2>&1 & echo $!'], { detached: true })
  const grandchild = await new Promise((resolve) => { let out = ''; sh.stdout.on('data', (d) => (out += d)); sh.on('close', () => resolve(Number(out.trim()))) })
  return { worker: process.pid, plain: plain.pid, detached: detached.pid, grandchild }
}
`

func spawned(t *testing.T, f *fixture) (worker int, children []int) {
	t.Helper()
	m := mustOK(t, f.wx("spawner", `{}`, nil))
	for _, k := range []string{"plain", "detached", "grandchild"} {
		pid := int(m[k].(float64))
		if pid <= 0 || gone(pid) {
			t.Fatalf("%s child %d is not running", k, pid)
		}
		children = append(children, pid)
	}
	return int(m["worker"].(float64)), children
}

// The sweep reads fn's own tree from the kernel's children files; without them (a kernel built
// without CONFIG_PROC_CHILDREN) it reads every process's stat instead. Both must find the same.
func TestChildProcessesDieWithTheirWorker(t *testing.T) {
	if !childrenFiles() {
		t.Log("this kernel has no /proc/<pid>/task/<tid>/children: the fallback alone is tested")
	}
	t.Run("ChildrenFiles", func(t *testing.T) {
		if !childrenFiles() {
			t.Skip("no children files")
		}
		childProcessesDieWithTheirWorker(t)
	})
	t.Run("ProcessTable", func(t *testing.T) {
		withoutChildrenFiles(t)
		childProcessesDieWithTheirWorker(t)
	})
}

// withoutChildrenFiles makes the sweep read the whole process table for the rest of the test.
func withoutChildrenFiles(t testing.TB) {
	was := childrenFiles
	childrenFiles = func() bool { return false }
	t.Cleanup(func() { childrenFiles = was })
}

// below finds the same processes either way: a shell, its sleep, a shell it started and that
// one's sleep, all below this test's child.
func TestBelowFindsEveryDescendant(t *testing.T) {
	cmd := exec.Command("sh", "-c", `sleep 300 & sh -c 'sleep 300 & wait' & wait`)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		cmd.Wait()
	}()
	root := cmd.Process.Pid
	sorted := func(pids []int) []int { slices.Sort(pids); return pids }
	var fromTable []int
	testutil.Eventually(t, 5*time.Second, "the shell to start its three descendants", func() bool {
		fromTable = sorted(descendants(processTable(), root))
		return len(fromTable) == 3
	})
	if childrenFiles() {
		if got := sorted(below(root, nil)); !slices.Equal(got, fromTable) {
			t.Errorf("from the children files: %v; the process table says %v", got, fromTable)
		}
	}
	withoutChildrenFiles(t)
	if got := sorted(below(root, nil)); !slices.Equal(got, fromTable) {
		t.Errorf("without the children files: %v; want %v", got, fromTable)
	}
}

func childProcessesDieWithTheirWorker(t *testing.T) {
	files := map[string]string{
		"fn.yaml":                    "name: conf\ndialect: wx\nfunctions:\n  spawner:\n    maxInstances: 1\n",
		"functions/spawner/index.js": spawnerJS,
	}
	f := newFixture(t, files, bundler.Dev, Config{})

	// the worker crashes (process.exit in another call)
	worker, children := spawned(t, f)
	if r := f.wx("spawner", `{"exit":true}`, nil); r.Err == nil || r.Err.Kind != KindCrash {
		t.Fatalf("exit: %+v", r.Err)
	}
	for _, pid := range append(children, worker) {
		testutil.Eventually(t, 5*time.Second, fmt.Sprintf("process %d to be killed and reaped after the crash", pid), func() bool { return gone(pid) })
	}

	// the worker is stopped: a fresh-worker reload retires it
	worker, children = spawned(t, f)
	var bundles []Bundle
	m, _, err := f.b.Build()
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range m.Bundles {
		bundles = append(bundles, Bundle{Name: a.Name, File: f.p.StatePath("build", a.File), Hash: a.Hash, Config: f.p.Function(a.Name)})
	}
	if _, err := f.e.Load(context.Background(), bundles, LoadOptions{Fresh: true}); err != nil {
		t.Fatal(err)
	}
	for _, pid := range append(children, worker) {
		testutil.Eventually(t, 5*time.Second, fmt.Sprintf("process %d to be killed and reaped after its worker was stopped", pid), func() bool { return gone(pid) })
	}

	// the engine closes
	worker, children = spawned(t, f)
	f.e.Close(time.Second)
	for _, pid := range append(children, worker) {
		if !gone(pid) {
			t.Errorf("process %d survived Engine.Close", pid)
		}
	}
}

// dead reports whether pid has exited (it may wait as a zombie for a parent that is not fn).
func dead(pid int) bool {
	info, ok := readStat(pid)
	return !ok || info.zombie
}

// Without fn's sweep (as on other systems, or when fn itself is killed and the worker sees its
// input close), the runner still kills the children it spawned when it ends.
func TestRunnerKillsItsChildrenWhenItEnds(t *testing.T) {
	files := map[string]string{
		"fn.yaml":                    "name: conf\ndialect: wx\nfunctions:\n  spawner:\n    maxInstances: 1\n",
		"functions/spawner/index.js": spawnerJS,
	}
	was := subreaper.on.Load()
	subreaper.on.Store(false)
	defer subreaper.on.Store(was)
	f := newFixture(t, files, bundler.Dev, Config{})
	_, children := spawned(t, f)
	grandchild := children[2] // its parent (sh) is gone: only the sweep could find it
	f.e.Close(time.Second)
	for _, pid := range children[:2] {
		testutil.Eventually(t, 5*time.Second, fmt.Sprintf("child %d to be killed by the runner", pid), func() bool { return dead(pid) })
	}
	// clean up what the sweep would have: the grandchild, and the zombies re-parented to this process
	syscall.Kill(grandchild, syscall.SIGKILL)
	for _, pid := range children {
		testutil.Eventually(t, 5*time.Second, fmt.Sprintf("zombie %d to be reaped", pid), func() bool {
			var ws syscall.WaitStatus
			syscall.Wait4(pid, &ws, syscall.WNOHANG, nil)
			return gone(pid)
		})
	}
}

// BenchmarkOrphanScan is one round of the sweep's search for fn's orphans, from the children
// files and from the whole process table (go test ./engine -run X -bench OrphanScan).
func BenchmarkOrphanScan(b *testing.B) {
	self := os.Getpid()
	b.Run("ChildrenFiles", func(b *testing.B) {
		if !childrenFiles() {
			b.Skip("no children files")
		}
		for i := 0; i < b.N; i++ {
			orphans(self)
		}
	})
	b.Run("ProcessTable", func(b *testing.B) {
		withoutChildrenFiles(b)
		for i := 0; i < b.N; i++ {
			orphans(self)
		}
	})
}
