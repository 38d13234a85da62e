package hosting

import (
	"context"
	"errors"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/fnhq/fn/api"
	"github.com/fnhq/fn/appenv"
	"github.com/fnhq/fn/artifacts"
	"github.com/fnhq/fn/bundler"
	"github.com/fnhq/fn/project"
)

// A LeanEngine project deployed as its tree (api.Manifest.Files) is written below the version's
// directory, in bundler.TreeDir, and runs there: its app process (api.Manifest.App) when it has
// its own web server, else its cloud code loaded in place by the version's loader bundle.

// Bounds of a deployed tree (the deployer's, checked again here).
const (
	maxTreeFiles  = 50000
	maxTreeBytes  = 1 << 30
	maxTreePath   = 1024
	maxAppCommand = 32
)

// validTreePath accepts a relative, slash-separated path with no empty, "." or ".." segment,
// no backslash or NUL: it cannot name anything outside the tree.
func validTreePath(p string) bool {
	if p == "" || len(p) > maxTreePath || strings.ContainsAny(p, "\\\x00") || strings.HasPrefix(p, "/") || path.Clean(p) != p {
		return false
	}
	for _, seg := range strings.Split(p, "/") {
		if seg == "" || seg == "." || seg == ".." {
			return false
		}
	}
	return true
}

// validateTree checks a manifest's tree and app command.
func (rt *Runtime) validateTree(ctx context.Context, m api.Manifest, dryRun bool) error {
	if len(m.App) > 0 && len(m.Files) == 0 {
		return badf("an app process needs the project's files (manifest files)")
	}
	if len(m.Files) == 0 {
		return nil
	}
	if m.Dialect != string(project.Lean) {
		return badf("a project tree is for lean apps")
	}
	if len(m.Files) > maxTreeFiles {
		return badf("the project tree has %d files (at most %d)", len(m.Files), maxTreeFiles)
	}
	if len(m.App) > maxAppCommand {
		return badf("the app command has %d words (at most %d)", len(m.App), maxAppCommand)
	}
	for _, w := range m.App {
		if w == "" || len(w) > 4096 || strings.ContainsRune(w, 0) {
			return badf("the app command has an empty, NUL or overlong word")
		}
	}
	seen := map[string]bool{}
	var total int64
	for _, f := range m.Files {
		if !validTreePath(f.Path) {
			return badf("project file %q: a path relative to the project, without . or .. segments", f.Path)
		}
		key := strings.ToLower(f.Path)
		if seen[key] {
			return badf("project file %q is listed twice", f.Path)
		}
		seen[key] = true
		if f.Size < 0 {
			return badf("project file %q: negative size", f.Path)
		}
		total += f.Size
		if total > maxTreeBytes {
			return badf("the project tree is over %d MB", maxTreeBytes>>20)
		}
		if dryRun && artifacts.ValidHash(f.Hash) {
			continue
		}
		ok, err := rt.blobs.Has(ctx, f.Hash)
		if errors.Is(err, artifacts.ErrBadHash) {
			return badf("project file %q: invalid artifact hash %q", f.Path, f.Hash)
		}
		if err != nil {
			return err
		}
		if !ok {
			return badf("project file %q references an artifact the server does not have: [%s] (upload it first)", f.Path, f.Hash)
		}
	}
	// a file and a directory of the same name cannot both exist
	for _, f := range m.Files {
		for d := path.Dir(f.Path); d != "."; d = path.Dir(d) {
			if seen[strings.ToLower(d)] {
				return badf("project file %q is also a directory of %q", d, f.Path)
			}
		}
	}
	return nil
}

// materializeTree writes the tree below dir/TreeDir from the artifact store.
func (rt *Runtime) materializeTree(ctx context.Context, dir string, m api.Manifest) error {
	root := filepath.Join(dir, bundler.TreeDir)
	for _, f := range m.Files {
		if !validTreePath(f.Path) {
			return badf("project file %q: invalid path", f.Path)
		}
		dst := filepath.Join(root, filepath.FromSlash(f.Path))
		if err := os.MkdirAll(filepath.Dir(dst), 0o700); err != nil {
			return err
		}
		if err := rt.copyBlob(ctx, f.Hash, dst); err != nil {
			return err
		}
		if f.Exec {
			os.Chmod(dst, 0o700)
		}
	}
	return nil
}

// treeRelease adapts a release of a version deployed as its tree: its code runs with the tree
// as its working directory, and its app process (if any) there with the bundle's env.
func treeRelease(rel *appenv.Release, dir string) {
	m := rel.Manifest
	if len(m.Files) == 0 {
		return
	}
	// the code's working directory is the project's, as under node server.js
	rel.Dir = filepath.Join(dir, bundler.TreeDir)
	if len(m.App) == 0 {
		return
	}
	var env map[string]string
	for _, b := range m.Bundles {
		env = b.Config.Env
	}
	rel.App = &appenv.AppSpec{Command: append([]string(nil), m.App...), Env: env}
}
