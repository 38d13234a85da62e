// Package sandbox confines fn serve's function workers to their own files. A worker is started
// through fn itself (a trampoline: fn run with the hidden argument Arg) which applies a Landlock
// ruleset to itself and then executes node, so that node and everything it starts can read only
// the function's version directory, the runner, Node's installation and the system's shared
// files, and write only the app environment's scratch directory; it also cannot signal or reach
// the abstract sockets of processes outside its sandbox (fn serve itself). Landlock needs no
// privilege; on a kernel without it nothing is confined, and Status says so. Node's permission
// model (--experimental-permission) is added as a second layer when asked for.
package sandbox

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
)

// Arg is the hidden first argument of fn's trampoline: fn Arg <policy JSON> <program> <args…>.
const Arg = "__fn-sandbox"

// Policy is what a confined process may touch. Paths that do not exist are skipped.
type Policy struct {
	// Read may be read (and executed): directories with everything under them, or single files.
	Read []string `json:"read"`
	// Write may be read, written, created in and removed from.
	Write []string `json:"write"`
	// Device files that may be read and written (/dev/null, /dev/urandom, …).
	Devices []string `json:"devices"`
}

// Options configure the confinement of an app environment's workers.
type Options struct {
	// Self is fn's own executable (the trampoline); default os.Executable.
	Self string
	// Protect are directories no rule may contain (fn serve's data directory): the environment
	// refuses to start a worker rather than expose them through a wide system rule.
	Protect []string
	// NodePermissions adds Node's permission model (--experimental-permission with the same
	// read and write paths, child processes and worker threads allowed) as a second layer.
	NodePermissions bool
}

// SystemRead are the shared system paths a worker may read: programs and libraries, the
// certificates, name resolution and time zone files. /etc as a whole is not among them (it
// may hold other services' credentials), nor /proc beyond the process's own entries (other
// processes' environments), nor /home, /root, /tmp or /var.
var SystemRead = []string{
	"/usr", "/lib", "/lib64", "/lib32", "/bin", "/sbin",
	"/etc/ssl", "/etc/pki", "/etc/ca-certificates", "/etc/resolv.conf", "/etc/hosts", "/etc/nsswitch.conf", "/etc/host.conf",
	"/etc/gai.conf", "/etc/localtime", "/etc/timezone", "/etc/passwd", "/etc/group", "/etc/ld.so.cache", "/etc/ld.so.conf",
	"/etc/ld.so.conf.d", "/etc/alternatives", "/etc/os-release", "/etc/mime.types",
	"/proc/self", "/proc/thread-self", "/proc/cpuinfo", "/proc/meminfo", "/proc/stat", "/proc/loadavg", "/proc/version",
	"/proc/sys/kernel/random", "/proc/sys/vm/overcommit_memory", "/sys/fs/cgroup", "/sys/devices/system/cpu",
}

// SystemDevices are the device files a worker may read and write.
var SystemDevices = []string{"/dev/null", "/dev/zero", "/dev/random", "/dev/urandom", "/dev/full", "/dev/tty"}

// ErrUnsupported means the platform cannot confine processes (not Linux, or no Landlock).
var ErrUnsupported = errors.New("Landlock is not available")

// Status says whether this machine confines workers: the Landlock ABI version, or why not.
type Status struct {
	Enforced bool   `json:"enforced"`
	ABI      int    `json:"abi"`
	Reason   string `json:"reason,omitempty"`
}

func (s Status) String() string {
	if s.Enforced {
		return fmt.Sprintf("enforced (Landlock ABI %d)", s.ABI)
	}
	return "NOT enforced: " + s.Reason
}

// Check reports whether Landlock is available here.
func Check() Status {
	if runtime.GOOS != "linux" {
		return Status{Reason: "Landlock is Linux-only; functions can read and write whatever fn's user can"}
	}
	abi, err := abiVersion()
	if err != nil || abi < 1 {
		reason := "this kernel does not offer Landlock (Linux 5.13+ with CONFIG_SECURITY_LANDLOCK and landlock in the lsm= list)"
		if err != nil {
			reason += ": " + err.Error()
		}
		return Status{Reason: reason + "; functions can read and write whatever fn's user can"}
	}
	return Status{Enforced: true, ABI: abi}
}

// Hook returns what engine.Config.Sandbox wants: a function that rewrites a worker's command
// (node and its arguments, working directory set) to start through the trampoline under a
// policy of the system paths, the worker's working directory, node's installation and
// extraRead (read), and write (read-write).
func (o Options) Hook(extraRead, write []string) (func(*exec.Cmd) error, error) {
	self := o.Self
	if self == "" {
		exe, err := os.Executable()
		if err != nil {
			return nil, fmt.Errorf("sandbox: finding fn's executable: %w", err)
		}
		self = exe
	}
	protect := make([]string, 0, len(o.Protect))
	for _, p := range o.Protect {
		abs, err := canonical(p)
		if errors.Is(err, os.ErrNotExist) {
			abs, err = filepath.Abs(p)
		}
		if err != nil {
			return nil, err
		}
		protect = append(protect, abs)
	}
	return func(cmd *exec.Cmd) error {
		node, err := canonical(cmd.Path)
		if err != nil {
			return err
		}
		p := Policy{Devices: SystemDevices}
		// node's installation: a prefix such as /usr/local or ~/.nvm/versions/node/v20 (bin/node)
		p.Read = append(p.Read, SystemRead...)
		p.Read = append(p.Read, filepath.Dir(filepath.Dir(node)), cmd.Dir)
		p.Read = append(p.Read, extraRead...)
		p.Write = append(p.Write, write...)
		if err := p.clean(protect); err != nil {
			return err
		}
		args := cmd.Args[1:]
		if o.NodePermissions {
			args = append(nodePermissionFlags(p), args...)
		}
		spec, err := json.Marshal(p)
		if err != nil {
			return err
		}
		cmd.Args = append([]string{self, Arg, string(spec), node}, args...)
		cmd.Path = self
		return nil
	}, nil
}

// clean makes every path absolute and symlink-free and checks that no rule exposes a
// protected directory (a rule for a directory grants everything below it).
func (p *Policy) clean(protect []string) error {
	fix := func(list []string, what string) ([]string, error) {
		out := make([]string, 0, len(list))
		for _, path := range list {
			abs, err := canonical(path)
			if errors.Is(err, os.ErrNotExist) {
				continue
			}
			if err != nil {
				return nil, err
			}
			for _, pr := range protect {
				if within(pr, abs) {
					return nil, fmt.Errorf("sandbox: %s rule %s would expose %s (fn's data directory) to functions; move the data directory out of it", what, abs, pr)
				}
			}
			out = append(out, abs)
		}
		return outermost(out), nil
	}
	var err error
	if p.Read, err = fix(p.Read, "read"); err != nil {
		return err
	}
	if p.Write, err = fix(p.Write, "write"); err != nil {
		return err
	}
	p.Devices, err = fix(p.Devices, "device")
	return err
}

// outermost drops the paths that lie within another of the list (and duplicates): Node's
// permission model aborts on some overlapping grants.
func outermost(paths []string) []string {
	sort.Strings(paths)
	out := paths[:0]
	for _, p := range paths {
		if len(out) > 0 && within(p, out[len(out)-1]) {
			continue
		}
		out = append(out, p)
	}
	return out
}

// within reports whether path is dir or below it.
func within(path, dir string) bool {
	rel, err := filepath.Rel(dir, path)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator))
}

func canonical(path string) (string, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return "", err
	}
	if strings.HasPrefix(abs, "/proc/self") || strings.HasPrefix(abs, "/proc/thread-self") {
		// resolved by the trampoline itself, whose pid node inherits
		if _, err := os.Stat(abs); err != nil {
			return "", err
		}
		return abs, nil
	}
	return filepath.EvalSymlinks(abs)
}

// nodePermissionFlags are Node's permission-model flags for a policy (one flag per path, as
// Node 20.20 wants; a directory grants everything below it).
func nodePermissionFlags(p Policy) []string {
	flags := []string{"--experimental-permission", "--allow-child-process", "--allow-worker",
		"--disable-warning=ExperimentalWarning", "--disable-warning=SecurityWarning"}
	for _, path := range append(append(append([]string{}, p.Read...), p.Write...), p.Devices...) {
		flags = append(flags, "--allow-fs-read="+path)
	}
	for _, path := range append(append([]string{}, p.Write...), p.Devices...) {
		flags = append(flags, "--allow-fs-write="+path)
	}
	return flags
}

// IsTrampoline reports whether fn was started as the trampoline.
func IsTrampoline(args []string) bool { return len(args) > 1 && args[1] == Arg }

// Exec is the trampoline: it applies the policy in args[2] to this process and executes
// args[3:] in its place (keeping the pid, the environment and the open files). It returns only
// on failure. When Landlock is unavailable it executes the program unconfined, since Status
// already told the operator so at start.
func Exec(args []string) error {
	if len(args) < 4 {
		return errors.New("sandbox: usage: fn " + Arg + " <policy> <program> [args…]")
	}
	var p Policy
	if err := json.Unmarshal([]byte(args[2]), &p); err != nil {
		return fmt.Errorf("sandbox: bad policy: %w", err)
	}
	// what functions create is their owner's only, as the rest of the data directory
	setUmask(0o077)
	if st := Check(); st.Enforced {
		if err := restrict(p); err != nil {
			return fmt.Errorf("sandbox: applying the Landlock ruleset: %w", err)
		}
	}
	return execve(args[3], args[3:], os.Environ())
}
