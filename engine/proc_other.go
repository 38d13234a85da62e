//go:build !linux && !windows

package engine

import "os"

// Only Linux lets an unprivileged process adopt and find the orphans of its workers; elsewhere
// a worker's processes are ended through its process group.

func becomeSubreaper() {}

func sweeping() bool { return false }

func killDescendants(int) {}

func (w *worker) sweepOrphans() {}

func growPipe(*os.File) {}
