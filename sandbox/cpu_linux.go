package sandbox

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// CPUGroups gives each app's workers a cgroup of their own under the cpu controller, all with
// equal shares: under contention apps then share the CPU equally rather than by how many busy
// processes each has, so one app's loops and crash loops slow the others down less. It uses the
// cgroup v1 cpu hierarchy (cgroup v2 needs a delegated subtree and is not set up yet).
type CPUGroups struct{ dir string }

// OpenCPUGroups makes fn's group below its own cgroup, or says why it cannot.
func OpenCPUGroups() (*CPUGroups, error) {
	mount := ""
	for _, m := range []string{"/sys/fs/cgroup/cpu", "/sys/fs/cgroup/cpu,cpuacct"} {
		if _, err := os.Stat(filepath.Join(m, "cpu.shares")); err == nil {
			mount = m
			break
		}
	}
	if mount == "" {
		return nil, errors.New("no cgroup v1 cpu controller at /sys/fs/cgroup/cpu")
	}
	self, err := ownCgroup("cpu")
	if err != nil {
		return nil, err
	}
	dir := filepath.Join(mount, self, fmt.Sprintf("fn-%d", os.Getpid()))
	if err := os.Mkdir(dir, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
		return nil, fmt.Errorf("creating %s: %w", dir, err)
	}
	return &CPUGroups{dir: dir}, nil
}

// ownCgroup is this process's path in the v1 hierarchy of a controller.
func ownCgroup(controller string) (string, error) {
	f, err := os.Open("/proc/self/cgroup")
	if err != nil {
		return "", err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		parts := strings.SplitN(sc.Text(), ":", 3)
		if len(parts) != 3 {
			continue
		}
		for _, c := range strings.Split(parts[1], ",") {
			if c == controller {
				return parts[2], nil
			}
		}
	}
	return "", fmt.Errorf("this process is in no %s cgroup", controller)
}

// Group returns (creating once) the cgroup of one app.
func (g *CPUGroups) Group(name string) (string, error) {
	if name == "" || strings.ContainsAny(name, `/\.`) {
		return "", fmt.Errorf("sandbox: bad cpu group name %q", name)
	}
	dir := filepath.Join(g.dir, name)
	if err := os.Mkdir(dir, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
		return "", err
	}
	return dir, os.WriteFile(filepath.Join(dir, "cpu.shares"), []byte("1024"), 0o644)
}

// Close removes the groups; call it once every worker has stopped (a group with processes
// stays, and the kernel keeps it until they end).
func (g *CPUGroups) Close() {
	entries, _ := os.ReadDir(g.dir)
	for _, e := range entries {
		if e.IsDir() {
			os.Remove(filepath.Join(g.dir, e.Name()))
		}
	}
	os.Remove(g.dir)
}

// joinCgroup moves this process into a cgroup (before Landlock closes /sys to it).
func joinCgroup(dir string) error {
	return os.WriteFile(filepath.Join(dir, "cgroup.procs"), []byte(fmt.Sprint(os.Getpid())), 0o644)
}
