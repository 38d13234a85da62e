package sandbox

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
)

// fakeCgroupFS lays out a unified hierarchy with fn's group at /svc/fn.service holding the
// given controllers.
func fakeCgroupFS(t *testing.T, controllers string) (root string) {
	root = t.TempDir()
	own := filepath.Join(root, "svc", "fn.service")
	os.MkdirAll(own, 0o755)
	os.WriteFile(filepath.Join(root, "cgroup.controllers"), []byte("cpuset cpu io memory hugetlb pids rdma misc\n"), 0o644)
	os.WriteFile(filepath.Join(own, "cgroup.controllers"), []byte(controllers+"\n"), 0o644)
	os.WriteFile(filepath.Join(own, "cgroup.subtree_control"), nil, 0o644)
	return root
}

const unifiedSelf = "0::/svc/fn.service\n"

func TestDetectCgroupsRefusesWhatItCannotManage(t *testing.T) {
	v1 := "9:name=systemd:/\n8:pids:/\n4:memory:/x\n1:cpu:/\n0::/\n"
	if _, err := DetectCgroups(fakeCgroupFS(t, "cpu memory pids"), []byte(v1)); err == nil || !strings.Contains(err.Error(), "cgroup v1") {
		t.Errorf("a v1/hybrid host: %v", err)
	}
	if _, err := DetectCgroups(t.TempDir(), []byte(unifiedSelf)); err == nil || !strings.Contains(err.Error(), "no cgroup v2 hierarchy") {
		t.Errorf("no unified mount: %v", err)
	}
	if _, err := DetectCgroups(fakeCgroupFS(t, "cpu memory"), []byte(unifiedSelf)); err == nil || !strings.Contains(err.Error(), "pids") {
		t.Errorf("pids not delegated: %v", err)
	}
	if _, err := DetectCgroups(fakeCgroupFS(t, "cpu memory pids"), []byte("")); err == nil {
		t.Error("no cgroup line was accepted")
	}
}

// This machine's own answer is logged (on the development machine: cgroup v1).
func TestDetectCgroupsHere(t *testing.T) {
	self, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		t.Skip("no /proc/self/cgroup")
	}
	dir, err := DetectCgroups("/sys/fs/cgroup", self)
	t.Logf("this host: dir %q, %v", dir, err)
	if (dir == "") == (err == nil) {
		t.Fatalf("Detect answered dir %q and error %v: want exactly one", dir, err)
	}
}

// Against a fake delegated hierarchy: fn moves itself into its leaf, enables the controllers for
// the children, and each app's group gets its limits once.
func TestCgroupsWriteTheLimits(t *testing.T) {
	root := fakeCgroupFS(t, "cpuset cpu io memory pids")
	dir, err := DetectCgroups(root, []byte(unifiedSelf))
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(root, "svc", "fn.service"); dir != want {
		t.Fatalf("dir %s, want %s", dir, want)
	}
	if _, err := SetupCgroups(dir, CgroupLimits{CPUWeight: 20000}); err == nil {
		t.Fatal("cpu.weight 20000 was accepted")
	}
	cg, err := SetupCgroups(dir, CgroupLimits{MemoryMax: 512 << 20, PidsMax: 256, CPUWeight: 100})
	if err != nil {
		t.Fatal(err)
	}
	read := func(rel string) string {
		b, err := os.ReadFile(filepath.Join(dir, rel))
		if err != nil {
			t.Fatalf("%s: %v", rel, err)
		}
		return string(b)
	}
	if got := read(SelfGroup + "/cgroup.procs"); got != strconv.Itoa(os.Getpid()) {
		t.Errorf("fn's leaf holds %q, want its pid", got)
	}
	if got := read("cgroup.subtree_control"); got != "+cpu +memory +pids" {
		t.Errorf("subtree_control: %q", got)
	}
	// a real group has memory.swap.max; the fake one gets it to check that it is set when present
	os.MkdirAll(filepath.Join(dir, "app-a1"), 0o755)
	os.WriteFile(filepath.Join(dir, "app-a1", "memory.swap.max"), []byte("max"), 0o644)
	g, err := cg.App("a1")
	if err != nil {
		t.Fatal(err)
	}
	for file, want := range map[string]string{"memory.max": "536870912", "memory.swap.max": "0", "pids.max": "256", "cpu.weight": "100"} {
		if got := read("app-a1/" + file); got != want {
			t.Errorf("app-a1/%s = %q, want %q", file, got, want)
		}
	}
	if again, _ := cg.App("a1"); again != g {
		t.Error("a second environment of the app got another group")
	}
	for _, bad := range []string{"", "../x", "a/b", "a b"} {
		if _, err := cg.App(bad); err == nil {
			t.Errorf("app id %q named a group", bad)
		}
	}
	if runtime.GOOS == "linux" {
		cmd := exec.Command("true")
		if err := g.Hook()(cmd); err != nil || !cmd.SysProcAttr.UseCgroupFD || cmd.SysProcAttr.CgroupFD != int(g.fd.Fd()) {
			t.Fatalf("hook: %v %+v", err, cmd.SysProcAttr)
		}
	}
	if err := cg.Close(); err != nil {
		t.Fatal(err)
	}
}
