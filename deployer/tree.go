package deployer

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/fnhq/fn/api"
	"github.com/fnhq/fn/artifacts"
	"github.com/fnhq/fn/project"
)

// A LeanEngine project without fn.yaml deploys as its tree, not as a bundle: bundling would
// change what __dirname, fs reads of project files and dynamic requires of siblings see, and an
// app process (server.js) runs the project's own files. The tree is every file of the project
// (node_modules included, since fn serve installs nothing) but .git, .fn, symbolic links and what
// .leanignore names — except node_modules, which the platform reinstalls and fn serve cannot.

// Bounds of a deployed tree.
const (
	MaxTreeFiles = 50000
	MaxTreeBytes = 1 << 30
)

// treeFile is one file to ship: its manifest entry and where it is on disk.
type treeFile struct {
	api.File
	abs string
}

// leanIgnore reads .leanignore: one pattern a line, '#' comments, a trailing '/' for directories,
// filepath.Match globs matched against the path and its base name.
func leanIgnore(dir string) []string {
	f, err := os.Open(filepath.Join(dir, ".leanignore"))
	if err != nil {
		return nil
	}
	defer f.Close()
	var pats []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		line = strings.TrimPrefix(line, "/")
		if strings.TrimSuffix(line, "/") == "node_modules" {
			continue
		}
		pats = append(pats, line)
	}
	return pats
}

func ignored(rel string, dir bool, pats []string) bool {
	base := filepath.Base(rel)
	for _, p := range pats {
		dirOnly := strings.HasSuffix(p, "/")
		p = strings.TrimSuffix(p, "/")
		if dirOnly && !dir {
			continue
		}
		if ok, _ := filepath.Match(p, rel); ok {
			return true
		}
		if ok, _ := filepath.Match(p, base); ok && !strings.Contains(p, "/") {
			return true
		}
	}
	return false
}

// projectTree lists the files to ship with their hashes. Symbolic links are followed (pnpm's
// node_modules, npm link) as the files they point to, each real directory once.
func projectTree(p *project.Project) ([]treeFile, error) {
	pats := leanIgnore(p.Dir)
	var files []treeFile
	var total int64
	visited := map[string]bool{}
	var walk func(abs, rel string) error
	walk = func(abs, rel string) error {
		real, err := filepath.EvalSymlinks(abs)
		if err != nil {
			return nil // a dangling link
		}
		if visited[real] {
			return nil
		}
		visited[real] = true
		items, err := os.ReadDir(abs)
		if err != nil {
			return err
		}
		for _, it := range items {
			path := filepath.Join(abs, it.Name())
			r := it.Name()
			if rel != "" {
				r = rel + "/" + it.Name()
			}
			info, err := os.Stat(path) // follows links
			if err != nil {
				continue
			}
			if info.IsDir() {
				if r == ".git" || r == project.StateDir || (rel == "node_modules" && it.Name() == ".bin") || ignored(r, true, pats) {
					continue
				}
				if err := walk(path, r); err != nil {
					return err
				}
				continue
			}
			if !info.Mode().IsRegular() || ignored(r, false, pats) {
				continue
			}
			if len(files) >= MaxTreeFiles {
				return fmt.Errorf("the project has more than %d files to deploy (list what the app does not need in .leanignore)", MaxTreeFiles)
			}
			total += info.Size()
			if total > MaxTreeBytes {
				return fmt.Errorf("the project is over %d MB (list what the app does not need in .leanignore)", MaxTreeBytes>>20)
			}
			h, err := artifacts.HashFile(path)
			if err != nil {
				return err
			}
			files = append(files, treeFile{File: api.File{Path: r, Hash: h, Size: info.Size(), Exec: info.Mode()&0o111 != 0}, abs: path})
		}
		return nil
	}
	return files, walk(p.Dir, "")
}
