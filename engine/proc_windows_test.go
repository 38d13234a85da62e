//go:build windows

package engine

import (
	"bufio"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/fnhq/fn/internal/testutil"
	"golang.org/x/sys/windows"
)

// processAlive reports whether pid is a running process (not one that exited and whose handle
// someone still holds).
func processAlive(pid int) bool {
	h, err := windows.OpenProcess(windows.PROCESS_QUERY_LIMITED_INFORMATION, false, uint32(pid))
	if err != nil {
		return false
	}
	defer windows.CloseHandle(h)
	var code uint32
	if windows.GetExitCodeProcess(h, &code) != nil {
		return false
	}
	return code == 259 // STILL_ACTIVE
}

// A worker's job ends the processes it started too, detached ones included.
func TestJobEndsTheWorkersProcessTree(t *testing.T) {
	cmd := exec.Command("node", "-e", `const c = require('child_process').spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], { detached: true, stdio: 'ignore' })
console.log(c.pid)
setInterval(() => {}, 1000)`)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	isolate(cmd)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	w := &worker{cmd: cmd, pid: cmd.Process.Pid}
	w.adopt()
	if w.ps.job == 0 {
		cmd.Process.Kill()
		t.Fatal("the worker was not put in a job")
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	child, convErr := strconv.Atoi(strings.TrimSpace(line))
	if err != nil || convErr != nil {
		w.killNow()
		t.Fatalf("the child's pid: %q, %v", line, err)
	}
	if !processAlive(child) {
		t.Fatalf("child %d is not running", child)
	}
	w.killNow()
	cmd.Wait()
	w.sweepOrphans()
	testutil.Eventually(t, 10*time.Second, "the detached child to end with its worker's job", func() bool { return !processAlive(child) })
	w.killNow() // after the reap: nothing to end, and no pid to reuse
}
