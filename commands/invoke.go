package commands

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/fnhq/fn/api"
	"github.com/fnhq/fn/appenv"
	"github.com/fnhq/fn/iostreams"
	"github.com/fnhq/fn/localrun"
	"github.com/fnhq/fn/nodejs"
	"github.com/fnhq/fn/project"
)

type invokeOptions struct {
	f *Factory

	Function string
	Data     string
	Event    string
	As       string
	Timeout  time.Duration
	Local    bool
	Remote   bool
	Sample   bool
	App      string
	Env      string
	Replay   string
}

func newCmdInvoke(f *Factory, runF func(context.Context, *invokeOptions) error) *cobra.Command {
	opts := &invokeOptions{f: f}
	cmd := &cobra.Command{
		Use:   "invoke <function> | --replay <requestId>",
		Short: "Run one function locally and print its result",
		Long: `Run one function of the project in a local Node.js worker and print its result as JSON on
stdout. The function's logs and a report line go to stderr.

When fn dev runs for the project (.fn/dev.json), the call goes to it; otherwise fn invoke
builds and runs the function one-shot (--local forces that).

The call's data comes from --data (JSON, or @file.json), from --event NAME (a saved event in
events/<function>/NAME.json), or from stdin; without any of them it is {}.
wx functions run as a mini-program user: the default identity of fn.yaml, or --as NAME.

--replay REQUEST_ID repeats a logged call (fn logs, the console): the same function, event and
identity, in the running fn dev, or on the fn server with --remote.

Exit status: 0 when the function succeeded, 1 when it failed (the error and its stack trace,
mapped to your source files, are printed on stderr).`,
		Example: `  $ fn invoke login
  $ fn invoke sum --data '{"a":1,"b":2}'
  $ fn invoke sum --data @payload.json
  $ echo '{"a":1,"b":2}' | fn invoke sum
  $ fn invoke sum --event answer --json
  $ fn invoke login --as bob
  $ fn invoke _messageReceived --sample
  $ fn invoke --replay 5f3c9a0e1b2d4c6a`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if opts.Replay != "" {
				if len(args) > 0 || opts.Data != "" || opts.Event != "" || opts.Sample || opts.As != "" {
					return usageErrorf("--replay repeats a logged call as it was: it takes no function, --data, --event, --sample or --as")
				}
				if opts.Local {
					return usageErrorf("--replay needs the running fn dev (or --remote): a one-shot run has no earlier calls")
				}
			} else if len(args) == 0 {
				return usageErrorf("fn invoke needs a function name: fn invoke <function> (or --replay <requestId>)")
			} else {
				opts.Function = args[0]
			}
			if opts.Data != "" && opts.Event != "" {
				return usageErrorf("--data and --event cannot be used together")
			}
			if opts.Sample && (opts.Data != "" || opts.Event != "") {
				return usageErrorf("--sample cannot be used with --data or --event")
			}
			if opts.Remote && opts.Local {
				return usageErrorf("--remote and --local cannot be used together")
			}
			if err := validEnv(opts.Env); err != nil {
				return err
			}
			if opts.Timeout < 0 || opts.Timeout > 15*time.Minute {
				return usageErrorf("--timeout must be between 0 and 15m, got %v", opts.Timeout)
			}
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return runInvoke(cmd.Context(), opts)
		},
	}
	fl := cmd.Flags()
	fl.StringVarP(&opts.Data, "data", "d", "", "the call's data as JSON, or @FILE to read it from a file")
	fl.StringVarP(&opts.Event, "event", "e", "", "use the saved event events/<function>/`NAME`.json")
	fl.StringVar(&opts.As, "as", "", "call as the named identity from fn.yaml")
	fl.DurationVar(&opts.Timeout, "timeout", 0, "override the function's timeout (e.g. 30s)")
	fl.BoolVar(&opts.Sample, "sample", false, "lean realtime hooks: send the payload the realtime service sends (with __sign), e.g. fn invoke _messageReceived --sample")
	fl.BoolVar(&opts.Local, "local", false, "run one-shot even when fn dev is running")
	fl.BoolVar(&opts.Remote, "remote", false, "call the deployed function on the fn server (fn login)")
	fl.StringVar(&opts.App, "app", "", "with --remote: the app (default: the project's name)")
	fl.StringVar(&opts.Env, "env", api.DefaultEnv, "with --remote: staging or production")
	fl.StringVar(&opts.Replay, "replay", "", "repeat the logged call `REQUEST_ID` (same function, event and identity)")
	return cmd
}

func runInvoke(ctx context.Context, opts *invokeOptions) error {
	ios := opts.f.IO
	p, err := project.LoadEnv(opts.f.Global.ProjectDir, os.Getenv)
	if err != nil {
		return err
	}
	if opts.Replay != "" {
		return runInvokeReplay(ctx, opts, p)
	}
	data, err := invokeInput(opts, p, ios)
	if err != nil {
		return err
	}
	if opts.Remote {
		return runInvokeRemote(ctx, opts, p, data)
	}
	cs := ios.Colors()
	var out *api.Outcome
	where := ""
	if st, running := localrun.ReadDevState(p); running && !opts.Local {
		out, err = devClient(st).Invoke(ctx, "-", api.DevEnv, opts.Function,
			api.InvokeRequest{Data: data, Identity: opts.As, TimeoutMs: opts.Timeout.Milliseconds()})
		where = "ran in fn dev at " + st.URL
	} else {
		node, ferr := nodejs.Find(ctx)
		if ferr != nil {
			return ferr
		}
		out, err = localrun.Invoke(ctx, p, localrun.InvokeOptions{Node: node.Path, NodeVersion: node.Version, Function: opts.Function,
			Data: data, Identity: opts.As, Timeout: opts.Timeout})
		where = "ran one-shot"
	}
	var unknown *localrun.UnknownFunctionError
	if errors.As(err, &unknown) {
		return withHint(err, "functions live in %s/<name>/index.js", p.FunctionsDir)
	}
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return err
	}
	if opts.f.Global.Verbose {
		fmt.Fprintln(ios.ErrOut, cs.Gray(where))
	}
	return printOutcome(opts, out, "")
}

// printOutcome prints an invocation's outcome: the result JSON on stdout, the logs and a report
// line on stderr (or the whole outcome as JSON with --json). A failed function exits 1.
func printOutcome(opts *invokeOptions, out *api.Outcome, where string) error {
	ios := opts.f.IO
	cs := ios.Colors()
	if out.Logs == nil {
		out.Logs = []api.LogRecord{}
	}
	if opts.f.Global.JSON {
		if err := writeJSON(ios.Out, out); err != nil {
			return err
		}
	} else {
		for _, r := range out.Logs {
			fmt.Fprintf(ios.ErrOut, "%s %s\n", cs.Gray(fmt.Sprintf("%-5s", r.Level)), r.Message)
		}
		report := fmt.Sprintf("RequestId: %s  Duration: %.1f ms", out.RequestID, out.DurationMs)
		if out.MemoryMB > 0 {
			report += fmt.Sprintf("  Memory: %d MB", out.MemoryMB)
		}
		if out.Identity != "" {
			report += "  As: " + out.Identity
		}
		if where != "" {
			report += "  (" + where + ")"
		}
		if out.Failed() {
			fmt.Fprintf(ios.ErrOut, "%s %s failed: %s\n", cs.FailureIcon(), out.Function, out.Error.Message)
			if out.Error.Stack != "" {
				fmt.Fprintln(ios.ErrOut, indentLines(out.Error.Stack, "    "))
			}
			fmt.Fprintln(ios.ErrOut, cs.Gray(report))
		} else {
			fmt.Fprintln(ios.ErrOut, cs.Gray(report))
			result := out.Result
			if len(result) == 0 {
				result = json.RawMessage("null")
			}
			var v any
			json.Unmarshal(result, &v)
			if err := writeJSON(ios.Out, v); err != nil {
				return err
			}
		}
	}
	if out.Failed() {
		return &SilentExit{Code: ExitFailure}
	}
	return nil
}

// runInvokeRemote calls the deployed function through the fn server's admin API.
func runInvokeRemote(ctx context.Context, opts *invokeOptions, p *project.Project, data json.RawMessage) error {
	app := opts.App
	if app == "" {
		app = p.Name
	}
	c, err := opts.f.Client(ctx)
	if err != nil {
		return err
	}
	out, err := c.Invoke(ctx, app, opts.Env, opts.Function, api.InvokeRequest{Data: data, TimeoutMs: opts.Timeout.Milliseconds()})
	if err != nil {
		return err
	}
	return printOutcome(opts, out, opts.Env+" of "+app)
}

// runInvokeReplay repeats a logged call in the running fn dev or, with --remote, on the server.
func runInvokeReplay(ctx context.Context, opts *invokeOptions, p *project.Project) error {
	if opts.Remote {
		app := opts.App
		if app == "" {
			app = p.Name
		}
		c, err := opts.f.Client(ctx)
		if err != nil {
			return err
		}
		out, err := c.Replay(ctx, app, opts.Env, opts.Replay)
		if err != nil {
			return err
		}
		return printOutcome(opts, out, "replay in "+opts.Env+" of "+app)
	}
	st, running := localrun.ReadDevState(p)
	if !running {
		return withHint(errors.New("fn invoke --replay needs the running fn dev: it keeps the calls' records"),
			"start fn dev, or replay a deployed call with --remote")
	}
	out, err := devClient(st).Replay(ctx, "-", api.DevEnv, opts.Replay)
	if err != nil {
		return err
	}
	return printOutcome(opts, out, "replay in fn dev")
}

// invokeInput reads the call's data from --data, --event or stdin, and checks it is JSON.
func invokeInput(opts *invokeOptions, p *project.Project, ios *iostreams.IOStreams) (json.RawMessage, error) {
	var raw []byte
	var source string
	switch {
	case opts.Sample:
		if p.Dialect != project.Lean || !appenv.RealtimeHook(opts.Function) {
			return nil, &UsageError{Err: fmt.Errorf("--sample is for LeanCloud realtime hooks (%s), not %q",
				strings.Join(appenv.RealtimeHooks, ", "), opts.Function)}
		}
		keys, _, err := localrun.DevKeys(p)
		if err != nil {
			return nil, err
		}
		b, _ := appenv.RealtimeSample(opts.Function, keys.MasterKey, time.Now())
		return b, nil
	case strings.HasPrefix(opts.Data, "@"):
		source = opts.Data[1:]
		b, err := os.ReadFile(source)
		if err != nil {
			return nil, &UsageError{Err: fmt.Errorf("--data %s: %w", opts.Data, err)}
		}
		raw = b
	case opts.Data != "":
		source, raw = "--data", []byte(opts.Data)
	case opts.Event != "":
		source = filepath.Join("events", opts.Function, opts.Event+".json")
		b, err := os.ReadFile(filepath.Join(p.Dir, source))
		if err != nil {
			return nil, withHint(fmt.Errorf("no saved event %s", source), "saved events are JSON files in events/%s/", opts.Function)
		}
		raw = b
	case !ios.IsStdinTTY() && ios.In != nil:
		b, err := io.ReadAll(ios.In)
		if err != nil {
			return nil, err
		}
		source, raw = "stdin", b
	}
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return json.RawMessage("{}"), nil
	}
	if !json.Valid(raw) {
		var v any
		err := json.Unmarshal(raw, &v)
		var se *json.SyntaxError
		if errors.As(err, &se) {
			line, col := position(raw, se.Offset)
			return nil, &UsageError{Err: fmt.Errorf("%s: invalid JSON at line %d, column %d: %v", source, line, col, err)}
		}
		return nil, &UsageError{Err: fmt.Errorf("%s: invalid JSON: %v", source, err)}
	}
	return raw, nil
}

func position(b []byte, offset int64) (line, col int) {
	line, col = 1, 1
	for i := int64(0); i < offset-1 && i < int64(len(b)); i++ {
		if b[i] == '\n' {
			line, col = line+1, 1
		} else {
			col++
		}
	}
	return line, col
}

func indentLines(s, prefix string) string {
	return prefix + strings.ReplaceAll(strings.TrimRight(s, "\n"), "\n", "\n"+prefix)
}
