// Package templates holds the project scaffolds fn init writes: a wx and a lean template, each in
// JavaScript and TypeScript. Every template is a real, runnable project (a test builds and runs each).
package templates

import (
	"bytes"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"text/template"

	"github.com/fnhq/fn/project"
)

//go:embed all:files
var files embed.FS

// Languages are the accepted values of --lang.
var Languages = []string{"js", "ts"}

// Dialects are the accepted values of --template.
var Dialects = []string{string(project.WX), string(project.Lean)}

// Options selects and fills a template.
type Options struct {
	Dialect project.Dialect
	Lang    string
	Name    string
	// Force writes into a non-empty directory. Existing files are never overwritten or deleted.
	Force bool
}

// Result says what Scaffold wrote and what it left alone.
type Result struct {
	Dir     string   `json:"dir"`
	Written []string `json:"written"`
	Skipped []string `json:"skipped,omitempty"` // existing files kept as they were (with Force)
}

// ErrNotEmpty is returned for a non-empty target directory without Force.
var ErrNotEmpty = errors.New("directory is not empty")

// Validate checks the options before anything is written.
func (o Options) Validate() error {
	if o.Dialect != project.WX && o.Dialect != project.Lean {
		return fmt.Errorf("unknown template %q: choose %s", o.Dialect, strings.Join(Dialects, " or "))
	}
	if o.Lang != "js" && o.Lang != "ts" {
		return fmt.Errorf("unknown language %q: choose %s", o.Lang, strings.Join(Languages, " or "))
	}
	return project.ValidateProjectName(o.Name)
}

type data struct {
	Name, EnvID, Entry, Ext string
}

// Scaffold writes the template into dir, creating it if needed.
func Scaffold(dir string, o Options) (*Result, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	if entries, err := os.ReadDir(abs); err == nil && len(entries) > 0 && !o.Force {
		return nil, fmt.Errorf("%s: %w", abs, ErrNotEmpty)
	} else if err != nil && !os.IsNotExist(err) {
		return nil, err
	}
	d := data{Name: o.Name, EnvID: o.Name + "-dev", Entry: "cloud." + o.Lang, Ext: o.Lang}
	planned, err := plan(o, d)
	if err != nil {
		return nil, err
	}
	res := &Result{Dir: abs}
	names := make([]string, 0, len(planned))
	for n := range planned {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, rel := range names {
		target := filepath.Join(abs, filepath.FromSlash(rel))
		if _, err := os.Lstat(target); err == nil {
			res.Skipped = append(res.Skipped, rel)
			continue
		}
		if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
			return res, err
		}
		if err := os.WriteFile(target, planned[rel], 0o644); err != nil {
			return res, err
		}
		res.Written = append(res.Written, rel)
	}
	return res, nil
}

// plan renders the layers shared, <dialect>/shared and <dialect>/<lang> into relative paths.
func plan(o Options, d data) (map[string][]byte, error) {
	out := map[string][]byte{}
	layers := []string{"files/shared", "files/" + string(o.Dialect) + "/shared", "files/" + string(o.Dialect) + "/" + o.Lang}
	for _, layer := range layers {
		err := fs.WalkDir(files, layer, func(p string, e fs.DirEntry, err error) error {
			if err != nil || e.IsDir() {
				return err
			}
			b, err := files.ReadFile(p)
			if err != nil {
				return err
			}
			rel := strings.TrimPrefix(p, layer+"/")
			if strings.HasSuffix(rel, ".tmpl") {
				rel = strings.TrimSuffix(rel, ".tmpl")
				t, err := template.New(rel).Option("missingkey=error").Parse(string(b))
				if err != nil {
					return err
				}
				var buf bytes.Buffer
				if err := t.Execute(&buf, d); err != nil {
					return err
				}
				b = buf.Bytes()
			}
			out[dotted(rel)] = b
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

// dotted restores dot files, which are stored without the dot so that tools leave them alone.
func dotted(rel string) string {
	dir, base := path.Split(rel)
	switch base {
	case "gitignore", "env.local.example":
		return dir + "." + base
	}
	return rel
}
