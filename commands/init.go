package commands

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/fnhq/fn/nodejs"
	"github.com/fnhq/fn/project"
	"github.com/fnhq/fn/templates"
)

type initOptions struct {
	f *Factory

	Dir       string
	Template  string
	Lang      string
	Name      string
	Force     bool
	NoInstall bool
	// FromExisting writes only an fn.yaml that points at an existing WeChat DevTools project
	// (also what --force does in a directory with such a project.config.json).
	FromExisting bool

	// NPMInstall runs npm install in a directory; replaced in tests.
	NPMInstall func(ctx context.Context, dir string, out io.Writer) error
}

type initResult struct {
	Dir       string   `json:"dir"`
	Name      string   `json:"name"`
	Template  string   `json:"template"`
	Lang      string   `json:"lang"`
	Written   []string `json:"written"`
	Skipped   []string `json:"skipped"`
	Installed bool     `json:"installed"`
}

func newCmdInit(f *Factory, runF func(context.Context, *initOptions) error) *cobra.Command {
	opts := &initOptions{f: f, NPMInstall: npmInstall}
	cmd := &cobra.Command{
		Use:   "init [DIR]",
		Short: "Create a project from a template (wx or lean, JavaScript or TypeScript)",
		Long: `Create a new project in DIR (default: a directory named after --name).

The wx template has WeChat cloud functions (login, sum, and greet, which calls login through
cloud.callFunction) with saved sample events; the lean template has LeanEngine cloud code with
functions, hooks and a timer. Both are runnable at once: fn init installs their npm packages.

On a terminal, fn init asks for what the flags do not say. Without a terminal it never asks.`,
		Example: `  $ fn init                                   # asks for name, template and language
  $ fn init shop --template wx
  $ fn init api --template lean --lang ts --no-install
  $ fn init . --template wx --name shop --force # add the template to an existing directory
  $ fn init . --from-existing                 # an existing WeChat project (project.config.json)`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 1 {
				opts.Dir = args[0]
			}
			if opts.Template != "" && !slices.Contains(templates.Dialects, opts.Template) {
				return usageErrorf("unknown template %q: choose wx or lean", opts.Template)
			}
			if opts.Lang != "" && !slices.Contains(templates.Languages, opts.Lang) {
				return usageErrorf("unknown language %q: choose js or ts", opts.Lang)
			}
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return runInit(cmd.Context(), opts)
		},
	}
	fl := cmd.Flags()
	fl.StringVarP(&opts.Template, "template", "t", "", "project template: wx (WeChat cloud functions) or lean (LeanEngine)")
	fl.StringVar(&opts.Lang, "lang", "", "language: js or ts (default js)")
	fl.StringVar(&opts.Name, "name", "", "project name (default: the directory's name)")
	fl.BoolVar(&opts.Force, "force", false, "write into a non-empty directory (existing files are kept, never overwritten)")
	fl.BoolVar(&opts.NoInstall, "no-install", false, "do not run npm install")
	fl.BoolVar(&opts.FromExisting, "from-existing", false, "use the WeChat DevTools project in DIR as it is: write only an fn.yaml that points at its cloudfunctionRoot")
	return cmd
}

func runInit(ctx context.Context, opts *initOptions) error {
	ios := opts.f.IO
	prompt := ios.CanPrompt() && !opts.f.Global.JSON

	if opts.FromExisting && opts.Dir == "" {
		opts.Dir = "."
	}
	if opts.Dir == "" && opts.Name == "" {
		if !prompt {
			return usageErrorf("fn init needs a directory (fn init DIR) or --name when it cannot ask")
		}
		name, err := opts.f.ask(ctx, "Project name", "my-functions", func(s string) error { return project.ValidateProjectName(s) })
		if err != nil {
			return err
		}
		opts.Name = name
	}
	if opts.Dir == "" {
		opts.Dir = opts.Name
	}
	abs, err := filepath.Abs(opts.Dir)
	if err != nil {
		return err
	}
	if opts.FromExisting || (opts.Force && opts.Template != string(project.Lean)) {
		wx, ok, err := project.ReadWXProjectConfig(abs)
		if err != nil {
			return err
		}
		if ok {
			return runInitFromExisting(ctx, opts, abs, wx)
		}
		if opts.FromExisting {
			return withHint(fmt.Errorf("%s has no %s with cloudfunctionRoot", displayDir(abs), project.WXProjectFile),
				"--from-existing is for a WeChat DevTools project; to start a new project, leave it out")
		}
	}
	if opts.Name == "" {
		opts.Name = strings.ToLower(filepath.Base(abs))
		if err := project.ValidateProjectName(opts.Name); err != nil {
			return withHint(err, "the name comes from the directory %q; give one with --name", filepath.Base(abs))
		}
	}
	if err := project.ValidateProjectName(opts.Name); err != nil {
		return &UsageError{Err: err}
	}
	if opts.Template == "" {
		if !prompt {
			return usageErrorf("--template is required when fn init cannot ask: wx (WeChat cloud functions) or lean (LeanEngine)")
		}
		if opts.Template, err = opts.f.ask(ctx, "Template (wx = WeChat cloud functions, lean = LeanEngine)", "wx", oneOf(templates.Dialects)); err != nil {
			return err
		}
	}
	if opts.Lang == "" {
		opts.Lang = "js"
		if prompt {
			if opts.Lang, err = opts.f.ask(ctx, "Language (js or ts)", "js", oneOf(templates.Languages)); err != nil {
				return err
			}
		}
	}

	res, err := templates.Scaffold(abs, templates.Options{Dialect: project.Dialect(opts.Template), Lang: opts.Lang, Name: opts.Name, Force: opts.Force})
	if errors.Is(err, templates.ErrNotEmpty) {
		if _, ok, _ := project.ReadWXProjectConfig(abs); ok {
			return withHint(err, "this is a WeChat DevTools project: fn init --from-existing runs its cloud functions as they are")
		}
		return withHint(err, "choose another directory, or add --force to add the template's files (existing files are kept)")
	}
	if err != nil {
		return err
	}
	out := initResult{Dir: res.Dir, Name: opts.Name, Template: opts.Template, Lang: opts.Lang, Written: res.Written, Skipped: res.Skipped}
	if out.Skipped == nil {
		out.Skipped = []string{}
	}
	cs := ios.Colors()
	if !opts.f.Global.JSON {
		fmt.Fprintf(ios.ErrOut, "%s Created %s project %s in %s (%d files)\n", cs.SuccessIcon(), opts.Template, cs.Bold(opts.Name), res.Dir, len(res.Written))
		for _, s := range res.Skipped {
			fmt.Fprintf(ios.ErrOut, "  %s kept your existing %s\n", cs.WarningIcon(), s)
		}
	}

	installHint := fmt.Sprintf("cd %s && npm install", displayDir(res.Dir))
	if !opts.NoInstall {
		if _, err := nodejs.FindNPM(); err != nil {
			fmt.Fprintf(ios.ErrOut, "%s npm not found, so dependencies were not installed. Install Node.js %d or newer (it brings npm), then run: %s\n",
				cs.WarningIcon(), nodejs.MinMajor, installHint)
		} else {
			if !opts.f.Global.JSON {
				fmt.Fprintf(ios.ErrOut, "Installing dependencies with npm (skip with --no-install)…\n")
			}
			if err := opts.NPMInstall(ctx, res.Dir, ios.ErrOut); err != nil {
				if ctx.Err() != nil {
					return ctx.Err()
				}
				return withHint(fmt.Errorf("npm install failed in %s: %w", res.Dir, err), "the project files are in place; fix the problem above and run: %s", installHint)
			}
			out.Installed = true
		}
	}
	if opts.f.Global.JSON {
		return writeJSON(ios.Out, out)
	}
	fmt.Fprintf(ios.ErrOut, "\nNext:\n  cd %s\n", displayDir(res.Dir))
	if !out.Installed {
		fmt.Fprintf(ios.ErrOut, "  npm install\n")
	}
	if opts.Template == string(project.WX) {
		fmt.Fprintf(ios.ErrOut, "  fn invoke login          # run a function as the fake user alice\n")
	} else {
		fmt.Fprintf(ios.ErrOut, "  fn invoke hello          # run a cloud function\n")
	}
	fmt.Fprintf(ios.ErrOut, "  fn build                 # bundle with esbuild\n")
	return nil
}

func displayDir(abs string) string {
	if wd, err := os.Getwd(); err == nil {
		if rel, err := filepath.Rel(wd, abs); err == nil && !strings.HasPrefix(rel, "..") {
			return rel
		}
	}
	return abs
}

func npmInstall(ctx context.Context, dir string, out io.Writer) error {
	npm, err := nodejs.FindNPM()
	if err != nil {
		return err
	}
	cmd := exec.CommandContext(ctx, npm, "install", "--no-audit", "--no-fund")
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = out, out
	return cmd.Run()
}

func oneOf(choices []string) func(string) error {
	return func(s string) error {
		if !slices.Contains(choices, s) {
			return fmt.Errorf("choose one of %s", strings.Join(choices, ", "))
		}
		return nil
	}
}

// runInitFromExisting makes a WeChat DevTools project an fn project without touching its code:
// an fn.yaml that only names the functions directory (fn reads project.config.json and each
// function's config.json itself), .fn/ and .env.local in .gitignore, and npm install in each
// function folder that has a package.json and no node_modules yet.
func runInitFromExisting(ctx context.Context, opts *initOptions, dir string, wx project.WXProjectConfig) error {
	ios := opts.f.IO
	name := opts.Name
	if name == "" {
		name = project.WXProjectName(wx, dir)
	}
	if err := project.ValidateProjectName(name); err != nil {
		return &UsageError{Err: err}
	}
	out := initResult{Dir: dir, Name: name, Template: "existing", Lang: "js", Written: []string{}, Skipped: []string{}}
	yml := filepath.Join(dir, project.FileName)
	if _, err := os.Stat(yml); err == nil {
		out.Skipped = append(out.Skipped, project.FileName)
	} else {
		content := fmt.Sprintf("# fn runs this WeChat DevTools project in place: each folder under %s/ (project.config.json's\n"+
			"# cloudfunctionRoot) is a function and its own npm package; its config.json (timer trigger, openapi\n"+
			"# permissions, timeout, memorySize, envVariables) is read too. Settings here override config.json.\n"+
			"name: %s\ndialect: wx\nfunctionsDir: %q\n", wx.CloudfunctionRoot, name, wx.CloudfunctionRoot)
		if err := os.WriteFile(yml, []byte(content), 0o644); err != nil {
			return err
		}
		out.Written = append(out.Written, project.FileName)
	}
	if added, err := ensureGitignore(dir, project.StateDir+"/", project.LocalEnvFile); err != nil {
		return err
	} else if added {
		out.Written = append(out.Written, ".gitignore")
	}
	p, err := project.LoadFile(yml)
	if err != nil {
		return err
	}
	entries, err := p.Entries()
	if err != nil {
		return err
	}
	cs := ios.Colors()
	if !opts.f.Global.JSON {
		fmt.Fprintf(ios.ErrOut, "%s %s runs the WeChat project in %s in place: %d functions in %s/\n", cs.SuccessIcon(), cs.Bold(name), dir, len(entries), wx.CloudfunctionRoot)
		for _, s := range out.Skipped {
			fmt.Fprintf(ios.ErrOut, "  %s kept your existing %s\n", cs.WarningIcon(), s)
		}
	}
	var missing []string
	for _, e := range entries {
		fdir := filepath.Join(p.Dir, p.FunctionsDir, e.Name)
		if _, err := os.Stat(filepath.Join(fdir, "package.json")); err != nil {
			continue
		}
		if _, err := os.Stat(filepath.Join(fdir, "node_modules")); err == nil {
			continue
		}
		missing = append(missing, fdir)
	}
	installed := len(missing) == 0
	if len(missing) > 0 && !opts.NoInstall {
		if _, err := nodejs.FindNPM(); err != nil {
			fmt.Fprintf(ios.ErrOut, "%s npm not found: install Node.js %d or newer, then run npm install in each function folder\n", cs.WarningIcon(), nodejs.MinMajor)
		} else {
			for _, fdir := range missing {
				if !opts.f.Global.JSON {
					fmt.Fprintf(ios.ErrOut, "Installing the packages of %s with npm (skip with --no-install)…\n", displayDir(fdir))
				}
				if err := opts.NPMInstall(ctx, fdir, ios.ErrOut); err != nil {
					if ctx.Err() != nil {
						return ctx.Err()
					}
					return withHint(fmt.Errorf("npm install failed in %s: %w", fdir, err), "fix the problem above and run npm install there again")
				}
			}
			installed = true
		}
	}
	out.Installed = installed
	if opts.f.Global.JSON {
		return writeJSON(ios.Out, out)
	}
	fmt.Fprintf(ios.ErrOut, "\nNext:\n  cd %s\n", displayDir(dir))
	if !installed {
		for _, fdir := range missing {
			fmt.Fprintf(ios.ErrOut, "  (cd %s && npm install)\n", displayDir(fdir))
		}
	}
	if len(entries) > 0 {
		fmt.Fprintf(ios.ErrOut, "  fn invoke %-15s # run a function as the fake user\n", entries[0].Name)
	}
	fmt.Fprintf(ios.ErrOut, "  fn dev                   # serve every function, reloading on save\n")
	return nil
}

// ensureGitignore appends the lines .gitignore lacks; it reports whether it wrote.
func ensureGitignore(dir string, lines ...string) (bool, error) {
	path := filepath.Join(dir, ".gitignore")
	b, err := os.ReadFile(path)
	if err != nil && !os.IsNotExist(err) {
		return false, err
	}
	have := map[string]bool{}
	for _, l := range strings.Split(string(b), "\n") {
		have[strings.TrimSpace(l)] = true
	}
	var add []string
	for _, l := range lines {
		if !have[l] && !have["/"+l] && !have[strings.TrimSuffix(l, "/")] {
			add = append(add, l)
		}
	}
	if len(add) == 0 {
		return false, nil
	}
	text := string(b)
	if text != "" && !strings.HasSuffix(text, "\n") {
		text += "\n"
	}
	text += strings.Join(add, "\n") + "\n"
	return true, os.WriteFile(path, []byte(text), 0o644)
}
