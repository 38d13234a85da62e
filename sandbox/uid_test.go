package sandbox

import (
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
)

func TestParseUIDRange(t *testing.T) {
	r, err := ParseUIDRange(DefaultUIDs)
	if err != nil || r.First != 100000 || r.Last != 165535 || r.String() != DefaultUIDs {
		t.Fatalf("%s: %+v %v", DefaultUIDs, r, err)
	}
	for _, bad := range []string{"", "100000", "a-b", "10-2000", "5000-4000", "1000-99999999999"} {
		if _, err := ParseUIDRange(bad); err == nil {
			t.Errorf("%q was accepted", bad)
		}
	}
}

// Pick maps an app to the same uid every time, moves on past taken uids, and says when the
// range is full.
func TestUIDRangePick(t *testing.T) {
	r := UIDRange{First: 200000, Last: 200003}
	none := func(int) bool { return false }
	a, _ := r.Pick("app-a", none)
	if again, _ := r.Pick("app-a", none); again != a || a < r.First || a > r.Last {
		t.Fatalf("app-a got %d then %d in %v", a, again, r)
	}
	taken := map[int]bool{a: true}
	b, err := r.Pick("app-a", func(uid int) bool { return taken[uid] })
	if err != nil || b == a {
		t.Fatalf("with %d taken, got %d %v", a, b, err)
	}
	if _, err := r.Pick("x", func(int) bool { return true }); err != ErrUIDsExhausted {
		t.Fatalf("a full range: %v", err)
	}
}

func ownerOf(t *testing.T, path string) (uid, gid int, perm os.FileMode) {
	t.Helper()
	fi, err := os.Lstat(path)
	if err != nil {
		t.Fatal(err)
	}
	st := fi.Sys().(*syscall.Stat_t)
	return int(st.Uid), int(st.Gid), fi.Mode().Perm()
}

// The directory preparation for an app's uid: versions readable by its group only, scratch
// owned by it, the runner readable by all, traversal without listing.
func TestOwnerPreparesDirectories(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("changing owners needs root")
	}
	dir := t.TempDir()
	o := Owner{UID: 300123, GID: 300123}
	version := filepath.Join(dir, "v1")
	os.MkdirAll(filepath.Join(version, "lib"), 0o700)
	os.WriteFile(filepath.Join(version, "lib", "a.js"), nil, 0o600)
	os.WriteFile(filepath.Join(version, "run.sh"), nil, 0o700)
	os.Symlink("/etc/hostname", filepath.Join(version, "link"))
	if err := o.Share(version); err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string]os.FileMode{version: 0o750, filepath.Join(version, "lib"): 0o750,
		filepath.Join(version, "lib", "a.js"): 0o640, filepath.Join(version, "run.sh"): 0o750} {
		if uid, gid, perm := ownerOf(t, path); uid != 0 || gid != o.GID || perm != want {
			t.Errorf("%s: %d:%d %04o, want 0:%d %04o", path, uid, gid, perm, o.GID, want)
		}
	}
	if uid, gid, _ := ownerOf(t, "/etc/hostname"); uid != 0 || gid != 0 {
		t.Errorf("Share followed a symbolic link: /etc/hostname is %d:%d", uid, gid)
	}
	scratch := filepath.Join(dir, "scratch")
	os.MkdirAll(filepath.Join(scratch, "sub"), 0o755)
	os.WriteFile(filepath.Join(scratch, "sub", "f"), nil, 0o644)
	if err := o.Own(scratch); err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string]os.FileMode{scratch: 0o700, filepath.Join(scratch, "sub"): 0o700, filepath.Join(scratch, "sub", "f"): 0o600} {
		if uid, gid, perm := ownerOf(t, path); uid != o.UID || gid != o.GID || perm != want {
			t.Errorf("%s: %d:%d %04o, want %d:%d %04o", path, uid, gid, perm, o.UID, o.GID, want)
		}
	}
	runner := filepath.Join(dir, "runner")
	os.MkdirAll(runner, 0o700)
	os.WriteFile(filepath.Join(runner, "runner.js"), nil, 0o600)
	if err := Public(runner); err != nil {
		t.Fatal(err)
	}
	if _, _, perm := ownerOf(t, runner); perm != 0o711 {
		t.Errorf("runner dir %04o, want 0711", perm)
	}
	if _, _, perm := ownerOf(t, filepath.Join(runner, "runner.js")); perm != 0o644 {
		t.Errorf("runner %04o, want 0644", perm)
	}
	if err := o.Traverse(dir); err != nil {
		t.Fatal(err)
	}
	if uid, gid, perm := ownerOf(t, dir); uid != 0 || gid != o.GID || perm != 0o710 {
		t.Errorf("traversed dir %d:%d %04o, want 0:%d 0710", uid, gid, perm, o.GID)
	}
	cmd := exec.Command("true")
	if err := o.Hook()(cmd); err != nil {
		t.Fatal(err)
	}
	if c := cmd.SysProcAttr.Credential; c == nil || c.Uid != uint32(o.UID) || c.Gid != uint32(o.GID) || len(c.Groups) != 0 {
		t.Fatalf("credential %+v", c)
	}
}

func TestSearchable(t *testing.T) {
	dir, err := os.MkdirTemp("", "fn-searchable-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	inner := filepath.Join(dir, "a", "data")
	os.MkdirAll(filepath.Dir(inner), 0o700)
	os.Chmod(dir, 0o711)
	if err := Searchable(inner); err == nil {
		t.Fatal("a data directory below a 0700 directory was called searchable")
	}
	os.Chmod(filepath.Dir(inner), 0o711)
	if err := Searchable(inner); err != nil {
		t.Fatalf("below 0711 directories: %v", err)
	}
}
