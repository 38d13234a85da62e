//go:build windows

package engine

import (
	"os/exec"
	"syscall"
)

// isolate starts the worker in its own process group, so that a console Ctrl-C of fn does not
// reach it directly: fn stops its workers itself.
func isolate(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{CreationFlags: syscall.CREATE_NEW_PROCESS_GROUP}
}

// terminate ends the worker: Windows has no polite signal for a process without a console.
func (w *worker) terminate() { w.killNow() }

// killNow ends the worker process.
func (w *worker) killNow() {
	if w.cmd != nil && w.cmd.Process != nil {
		w.cmd.Process.Kill()
	}
}
