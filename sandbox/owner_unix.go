//go:build unix

package sandbox

import (
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
)

// Owner is the uid and gid an app's workers run as.
type Owner struct{ UID, GID int }

// RunAsAvailable reports whether this process may start workers as other uids (it is root).
func RunAsAvailable() bool { return os.Geteuid() == 0 }

// Hook returns an engine.Config.Sandbox step that starts the worker as the owner, with no
// supplementary groups. It goes after the Landlock step (which rewrites the command).
func (o Owner) Hook() func(*exec.Cmd) error {
	return func(cmd *exec.Cmd) error {
		if cmd.SysProcAttr == nil {
			cmd.SysProcAttr = &syscall.SysProcAttr{}
		}
		cmd.SysProcAttr.Credential = &syscall.Credential{Uid: uint32(o.UID), Gid: uint32(o.GID), Groups: []uint32{}}
		return nil
	}
}

// Traversable makes dirs searchable, not listable, by every uid (0711): the data directory and
// apps/, on the way to each app's own directory.
func Traversable(dirs ...string) error {
	for _, d := range dirs {
		if err := os.Chmod(d, 0o711); err != nil {
			return err
		}
	}
	return nil
}

// Traverse makes dirs searchable by the owner's group only (root:gid 0710): the app's directory
// and its scratch/ parent.
func (o Owner) Traverse(dirs ...string) error {
	for _, d := range dirs {
		if err := os.Lchown(d, 0, o.GID); err != nil {
			return err
		}
		if err := os.Chmod(d, 0o710); err != nil {
			return err
		}
	}
	return nil
}

// Own gives dir and everything below it to the owner (the scratch directory): directories 0700,
// files keep their owner bits and lose the rest. Symbolic links are changed themselves, never
// followed.
func (o Owner) Own(dir string) error {
	return filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if err := os.Lchown(path, o.UID, o.GID); err != nil {
			return err
		}
		if d.Type()&fs.ModeSymlink != 0 {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		want := info.Mode().Perm() & 0o700
		if d.IsDir() {
			want = 0o700
		}
		if info.Mode().Perm() != want {
			return os.Chmod(path, want)
		}
		return nil
	})
}

// Share makes dir and everything below it readable, not writable, by the owner's group (an app's
// version): root:gid, group bits r-x for directories and r (x where the owner has x) for files,
// nothing for others. A tree already shared (its top has the group and the bits) is left alone.
func (o Owner) Share(dir string) error {
	if info, err := os.Lstat(dir); err == nil && shared(info, o.GID) {
		return nil
	}
	return filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if err := os.Lchown(path, 0, o.GID); err != nil {
			return err
		}
		if d.Type()&fs.ModeSymlink != 0 {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		perm := info.Mode().Perm() & 0o700
		want := perm | 0o040
		if d.IsDir() {
			want = 0o750
		} else if perm&0o100 != 0 {
			want |= 0o010
		}
		if info.Mode().Perm() != want {
			return os.Chmod(path, want)
		}
		return nil
	})
}

func shared(info fs.FileInfo, gid int) bool {
	st, ok := info.Sys().(*syscall.Stat_t)
	return ok && int(st.Gid) == gid && st.Uid == 0 && info.Mode().Perm() == 0o750
}

// Public makes dir searchable by every uid and its files readable (fn's runner, which is the
// same for every app and holds nothing secret).
func Public(dir string) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	if err := os.Chmod(dir, 0o711); err != nil {
		return err
	}
	for _, e := range entries {
		if e.Type().IsRegular() {
			if err := os.Chmod(filepath.Join(dir, e.Name()), 0o644); err != nil {
				return err
			}
		}
	}
	return nil
}

// Searchable checks that every directory from / down to dir can be searched by other uids, as
// a worker running as an app's uid must to reach its files under dir.
func Searchable(dir string) error {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	for p := filepath.Dir(abs); ; p = filepath.Dir(p) {
		info, err := os.Stat(p)
		if err != nil {
			return err
		}
		if info.Mode().Perm()&0o001 == 0 {
			return fmt.Errorf("%s (%04o) cannot be searched by other users, so workers running as an app's uid cannot reach the data directory below it", p, info.Mode().Perm())
		}
		if p == filepath.Dir(p) {
			return nil
		}
	}
}
