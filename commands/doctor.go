package commands

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/fnhq/fn/nodejs"
	"github.com/fnhq/fn/project"
)

type doctorOptions struct {
	f    *Factory
	Port int
}

type check struct {
	Name   string `json:"name"`
	Status string `json:"status"` // ok, warn or fail
	Detail string `json:"detail"`
	Fix    string `json:"fix,omitempty"`
}

type doctorReport struct {
	OK     bool    `json:"ok"`
	Checks []check `json:"checks"`
}

func newCmdDoctor(f *Factory, runF func(context.Context, *doctorOptions) error) *cobra.Command {
	opts := &doctorOptions{f: f}
	cmd := &cobra.Command{
		Use:   "doctor",
		Short: "Check Node.js, npm, the project file, its npm dependencies and the dev port, and say what to fix",
		Example: `  $ fn doctor
  $ fn doctor --json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return runDoctor(cmd.Context(), opts)
		},
	}
	cmd.Flags().IntVar(&opts.Port, "port", 0, "port to check (default: the project's dev port, else 3000)")
	return cmd
}

func runDoctor(ctx context.Context, opts *doctorOptions) error {
	var checks []check
	if n, err := nodejs.Find(ctx); err != nil {
		checks = append(checks, check{Name: "node", Status: "fail", Detail: err.Error(),
			Fix: fmt.Sprintf("install Node.js %d or newer (https://nodejs.org) or set FN_NODE to its path", nodejs.MinMajor)})
	} else {
		checks = append(checks, check{Name: "node", Status: "ok", Detail: fmt.Sprintf("Node.js %s at %s", n.Version, n.Path)})
	}
	if p, err := nodejs.FindNPM(); err != nil {
		checks = append(checks, check{Name: "npm", Status: "fail", Detail: err.Error(), Fix: "install npm (it comes with Node.js)"})
	} else {
		checks = append(checks, check{Name: "npm", Status: "ok", Detail: "npm at " + p})
	}
	port := project.DefaultDevPort
	host := project.DefaultDevHost
	p, err := project.Load(opts.f.Global.ProjectDir)
	switch {
	case errors.Is(err, project.ErrNoProject):
		checks = append(checks, check{Name: "project", Status: "warn", Detail: err.Error(), Fix: "create one with 'fn init' or pass -C DIR"})
	case err != nil:
		checks = append(checks, check{Name: "project", Status: "fail", Detail: err.Error(), Fix: "correct " + project.FileName + " as the messages say"})
	default:
		port, host = p.Dev.Port, p.Dev.Host
		if entries, err := p.Entries(); err != nil {
			checks = append(checks, check{Name: "project", Status: "fail", Detail: err.Error(), Fix: "add the missing files or correct " + project.FileName})
		} else {
			checks = append(checks, check{Name: "project", Status: "ok", Detail: fmt.Sprintf("%s (%s) at %s", p.Name, p.Dialect, p.Dir)})
			checks = append(checks, dependencyChecks(p)...)
			if c, ok := functionPackagesCheck(p, entries); ok {
				checks = append(checks, c)
			}
		}
	}
	if opts.Port != 0 {
		port = opts.Port
	}
	if port != 0 {
		addr := net.JoinHostPort(host, strconv.Itoa(port))
		if l, err := net.Listen("tcp", addr); err != nil {
			checks = append(checks, check{Name: "port", Status: "warn", Detail: fmt.Sprintf("%s is in use", addr),
				Fix: fmt.Sprintf("stop what uses port %d, or run fn dev --port N (--port 0 picks a free port)", port)})
		} else {
			l.Close()
			checks = append(checks, check{Name: "port", Status: "ok", Detail: addr + " is free"})
		}
	}
	report := doctorReport{OK: true, Checks: checks}
	for _, c := range checks {
		if c.Status == "fail" {
			report.OK = false
		}
	}
	ios := opts.f.IO
	if opts.f.Global.JSON {
		if err := writeJSON(ios.Out, report); err != nil {
			return err
		}
	} else {
		cs := ios.Colors()
		for _, c := range checks {
			icon := cs.SuccessIcon()
			switch c.Status {
			case "warn":
				icon = cs.WarningIcon()
			case "fail":
				icon = cs.FailureIcon()
			}
			fmt.Fprintf(ios.Out, "%s %-8s %s\n", icon, c.Name, c.Detail)
			if c.Fix != "" {
				fmt.Fprintf(ios.Out, "  %s %s\n", cs.Gray("fix:"), c.Fix)
			}
		}
	}
	if !report.OK {
		return &SilentExit{Code: ExitFailure}
	}
	return nil
}

// functionPackagesCheck reports wx function folders that are npm packages of their own (a
// package.json) without node_modules: their packages resolve from there, so they need npm install.
func functionPackagesCheck(p *project.Project, entries []project.Entry) (check, bool) {
	if p.Dialect != project.WX {
		return check{}, false
	}
	var own, missing []string
	for _, e := range entries {
		rel := filepath.ToSlash(filepath.Join(p.FunctionsDir, e.Name))
		dir := filepath.Join(p.Dir, p.FunctionsDir, e.Name)
		if _, err := os.Stat(filepath.Join(dir, "package.json")); err != nil {
			continue
		}
		own = append(own, rel)
		if _, err := os.Stat(filepath.Join(dir, "node_modules")); err != nil {
			missing = append(missing, rel)
		}
	}
	if len(own) == 0 {
		return check{}, false
	}
	if len(missing) > 0 {
		fixes := make([]string, len(missing))
		for i, m := range missing {
			fixes[i] = "(cd " + m + " && npm install)"
		}
		return check{Name: "packages", Status: "fail", Detail: fmt.Sprintf("%d of %d function folders have a package.json but no node_modules: %s",
			len(missing), len(own), strings.Join(missing, ", ")), Fix: strings.Join(fixes, "; ")}, true
	}
	return check{Name: "packages", Status: "ok", Detail: fmt.Sprintf("%d function folders have their own packages installed", len(own))}, true
}
