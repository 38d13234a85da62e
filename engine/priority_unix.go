//go:build unix

package engine

import "golang.org/x/sys/unix"

// setGroupNice sets the nice value of every thread of every process in the process group pgid
// (the worker and what it started without leaving its group).
func setGroupNice(pgid, n int) error { return unix.Setpriority(unix.PRIO_PGRP, pgid, n) }
