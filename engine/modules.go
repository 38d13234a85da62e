package engine

import (
	"os"
	"path/filepath"
	"regexp"
	"sync"
)

var missingModuleRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`Cannot find module '([^']+)'`) })

// withInstallHint adds to a load failure for a missing package which folder needs npm install:
// a wx function folder is its own npm package, and a fresh checkout has no node_modules yet.
func withInstallHint(fe *FunctionError, moduleDir, projectDir string) *FunctionError {
	if fe == nil || moduleDir == "" {
		return fe
	}
	m := missingModuleRE().FindStringSubmatch(fe.Message)
	if m == nil || m[1] == "" || m[1][0] == '.' || filepath.IsAbs(m[1]) {
		return fe
	}
	if _, err := os.Stat(filepath.Join(moduleDir, "package.json")); err != nil {
		return fe
	}
	rel := moduleDir
	if r, err := filepath.Rel(projectDir, moduleDir); err == nil && r != "" && r[0] != '.' {
		rel = filepath.ToSlash(r)
	}
	hint := "run npm install in " + rel
	if _, err := os.Stat(filepath.Join(moduleDir, "node_modules")); err != nil {
		hint = rel + " has a package.json but no node_modules: " + hint
	} else {
		hint = m[1] + " is not installed in " + rel + "/node_modules: add it to " + rel + "/package.json and " + hint
	}
	out := *fe
	out.Message = fe.Message + "\n(" + hint + ")"
	return &out
}
