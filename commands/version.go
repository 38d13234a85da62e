package commands

import (
	"fmt"
	"runtime"

	"github.com/spf13/cobra"
)

type versionOptions struct {
	f *Factory
}

type versionInfo struct {
	Version string `json:"version"`
	Go      string `json:"go"`
	OS      string `json:"os"`
	Arch    string `json:"arch"`
}

func newCmdVersion(f *Factory, runF func(*versionOptions) error) *cobra.Command {
	opts := &versionOptions{f: f}
	return &cobra.Command{
		Use:     "version",
		Short:   "Print the fn version",
		Example: "  $ fn version\n  $ fn version --json",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if runF != nil {
				return runF(opts)
			}
			return runVersion(opts)
		},
	}
}

func runVersion(opts *versionOptions) error {
	info := versionInfo{Version: opts.f.Version, Go: runtime.Version(), OS: runtime.GOOS, Arch: runtime.GOARCH}
	if opts.f.Global.JSON {
		return writeJSON(opts.f.IO.Out, info)
	}
	_, err := fmt.Fprintf(opts.f.IO.Out, "fn %s (%s, %s/%s)\n", info.Version, info.Go, info.OS, info.Arch)
	return err
}
