package commands

import (
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/fnhq/fn/api"
	"github.com/fnhq/fn/cron"
	"github.com/fnhq/fn/deployer"
	"github.com/fnhq/fn/localrun"
	"github.com/fnhq/fn/project"
)

func newCmdTimers(f *Factory) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "timers <command>",
		Short: "List, preview, trigger, enable and disable timers",
		Long: `Timers call a function on a schedule: a Quartz cron expression
(<second> <minute> <hour> <day-of-month> <month> <day-of-week> [<year>]) or an interval in
seconds, declared under timers: in fn.yaml. fn dev runs them on their real schedule.`,
		Example: `  $ fn timers list
  $ fn timers next '0 0 8 ? * MON' -n 3
  $ fn timers next '0 0/30 8-9 5,20 * ?' --from 2026-03-01T00:00:00+08:00 --json
  $ fn timers trigger log_timer
  $ fn timers disable log_timer`,
		Args: cobra.NoArgs,
	}
	cmd.AddCommand(newCmdTimersList(f), newCmdTimersNext(f), newCmdTimersControl(f, "trigger", "Fire a timer now in the running fn dev"),
		newCmdTimersControl(f, "enable", "Enable a timer in the running fn dev (also clears a short-circuit)"),
		newCmdTimersControl(f, "disable", "Stop a timer from firing in the running fn dev"))
	return cmd
}

type timerListing struct {
	Name           string   `json:"name"`
	Function       string   `json:"function"`
	Schedule       string   `json:"schedule"`
	Cron           string   `json:"cron,omitempty"`
	Interval       int      `json:"interval,omitempty"`
	Environments   []string `json:"environments"`
	Next           []string `json:"next"`
	State          string   `json:"state,omitempty"` // from a running fn dev: enabled, disabled, short-circuited
	TimeZone       string   `json:"timezone"`
	ShortCircuited bool     `json:"shortCircuited,omitempty"`
}

func newCmdTimersList(f *Factory) *cobra.Command {
	var remote bool
	var app, env string
	cmd := &cobra.Command{
		Use:     "list",
		Short:   "List the project's timers with their next 5 fire times",
		Example: "  $ fn timers list\n  $ fn timers list --json",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			p, err := project.Load(f.Global.ProjectDir)
			if err != nil {
				return err
			}
			loc, err := time.LoadLocation(p.Timezone)
			if err != nil {
				return err
			}
			live := map[string]api.TimerStatus{}
			if remote {
				c, app, err := appClient(cmd.Context(), f, app)
				if err != nil {
					return err
				}
				statuses, err := c.Timers(cmd.Context(), app, env)
				if err != nil {
					return err
				}
				for _, s := range statuses {
					live[s.Name] = s
				}
			} else if st, ok := localrun.ReadDevState(p); ok {
				if statuses, err := devClient(st).Timers(cmd.Context(), "-", api.DevEnv); err == nil {
					for _, s := range statuses {
						live[s.Name] = s
					}
				}
			}
			now := time.Now()
			var out []timerListing
			for _, t := range p.Timers {
				l := timerListing{Name: t.Name, Function: t.Function, Cron: t.Cron, Interval: t.Interval, Environments: t.Environments, TimeZone: p.Timezone, Next: []string{}}
				if t.Cron != "" {
					l.Schedule = t.Cron
					for _, ft := range cron.MustParse(t.Cron).NextN(now, loc, 5) {
						l.Next = append(l.Next, ft.Format(time.RFC3339))
					}
				} else {
					l.Schedule = fmt.Sprintf("every %d s", t.Interval)
				}
				if s, ok := live[t.Name]; ok {
					switch {
					case s.ShortCircuited:
						l.State = "short-circuited"
					case !s.Enabled:
						l.State = "disabled"
					default:
						l.State = "enabled"
					}
				} else if remote {
					l.State = "not deployed"
				}
				out = append(out, l)
			}
			if f.Global.JSON {
				if out == nil {
					out = []timerListing{}
				}
				return writeJSON(f.IO.Out, out)
			}
			if len(out) == 0 {
				fmt.Fprintln(f.IO.ErrOut, "no timers in fn.yaml (add them under timers:)")
				return nil
			}
			cs := f.IO.Colors()
			for _, l := range out {
				state := ""
				if l.State != "" {
					where := "fn dev"
					if remote {
						where = env
					}
					state = cs.Gray(" [" + l.State + " in " + where + "]")
				}
				fmt.Fprintf(f.IO.Out, "%s → %s  %s%s\n", cs.Bold(l.Name), l.Function, l.Schedule, state)
				for _, n := range l.Next {
					t, _ := time.Parse(time.RFC3339, n)
					fmt.Fprintf(f.IO.Out, "    %s\n", t.In(loc).Format("2006-01-02 15:04:05 Mon"))
				}
			}
			fmt.Fprintln(f.IO.ErrOut, cs.Gray("times in "+p.Timezone))
			return nil
		},
	}
	cmd.Flags().BoolVar(&remote, "remote", false, "show the states of the deployed app's timers on the fn server")
	cmd.Flags().StringVar(&app, "app", "", "with --remote: the app (default: the project's name)")
	cmd.Flags().StringVar(&env, "env", DefaultEnv, "with --remote: staging or production")
	return cmd
}

type timersNextOptions struct {
	N    int
	From string
	TZ   string
}

func newCmdTimersNext(f *Factory) *cobra.Command {
	opts := &timersNextOptions{}
	cmd := &cobra.Command{
		Use:   "next '<cron expression>'",
		Short: "Preview the fire times of any Quartz cron expression",
		Long: `Print the next fire times of a Quartz cron expression, strictly after --from (default: now),
in --tz (default: the project's time zone, else Asia/Shanghai).`,
		Example: `  $ fn timers next '0 0 8 ? * MON'
  $ fn timers next '0 0 0 ? * 6L' -n 12 --tz UTC
  $ fn timers next '10 0/5 * * * ?' --from '2026-03-02 10:00:00'`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if opts.N < 1 || opts.N > 1000 {
				return usageErrorf("-n must be 1–1000, got %d", opts.N)
			}
			expr, err := cron.Parse(args[0])
			if err != nil {
				return &UsageError{Err: fmt.Errorf("invalid cron expression %q: %w", args[0], err)}
			}
			tz := opts.TZ
			if tz == "" {
				tz = project.DefaultTimezone
				if p, err := project.Load(f.Global.ProjectDir); err == nil {
					tz = p.Timezone
				}
			}
			loc, err := time.LoadLocation(tz)
			if err != nil {
				return usageErrorf("--tz: unknown time zone %q (use an IANA name such as Asia/Shanghai or UTC)", tz)
			}
			from := time.Now()
			if opts.From != "" {
				if from, err = parseFrom(opts.From, loc); err != nil {
					return &UsageError{Err: err}
				}
			}
			times := expr.NextN(from, loc, opts.N)
			if f.Global.JSON {
				out := make([]string, len(times))
				for i, t := range times {
					out[i] = t.Format(time.RFC3339)
				}
				return writeJSON(f.IO.Out, out)
			}
			for _, t := range times {
				fmt.Fprintln(f.IO.Out, t.Format("2006-01-02 15:04:05 Mon -07:00"))
			}
			if len(times) < opts.N {
				fmt.Fprintf(f.IO.ErrOut, "no more fire times before the end of %d\n", cron.MaxYear)
			}
			return nil
		},
	}
	cmd.Flags().IntVarP(&opts.N, "count", "n", 5, "how many fire times")
	cmd.Flags().StringVar(&opts.From, "from", "", "start after this time (RFC 3339, or 'YYYY-MM-DD HH:MM:SS' in --tz)")
	cmd.Flags().StringVar(&opts.TZ, "tz", "", "time zone (IANA name)")
	return cmd
}

func parseFrom(s string, loc *time.Location) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	for _, layout := range []string{"2006-01-02 15:04:05", "2006-01-02T15:04:05", "2006-01-02 15:04", "2006-01-02"} {
		if t, err := time.ParseInLocation(layout, s, loc); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("--from %q: use RFC 3339 (2026-03-01T08:00:00+08:00) or 'YYYY-MM-DD HH:MM:SS'", s)
}

func newCmdTimersControl(f *Factory, action, short string) *cobra.Command {
	var remote bool
	var app, env string
	cmd := &cobra.Command{
		Use:     action + " <timer>",
		Short:   short,
		Example: fmt.Sprintf("  $ fn timers %s log_timer\n  $ fn timers %s log_timer --remote --env staging", action, action),
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if remote {
				if err := validEnv(env); err != nil {
					return err
				}
				c, app, err := appClient(cmd.Context(), f, app)
				if err != nil {
					return err
				}
				if err := c.TimerControl(cmd.Context(), app, env, args[0], action); err != nil {
					return err
				}
			} else {
				p, err := project.Load(f.Global.ProjectDir)
				if err != nil {
					return err
				}
				st, ok := localrun.ReadDevState(p)
				if !ok {
					return withHint(errors.New("fn dev is not running for this project"), "start it with 'fn dev' (timers run there), or act on the deployed app with --remote")
				}
				if err := devClient(st).TimerControl(cmd.Context(), "-", api.DevEnv, args[0], action); err != nil {
					return err
				}
			}
			if f.Global.JSON {
				return writeJSON(f.IO.Out, map[string]any{"timer": args[0], "action": action, "ok": true})
			}
			past := map[string]string{"trigger": "triggered", "enable": "enabled", "disable": "disabled"}[action]
			fmt.Fprintf(f.IO.ErrOut, "%s timer %s %s\n", f.IO.Colors().SuccessIcon(), args[0], past)
			return nil
		},
	}
	cmd.Flags().BoolVar(&remote, "remote", false, "act on the deployed app on the fn server instead of fn dev")
	cmd.Flags().StringVar(&app, "app", "", "with --remote: the app (default: the project's name)")
	cmd.Flags().StringVar(&env, "env", DefaultEnv, "with --remote: staging or production")
	return cmd
}

// devClient talks to a running fn dev's admin API (its project is app "-", its environment dev).
func devClient(st *localrun.DevState) *deployer.Client {
	return deployer.New(deployer.Credentials{Server: st.URL})
}
