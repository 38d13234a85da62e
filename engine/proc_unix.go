//go:build unix

package engine

import (
	"os/exec"
	"syscall"
)

// procState is nothing here: a worker's processes are found through its process group.
type procState struct{}

// adopt has nothing to do: isolate already made the worker a group leader.
func (w *worker) adopt() {}

// isolate starts the worker in its own process group, so that a signal to the group reaches
// every process it started that did not leave the group.
func isolate(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
}

// terminate asks the worker's process group to end.
func (w *worker) terminate() {
	if w.pid > 0 {
		syscall.Kill(-w.pid, syscall.SIGTERM)
	}
}

// killNow ends the worker's process group at once, and every other process descended from it
// (those that left the group, e.g. spawned detached, where the platform can tell).
func (w *worker) killNow() {
	if w.pid <= 0 {
		return
	}
	killDescendants(w.pid)
	syscall.Kill(-w.pid, syscall.SIGKILL)
}
