package bundler

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/fnhq/fn/project"
)

// In dev, a lean project's own JavaScript runs in place from the project directory instead of
// from a bundle in .fn/dev: `__dirname`, `__filename`, `require.resolve`, `fs` reads of project
// files and `require(path.join(__dirname, 'functions', f))` then behave exactly as under
// `node server.js`. The "bundle" is a small loader that drops the project's modules from
// require's cache (so a reload re-evaluates them) and requires the entry by its absolute path.
// TypeScript entries still go through esbuild.

// maxTreeFiles bounds how many project files a dev build hashes to notice a change.
const maxTreeFiles = 20000

// runsInPlace reports whether an entry of this build runs from the project directory.
func (b *Bundler) runsInPlace(e project.Entry) bool {
	if b.opts.Mode != Dev || b.opts.Dialect != project.Lean {
		return false
	}
	switch strings.ToLower(filepath.Ext(e.Path)) {
	case ".js", ".cjs":
		return true
	}
	return false
}

// skipTreeDir is a directory whose files are not the project's own code.
func skipTreeDir(name string) bool {
	return name == "node_modules" || name == project.StateDir || strings.HasPrefix(name, ".")
}

// treeFile is a file a change of which may change what cloud code does.
func treeFile(name string) bool {
	switch strings.ToLower(filepath.Ext(name)) {
	case ".js", ".cjs", ".mjs", ".json", ".node":
		return true
	}
	return false
}

// InProjectTree reports whether path is one of the project's own files that an in-place build
// runs (not node_modules, .fn or a dot directory).
func InProjectTree(projectDir, path string) bool {
	rel, err := filepath.Rel(projectDir, path)
	if err != nil || rel == "." || strings.HasPrefix(rel, "..") {
		return false
	}
	parts := strings.Split(filepath.ToSlash(rel), "/")
	for _, p := range parts[:len(parts)-1] {
		if skipTreeDir(p) {
			return false
		}
	}
	return treeFile(parts[len(parts)-1])
}

// hashTree hashes the project's own code files (path and content), so that a rebuild notices
// any change an in-place run would see; it returns the files it read.
func hashTree(root string) (string, map[string]bool, error) {
	h := sha256.New()
	files := map[string]bool{}
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			if path == root {
				return err
			}
			return nil // a file removed during the walk
		}
		if d.IsDir() {
			if path != root && skipTreeDir(d.Name()) {
				return filepath.SkipDir
			}
			return nil
		}
		if !d.Type().IsRegular() || !treeFile(d.Name()) {
			return nil
		}
		if len(files) >= maxTreeFiles {
			return fmt.Errorf("the project has more than %d code files outside node_modules", maxTreeFiles)
		}
		f, err := os.Open(path)
		if err != nil {
			return nil
		}
		defer f.Close()
		rel, _ := filepath.Rel(root, path)
		fmt.Fprintf(h, "%s\x00", filepath.ToSlash(rel))
		io.Copy(h, f)
		h.Write([]byte{0})
		files[path] = true
		return nil
	})
	if err != nil {
		return "", nil, err
	}
	return hex.EncodeToString(h.Sum(nil)), files, nil
}

// inPlaceLoader is the dev "bundle" of an entry that runs in place.
func (b *Bundler) inPlaceLoader(e project.Entry) (map[string][]byte, map[string]bool, error) {
	sum, files, err := hashTree(b.opts.ProjectDir)
	if err != nil {
		return nil, nil, err
	}
	root := filepath.Clean(b.opts.ProjectDir)
	js := "// fn dev: runs " + filepath.ToSlash(e.Path) + " in place (project tree " + sum[:16] + ")\n" +
		"'use strict';\n" +
		"const path = require('path');\n" +
		"const root = " + jsString(root+string(filepath.Separator)) + ";\n" +
		"for (const k of Object.keys(require.cache)) {\n" +
		"  if (k.startsWith(root) && !k.slice(root.length).split(path.sep).includes('node_modules')) delete require.cache[k];\n" +
		"}\n" +
		"const AV = require(require.resolve('leanengine', { paths: [root] }));\n" +
		"require(" + jsString(e.Path) + ");\n" +
		"module.exports = AV;\n"
	name := e.Name + ".js"
	return map[string][]byte{
		name:          []byte(js),
		name + ".map": []byte(`{"version":3,"sources":[],"names":[],"mappings":""}`),
	}, files, nil
}

// TreeDir is where a version deployed as a project tree keeps the tree, beside its bundle.
const TreeDir = "app"

// TreeLoader is the bundle of a lean project deployed as its tree: it loads the entry in place
// from TreeDir next to itself, so that __dirname and the project's files are the project's
// there too.
func TreeLoader(entryRel string) (js, sourceMap []byte) {
	js = []byte("// fn: runs the deployed project tree in place\n" +
		"'use strict';\n" +
		"const path = require('path');\n" +
		"const root = path.join(__dirname, " + jsString(TreeDir) + ");\n" +
		"const AV = require(require.resolve('leanengine', { paths: [root] }));\n" +
		"require(path.join(root, " + jsString(filepath.ToSlash(entryRel)) + "));\n" +
		"module.exports = AV;\n")
	return js, []byte(`{"version":3,"sources":[],"names":[],"mappings":""}`)
}
