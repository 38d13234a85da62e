package engine

import (
	"bytes"
	"errors"
	"io"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// On Linux the engine's process is a child subreaper (prctl PR_SET_CHILD_SUBREAPER): a process
// that a function started and that outlives its parent (a worker that crashed or was stopped, or
// a child spawned detached, in a session of its own) is re-parented to fn instead of init. After
// a worker exits, sweepOrphans finds those that came from it (its process group, or the worker
// tag every descendant inherits in its environment unless the function replaced it), kills them
// and reaps them. The cost: fn is also the parent of last resort for orphans of other processes
// it starts; those it never reaps (it cannot tell them from children that os/exec will wait for),
// which matters only for zombies, and only until fn exits.

var subreaper struct {
	once sync.Once
	on   atomic.Bool
}

func becomeSubreaper() {
	subreaper.once.Do(func() {
		subreaper.on.Store(unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == nil)
	})
}

// sweeping reports whether fn sweeps up its workers' orphans (the runner then leaves its
// children to fn, which can find them only while they live).
func sweeping() bool { return subreaper.on.Load() }

// procInfo is what /proc/<pid>/stat says of a process.
type procInfo struct {
	ppid, pgrp int
	zombie     bool
}

// processTable reads every process's parent and group from /proc.
func processTable() map[int]procInfo {
	dir, err := os.Open("/proc")
	if err != nil {
		return nil
	}
	defer dir.Close()
	names, _ := dir.Readdirnames(-1)
	table := make(map[int]procInfo, len(names))
	for _, n := range names {
		pid, err := strconv.Atoi(n)
		if err != nil {
			continue
		}
		if info, ok := readStat(pid); ok {
			table[pid] = info
		}
	}
	return table
}

func readStat(pid int) (procInfo, bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return procInfo{}, false
	}
	// pid (comm) state ppid pgrp …; comm may hold spaces and parentheses, so split at the last ')'
	i := bytes.LastIndexByte(b, ')')
	if i < 0 || i+2 >= len(b) {
		return procInfo{}, false
	}
	f := bytes.Fields(b[i+2:])
	if len(f) < 3 {
		return procInfo{}, false
	}
	ppid, _ := strconv.Atoi(string(f[1]))
	pgrp, _ := strconv.Atoi(string(f[2]))
	return procInfo{ppid: ppid, pgrp: pgrp, zombie: f[0][0] == 'Z'}, true
}

// childrenOf lists pid's children from /proc/<pid>/task/*/children, which the kernel keeps per
// thread: a read of fn's own process tree, where processTable reads every process on the machine
// (13 µs each: 0.9 ms per round with 66 processes, 10 ms or more on a desktop). None when pid
// is gone.
func childrenOf(pid int) (kids []int) {
	dir := "/proc/" + strconv.Itoa(pid) + "/task"
	tasks, err := os.ReadDir(dir)
	if err != nil {
		return nil
	}
	for _, t := range tasks {
		b, err := os.ReadFile(dir + "/" + t.Name() + "/children")
		if err != nil {
			continue // a thread that ended meanwhile
		}
		for _, f := range bytes.Fields(b) {
			if c, err := strconv.Atoi(string(f)); err == nil {
				kids = append(kids, c)
			}
		}
	}
	return kids
}

// childrenFiles reports whether the kernel lists children per task (CONFIG_PROC_CHILDREN),
// checked once on fn's own main thread.
var childrenFiles = sync.OnceValue(func() bool {
	pid := strconv.Itoa(os.Getpid())
	_, err := os.Stat("/proc/" + pid + "/task/" + pid + "/children")
	return err == nil
})

// below lists every process below root: from the children files when the kernel has them,
// otherwise from table (read when nil).
func below(root int, table map[int]procInfo) []int {
	if childrenFiles() {
		var out []int
		queue := []int{root}
		for len(queue) > 0 && len(out) < maxSwept {
			kids := childrenOf(queue[0])
			queue = append(queue[1:], kids...)
			out = append(out, kids...)
		}
		return out
	}
	if table == nil {
		table = processTable()
	}
	return descendants(table, root)
}

// maxSwept bounds one search below a process: a fork bomb must not make fn's sweep endless.
const maxSwept = 1 << 16

// descendants lists every process below root in the table.
func descendants(table map[int]procInfo, root int) []int {
	children := map[int][]int{}
	for pid, p := range table {
		children[p.ppid] = append(children[p.ppid], pid)
	}
	var out []int
	queue := []int{root}
	for len(queue) > 0 {
		pid := queue[0]
		queue = queue[1:]
		for _, c := range children[pid] {
			out = append(out, c)
			queue = append(queue, c)
		}
	}
	return out
}

// killDescendants kills every process below pid, while pid still holds them together.
func killDescendants(pid int) {
	for _, d := range below(pid, nil) {
		syscall.Kill(d, syscall.SIGKILL)
	}
}

// orphans lists fn's children with their group and state: from the children files, reading
// only those processes, or from the whole table.
func orphans(self int) (map[int]procInfo, map[int]procInfo) {
	if !childrenFiles() {
		table := processTable()
		mine := map[int]procInfo{}
		for pid, p := range table {
			if p.ppid == self {
				mine[pid] = p
			}
		}
		return mine, table
	}
	kids := childrenOf(self)
	mine := make(map[int]procInfo, len(kids))
	for _, pid := range kids {
		if info, ok := readStat(pid); ok && info.ppid == self {
			mine[pid] = info
		}
	}
	return mine, nil
}

// hasEnv reports whether the process's environment holds the entry kv ("K=V").
func hasEnv(pid int, kv string) bool {
	f, err := os.Open("/proc/" + strconv.Itoa(pid) + "/environ")
	if err != nil {
		return false
	}
	defer f.Close()
	b, _ := io.ReadAll(io.LimitReader(f, 1<<20))
	for _, e := range bytes.Split(b, []byte{0}) {
		if string(e) == kv {
			return true
		}
	}
	return false
}

// sweepOrphans kills and reaps the processes that came from w and were re-parented to fn when w
// exited. It runs after w was reaped.
func (w *worker) sweepOrphans() {
	if !sweeping() || w.pid <= 0 {
		return
	}
	self := os.Getpid()
	killed := map[int]bool{}
	// Each round reaps the orphans found; their own children are then re-parented to fn and are
	// found (already killed) in the next round.
	for round := 0; round < 32; round++ {
		mine, table := orphans(self)
		var victims []int
		for pid, p := range mine {
			if killed[pid] || p.pgrp == w.pid || (!p.zombie && hasEnv(pid, w.tagEnv())) {
				victims = append(victims, pid)
			}
		}
		if len(victims) == 0 {
			return
		}
		for _, v := range victims {
			for _, d := range below(v, table) {
				syscall.Kill(d, syscall.SIGKILL)
				killed[d] = true
			}
			syscall.Kill(v, syscall.SIGKILL)
			killed[v] = true
		}
		// A killed process can hang in the kernel (a dead network mount): its reaping must not
		// keep the worker from being declared dead, so it gets a while and then goes on alone.
		var reaped sync.WaitGroup
		for _, v := range victims {
			reaped.Add(1)
			go func(pid int) {
				defer reaped.Done()
				var ws unix.WaitStatus
				for {
					_, err := unix.Wait4(pid, &ws, 0, nil)
					if !errors.Is(err, unix.EINTR) {
						return
					}
				}
			}(v)
			delete(killed, v)
		}
		done := make(chan struct{})
		go func() { reaped.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(2 * time.Second):
			return
		}
	}
}

// growPipe raises a stdout/stderr pipe's capacity to 1 MB (the unprivileged maximum by default):
// a function flooding its output then costs fn a read per megabyte instead of one per 64 KB,
// and the wake-ups that go with each. Pages are only taken while output waits in the pipe.
func growPipe(f *os.File) {
	unix.FcntlInt(f.Fd(), unix.F_SETPIPE_SZ, 1<<20)
}
