//go:build unix

package pgtest

import "syscall"

// detached puts the watchdog in its own process group, so a signal to the test's group (Ctrl-C,
// go test's timeout) does not end it before it has cleaned up.
func detached() *syscall.SysProcAttr { return &syscall.SysProcAttr{Setpgid: true} }
