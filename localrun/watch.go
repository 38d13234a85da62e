package localrun

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/fsnotify/fsnotify"

	"github.com/fnhq/fn/bundler"
	"github.com/fnhq/fn/project"
)

// fullReloadFiles change what the workers run with (configuration, dependencies): they take the
// slow path, a fresh build and fresh workers.
var fullReloadFiles = map[string]bool{
	project.FileName: true, project.LocalEnvFile: true, project.WXProjectFile: true, project.WXFunctionConfigFile: true, "package.json": true, "package-lock.json": true,
	"yarn.lock": true, "pnpm-lock.yaml": true, ".package-lock.json": true,
	"leanengine.json": true, "leanengine.yaml": true,
}

// dependencyFiles are the full-reload files that only say which packages are installed: when
// nothing else changed, only the bundles that load packages need fresh workers.
var dependencyFiles = map[string]bool{"package.json": true, "package-lock.json": true, "yarn.lock": true, "pnpm-lock.yaml": true, ".package-lock.json": true}

var sourceExts = map[string]bool{".js": true, ".mjs": true, ".cjs": true, ".ts": true, ".mts": true, ".cts": true,
	".jsx": true, ".tsx": true, ".json": true}

// skipDir are directories never watched.
func skipDir(name string) bool {
	return name == "node_modules" || name == project.StateDir || name == ".git" || (strings.HasPrefix(name, ".") && name != ".")
}

// relevant reports whether a changed path can affect what runs.
func relevant(path string) bool {
	base := filepath.Base(path)
	if fullReloadFiles[base] {
		return true
	}
	if strings.HasPrefix(base, ".") || strings.HasSuffix(base, "~") || strings.HasSuffix(base, ".swp") || base == "4913" {
		return false // editor temporaries (vim, emacs)
	}
	return sourceExts[filepath.Ext(base)]
}

// newWatcher watches the project tree (before fn dev says it is ready, so no save is missed).
func (d *dev) newWatcher() (*fsnotify.Watcher, error) {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return nil, fmt.Errorf("file watcher: %w", err)
	}
	if err := addTree(w, d.p.Dir); err != nil {
		w.Close()
		return nil, err
	}
	// npm install rewrites node_modules/.package-lock.json: dependencies changed.
	w.Add(filepath.Join(d.p.Dir, "node_modules"))
	return w, nil
}

// watch runs the file watcher until ctx ends: debounced bursts of changes become reloads.
func (d *dev) watch(ctx context.Context, w *fsnotify.Watcher) error {
	defer w.Close()

	// watched directories: removing or renaming one (a function) is a change too
	watched := map[string]bool{}
	for _, p := range w.WatchList() {
		watched[p] = true
	}
	var timer *time.Timer
	var fire <-chan time.Time
	changed := map[string]bool{}
	var first time.Time
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev, ok := <-w.Events:
			if !ok {
				return nil
			}
			if filepath.Dir(ev.Name) == filepath.Join(d.p.Dir, "node_modules") && filepath.Base(ev.Name) != ".package-lock.json" {
				continue
			}
			if ev.Has(fsnotify.Create) {
				if st, err := os.Stat(ev.Name); err == nil && st.IsDir() {
					if skipDir(filepath.Base(ev.Name)) {
						continue
					}
					// a new directory (a new function, or an editor's atomic save): watch it and
					// take the files already in it as changed
					addTree(w, ev.Name)
					for _, p := range w.WatchList() {
						watched[p] = true
					}
					filepath.WalkDir(ev.Name, func(p string, e os.DirEntry, err error) error {
						if err == nil && !e.IsDir() && relevant(p) {
							changed[p] = true
						}
						return nil
					})
					changed[ev.Name] = true
				}
			}
			if !relevant(ev.Name) && !changed[ev.Name] && !watched[ev.Name] {
				continue
			}
			changed[ev.Name] = true
			if first.IsZero() {
				first = time.Now()
				d.holdRequests()
			}
			if timer == nil {
				timer = time.NewTimer(d.o.Debounce)
			} else {
				timer.Reset(d.o.Debounce)
			}
			fire = timer.C
		case <-fire:
			fire = nil
			paths := sortedKeys(changed)
			changed = map[string]bool{}
			detect := time.Since(first)
			first = time.Time{}
			d.reload(ctx, paths, detect)
			d.releaseRequests()
		case err, ok := <-w.Errors:
			if !ok {
				return nil
			}
			d.o.Events.ReloadFailed(fmt.Errorf("file watcher: %w", err))
		}
	}
}

func addTree(w *fsnotify.Watcher, root string) error {
	return filepath.WalkDir(root, func(p string, e os.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		if !e.IsDir() {
			return nil
		}
		if p != root && skipDir(e.Name()) {
			return filepath.SkipDir
		}
		if err := w.Add(p); err != nil {
			return fmt.Errorf("watching %s: %w", p, err)
		}
		return nil
	})
}

// reload rebuilds what the changed files affect and swaps it into the engine. Any failure keeps
// the last good version serving and is reported.
func (d *dev) reload(ctx context.Context, paths []string, detect time.Duration) {
	info := ReloadInfo{DetectMs: ms(detect)}
	depsOnly := true
	for _, p := range paths {
		rel, err := filepath.Rel(d.p.Dir, p)
		if err != nil {
			rel = p
		}
		info.Files = append(info.Files, rel)
		if base := filepath.Base(p); fullReloadFiles[base] {
			info.Full = true
			depsOnly = depsOnly && dependencyFiles[base]
		}
	}
	if d.p.App != nil || (info.Full && d.p.Detected) {
		d.reloadDetected(ctx, info)
		return
	}
	var m *bundler.Manifest
	buildStart := time.Now()
	if info.Full {
		p2, err := project.LoadFile(d.p.File)
		if err != nil {
			d.o.Events.ReloadFailed(err)
			return
		}
		entries, err := p2.Entries()
		if err != nil {
			d.o.Events.ReloadFailed(err)
			return
		}
		b2, err := bundler.New(bundler.Options{ProjectDir: p2.Dir, OutDir: p2.StatePath("dev"), Dialect: p2.Dialect, Target: p2.Runtime,
			Mode: bundler.Dev, External: p2.Build.External}, entries)
		if err != nil {
			d.o.Events.ReloadFailed(err)
			return
		}
		if m, _, err = b2.Build(); err != nil {
			// as at startup: serve the functions that build, report the others
			d.o.Events.ReloadFailed(err)
			m = nil
			for _, name := range b2.Names() {
				if good, _, err := b2.Rebuild([]string{name}); err == nil {
					m = good
				}
			}
			if m == nil {
				b2.Dispose()
				return
			}
		}
		d.mu.Lock()
		old := d.b
		d.p, d.b = p2, b2
		d.mu.Unlock()
		old.Dispose()
	} else {
		entries, err := d.p.Entries()
		if err != nil {
			d.o.Events.ReloadFailed(err)
			return
		}
		if err := d.b.SetEntries(entries); err != nil {
			d.o.Events.ReloadFailed(err)
			return
		}
		affected := d.b.Affected(paths)
		if len(affected) == 0 {
			return // nothing that runs uses these files
		}
		var changed []string
		m, changed, err = d.b.Rebuild(affected)
		if err != nil && len(affected) > 1 {
			// one function that does not build (a sibling's missing ./config) must not hold
			// back the others: build them one by one and serve those that build
			d.o.Events.ReloadFailed(err)
			m, changed, err = d.rebuildEach(affected)
		}
		if err != nil {
			d.o.Events.ReloadFailed(err)
			return
		}
		if len(changed) == 0 && len(entries) == len(d.env.Functions()) {
			return // the output is the same (a comment, whitespace)
		}
	}
	info.BuildMs = ms(time.Since(buildStart))
	loadStart := time.Now()
	rel := d.release(m, info.Full)
	if info.Full && depsOnly {
		rel.FreshOnly = d.loadingPackages(m)
	}
	rep, err := d.env.Activate(ctx, rel)
	err = unwrapLoad(err)
	info.LoadMs = ms(time.Since(loadStart))
	if rep != nil {
		info.Bundles = append(rep.Loaded, rep.Removed...)
		info.Fast = rep.Fast && len(rep.Loaded) > 0
	}
	if err != nil {
		d.o.Events.ReloadFailed(err)
		if rep == nil || len(rep.Loaded) == 0 {
			return
		}
	}
	d.o.Events.Reload(info)
}

// loadingPackages accepts the bundles of m that may load something from node_modules (or whose
// file cannot be read): after a dependency change only those need fresh workers.
func (d *dev) loadingPackages(m *bundler.Manifest) func(string) bool {
	uses := map[string]bool{}
	for _, a := range m.Bundles {
		code, err := os.ReadFile(d.p.StatePath("dev", a.File))
		uses[a.Name] = err != nil || bundler.UsesPackages(code)
	}
	return func(name string) bool {
		u, known := uses[name]
		return u || !known
	}
}

// reloadDetected reloads a LeanEngine project run without fn.yaml. In app mode any change of
// its code restarts the app process: a new process starts on a new port while the old one
// serves, requests wait at the reload gate meanwhile, and the old one stops once the new one
// answers. A project that changed between app mode and pure cloud code, or whose package.json
// changed, is read again.
func (d *dev) reloadDetected(ctx context.Context, info ReloadInfo) {
	start := time.Now()
	p := d.p
	if info.Full {
		p2, err := project.DetectLeanEngine(d.p.Dir, d.o.Getenv)
		if err != nil {
			d.o.Events.ReloadFailed(err)
			return
		}
		p = p2
	}
	if p.App == nil {
		// now pure cloud code: the shared workers, from a fresh bundler
		d.mu.Lock()
		old := d.b
		d.p, d.b = p, nil
		d.mu.Unlock()
		if old != nil {
			old.Dispose()
		}
		m, err := d.build()
		if err != nil {
			d.o.Events.ReloadFailed(err)
			return
		}
		info.BuildMs = ms(time.Since(start))
		loadStart := time.Now()
		rep, err := d.env.Activate(ctx, d.release(m, true))
		info.LoadMs = ms(time.Since(loadStart))
		if rep != nil {
			info.Bundles = rep.Loaded
		}
		if err != nil {
			d.o.Events.ReloadFailed(unwrapLoad(err))
			return
		}
		d.o.Events.Reload(info)
		return
	}
	d.mu.Lock()
	d.p = p
	d.mu.Unlock()
	_, err := d.env.Activate(ctx, AppRelease(p, true))
	info.LoadMs = ms(time.Since(start))
	info.Full, info.Bundles = true, []string{"app"}
	if err != nil {
		d.o.Events.ReloadFailed(unwrapLoad(err))
		return
	}
	d.o.Events.Reload(info)
}

// rebuildEach rebuilds the named bundles one at a time; it fails only when none builds.
func (d *dev) rebuildEach(names []string) (*bundler.Manifest, []string, error) {
	var m *bundler.Manifest
	var changed []string
	var firstErr error
	for _, name := range names {
		m2, ch, err := d.b.Rebuild([]string{name})
		if err != nil {
			if firstErr == nil {
				firstErr = err
			}
			continue
		}
		m, changed = m2, append(changed, ch...)
	}
	if m == nil {
		return nil, nil, firstErr
	}
	return m, changed, nil
}
