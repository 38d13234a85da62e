//go:build unix

package localrun

import "syscall"

// processAlive reports whether a process with the pid exists (signal 0 checks without sending).
func processAlive(pid int) bool { return syscall.Kill(pid, 0) == nil }
