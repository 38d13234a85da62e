package commands

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"runtime/debug"

	"github.com/spf13/cobra"

	"github.com/fnhq/fn/nodejs"
)

// Commit and BuildDate are set at link time by make build / make release
// (-X github.com/fnhq/fn/commands.Commit=… -X …BuildDate=…); a binary from go install takes
// them from the build information Go records.
var (
	Commit    = ""
	BuildDate = ""
)

type versionOptions struct {
	f *Factory
}

type versionInfo struct {
	Version string       `json:"version"`
	Commit  string       `json:"commit"`
	Date    string       `json:"date"`
	Go      string       `json:"go"`
	OS      string       `json:"os"`
	Arch    string       `json:"arch"`
	Node    *nodeVersion `json:"node"` // null when no usable Node.js was found
}

type nodeVersion struct {
	Version string `json:"version"`
	Path    string `json:"path"`
	Problem string `json:"problem,omitempty"` // e.g. too old
}

func newCmdVersion(f *Factory, runF func(*versionOptions) error) *cobra.Command {
	opts := &versionOptions{f: f}
	return &cobra.Command{
		Use:     "version",
		Short:   "Print the fn version, commit, build date, Go and the Node.js fn will use",
		Example: "  $ fn version\n  $ fn version --json",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if runF != nil {
				return runF(opts)
			}
			return runVersion(cmd.Context(), opts)
		},
	}
}

// buildInfo is the version, commit and date of this binary: from the link-time variables, else
// from Go's build information (go install …@v1.2.3 records the module version; a build in a
// git checkout records the revision and its time).
func buildInfo(version string) (v, commit, date string) {
	v, commit, date = version, Commit, BuildDate
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return v, commit, date
	}
	if v == "dev" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		v = bi.Main.Version
	}
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			if commit == "" {
				commit = s.Value
			}
		case "vcs.time":
			if date == "" {
				date = s.Value
			}
		}
	}
	return v, commit, date
}

func runVersion(ctx context.Context, opts *versionOptions) error {
	v, commit, date := buildInfo(opts.f.Version)
	info := versionInfo{Version: v, Commit: commit, Date: date, Go: runtime.Version(), OS: runtime.GOOS, Arch: runtime.GOARCH}
	n, err := nodejs.Find(ctx)
	var tooOld *nodejs.TooOldError
	switch {
	case err == nil:
		info.Node = &nodeVersion{Version: n.Version, Path: n.Path}
	case errors.As(err, &tooOld):
		info.Node = &nodeVersion{Version: n.Version, Path: n.Path, Problem: fmt.Sprintf("too old: fn needs Node.js %d or newer", nodejs.MinMajor)}
	}
	if opts.f.Global.JSON {
		return writeJSON(opts.f.IO.Out, info)
	}
	w := opts.f.IO.Out
	orUnknown := func(s string) string {
		if s == "" {
			return "unknown"
		}
		return s
	}
	fmt.Fprintf(w, "fn %s\n", info.Version)
	fmt.Fprintf(w, "  commit  %s\n", orUnknown(info.Commit))
	fmt.Fprintf(w, "  built   %s\n", orUnknown(info.Date))
	fmt.Fprintf(w, "  go      %s %s/%s\n", info.Go, info.OS, info.Arch)
	switch {
	case info.Node == nil:
		fmt.Fprintf(w, "  node    not found (install Node.js %d or newer, or set FN_NODE)\n", nodejs.MinMajor)
	case info.Node.Problem != "":
		fmt.Fprintf(w, "  node    %s at %s: %s\n", info.Node.Version, info.Node.Path, info.Node.Problem)
	default:
		fmt.Fprintf(w, "  node    %s at %s\n", info.Node.Version, info.Node.Path)
	}
	return nil
}
