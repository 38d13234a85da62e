package commands

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/spf13/cobra"

	"github.com/fnhq/fn/lcimport"
	"github.com/fnhq/fn/localrun"
	"github.com/fnhq/fn/project"
	"github.com/fnhq/fn/store"
)

type importOptions struct {
	f             *Factory
	Path          string
	FromLeanCloud bool
	AppID         string
	MasterKey     string
	Server        string
	Class         string
	Classes       []string
	DryRun        bool
	OnError       string
	FilesDir      string
	FilesBaseURL  string
	Restart       bool
	Remote        bool
	App           string
	Local         bool
	NoFiles       bool
}

func newCmdImport(f *Factory) *cobra.Command {
	opts := &importOptions{f: f}
	cmd := &cobra.Command{
		Use:   "import <path> | --from-leancloud",
		Short: "Import a LeanCloud app's data into fn serve or the local LeanStorage (no hooks fire)",
		Long: `Load LeanCloud data into an app on fn serve (--remote), into a running fn dev, or into
the lean project's store (.fn/data.db, what fn dev serves):

  - a console export: <Class>.jsonl files (JSON Lines), a directory of them, or the
    exportData .tar.gz; .json files (an array or {"results": [...]}) and typed CSV too
  - a nightly backup: mongodump's <db>/<Class>.bson files
  - a running app: --from-leancloud pages through every class with the scan API and the
    master key, and resumes where it stopped when run again

Objects keep their objectId, createdAt, updatedAt and ACL. Importing again changes only what
changed. Users keep their LeanCloud password hashes and session tokens. Relation tables
(_Join:<key>:<Class>) are kept and folded into their owners. --files-dir downloads the
contents of _File objects. Bad records are reported with file:line and skipped
(--on-error abort stops at the first); the exit status is 1 when any record failed.

With --remote (fn login) the export is read here and sent to the app on the fn server in
batches; with fn dev running for the project it goes to fn dev (--local writes the store
directly). Either way every _File's content is downloaded from its old URL and uploaded to
the server, which serves it at /__files/<app id>/<objectId>/<name> and rewrites url to that
(--no-files leaves contents where they are).`,
		Example: `  $ fn import export/                        # a directory of <Class>.jsonl
  $ fn import export.tar.gz --dry-run
  $ fn import posts.json --class Post
  $ FN_MASTER_KEY=… fn import --from-leancloud --app-id abc123 --server https://abc123.api.lncldglobal.com
  $ fn import export/ --files-dir .fn/files --files-base-url http://127.0.0.1:3000/files
  $ fn import export.tar.gz --remote --app shop
  $ FN_MASTER_KEY=… fn import --from-leancloud --app-id abc123 --server https://… --remote --app shop`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 1 {
				opts.Path = args[0]
			}
			switch {
			case opts.FromLeanCloud && opts.Path != "":
				return usageErrorf("give a path or --from-leancloud, not both")
			case !opts.FromLeanCloud && opts.Path == "":
				return usageErrorf("give the export to import (a file, directory or .tar.gz), or --from-leancloud")
			case opts.FromLeanCloud && (opts.AppID == "" || opts.Server == ""):
				return usageErrorf("--from-leancloud needs --app-id and --server (the app's API server URL)")
			case opts.FromLeanCloud && opts.MasterKey == "":
				return usageErrorf("--from-leancloud needs the master key: --master-key or FN_MASTER_KEY")
			case opts.FromLeanCloud && opts.Class != "":
				return usageErrorf("--class names the class of one file; with --from-leancloud use --classes")
			}
			if opts.OnError != "skip" && opts.OnError != "abort" {
				return usageErrorf("invalid --on-error %q: use skip or abort", opts.OnError)
			}
			if opts.FilesBaseURL != "" && opts.FilesDir == "" {
				return usageErrorf("--files-base-url rewrites the urls of downloaded files: give --files-dir too")
			}
			if opts.Remote && opts.Local {
				return usageErrorf("--remote and --local cannot be used together")
			}
			if opts.App != "" && !opts.Remote {
				return usageErrorf("--app names the app on the fn server: give --remote too")
			}
			if opts.Remote && opts.FilesDir != "" {
				return usageErrorf("--files-dir is for the local store; an import into a server sends the contents to it")
			}
			if opts.Remote {
				return runImportServer(cmd.Context(), opts, nil)
			}
			if !opts.Local && opts.FilesDir == "" {
				if p, err := project.Load(opts.f.Global.ProjectDir); err == nil && p.Dialect == project.Lean {
					if st, running := localrun.ReadDevState(p); running {
						return runImportServer(cmd.Context(), opts, st)
					}
				}
			}
			return runImport(cmd.Context(), opts)
		},
	}
	fl := cmd.Flags()
	fl.BoolVar(&opts.FromLeanCloud, "from-leancloud", false, "scan a running LeanCloud app instead of reading an export")
	fl.StringVar(&opts.AppID, "app-id", "", "the LeanCloud app's id (with --from-leancloud)")
	fl.StringVar(&opts.MasterKey, "master-key", "", "the LeanCloud app's master key (prefer FN_MASTER_KEY)")
	fl.StringVar(&opts.Server, "server", "", "the LeanCloud app's API server URL (with --from-leancloud)")
	fl.StringVar(&opts.Class, "class", "", "the class of a single file whose name is not the class")
	fl.StringSliceVar(&opts.Classes, "classes", nil, "import only these classes (comma-separated)")
	fl.BoolVar(&opts.DryRun, "dry-run", false, "report what would change, write nothing")
	fl.StringVar(&opts.OnError, "on-error", "skip", "a bad record: skip (report it and go on) or abort")
	fl.StringVar(&opts.FilesDir, "files-dir", "", "download the contents of _File objects into `DIR`")
	fl.StringVar(&opts.FilesBaseURL, "files-base-url", "", "rewrite downloaded files' url to `URL`/<objectId>/<name>")
	fl.BoolVar(&opts.Restart, "restart", false, "with --from-leancloud: forget the saved progress and scan everything again")
	fl.BoolVar(&opts.Remote, "remote", false, "import into an app on the fn server (fn login)")
	fl.StringVar(&opts.App, "app", "", "with --remote: the app (default: the project's name)")
	fl.BoolVar(&opts.Local, "local", false, "write the local store even when fn dev runs")
	fl.BoolVar(&opts.NoFiles, "no-files", false, "with --remote or fn dev: do not copy _File contents")
	return cmd
}

// openLeanData opens the local store of the lean project, as fn data does.
func openLeanData(f *Factory, verb string) (*project.Project, store.Store, error) {
	p, err := project.Load(f.Global.ProjectDir)
	if err != nil {
		return nil, nil, err
	}
	if p.Dialect != project.Lean {
		return nil, nil, fmt.Errorf("fn %s works on lean projects (LeanStorage); this project's dialect is %s", verb, p.Dialect)
	}
	st, err := localrun.OpenData(p, false)
	if err != nil {
		return nil, nil, err
	}
	return p, st, nil
}

type importJSON struct {
	*lcimport.Report
	Source     string       `json:"source"`
	Into       string       `json:"into,omitempty"`
	Error      string       `json:"error,omitempty"`
	NotCarried []notCarried `json:"notCarried,omitempty"`
}

// notCarried is something of a LeanCloud app that no export holds, with the step that carries it.
type notCarried struct {
	What string `json:"what"`
	Step string `json:"step"`
}

// notCarriedList is what an import of a LeanCloud app cannot bring over: none of LeanCloud's
// exports (console, backup, scan, exportData) holds these.
var notCarriedList = []notCarried{
	{"timers (LeanEngine scheduled tasks)", "not in any export: copy each from the console (Cloud functions → Timers) into fn.yaml's timers: and fn deploy"},
	{"class permissions (the console's per-class add/find/update/delete rules)", "not in any export: object ACLs are kept; enforce class rules with beforeSave/beforeUpdate/beforeDelete hooks"},
	{"push certificates and push records", "re-register the certificates with your push provider"},
	{"SMS signatures and templates", "re-register them with your SMS provider"},
	{"instant-messaging history", "fetch it with LeanCloud's IM REST API before the shutdown"},
	{"LeanEngine environment variables", "list them with 'lean env' and set each with 'fn secrets set'"},
}

// importServer is where an import goes when it goes through the admin API.
type importServer struct {
	url, token, app, label, stateSuffix string
}

// runImportServer imports into an app on fn serve (dev == nil) or into the running fn dev: the
// export is read here and its records sent in batches; _File contents are downloaded from
// their old URLs and uploaded to the server.
func runImportServer(ctx context.Context, opts *importOptions, dev *localrun.DevState) error {
	ios := opts.f.IO
	p, _ := project.Load(opts.f.Global.ProjectDir)
	var dst importServer
	if dev != nil {
		dst = importServer{url: dev.URL, app: "-", label: "fn dev at " + dev.URL, stateSuffix: "-to-dev"}
	} else {
		app := opts.App
		if app == "" && p != nil {
			app = p.Name
		}
		if app == "" {
			return usageErrorf("name the app to import into: --app NAME")
		}
		c, err := opts.f.Client(ctx)
		if err != nil {
			return err
		}
		dst = importServer{url: c.Creds.Server, token: c.Creds.Token, app: app, label: app + " on " + c.Creds.Server, stateSuffix: "-to-" + safeName(app)}
	}
	var src lcimport.Source
	var err error
	label := opts.Path
	if opts.FromLeanCloud {
		label = "leancloud:" + opts.AppID
		name := "import-" + safeName(opts.AppID) + dst.stateSuffix + ".state.json"
		var state string
		if p != nil {
			state = p.StatePath(name)
		} else {
			dir, err := os.UserCacheDir()
			if err != nil {
				return err
			}
			if err := os.MkdirAll(filepath.Join(dir, "fn"), 0o700); err != nil {
				return err
			}
			state = filepath.Join(dir, "fn", name)
		}
		if opts.Restart {
			if err := os.Remove(state); err != nil && !errors.Is(err, os.ErrNotExist) {
				return err
			}
		}
		src, err = lcimport.OpenRemote(ctx, lcimport.RemoteOptions{AppID: opts.AppID, MasterKey: opts.MasterKey, ServerURL: opts.Server,
			Classes: opts.Classes, StatePath: state})
	} else {
		src, err = lcimport.Open(opts.Path, lcimport.OpenOptions{Class: opts.Class})
		if errors.Is(err, os.ErrNotExist) {
			return &UsageError{Err: err}
		}
	}
	if err != nil {
		return err
	}
	defer src.Close()
	o := lcimport.Options{DryRun: opts.DryRun, Classes: opts.Classes}
	if opts.OnError == "abort" {
		o.OnError = lcimport.Abort
	}
	if !opts.NoFiles {
		o.Files = &lcimport.FileOptions{}
	}
	showProgress := ios.IsStderrTTY() && !opts.f.Global.JSON
	if showProgress {
		o.Progress = func(pr lcimport.Progress) {
			fmt.Fprintf(ios.ErrOut, "\r  importing %s: %d records read\033[K", pr.Class, pr.Records)
		}
	}
	srv := &lcimport.Server{URL: dst.url, Token: dst.token, App: dst.app}
	rep, runErr := lcimport.ImportInto(ctx, src, srv, o)
	if showProgress {
		fmt.Fprint(ios.ErrOut, "\r\033[K")
	}
	if errors.Is(runErr, context.Canceled) {
		fmt.Fprintln(ios.ErrOut, "interrupted: run the same command again to finish (what is in already stays unchanged)")
		return runErr
	}
	failed := runErr != nil || rep.Totals().Failed > 0 || (rep.Files != nil && rep.Files.Failed > 0)
	if opts.f.Global.JSON {
		out := importJSON{Report: rep, Source: label, Into: dst.label, NotCarried: notCarriedList}
		if runErr != nil {
			out.Error = runErr.Error()
		}
		if err := writeJSON(ios.Out, out); err != nil {
			return err
		}
		if failed {
			return &SilentExit{Code: ExitFailure}
		}
		return nil
	}
	printImportReport(ios.ErrOut, opts, label+" into "+dst.label, rep, ios.Colors().SuccessIcon(), ios.Colors().WarningIcon())
	if !rep.DryRun {
		fmt.Fprintln(ios.ErrOut, "  not carried by any LeanCloud export (do these by hand):")
		for _, n := range notCarriedList {
			fmt.Fprintf(ios.ErrOut, "    - %s: %s\n", n.What, n.Step)
		}
	}
	if runErr != nil {
		return runErr
	}
	if failed {
		return &SilentExit{Code: ExitFailure}
	}
	return nil
}

func runImport(ctx context.Context, opts *importOptions) error {
	ios := opts.f.IO
	p, st, err := openLeanData(opts.f, "import")
	if err != nil {
		return err
	}
	defer st.Close()
	target := &lcimport.StoreTarget{Store: st, FilesDir: opts.FilesDir}
	var src lcimport.Source
	label := opts.Path
	if opts.FromLeanCloud {
		label = "leancloud:" + opts.AppID
		state := p.StatePath("import-" + safeName(opts.AppID) + ".state.json")
		if opts.Restart {
			if err := os.Remove(state); err != nil && !errors.Is(err, os.ErrNotExist) {
				return err
			}
		}
		src, err = lcimport.OpenRemote(ctx, lcimport.RemoteOptions{AppID: opts.AppID, MasterKey: opts.MasterKey, ServerURL: opts.Server,
			Classes: opts.Classes, StatePath: state})
	} else {
		src, err = lcimport.Open(opts.Path, lcimport.OpenOptions{Class: opts.Class})
		if errors.Is(err, os.ErrNotExist) {
			return &UsageError{Err: err}
		}
	}
	if err != nil {
		return err
	}
	defer src.Close()
	o := lcimport.Options{DryRun: opts.DryRun, Classes: opts.Classes}
	if opts.OnError == "abort" {
		o.OnError = lcimport.Abort
	}
	if opts.FilesDir != "" {
		o.Files = &lcimport.FileOptions{}
		if base := strings.TrimRight(opts.FilesBaseURL, "/"); base != "" {
			o.Files.URL = func(obj *store.Object) string {
				name, _ := obj.Fields["name"].(string)
				return base + "/" + obj.ID + "/" + url.PathEscape(name)
			}
		}
	}
	showProgress := ios.IsStderrTTY() && !opts.f.Global.JSON
	if showProgress {
		o.Progress = func(pr lcimport.Progress) {
			fmt.Fprintf(ios.ErrOut, "\r  importing %s: %d records read\033[K", pr.Class, pr.Records)
		}
	}
	rep, runErr := lcimport.Import(ctx, src, target, o)
	if showProgress {
		fmt.Fprint(ios.ErrOut, "\r\033[K")
	}
	if errors.Is(runErr, context.Canceled) {
		if opts.FromLeanCloud {
			fmt.Fprintln(ios.ErrOut, "interrupted: run the same command again to resume")
		}
		return runErr
	}
	if opts.f.Global.JSON {
		out := importJSON{Report: rep, Source: label}
		if runErr != nil {
			out.Error = runErr.Error()
		}
		if err := writeJSON(ios.Out, out); err != nil {
			return err
		}
		if runErr != nil || rep.Totals().Failed > 0 || (rep.Files != nil && rep.Files.Failed > 0) {
			return &SilentExit{Code: ExitFailure}
		}
		return nil
	}
	printImportReport(ios.ErrOut, opts, label, rep, ios.Colors().SuccessIcon(), ios.Colors().WarningIcon())
	if runErr != nil {
		return runErr
	}
	if rep.Totals().Failed > 0 || (rep.Files != nil && rep.Files.Failed > 0) {
		return &SilentExit{Code: ExitFailure}
	}
	return nil
}

func printImportReport(w io.Writer, opts *importOptions, label string, rep *lcimport.Report, ok, warn string) {
	tot := rep.Totals()
	icon := ok
	if tot.Failed > 0 {
		icon = warn
	}
	verb := "imported"
	if rep.DryRun {
		verb = "would import (dry run, nothing written)"
	}
	fmt.Fprintf(w, "%s %s %s: %d added, %d changed, %d unchanged, %d failed (no hooks fired)\n", icon, verb, label, tot.Added, tot.Changed, tot.Unchanged, tot.Failed)
	if len(rep.Classes) > 0 {
		fmt.Fprintf(w, "  %-32s %9s %9s %9s %9s\n", "class", "added", "changed", "unchanged", "failed")
		for _, c := range rep.ClassNames() {
			r := rep.Classes[c]
			fmt.Fprintf(w, "  %-32s %9d %9d %9d %9d\n", c, r.Added, r.Changed, r.Unchanged, r.Failed)
		}
	}
	if rep.Sessions > 0 {
		fmt.Fprintf(w, "  %d session tokens kept\n", rep.Sessions)
	}
	for _, j := range sortedStrings(rep.Relations) {
		fr := rep.Relations[j]
		fmt.Fprintf(w, "  %s: %d rows folded into %d objects", j, fr.Rows, fr.Owners)
		if fr.MissingOwners+fr.UnknownClass > 0 {
			fmt.Fprintf(w, " (%d rows without their owner, %d whose owner has no Relation field)", fr.MissingOwners, fr.UnknownClass)
		}
		fmt.Fprintln(w)
	}
	if rep.Files != nil {
		fmt.Fprintf(w, "  files: %d downloaded (%s), %d already there, %d failed\n", rep.Files.Downloaded, humanSize(rep.Files.Bytes), rep.Files.Present, rep.Files.Failed)
		for _, e := range rep.Files.Errors {
			fmt.Fprintf(w, "    %s\n", e)
		}
	}
	for _, c := range sortedStrings(rep.Skipped) {
		fmt.Fprintf(w, "  %s: %d records not imported (not in --classes)\n", c, rep.Skipped[c])
	}
	for _, e := range rep.Errors {
		fmt.Fprintf(w, "  %s\n", e)
	}
	if rep.ErrorsOmitted > 0 {
		fmt.Fprintf(w, "  … and %d more errors\n", rep.ErrorsOmitted)
	}
}

func sortedStrings[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// safeName makes an app id usable in a file name.
func safeName(s string) string {
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' {
			return r
		}
		return '_'
	}, s)
}
