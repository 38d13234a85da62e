package commands

import (
	"context"
	"errors"
	"fmt"
	"os/user"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/fnhq/fn/admin"
	"github.com/fnhq/fn/deployer"
	"github.com/fnhq/fn/project"
)

type deployOptions struct {
	f       *Factory
	App     string
	Env     string
	Message string
	DryRun  bool
}

func newCmdDeploy(f *Factory) *cobra.Command {
	opts := &deployOptions{f: f}
	cmd := &cobra.Command{
		Use:   "deploy",
		Short: "Build production bundles and ship them to the fn server",
		Long: `Build minified bundles with source maps, upload only the artifacts the server lacks, and
activate them: the server loads every bundle in fresh workers first and switches atomically
(in-flight calls finish on the old version). A bundle that fails to load is rejected and the
running version keeps serving. Nothing changed: "nothing to deploy", exit 0.

The app defaults to the project's name (--app, FN_APP). The environment is production unless
--env says otherwise (production is what clients reach by default); without a terminal --env
must be given.`,
		Example: `  $ fn deploy --env staging -m "new login flow"
  $ fn deploy --env production --dry-run
  $ fn deploy --env production --json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if opts.Env == "" {
				if !f.IO.CanPrompt() || f.Global.JSON {
					return usageErrorf("--env is required without a terminal: staging or %s (%s)", DefaultEnv, defaultEnvWhy)
				}
				var err error
				if opts.Env, err = f.ask(cmd.Context(), "Environment (staging or production; "+defaultEnvWhy+")", DefaultEnv, oneOf(Envs)); err != nil {
					return err
				}
			}
			if err := validEnv(opts.Env); err != nil {
				return err
			}
			return runDeploy(cmd.Context(), opts)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&opts.App, "app", "", "the app to deploy to (default: the project's name)")
	fl.StringVar(&opts.Env, "env", "", "staging or production")
	fl.StringVarP(&opts.Message, "message", "m", "", "a note kept with the version")
	fl.BoolVar(&opts.DryRun, "dry-run", false, "print what would change, deploy nothing")
	return cmd
}

func runDeploy(ctx context.Context, opts *deployOptions) error {
	p, err := project.Load(opts.f.Global.ProjectDir)
	if err != nil {
		return err
	}
	c, err := opts.f.Client(ctx)
	if err != nil {
		return err
	}
	if opts.App == "" {
		opts.App = p.Name
	}
	ios := opts.f.IO
	cs := ios.Colors()
	who := "unknown"
	if u, err := user.Current(); err == nil {
		who = u.Username
	}
	o := deployer.DeployOptions{App: opts.App, Env: opts.Env, Message: opts.Message, Who: who, DryRun: opts.DryRun}
	progress := ios.NewProgress()
	if !opts.f.Global.JSON {
		o.Phase = func(phase string) {
			verbosef(opts.f, "deploy: %s", phase)
			if phase != deployer.PhaseUpload {
				progress.Phase(phase)
			}
		}
		o.Upload = func(sent, total int64) { progress.Bytes("uploading", sent, total) }
	}
	if p.Detected && !opts.f.Global.JSON {
		what := "its cloud code in shared workers"
		if p.App != nil {
			what = "its app process (" + strings.Join(p.App.Command, " ") + ", from " + p.App.Source + ")"
		}
		fmt.Fprintf(ios.ErrOut, "LeanEngine project without fn.yaml: deploying its files as they are, to run %s\n", what)
	}
	out, err := c.Deploy(ctx, p, o)
	progress.Stop()
	var api *deployer.APIError
	if errors.As(err, &api) && api.NoSuchApp() {
		if !ios.CanPrompt() || opts.f.Global.JSON {
			return withHint(err, "create it with 'fn apps create %s', or deploy to another app with --app NAME", opts.App)
		}
		ok, aerr := opts.f.confirm(ctx, fmt.Sprintf("App %s does not exist on %s yet. Create it now?", opts.App, c.Creds.Server), true)
		if aerr != nil {
			return aerr
		}
		if !ok {
			return withHint(err, "create it with 'fn apps create %s', or deploy to another app with --app NAME", opts.App)
		}
		if _, err := c.CreateApp(ctx, admin.CreateAppRequest{Name: opts.App}); err != nil {
			return err
		}
		fmt.Fprintf(ios.ErrOut, "%s created app %s (its keys: fn apps list --json)\n", cs.SuccessIcon(), opts.App)
		out, err = c.Deploy(ctx, p, o)
		progress.Stop()
	}
	if err != nil {
		return err
	}
	if opts.f.Global.JSON {
		return writeJSON(ios.Out, out)
	}
	plan := func() {
		for _, x := range []struct {
			label string
			names []string
		}{{"added", out.Added}, {"changed", out.Changes}, {"removed", out.Removed}} {
			if len(x.names) > 0 {
				fmt.Fprintf(ios.ErrOut, "  %-8s %s\n", x.label, strings.Join(x.names, ", "))
			}
		}
	}
	switch {
	case !out.Changed:
		fmt.Fprintf(ios.ErrOut, "%s nothing to deploy: %s of %s already runs this build\n", cs.SuccessIcon(), opts.Env, opts.App)
	case opts.DryRun:
		fmt.Fprintf(ios.ErrOut, "would deploy to %s of %s:\n", opts.Env, opts.App)
		plan()
	default:
		fmt.Fprintf(ios.ErrOut, "%s deployed version %d to %s of %s (%d uploaded, %d already on the server)\n", cs.SuccessIcon(), out.Version.ID, opts.Env, opts.App, out.Uploaded, out.Reused)
		plan()
		try := "fn invoke <function> --remote"
		if opts.Env != DefaultEnv {
			try += " --env " + opts.Env
		}
		fmt.Fprintf(ios.ErrOut, "  %s %s\n", cs.Gray("try it:"), try)
	}
	return nil
}

// DefaultEnv is the environment commands act on when --env is not given: production, because
// that is the one a client reaches unless it asks for another (LeanCloud's SDKs call the
// production instance by default, and a mini-program calls the current cloud environment).
const DefaultEnv = "production"

// defaultEnvWhy is the reason given wherever the default is offered.
const defaultEnvWhy = "production is what clients reach by default"

// Envs are the environments of a deployed app.
var Envs = []string{"staging", "production"}

func validEnv(env string) error {
	if !slices.Contains(Envs, env) {
		return usageErrorf("unknown --env %q: use staging or production", env)
	}
	return nil
}

func newCmdVersions(f *Factory) *cobra.Command {
	var app, env string
	cmd := &cobra.Command{
		Use:     "versions",
		Short:   "List deployed versions",
		Example: "  $ fn versions --env production",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, app, err := appClient(cmd.Context(), f, app)
			if err != nil {
				return err
			}
			vs, err := c.Versions(cmd.Context(), app, env)
			if err != nil {
				return err
			}
			if f.Global.JSON {
				return writeJSON(f.IO.Out, vs)
			}
			for _, v := range vs {
				active := " "
				if v.Active {
					active = f.IO.Colors().Green("*")
				}
				fmt.Fprintf(f.IO.Out, "%s %4d  %-10s %s  %-10s %s\n", active, v.ID, v.Env, v.CreatedAt.Local().Format("2006-01-02 15:04:05"), v.Who, v.Message)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&app, "app", "", "the app (default: the project's name)")
	cmd.Flags().StringVar(&env, "env", "", "only this environment")
	return cmd
}

func newCmdRollback(f *Factory) *cobra.Command {
	var app, env string
	var to int
	cmd := &cobra.Command{
		Use:     "rollback",
		Short:   "Make an earlier version active again (the previous one by default)",
		Example: "  $ fn rollback\n  $ fn rollback --env staging --to 3",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if env == "" {
				env = DefaultEnv
			}
			if err := validEnv(env); err != nil {
				return err
			}
			c, app, err := appClient(cmd.Context(), f, app)
			if err != nil {
				return err
			}
			v, err := c.Rollback(cmd.Context(), app, env, to)
			if err != nil {
				return err
			}
			if f.Global.JSON {
				return writeJSON(f.IO.Out, v)
			}
			fmt.Fprintf(f.IO.ErrOut, "%s %s of %s runs version %d again\n", f.IO.Colors().SuccessIcon(), env, app, v.ID)
			return nil
		},
	}
	cmd.Flags().StringVar(&app, "app", "", "the app (default: the project's name)")
	cmd.Flags().StringVar(&env, "env", "", "staging or production (default production)")
	cmd.Flags().IntVar(&to, "to", 0, "the version to go back to (default: the one before the active one)")
	return cmd
}

func newCmdPromote(f *Factory) *cobra.Command {
	var app, message string
	cmd := &cobra.Command{
		Use:     "promote",
		Short:   "Deploy staging's active version to production (same artifacts, no rebuild)",
		Example: "  $ fn promote -m \"release 1.4\"",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, app, err := appClient(cmd.Context(), f, app)
			if err != nil {
				return err
			}
			who := "unknown"
			if u, err := user.Current(); err == nil {
				who = u.Username
			}
			res, err := c.Promote(cmd.Context(), app, message, who)
			if err != nil {
				return err
			}
			if f.Global.JSON {
				return writeJSON(f.IO.Out, res)
			}
			if !res.Changed {
				fmt.Fprintf(f.IO.ErrOut, "%s nothing to promote: production already runs staging's version\n", f.IO.Colors().SuccessIcon())
				return nil
			}
			fmt.Fprintf(f.IO.ErrOut, "%s production of %s runs version %d (from staging)\n", f.IO.Colors().SuccessIcon(), app, res.Version.ID)
			return nil
		},
	}
	cmd.Flags().StringVar(&app, "app", "", "the app (default: the project's name)")
	cmd.Flags().StringVarP(&message, "message", "m", "", "a note kept with the version")
	return cmd
}

// appClient returns a client and the app to act on: --app, else the project's name.
func appClient(ctx context.Context, f *Factory, app string) (*deployer.Client, string, error) {
	c, err := f.Client(ctx)
	if err != nil {
		return nil, "", err
	}
	if app == "" {
		p, err := project.Load(f.Global.ProjectDir)
		if err != nil {
			return nil, "", withHint(err, "name the app with --app")
		}
		app = p.Name
	}
	return c, app, nil
}
