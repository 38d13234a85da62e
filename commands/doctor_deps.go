package commands

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"

	"github.com/fnhq/fn/project"
)

// maxPackageJSON bounds the package.json files fn doctor reads.
const maxPackageJSON = 1 << 20

// sdkImport finds an SDK named in a require() or import of the source.
var sdkImport = regexp.MustCompile(`(?:require\s*\(\s*|from\s+|import\s*\(\s*)['"](wx-server-sdk|leanengine|leancloud-storage)['"]`)

// dependencyChecks says, for the project and each function folder with a package.json, whether
// its dependencies are installed, and for each entry whether the SDK it imports resolves the way
// Node would find it (node_modules here or in a folder above).
func dependencyChecks(p *project.Project) []check {
	entries, err := p.Entries()
	if err != nil {
		return nil // the project check reports it
	}
	dirs := []string{p.Dir}
	for _, e := range entries {
		if d := filepath.Dir(e.Path); !slices.Contains(dirs, d) {
			dirs = append(dirs, d)
		}
	}
	var checks []check
	var reported []string // missing packages already named, so that an entry does not repeat them
	fine := 0
	for _, dir := range dirs {
		missing, declared, err := missingDependencies(dir)
		rel := relDir(p.Dir, dir)
		switch {
		case err != nil:
			checks = append(checks, check{Name: "deps", Status: "fail", Detail: err.Error(), Fix: "correct " + filepath.Join(rel, "package.json")})
		case len(missing) > 0:
			verb := "is"
			if len(missing) > 1 {
				verb = "are"
			}
			reported = append(reported, missing...)
			checks = append(checks, check{Name: "deps", Status: "fail",
				Detail: fmt.Sprintf("%s: %s %s in package.json but not installed", rel, strings.Join(missing, ", "), verb),
				Fix:    installFix(rel)})
		case declared:
			fine++
		}
	}
	for _, e := range entries {
		src, err := os.ReadFile(e.Path)
		if err != nil {
			continue
		}
		var sdks []string
		for _, m := range sdkImport.FindAllSubmatch(src, -1) {
			if name := string(m[1]); !slices.Contains(sdks, name) {
				sdks = append(sdks, name)
			}
		}
		for _, sdk := range sdks {
			if resolves(filepath.Dir(e.Path), sdk) || slices.Contains(reported, sdk) {
				continue
			}
			rel, _ := filepath.Rel(p.Dir, e.Path)
			checks = append(checks, check{Name: "deps", Status: "fail",
				Detail: fmt.Sprintf("%s needs %s, which Node cannot find from %s", rel, sdk, relDir(p.Dir, filepath.Dir(e.Path))),
				Fix:    addFix(relDir(p.Dir, filepath.Dir(e.Path)), sdk)})
		}
	}
	if len(checks) == 0 {
		detail := "no package.json declares dependencies"
		if fine > 0 {
			detail = fmt.Sprintf("installed (%d package.json checked)", fine)
		}
		checks = append(checks, check{Name: "deps", Status: "ok", Detail: detail})
	}
	return checks
}

// missingDependencies lists the dependencies of dir/package.json that do not resolve from dir;
// declared is whether the file lists any.
func missingDependencies(dir string) (missing []string, declared bool, err error) {
	path := filepath.Join(dir, "package.json")
	st, err := os.Stat(path)
	if os.IsNotExist(err) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	if st.Size() > maxPackageJSON {
		return nil, false, fmt.Errorf("%s is larger than 1 MB", path)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, false, err
	}
	var pkg struct {
		Dependencies map[string]string `json:"dependencies"`
	}
	if err := json.Unmarshal(b, &pkg); err != nil {
		return nil, false, fmt.Errorf("%s is not valid JSON: %v", path, err)
	}
	for name := range pkg.Dependencies {
		if !resolves(dir, name) {
			missing = append(missing, name)
		}
	}
	sort.Strings(missing)
	return missing, len(pkg.Dependencies) > 0, nil
}

// resolves reports whether Node would find package name from dir: dir/node_modules/name, or in
// node_modules of a folder above.
func resolves(dir, name string) bool {
	if strings.Contains(name, "..") {
		return false
	}
	for d := dir; ; {
		if st, err := os.Stat(filepath.Join(d, "node_modules", filepath.FromSlash(name), "package.json")); err == nil && !st.IsDir() {
			return true
		}
		parent := filepath.Dir(d)
		if parent == d {
			return false
		}
		d = parent
	}
}

func relDir(root, dir string) string {
	rel, err := filepath.Rel(root, dir)
	if err != nil || rel == "." {
		return "the project"
	}
	return filepath.ToSlash(rel)
}

func installFix(rel string) string {
	if rel == "the project" {
		return "npm install"
	}
	return "cd " + rel + " && npm install"
}

func addFix(rel, pkg string) string {
	if rel == "the project" {
		return "npm install " + pkg
	}
	return "npm install " + pkg + " (in the project, or in " + rel + ")"
}
