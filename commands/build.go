package commands

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/fnhq/fn/bundler"
	"github.com/fnhq/fn/project"
)

type buildOptions struct {
	f         *Factory
	Minify    bool
	Dev       bool
	Typecheck bool
}

func newCmdBuild(f *Factory, runF func(context.Context, *buildOptions) error) *cobra.Command {
	opts := &buildOptions{f: f}
	cmd := &cobra.Command{
		Use:   "build",
		Short: "Bundle every function with esbuild into .fn/build",
		Long: `Bundle the project's functions into .fn/build: one CommonJS file per wx function (one for a
lean project's cloud code) with its dependencies inside, a source map beside it, and a
manifest.json with each bundle's content hash and size. Node.js built-ins stay external.

A failed build prints esbuild's errors and leaves the previous output as it was.

esbuild strips TypeScript types without checking them; --typecheck runs the project's own
TypeScript compiler first (tsc --noEmit, from node_modules) and fails on a type error.`,
		Example: `  $ fn build
  $ fn build --typecheck
  $ fn build --minify --json
  $ fn build -C path/to/project`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return runBuild(cmd.Context(), opts)
		},
	}
	cmd.Flags().BoolVar(&opts.Minify, "minify", false, "minify the bundles (source maps still point at your code)")
	cmd.Flags().BoolVar(&opts.Typecheck, "typecheck", false, "type-check TypeScript with the project's tsc --noEmit before bundling")
	cmd.Flags().BoolVar(&opts.Dev, "dev", false, "build as fn dev does, into .fn/dev: packages stay in node_modules (fast)")
	return cmd
}

func runBuild(ctx context.Context, opts *buildOptions) error {
	p, err := project.Load(opts.f.Global.ProjectDir)
	if err != nil {
		return err
	}
	if opts.Typecheck {
		if err := typecheck(ctx, opts.f, p); err != nil {
			return err
		}
	}
	mode := bundler.Production
	if opts.Dev {
		mode = bundler.Dev
	}
	verbosef(opts.f, "build: bundling with esbuild into %s", bundlerOptions(p, mode, false).OutDir)
	m, err := buildProject(p, mode, opts.Minify || p.Build.Minify)
	if err != nil {
		return err
	}
	ios := opts.f.IO
	for _, a := range m.Bundles {
		verbosef(opts.f, "build: %s → %s (%s)", a.Entry, a.File, humanSize(a.Size))
	}
	for _, w := range m.Warnings {
		fmt.Fprint(ios.ErrOut, w)
	}
	if opts.f.Global.JSON {
		return writeJSON(ios.Out, m)
	}
	cs := ios.Colors()
	rel, _ := filepath.Rel(p.Dir, bundlerOptions(p, mode, false).OutDir)
	fmt.Fprintf(ios.ErrOut, "%s Built %d bundle(s) into %s in %.0f ms\n", cs.SuccessIcon(), len(m.Bundles), rel, m.BuildMs)
	for _, a := range m.Bundles {
		fmt.Fprintf(ios.Out, "  %-24s %10s  %s  %s\n", a.Name, humanSize(a.Size), cs.Gray(a.Hash[:12]), cs.Gray(a.Entry))
	}
	return nil
}

// buildProject bundles a whole project once.
func buildProject(p *project.Project, mode bundler.Mode, minify bool) (*bundler.Manifest, error) {
	entries, err := p.Entries()
	if err != nil {
		return nil, err
	}
	b, err := bundler.New(bundlerOptions(p, mode, minify), entries)
	if err != nil {
		return nil, err
	}
	defer b.Dispose()
	m, _, err := b.Build()
	return m, err
}

func bundlerOptions(p *project.Project, mode bundler.Mode, minify bool) bundler.Options {
	out := p.BuildDir()
	if mode == bundler.Dev {
		out = p.StatePath("dev")
	}
	return bundler.Options{
		ProjectDir: p.Dir, OutDir: out, Dialect: p.Dialect, Target: p.Runtime,
		Mode: mode, Minify: minify, External: p.Build.External, DepsCache: depsCache(p, mode),
	}
}

// depsCache is where production builds keep the packages they bundle, built (see bundler.Options).
func depsCache(p *project.Project, mode bundler.Mode) string {
	if mode != bundler.Production {
		return ""
	}
	return p.StatePath("cache", "deps")
}

func humanSize(n int64) string {
	switch {
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f kB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

// typecheck runs the project's TypeScript compiler without emitting: esbuild only strips types.
func typecheck(ctx context.Context, f *Factory, p *project.Project) error {
	ios := f.IO
	cs := ios.Colors()
	if _, err := os.Stat(filepath.Join(p.Dir, "tsconfig.json")); err != nil {
		fmt.Fprintf(ios.ErrOut, "%s nothing to type-check: %s has no tsconfig.json\n", cs.WarningIcon(), p.Dir)
		return nil
	}
	tsc := ""
	for d := p.Dir; ; d = filepath.Dir(d) {
		cand := filepath.Join(d, "node_modules", ".bin", "tsc")
		if st, err := os.Stat(cand); err == nil && !st.IsDir() {
			tsc = cand
			break
		}
		if filepath.Dir(d) == d {
			break
		}
	}
	if tsc == "" {
		return withHint(errors.New("--typecheck needs the TypeScript compiler, and node_modules has no tsc"),
			"add it to the project: npm install --save-dev typescript @types/node")
	}
	verbosef(f, "build: %s --noEmit -p %s", tsc, p.Dir)
	start := time.Now()
	cmd := exec.CommandContext(ctx, tsc, "--noEmit", "--pretty", fmt.Sprint(ios.ColorEnabled()), "-p", p.Dir)
	cmd.Dir = p.Dir
	cmd.Stdout, cmd.Stderr = ios.ErrOut, ios.ErrOut
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		var exit *exec.ExitError
		if errors.As(err, &exit) {
			return withHint(errors.New("type check failed: tsc found the errors above (nothing was built)"), "fix them, or build without --typecheck")
		}
		return fmt.Errorf("running %s: %w", tsc, err)
	}
	if !f.Global.JSON {
		fmt.Fprintf(ios.ErrOut, "%s Type-checked with tsc in %d ms\n", cs.SuccessIcon(), time.Since(start).Milliseconds())
	}
	return nil
}
