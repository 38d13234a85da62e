package hosting

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/fnhq/fn/sandbox"
)

// appUIDs hands out one uid per app (Config.AppUIDs) for the runtime's life.
type appUIDs struct {
	mu    sync.Mutex
	byApp map[string]int
	owner map[int]string
}

func (u *appUIDs) pick(r sandbox.UIDRange, appID string) (int, error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if uid, ok := u.byApp[appID]; ok {
		return uid, nil
	}
	if u.byApp == nil {
		u.byApp, u.owner = map[string]int{}, map[int]string{}
	}
	uid, err := r.Pick(appID, func(uid int) bool { _, taken := u.owner[uid]; return taken })
	if err != nil {
		return 0, err
	}
	u.byApp[appID], u.owner[uid] = uid, appID
	return uid, nil
}

// runAs prepares an app environment's directories for the app's own uid and returns the
// worker-start step that switches to it: the data directory and apps/ traversable by all, the
// app's directory, its scratch/ and versions/ traversable by the app's group, the environment's
// scratch directory owned by the uid, each version readable by the group (shared again at every
// worker start, cheap once done), the runner readable by all.
func (rt *Runtime) runAs(appID, runnerDir, scratch string) (func(*exec.Cmd) error, error) {
	uid, err := rt.uids.pick(*rt.cfg.AppUIDs, appID)
	if err != nil {
		return nil, err
	}
	o := sandbox.Owner{UID: uid, GID: uid}
	appDir, versions := rt.appDir(appID), filepath.Join(rt.appDir(appID), "versions")
	for _, d := range []string{runnerDir, scratch, versions} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, err
		}
	}
	if err := sandbox.Traversable(rt.cfg.DataDir, filepath.Dir(appDir)); err != nil {
		return nil, err
	}
	if err := o.Traverse(appDir, filepath.Dir(scratch), versions); err != nil {
		return nil, err
	}
	if err := o.Own(scratch); err != nil {
		return nil, err
	}
	run := o.Hook()
	var public atomic.Bool
	return func(cmd *exec.Cmd) error {
		if !public.Load() {
			// engine.New wrote the runner after this environment was prepared
			if err := sandbox.Public(runnerDir); err != nil {
				return err
			}
			public.Store(true)
		}
		if v := versionRoot(versions, cmd.Dir); v != "" {
			if err := o.Share(v); err != nil {
				return err
			}
		}
		return run(cmd)
	}, nil
}

// shareVersion makes a version directory readable by its app's uid before it is loaded.
func (rt *Runtime) shareVersion(appID, dir string) error {
	if rt.cfg.AppUIDs == nil {
		return nil
	}
	uid, err := rt.uids.pick(*rt.cfg.AppUIDs, appID)
	if err != nil {
		return err
	}
	return sandbox.Owner{UID: uid, GID: uid}.Share(dir)
}

// versionRoot is the version directory (versions/<id>) that dir lies in, or "".
func versionRoot(versions, dir string) string {
	rel, err := filepath.Rel(versions, dir)
	if err != nil || rel == "." || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
		return ""
	}
	first, _, _ := strings.Cut(rel, string(filepath.Separator))
	return filepath.Join(versions, first)
}

// chain runs worker-start steps in order (nil ones skipped).
func chain(steps ...func(*exec.Cmd) error) func(*exec.Cmd) error {
	var live []func(*exec.Cmd) error
	for _, s := range steps {
		if s != nil {
			live = append(live, s)
		}
	}
	if len(live) == 0 {
		return nil
	}
	return func(cmd *exec.Cmd) error {
		for _, s := range live {
			if err := s(cmd); err != nil {
				return err
			}
		}
		return nil
	}
}
