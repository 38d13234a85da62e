// Package commands is the fn command line: one file per verb, each with an options struct, a
// constructor that only parses and validates, and a run function that does the work through the
// library packages. It is the only place that prints, picks exit codes and turns errors into hints.
package commands

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"runtime/pprof"
	"strings"
	"syscall"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"github.com/spf13/viper"

	"github.com/fnhq/fn/iostreams"
	"github.com/fnhq/fn/sandbox"
)

// ExitCode is what the process exits with.
type ExitCode int

const (
	ExitOK          ExitCode = 0
	ExitFailure     ExitCode = 1
	ExitUsage       ExitCode = 2
	ExitInterrupted ExitCode = 130
)

// Version is set at link time (-ldflags "-X github.com/fnhq/fn/commands.Version=...").
var Version = "dev"

// GlobalOptions are the flags every command has.
type GlobalOptions struct {
	ProjectDir string
	JSON       bool
	Color      string
	Verbose    bool
}

// Factory carries what commands share within one invocation: streams, the scoped config and the
// global options. Nothing in it is package-level state.
type Factory struct {
	IO      *iostreams.IOStreams
	Config  *viper.Viper // one scoped instance per invocation: flag > FN_* env > project file > default
	Global  *GlobalOptions
	Version string
}

// Main runs fn with the process's arguments and signals. The first Ctrl-C cancels the running
// command (which stops its children gracefully); a second one exits at once.
func Main() ExitCode {
	if sandbox.IsTrampoline(os.Args) {
		// fn serve starts each confined worker as fn itself: confine, then become node
		fmt.Fprintln(os.Stderr, "fn:", sandbox.Exec(os.Args))
		return ExitFailure
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	interrupted := make(chan struct{})
	go func() {
		<-sigs
		close(interrupted)
		cancel()
		<-sigs
		fmt.Fprintln(os.Stderr, "fn: interrupted twice, exiting now")
		os.Exit(int(ExitInterrupted))
	}()
	if path := os.Getenv("FN_CPUPROFILE"); path != "" {
		// for profiling fn itself: FN_CPUPROFILE=cpu.out fn dev …
		if f, err := os.Create(path); err == nil {
			pprof.StartCPUProfile(f)
			defer func() { pprof.StopCPUProfile(); f.Close() }()
		}
	}
	code := Run(ctx, os.Args[1:], iostreams.System())
	select {
	case <-interrupted:
		return ExitInterrupted
	default:
		return code
	}
}

// Run executes one fn command line against the given streams.
func Run(ctx context.Context, args []string, ios *iostreams.IOStreams) ExitCode {
	f := &Factory{IO: ios, Config: viper.New(), Global: &GlobalOptions{}, Version: Version}
	root := NewRootCmd(f)
	root.SetArgs(args)
	root.SetIn(ios.In)
	root.SetOut(ios.Out)
	root.SetErr(ios.ErrOut)
	cmd, err := root.ExecuteContextC(ctx)
	if err == nil {
		return ExitOK
	}
	return reportError(f, cmd, err)
}

// NewRootCmd builds the whole command tree.
func NewRootCmd(f *Factory) *cobra.Command {
	root := &cobra.Command{
		Use:   "fn <command> [flags]",
		Short: "Build, run and host WeChat cloud functions and LeanEngine cloud code",
		Long: `fn runs WeChat cloud functions (exports.main, wx-server-sdk) and LeanEngine cloud code
(AV.Cloud.define, hooks, timers) unmodified: offline on your machine with fake identities and
hot reload, and then on a runtime you host yourself.`,
		Example: `  $ fn init hello --template wx      # scaffold a WeChat cloud functions project
  $ fn build                          # bundle every function with esbuild
  $ fn invoke login --data '{"a":1}'  # run one function and print its result
  $ fn doctor                         # check Node.js, npm, the project file and ports`,
		Version:           f.Version,
		SilenceErrors:     true,
		SilenceUsage:      true,
		CompletionOptions: cobra.CompletionOptions{HiddenDefaultCmd: false},
		PersistentPreRunE: func(cmd *cobra.Command, args []string) error {
			if err := applyEnv(f.Config, cmd); err != nil {
				return err
			}
			switch f.Global.Color {
			case "auto", "always", "never":
			default:
				return usageErrorf("invalid --color %q: use auto, always or never", f.Global.Color)
			}
			f.IO.SetColorMode(f.Global.Color)
			return nil
		},
	}
	root.SetVersionTemplate("fn {{.Version}}\n")
	pf := root.PersistentFlags()
	pf.StringVarP(&f.Global.ProjectDir, "project", "C", ".", "run as if fn was started in `DIR` (the project is found there or above)")
	pf.BoolVar(&f.Global.JSON, "json", false, "print machine-readable JSON on stdout")
	pf.StringVar(&f.Global.Color, "color", "auto", "colour output: auto, always or never (NO_COLOR is respected)")
	pf.BoolVar(&f.Global.Verbose, "verbose", false, "print more detail about what fn does")
	root.SetFlagErrorFunc(func(cmd *cobra.Command, err error) error {
		return &UsageError{Err: err}
	})

	root.AddCommand(
		newCmdInit(f, nil),
		newCmdBuild(f, nil),
		newCmdInvoke(f, nil),
		newCmdDev(f, nil),
		newCmdTimers(f),
		newCmdData(f),
		newCmdImport(f),
		newCmdExport(f),
		newCmdServe(f),
		newCmdLogin(f),
		newCmdLogout(f),
		newCmdWhoami(f),
		newCmdApps(f),
		newCmdDeploy(f),
		newCmdVersions(f),
		newCmdRollback(f),
		newCmdPromote(f),
		newCmdSecrets(f),
		newCmdLogs(f),
		newCmdDoctor(f, nil),
		newCmdVersion(f, nil),
	)
	for _, c := range root.Commands() {
		wrapArgs(c)
	}
	return root
}

// wrapArgs turns cobra's argument-count errors into usage errors (exit 2).
func wrapArgs(c *cobra.Command) {
	if c.Args == nil {
		return
	}
	inner := c.Args
	c.Args = func(cmd *cobra.Command, args []string) error {
		if err := inner(cmd, args); err != nil {
			return &UsageError{Err: err}
		}
		return nil
	}
}

// EnvName is the environment variable that sets a flag: FN_ plus the flag name in upper case.
func EnvName(flag string) string {
	return "FN_" + strings.ToUpper(strings.ReplaceAll(flag, "-", "_"))
}

// applyEnv makes every flag settable as FN_<FLAG>: a flag given on the command line wins,
// otherwise the environment variable, otherwise the default.
func applyEnv(v *viper.Viper, cmd *cobra.Command) error {
	var err error
	cmd.Flags().VisitAll(func(fl *pflag.Flag) {
		if err != nil || fl.Changed || fl.Name == "help" || fl.Name == "version" {
			return
		}
		env := EnvName(fl.Name)
		if bindErr := v.BindEnv(fl.Name, env); bindErr != nil {
			err = bindErr
			return
		}
		if !v.IsSet(fl.Name) {
			return
		}
		if setErr := fl.Value.Set(v.GetString(fl.Name)); setErr != nil {
			err = usageErrorf("invalid %s=%q: %v", env, v.GetString(fl.Name), setErr)
			return
		}
		fl.Changed = true
	})
	return err
}

// UsageError is a mistake in how fn was called: exit code 2.
type UsageError struct{ Err error }

func (e *UsageError) Error() string { return e.Err.Error() }
func (e *UsageError) Unwrap() error { return e.Err }

func usageErrorf(format string, args ...any) error {
	return &UsageError{Err: fmt.Errorf(format, args...)}
}

// HintError adds a suggestion to an error.
type HintError struct {
	Err  error
	Hint string
}

func (e *HintError) Error() string { return e.Err.Error() }
func (e *HintError) Unwrap() error { return e.Err }

func withHint(err error, format string, args ...any) error {
	return &HintError{Err: err, Hint: fmt.Sprintf(format, args...)}
}

// SilentExit ends the command with a code after its output was already printed (e.g. a function
// that failed in fn invoke).
type SilentExit struct{ Code ExitCode }

func (e *SilentExit) Error() string { return fmt.Sprintf("exit status %d", e.Code) }

// reportError prints an error once, on stderr, and chooses the exit code.
func reportError(f *Factory, cmd *cobra.Command, err error) ExitCode {
	var exitErr *SilentExit
	if errors.As(err, &exitErr) {
		return exitErr.Code
	}
	if errors.Is(err, context.Canceled) {
		return ExitInterrupted
	}
	cs := f.IO.Colors()
	err = explain(err)
	msg := formatError(err, f.IO.ColorEnabled())
	fmt.Fprintf(f.IO.ErrOut, "%s %s\n", cs.Red("error:"), msg)
	var hint *HintError
	if errors.As(err, &hint) && hint.Hint != "" {
		fmt.Fprintf(f.IO.ErrOut, "%s %s\n", cs.Yellow("hint:"), hint.Hint)
	}
	var usage *UsageError
	if errors.As(err, &usage) || isCobraUsage(err) {
		if cmd == nil {
			cmd = &cobra.Command{Use: "fn"}
		}
		fmt.Fprintf(f.IO.ErrOut, "Run '%s --help' for usage.\n", cmd.CommandPath())
		return ExitUsage
	}
	return ExitFailure
}

// isCobraUsage recognises cobra's own usage failures, which it returns as plain errors.
func isCobraUsage(err error) bool {
	s := err.Error()
	return strings.HasPrefix(s, "unknown command") || strings.HasPrefix(s, "unknown flag") ||
		strings.HasPrefix(s, "unknown shorthand flag") || strings.HasPrefix(s, "invalid argument") ||
		strings.Contains(s, "flag needs an argument") || strings.HasPrefix(s, "required flag")
}
