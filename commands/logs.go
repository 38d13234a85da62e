package commands

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/fnhq/fn/api"
	"github.com/fnhq/fn/deployer"
	"github.com/fnhq/fn/localrun"
	"github.com/fnhq/fn/project"
)

type logsOptions struct {
	f         *Factory
	App       string
	Follow    bool
	Function  string
	Level     string
	RequestID string
	Search    string
	Since     string
	Env       string
}

func newCmdLogs(f *Factory) *cobra.Command {
	opts := &logsOptions{f: f}
	cmd := &cobra.Command{
		Use:   "logs",
		Short: "Show or follow the logs of a deployed app",
		Long: `Show log records: of the running fn dev of this project (unless --app is given), else of the
app on the fn server: function output, invocations (status and
duration) and the runtime's notes. -f follows: records are pushed as they happen, and a dropped
connection resumes after the last record seen, without gaps or duplicates.`,
		Example: `  $ fn logs -f
  $ fn logs --function login --level warn --since 10m
  $ fn logs --request-id 5a8cb607-… --json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if opts.Level != "" && !strings.Contains(" debug info warn error ", " "+opts.Level+" ") {
				return usageErrorf("unknown --level %q: use debug, info, warn or error", opts.Level)
			}
			if opts.Env != "" {
				if err := validEnv(opts.Env); err != nil {
					return err
				}
			}
			return runLogs(cmd.Context(), opts)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&opts.App, "app", "", "the app (default: the project's name)")
	fl.BoolVarP(&opts.Follow, "follow", "f", false, "keep streaming new records")
	fl.StringVar(&opts.Function, "function", "", "only this function")
	fl.StringVar(&opts.Level, "level", "", "this level or more severe: debug, info, warn, error")
	fl.StringVar(&opts.RequestID, "request-id", "", "only this invocation")
	fl.StringVar(&opts.Search, "search", "", "only records containing this text")
	fl.StringVar(&opts.Since, "since", "", "only records newer than a duration (10m, 2h) or an RFC 3339 time")
	fl.StringVar(&opts.Env, "env", "", "only staging or production")
	return cmd
}

// parseSince reads --since: a duration back from now, or a time.
func parseSince(s string, now time.Time) (time.Time, error) {
	if d, err := time.ParseDuration(s); err == nil && d > 0 {
		return now.Add(-d), nil
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	return time.Time{}, fmt.Errorf("--since %q: use a duration such as 10m or 2h, or an RFC 3339 time", s)
}

func runLogs(ctx context.Context, opts *logsOptions) error {
	q := deployer.LogQuery{Function: opts.Function, Level: opts.Level, RequestID: opts.RequestID, Search: opts.Search, Env: opts.Env, Follow: opts.Follow}
	if opts.Since != "" {
		t, err := parseSince(opts.Since, time.Now())
		if err != nil {
			return &UsageError{Err: err}
		}
		q.Since = t
	}
	// a running fn dev of this project answers unless an app is named
	var c *deployer.Client
	var path string
	if p, perr := project.Load(opts.f.Global.ProjectDir); perr == nil && opts.App == "" {
		if st, ok := localrun.ReadDevState(p); ok {
			c, path = deployer.New(deployer.Credentials{Server: st.URL}), deployer.AppLogsPath("-")
		}
	}
	if c == nil {
		var app string
		var err error
		if c, app, err = appClient(ctx, opts.f, opts.App); err != nil {
			return err
		}
		path = deployer.AppLogsPath(app)
	}
	ios := opts.f.IO
	cs := ios.Colors()
	enc := json.NewEncoder(ios.Out)
	err := c.Logs(ctx, path, q, func(r api.LogRecord) {
		if opts.f.Global.JSON {
			enc.Encode(r)
			return
		}
		level := fmt.Sprintf("%-5s", r.Level)
		switch r.Level {
		case "error":
			level = cs.Red(level)
		case "warn":
			level = cs.Yellow(level)
		}
		rid := r.RequestID
		if len(rid) > 8 {
			rid = rid[:8]
		}
		fmt.Fprintf(ios.Out, "%s %s %-10s v%-3d %-16s %s %s\n", cs.Gray(r.Time.Local().Format("15:04:05.000")), level, r.Env, r.Version, r.Function, cs.Gray(rid), r.Message)
	})
	var api *deployer.APIError
	if errors.As(err, &api) && api.Status == http.StatusBadRequest {
		return &UsageError{Err: err}
	}
	if errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}
