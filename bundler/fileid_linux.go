//go:build linux

package bundler

import (
	"os"
	"syscall"
)

// fileIdentity is what a package manager cannot keep when it replaces a file: its inode and its
// change time (a copy from a content store may keep the size and the modification time).
func fileIdentity(fi os.FileInfo) (ino uint64, ctime int64) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return 0, 0
	}
	return uint64(st.Ino), st.Ctim.Nano()
}
