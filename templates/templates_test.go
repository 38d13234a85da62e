package templates

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fnhq/fn/project"
)

func TestEveryTemplateScaffoldsAValidProject(t *testing.T) {
	for _, d := range Dialects {
		for _, lang := range Languages {
			t.Run(d+"-"+lang, func(t *testing.T) {
				dir := filepath.Join(t.TempDir(), "app")
				res, err := Scaffold(dir, Options{Dialect: project.Dialect(d), Lang: lang, Name: "app"})
				if err != nil {
					t.Fatal(err)
				}
				for _, want := range []string{"fn.yaml", "package.json", ".gitignore", ".env.local.example", "README.md"} {
					if !contains(res.Written, want) {
						t.Errorf("%s not written: %v", want, res.Written)
					}
				}
				p, err := project.Load(dir)
				if err != nil {
					t.Fatalf("scaffolded fn.yaml does not load: %v", err)
				}
				entries, err := p.Entries()
				if err != nil {
					t.Fatal(err)
				}
				for _, e := range entries {
					if !strings.HasSuffix(e.Path, "."+lang) {
						t.Errorf("entry %s is not a .%s file", e.Path, lang)
					}
				}
				if d == "wx" && len(entries) != 3 {
					t.Errorf("wx template should have login, sum and greet, got %v", entries)
				}
				gi, _ := os.ReadFile(filepath.Join(dir, ".gitignore"))
				if !strings.Contains(string(gi), ".env.local") || !strings.Contains(string(gi), ".fn/") {
					t.Errorf(".gitignore must keep .env.local and .fn out of git:\n%s", gi)
				}
			})
		}
	}
}

func TestScaffoldRefusesNonEmptyDirAndWritesNothing(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("mine"), 0o644)
	_, err := Scaffold(dir, Options{Dialect: project.WX, Lang: "js", Name: "app"})
	if !errors.Is(err, ErrNotEmpty) {
		t.Fatalf("want ErrNotEmpty, got %v", err)
	}
	if items, _ := os.ReadDir(dir); len(items) != 1 {
		t.Fatalf("refused scaffold wrote files: %v", items)
	}
}

func TestForceKeepsExistingFiles(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "package.json"), []byte(`{"name":"mine"}`), 0o644)
	res, err := Scaffold(dir, Options{Dialect: project.WX, Lang: "js", Name: "app", Force: true})
	if err != nil {
		t.Fatal(err)
	}
	if !contains(res.Skipped, "package.json") {
		t.Fatalf("package.json should be reported as kept: %+v", res)
	}
	b, _ := os.ReadFile(filepath.Join(dir, "package.json"))
	if string(b) != `{"name":"mine"}` {
		t.Fatal("--force overwrote a user's file")
	}
}

func TestValidateRejectsBadOptions(t *testing.T) {
	cases := []struct {
		o    Options
		want string
	}{
		{Options{Dialect: "aws", Lang: "js", Name: "a"}, `unknown template "aws"`},
		{Options{Dialect: "wx", Lang: "py", Name: "a"}, `unknown language "py"`},
		{Options{Dialect: "wx", Lang: "js", Name: "Bad Name"}, `invalid project name "Bad Name"`},
	}
	for _, c := range cases {
		if err := c.o.Validate(); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: got %v, want %q", c.o, err, c.want)
		}
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func TestTypeScriptTemplatesCarryTheCompilerAndNodeTypes(t *testing.T) {
	for _, d := range Dialects {
		for _, lang := range Languages {
			t.Run(d+"-"+lang, func(t *testing.T) {
				dir := filepath.Join(t.TempDir(), "app")
				if _, err := Scaffold(dir, Options{Dialect: project.Dialect(d), Lang: lang, Name: "app"}); err != nil {
					t.Fatal(err)
				}
				b, err := os.ReadFile(filepath.Join(dir, "package.json"))
				if err != nil {
					t.Fatal(err)
				}
				var pkg struct {
					Scripts         map[string]string `json:"scripts"`
					Dependencies    map[string]string `json:"dependencies"`
					DevDependencies map[string]string `json:"devDependencies"`
				}
				if err := json.Unmarshal(b, &pkg); err != nil {
					t.Fatalf("package.json is not JSON: %v\n%s", err, b)
				}
				if len(pkg.Dependencies) == 0 {
					t.Fatalf("no dependencies: %s", b)
				}
				if lang == "js" {
					if len(pkg.DevDependencies) != 0 || pkg.Scripts["typecheck"] != "" {
						t.Fatalf("a JavaScript template needs no compiler: %s", b)
					}
					return
				}
				if pkg.DevDependencies["typescript"] == "" || pkg.DevDependencies["@types/node"] == "" || pkg.Scripts["typecheck"] != "fn build --typecheck" {
					t.Fatalf("a TypeScript template lacks typescript, @types/node or the typecheck script: %s", b)
				}
			})
		}
	}
}
