package project

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/subosito/gotenv"
)

// Entry is one bundle to build: a wx function, or a lean project's cloud code.
type Entry struct {
	Name string // function name (wx) or "cloud" (lean)
	Path string // absolute path of the entry source file
}

// entryCandidates are the files tried, in order, inside a wx function directory.
var entryCandidates = []string{"index.ts", "index.js", "index.mjs", "index.cjs"}

// LeanBundleName is the name of the single bundle of a lean project.
const LeanBundleName = "cloud"

// Entries lists the bundles of the project, sorted by name.
func (p *Project) Entries() ([]Entry, error) {
	if p.Dialect == Lean {
		path := filepath.Join(p.Dir, p.Entry)
		if _, err := os.Stat(path); err != nil {
			return nil, &ValidationError{File: FileName, Problems: []Problem{{Field: "entry",
				Msg: fmt.Sprintf("the cloud code entry %s does not exist", p.Entry)}}}
		}
		return []Entry{{Name: LeanBundleName, Path: path}}, nil
	}
	dir := filepath.Join(p.Dir, p.FunctionsDir)
	items, err := os.ReadDir(dir)
	if err != nil {
		return nil, &ValidationError{File: FileName, Problems: []Problem{{Field: "functionsDir",
			Msg: fmt.Sprintf("the functions directory %s does not exist", p.FunctionsDir)}}}
	}
	var entries []Entry
	var problems []Problem
	found := map[string]bool{}
	for _, it := range items {
		if !it.IsDir() || strings.HasPrefix(it.Name(), ".") || it.Name() == "node_modules" {
			continue
		}
		fdir := filepath.Join(dir, it.Name())
		path, ok := functionEntry(fdir)
		if !ok {
			if _, configured := p.Functions[it.Name()]; configured {
				problems = append(problems, Problem{Field: "functions." + it.Name(), Msg: fmt.Sprintf(
					"%s has no entry file (expected %s)", filepath.Join(p.FunctionsDir, it.Name()), strings.Join(entryCandidates, ", "))})
			}
			continue
		}
		if err := ValidateFunctionName(it.Name()); err != nil {
			problems = append(problems, Problem{Field: "functionsDir", Msg: fmt.Sprintf("%s: %v", filepath.Join(p.FunctionsDir, it.Name()), err)})
			continue
		}
		found[it.Name()] = true
		entries = append(entries, Entry{Name: it.Name(), Path: path})
	}
	for name := range p.Functions {
		if _, err := os.Stat(filepath.Join(dir, name)); err != nil {
			problems = append(problems, Problem{Field: "functions." + name, Msg: fmt.Sprintf(
				"no function directory %s (expected %s/index.js or index.ts)", filepath.Join(p.FunctionsDir, name), filepath.Join(p.FunctionsDir, name))})
		}
	}
	sort.Slice(problems, func(i, j int) bool { return problems[i].Field < problems[j].Field })
	if len(problems) > 0 {
		return nil, &ValidationError{File: FileName, Problems: problems}
	}
	if len(entries) == 0 {
		return nil, &ValidationError{File: FileName, Problems: []Problem{{Field: "functionsDir",
			Msg: fmt.Sprintf("no functions found in %s (each function is a directory with an index.js or index.ts)", p.FunctionsDir)}}}
	}
	return entries, nil
}

// functionEntry finds the entry of a wx function directory: package.json "main", else index.*.
func functionEntry(dir string) (string, bool) {
	if b, err := os.ReadFile(filepath.Join(dir, "package.json")); err == nil {
		var pkg struct {
			Main string `json:"main"`
		}
		if json.Unmarshal(b, &pkg) == nil && pkg.Main != "" {
			path := filepath.Join(dir, pkg.Main)
			if st, err := os.Stat(path); err == nil && !st.IsDir() {
				return path, true
			}
		}
	}
	for _, c := range entryCandidates {
		path := filepath.Join(dir, c)
		if st, err := os.Stat(path); err == nil && !st.IsDir() {
			return path, true
		}
	}
	return "", false
}

// checkLayout verifies what fn.yaml refers to on disk.
func (p *Project) checkLayout() error {
	var problems []Problem
	for _, t := range p.Timers {
		if p.Dialect == WX {
			if _, ok := functionEntry(filepath.Join(p.Dir, p.FunctionsDir, t.Function)); !ok {
				problems = append(problems, Problem{Field: "timers." + t.Name + ".function", Line: t.Line,
					Msg: fmt.Sprintf("unknown function %q (no %s)", t.Function, filepath.Join(p.FunctionsDir, t.Function))})
			}
		}
	}
	if len(problems) > 0 {
		return &ValidationError{File: FileName, Problems: problems}
	}
	return nil
}

func readLocalEnv(path string) (map[string]string, error) {
	f, err := os.Open(path)
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	env, err := gotenv.StrictParse(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", LocalEnvFile, err)
	}
	return env, nil
}
