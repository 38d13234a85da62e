package hosting

import (
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
)

// narrowDataDir brings every directory under the data directory to 0700 and every file to 0600
// when an earlier version (or an operator's umask) left them wider: the tree holds app keys,
// secrets, users' sessions and what functions logged. Symbolic links are not followed.
func narrowDataDir(dir string) error {
	if runtime.GOOS == "windows" {
		return nil
	}
	return filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type()&fs.ModeSymlink != 0 {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		want := fs.FileMode(0o600)
		if d.IsDir() {
			want = 0o700
		}
		if info.Mode().Perm()&^want != 0 {
			return os.Chmod(path, info.Mode().Perm()&want)
		}
		return nil
	})
}
