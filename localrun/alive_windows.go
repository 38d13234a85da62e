//go:build windows

package localrun

import "os"

// processAlive reports whether a process with the pid exists.
func processAlive(pid int) bool {
	p, err := os.FindProcess(pid)
	if err != nil {
		return false
	}
	p.Release()
	return true
}
