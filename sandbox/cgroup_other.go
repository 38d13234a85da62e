//go:build !linux

package sandbox

import (
	"errors"
	"os/exec"
)

// Hook fails: cgroups are Linux's.
func (g *AppCgroup) Hook() func(*exec.Cmd) error {
	return func(*exec.Cmd) error { return errors.New("cgroups are Linux-only") }
}
