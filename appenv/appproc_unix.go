//go:build unix

package appenv

import (
	"errors"
	"os/exec"
	"syscall"
)

// isolateApp starts the app process in its own process group, so that stopping it stops
// everything it started (npm → sh → node, workers it forks) that did not leave the group.
func isolateApp(cmd *exec.Cmd) { cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} }

func signalApp(pid int, kill bool) {
	if pid <= 0 {
		return
	}
	sig := syscall.SIGTERM
	if kill {
		sig = syscall.SIGKILL
	}
	syscall.Kill(-pid, sig)
}

// reapGroup waits for members of the app's group that were re-parented to fn (fn is a child
// subreaper on Linux) once the group is killed, so that none stays a zombie.
func reapGroup(pid int) {
	if pid <= 0 {
		return
	}
	for i := 0; i < 1000; i++ {
		var ws syscall.WaitStatus
		_, err := syscall.Wait4(-pid, &ws, 0, nil)
		if errors.Is(err, syscall.EINTR) {
			continue
		}
		if err != nil {
			return // ECHILD: none left
		}
	}
}
