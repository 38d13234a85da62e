package sandbox

import (
	"os"
	"syscall"

	"github.com/landlock-lsm/go-landlock/landlock"
	llsys "github.com/landlock-lsm/go-landlock/landlock/syscall"
)

func abiVersion() (int, error) { return llsys.LandlockGetABIVersion() }

// restrict confines every thread of this process (and what it executes) to the policy: file
// system access as the policy says, no signals to and no abstract sockets of processes outside
// the sandbox. The network is not restricted (functions call the runtime and the internet).
func restrict(p Policy) error {
	rules := []landlock.Rule{}
	if len(p.Read) > 0 {
		// a rule on a file may only carry file rights: split files from directories
		var dirs, files []string
		for _, path := range p.Read {
			if fi, err := os.Stat(path); err == nil && !fi.IsDir() {
				files = append(files, path)
			} else {
				dirs = append(dirs, path)
			}
		}
		if len(dirs) > 0 {
			rules = append(rules, landlock.RODirs(dirs...).IgnoreIfMissing())
		}
		if len(files) > 0 {
			rules = append(rules, landlock.ROFiles(files...).IgnoreIfMissing())
		}
	}
	if len(p.Write) > 0 {
		rules = append(rules, landlock.RWDirs(p.Write...).WithRefer().IgnoreIfMissing())
	}
	if len(p.Devices) > 0 {
		rules = append(rules, landlock.RWFiles(p.Devices...).WithIoctlDev().IgnoreIfMissing())
	}
	cfg := landlock.Config{HandledAccessFS: landlock.V11.HandledAccessFS, Scoped: landlock.V11.Scoped}
	return cfg.BestEffort().Restrict(rules...)
}

func execve(path string, argv, env []string) error { return syscall.Exec(path, argv, env) }

func setUmask(mask int) { syscall.Umask(mask) }
