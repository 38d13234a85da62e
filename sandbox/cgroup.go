package sandbox

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
)

// Per-app cgroup v2 limits. Where fn serve runs in a cgroup v2 directory it may manage (a
// delegated subtree: systemd's Delegate=yes, a container's own cgroup namespace), it moves
// itself into a leaf group of that directory (cgroups v2 let only leaves hold processes once
// controllers are enabled), enables the cpu, memory and pids controllers for the children, and
// gives each app a group of its own with memory.max, pids.max and cpu.weight; every worker of the
// app starts inside it (clone into the group, so that nothing escapes between start and move).
// On cgroup v1 or hybrid hosts, or without delegation, nothing is limited and Detect says why.

// CgroupLimits are one app's limits; a zero field leaves that limit as the kernel's default.
type CgroupLimits struct {
	MemoryMax int64 // bytes, all the app's workers together (memory.max; memory.swap.max 0)
	PidsMax   int   // processes and threads (pids.max)
	CPUWeight int   // 1–10000, the app's share of CPU against other apps (cpu.weight, default 100)
}

// cgroupControllers are the controllers fn enables for apps' groups.
var cgroupControllers = []string{"cpu", "memory", "pids"}

// DetectCgroups finds the cgroup v2 directory fn runs in and checks that it can manage groups
// below it. fsRoot is where the unified hierarchy is mounted (/sys/fs/cgroup) and self is the
// content of /proc/self/cgroup. The error says why there are no per-app limits.
func DetectCgroups(fsRoot string, self []byte) (dir string, err error) {
	var path string
	v1 := []string{}
	sc := bufio.NewScanner(bytes.NewReader(self))
	for sc.Scan() {
		id, rest, _ := strings.Cut(sc.Text(), ":")
		ctrls, p, ok := strings.Cut(rest, ":")
		if !ok {
			continue
		}
		if id == "0" && ctrls == "" {
			path = p
		} else if ctrls != "" {
			v1 = append(v1, ctrls)
		}
	}
	if len(v1) > 0 {
		return "", fmt.Errorf("this host uses cgroup v1 (%s): no per-app memory, CPU or process limits", strings.Join(v1, ", "))
	}
	if path == "" {
		return "", errors.New("this process is in no cgroup v2 group: no per-app memory, CPU or process limits")
	}
	if _, err := os.Stat(filepath.Join(fsRoot, "cgroup.controllers")); err != nil {
		return "", fmt.Errorf("no cgroup v2 hierarchy at %s: no per-app memory, CPU or process limits", fsRoot)
	}
	dir = filepath.Join(fsRoot, filepath.FromSlash(path))
	have, err := os.ReadFile(filepath.Join(dir, "cgroup.controllers"))
	if err != nil {
		return "", fmt.Errorf("reading fn's cgroup %s: %w", dir, err)
	}
	var missing []string
	for _, c := range cgroupControllers {
		if !containsWord(string(have), c) {
			missing = append(missing, c)
		}
	}
	if len(missing) > 0 {
		return "", fmt.Errorf("fn's cgroup %s is not delegated the %s controller(s) (run fn serve with systemd's Delegate=yes or in a container with its own cgroup): no per-app limits", dir, strings.Join(missing, ", "))
	}
	if err := writable(filepath.Join(dir, "cgroup.subtree_control")); err != nil {
		return "", fmt.Errorf("fn may not manage its cgroup %s (%v): no per-app limits", dir, err)
	}
	return dir, nil
}

func containsWord(s, w string) bool {
	for _, f := range strings.Fields(s) {
		if f == w {
			return true
		}
	}
	return false
}

func writable(path string) error {
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	return f.Close()
}

// Cgroups manages the apps' groups below fn's delegated cgroup directory.
type Cgroups struct {
	dir    string
	limits CgroupLimits
	mu     sync.Mutex
	apps   map[string]*AppCgroup
}

// SelfGroup is the leaf group fn serve moves itself into.
const SelfGroup = "fn-serve"

// SetupCgroups takes over dir (DetectCgroups' answer): fn moves itself into dir/SelfGroup and
// enables the controllers for dir's children. Every app group gets limits.
func SetupCgroups(dir string, limits CgroupLimits) (*Cgroups, error) {
	if limits.CPUWeight != 0 && (limits.CPUWeight < 1 || limits.CPUWeight > 10000) {
		return nil, fmt.Errorf("cgroups: cpu.weight %d is outside 1–10000", limits.CPUWeight)
	}
	if limits.MemoryMax < 0 || limits.PidsMax < 0 {
		return nil, errors.New("cgroups: negative limit")
	}
	self := filepath.Join(dir, SelfGroup)
	if err := os.Mkdir(self, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
		return nil, fmt.Errorf("cgroups: %w", err)
	}
	if err := os.WriteFile(filepath.Join(self, "cgroup.procs"), []byte(strconv.Itoa(os.Getpid())), 0o644); err != nil {
		return nil, fmt.Errorf("cgroups: moving fn into %s: %w", self, err)
	}
	enable := "+" + strings.Join(cgroupControllers, " +")
	if err := os.WriteFile(filepath.Join(dir, "cgroup.subtree_control"), []byte(enable), 0o644); err != nil {
		return nil, fmt.Errorf("cgroups: enabling %s in %s (other processes left in it?): %w", enable, dir, err)
	}
	return &Cgroups{dir: dir, limits: limits, apps: map[string]*AppCgroup{}}, nil
}

// AppCgroup is one app's group.
type AppCgroup struct {
	Dir string
	fd  *os.File // the open directory, for starting workers inside it
}

// App returns the group of an app, made (with the limits) on first use.
func (c *Cgroups) App(appID string) (*AppCgroup, error) {
	if appID == "" || strings.IndexFunc(appID, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_')
	}) >= 0 {
		return nil, fmt.Errorf("cgroups: app id %q cannot name a group", appID)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if g, ok := c.apps[appID]; ok {
		return g, nil
	}
	dir := filepath.Join(c.dir, "app-"+appID)
	if err := os.Mkdir(dir, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
		return nil, fmt.Errorf("cgroups: %w", err)
	}
	set := func(file, value string, optional bool) error {
		path := filepath.Join(dir, file)
		if optional {
			if _, err := os.Stat(path); err != nil {
				return nil
			}
		}
		if err := os.WriteFile(path, []byte(value), 0o644); err != nil {
			return fmt.Errorf("cgroups: setting %s of app %s: %w", file, appID, err)
		}
		return nil
	}
	l := c.limits
	var err error
	if l.MemoryMax > 0 {
		err = errors.Join(set("memory.max", strconv.FormatInt(l.MemoryMax, 10), false), set("memory.swap.max", "0", true))
	}
	if err == nil && l.PidsMax > 0 {
		err = set("pids.max", strconv.Itoa(l.PidsMax), false)
	}
	if err == nil && l.CPUWeight > 0 {
		err = set("cpu.weight", strconv.Itoa(l.CPUWeight), false)
	}
	if err != nil {
		return nil, err
	}
	fd, err := os.Open(dir)
	if err != nil {
		return nil, fmt.Errorf("cgroups: %w", err)
	}
	g := &AppCgroup{Dir: dir, fd: fd}
	c.apps[appID] = g
	return g, nil
}

// Close releases the groups' directories and removes the groups no process is left in.
func (c *Cgroups) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	for id, g := range c.apps {
		g.fd.Close()
		os.Remove(g.Dir) // fails while processes remain: the kernel keeps the group
		delete(c.apps, id)
	}
	return nil
}
