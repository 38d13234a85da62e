//go:build windows

package appenv

import (
	"os"
	"os/exec"
)

func isolateApp(cmd *exec.Cmd) {}

func signalApp(pid int, kill bool) {
	if p, err := os.FindProcess(pid); err == nil && pid > 0 {
		p.Kill()
	}
}

func reapGroup(pid int) {}
