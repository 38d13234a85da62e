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
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"github.com/spf13/viper"

	"github.com/fnhq/fn/deployer"
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

	prompts prompter

	clientOnce sync.Once
	client     *deployer.Client
	clientErr  error
}

// Main runs fn with the process's arguments and signals. The first Ctrl-C cancels the running
// command (which stops its children gracefully); a second one exits at once.
func Main() ExitCode {
	if sandbox.IsTrampoline(os.Args) {
		// fn serve starts each confined worker as fn itself: confine, then become node
		fmt.Fprintln(os.Stderr, "fn:", sandbox.Exec(os.Args))
		return ExitFailure
	}
	if len(os.Args) == 2 && (os.Args[1] == "--version" || os.Args[1] == "-v") {
		// what the root command's version template prints, without building the command tree
		fmt.Fprintf(os.Stdout, "fn %s\n", Version)
		return ExitOK
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
		// for profiling fn itself: FN_CPUPROFILE=cpu.out fn dev …; a %p in the path becomes the
		// process id, so that every fn a harness starts (fn serve, fn deploy, …) keeps its own.
		path = strings.ReplaceAll(path, "%p", strconv.Itoa(os.Getpid()))
		if f, err := os.Create(path); err == nil {
			pprof.StartCPUProfile(f)
			defer func() { pprof.StopCPUProfile(); f.Close() }()
		}
	}
	if path := os.Getenv("FN_MEMPROFILE"); path != "" {
		// the same for what fn allocates: FN_MEMPROFILE=mem.out fn serve …, written at exit
		// (go tool pprof -sample_index=alloc_space reads what was allocated over the run)
		path = strings.ReplaceAll(path, "%p", strconv.Itoa(os.Getpid()))
		defer func() {
			if f, err := os.Create(path); err == nil {
				pprof.Lookup("allocs").WriteTo(f, 0)
				f.Close()
			}
		}()
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
	ctx = context.WithValue(ctx, factoryKey{}, f)
	root := NewRootCmd(f)
	root.SetArgs(args)
	root.SetIn(ios.In)
	root.SetOut(ios.Out)
	root.SetErr(ios.ErrOut)
	cmd, err := root.ExecuteContextC(ctx)
	if err == nil {
		return ExitOK
	}
	if !f.Global.JSON {
		// a flag error stops parsing before --json is read
		f.Global.JSON = slices.Contains(args, "--json") || slices.Contains(args, "--json=true")
	}
	return reportError(f, cmd, err)
}

type factoryKey struct{}

// factoryFrom is the Factory of the command line whose context ctx is (nil outside Run).
func factoryFrom(ctx context.Context) *Factory {
	f, _ := ctx.Value(factoryKey{}).(*Factory)
	return f
}

// verbosef prints a detail line on stderr with --verbose.
func verbosef(f *Factory, format string, args ...any) {
	if f == nil || !f.Global.Verbose {
		return
	}
	fmt.Fprintf(f.IO.ErrOut, "%s %s\n", f.IO.Colors().Gray("verbose:"), fmt.Sprintf(format, args...))
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
  $ cd hello && fn dev                # serve it locally with hot reload
  $ fn invoke login --data '{"a":1}'  # run one function and print its result
  $ fn deploy --env production        # ship it to your fn server
  $ fn doctor                         # check Node.js, npm, dependencies and ports

Docs: ` + DocsURL,
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
	root.SetFlagErrorFunc(flagError)
	root.AddGroup(
		&cobra.Group{ID: groupLocal, Title: "Local development:"},
		&cobra.Group{ID: groupServer, Title: "Your fn server:"},
		&cobra.Group{ID: groupOther, Title: "Other commands:"},
	)
	root.SetHelpCommandGroupID(groupOther)
	root.SetCompletionCommandGroupID(groupOther)

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
		switch c.Name() {
		case "init", "build", "dev", "invoke", "timers", "data", "logs", "import", "export":
			c.GroupID = groupLocal
		case "doctor", "version":
			c.GroupID = groupOther
		default:
			c.GroupID = groupServer
		}
	}
	walk(root, func(c *cobra.Command) {
		if noun, ok := argNouns[c.CommandPath()]; ok {
			needs(c, noun)
		}
		if c.HasParent() {
			groupCommand(c)
			wrapArgs(c)
		}
	})
	registerCompletions(f, root)
	return root
}

const (
	groupLocal  = "local"
	groupServer = "server"
	groupOther  = "other"
)

// argNouns name each command's positional argument for the error when it is missing.
var argNouns = map[string]string{
	"fn invoke":         "a function name",
	"fn apps create":    "a name for the app",
	"fn apps delete":    "the name of the app to delete",
	"fn secrets set":    "the secret's name",
	"fn secrets unset":  "the secret's name",
	"fn timers next":    "a cron expression",
	"fn timers trigger": "a timer name",
	"fn timers enable":  "a timer name",
	"fn timers disable": "a timer name",
	"fn data import":    "the JSON file to import",
}

// DocsURL is where fn's documentation lives.
const DocsURL = "https://github.com/fnhq/fn#readme"

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
			err = usageErrorf("invalid %s=%q (it sets --%s): %s", env, v.GetString(fl.Name), fl.Name, expectation(fl))
			return
		}
		fl.Changed = true
	})
	return err
}

// layerProject puts a project file's settings under cmd's flags and FN_* variables in the
// invocation's one viper: a flag that neither the command line nor the environment set takes the
// project's value (flag > FN_* env > project file > default, decided here and nowhere else).
func (f *Factory) layerProject(cmd *cobra.Command, values map[string]any) error {
	if err := f.Config.MergeConfigMap(values); err != nil {
		return err
	}
	var err error
	cmd.Flags().VisitAll(func(fl *pflag.Flag) {
		if err != nil || fl.Changed || !f.Config.InConfig(fl.Name) {
			return
		}
		if setErr := fl.Value.Set(f.Config.GetString(fl.Name)); setErr != nil {
			err = fmt.Errorf("%s: %s from the project file: %s", fl.Name, f.Config.GetString(fl.Name), expectation(fl))
		}
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

// reportError prints an error once, on stderr, and chooses the exit code. Under --json the error
// is {"error":{"message":…,"code":…,"hint":…}} on stderr, so that scripts can read it.
func reportError(f *Factory, cmd *cobra.Command, err error) ExitCode {
	var exitErr *SilentExit
	if errors.As(err, &exitErr) {
		return exitErr.Code
	}
	code := ExitFailure
	var usage *UsageError
	if errors.As(err, &usage) || isCobraUsage(err) {
		code = ExitUsage
	}
	if errors.Is(err, context.Canceled) {
		code = ExitInterrupted
	}
	err = explain(err)
	var hint *HintError
	hintText := ""
	if errors.As(err, &hint) {
		hintText = hint.Hint
	}
	if cmd == nil {
		cmd = &cobra.Command{Use: "fn"}
	}
	if f.Global.JSON {
		e := jsonError{Message: tidyCobraMessage(formatError(err, false)), Code: errorCode(err, code), Hint: hintText}
		if code == ExitInterrupted {
			e.Message = "interrupted"
		}
		if code == ExitUsage {
			e.Usage = cmd.CommandPath() + " --help"
		}
		writeJSON(f.IO.ErrOut, map[string]jsonError{"error": e})
		return code
	}
	if code == ExitInterrupted {
		return code
	}
	cs := f.IO.Colors()
	msg := tidyCobraMessage(formatError(err, f.IO.ColorEnabled()))
	fmt.Fprintf(f.IO.ErrOut, "%s %s\n", cs.Red("error:"), msg)
	if hintText != "" {
		fmt.Fprintf(f.IO.ErrOut, "%s %s\n", cs.Yellow("hint:"), hintText)
	}
	if code == ExitUsage {
		fmt.Fprintf(f.IO.ErrOut, "Run '%s --help' for usage.\n", cmd.CommandPath())
	}
	return code
}

// jsonError is the shape of an error under --json. Field names are a contract.
type jsonError struct {
	Message string `json:"message"`
	Code    string `json:"code"`
	Hint    string `json:"hint,omitempty"`
	Usage   string `json:"usage,omitempty"`
}

// tidyCobraMessage puts cobra's multi-line "Did you mean this?" on one line, as fn's own
// suggestions are.
func tidyCobraMessage(msg string) string {
	head, rest, ok := strings.Cut(msg, "\n\nDid you mean this?\n")
	if !ok {
		return msg
	}
	var names []string
	for _, l := range strings.Split(rest, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			names = append(names, "fn "+l)
		}
	}
	if len(names) == 0 {
		return head
	}
	return fmt.Sprintf("%s; did you mean %q?", head, names[0])
}

// isCobraUsage recognises cobra's own usage failures, which it returns as plain errors.
func isCobraUsage(err error) bool {
	s := err.Error()
	return strings.HasPrefix(s, "unknown command") || strings.HasPrefix(s, "unknown flag") ||
		strings.HasPrefix(s, "unknown shorthand flag") || strings.HasPrefix(s, "invalid argument") ||
		strings.Contains(s, "flag needs an argument") || strings.HasPrefix(s, "required flag")
}
