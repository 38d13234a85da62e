//go:build !windows

package nodejs

import (
	"os"
	"syscall"
)

// fileID is the file's inode: a node replaced in place (same size and mtime) is still a new file.
func fileID(st os.FileInfo) uint64 {
	if s, ok := st.Sys().(*syscall.Stat_t); ok {
		return uint64(s.Ino)
	}
	return 0
}
