package sandbox

import (
	"os/exec"
	"syscall"
)

// Hook returns an engine.Config.Sandbox step that starts the worker inside the app's group
// (clone3 with CLONE_INTO_CGROUP, Linux 5.7+).
func (g *AppCgroup) Hook() func(*exec.Cmd) error {
	return func(cmd *exec.Cmd) error {
		if cmd.SysProcAttr == nil {
			cmd.SysProcAttr = &syscall.SysProcAttr{}
		}
		cmd.SysProcAttr.UseCgroupFD = true
		cmd.SysProcAttr.CgroupFD = int(g.fd.Fd())
		return nil
	}
}
