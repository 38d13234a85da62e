package commands

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/fnhq/fn/lcimport"
)

type exportOptions struct {
	f       *Factory
	Dir     string
	Format  string
	Classes []string
}

func newCmdExport(f *Factory) *cobra.Command {
	opts := &exportOptions{f: f}
	cmd := &cobra.Command{
		Use:   "export <dir>",
		Short: "Export the local LeanStorage as LeanCloud's export files (one per class)",
		Long: `Write every class of the lean project's store into <dir>, one file per class, in the
encoding LeanCloud's console exports and imports: <Class>.jsonl (JSON Lines, the default) or
<Class>.json (a JSON array). Users keep their password hashes (salt and password from
LeanCloud, bcryptPassword for passwords set on fn) and relations come out as
_Join:<key>:<Class> rows. fn import reads the result back unchanged.`,
		Example: `  $ fn export backup/
  $ fn export backup/ --format json --classes Post,_User`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Dir = args[0]
			if opts.Format != "jsonl" && opts.Format != "json" {
				return usageErrorf("invalid --format %q: use jsonl or json", opts.Format)
			}
			return runExport(cmd.Context(), opts)
		},
	}
	cmd.Flags().StringVar(&opts.Format, "format", "jsonl", "jsonl (one object per line) or json (an array per class)")
	cmd.Flags().StringSliceVar(&opts.Classes, "classes", nil, "export only these classes (comma-separated)")
	return cmd
}

func runExport(ctx context.Context, opts *exportOptions) error {
	_, st, err := openLeanData(opts.f, "export")
	if err != nil {
		return err
	}
	defer st.Close()
	counts, err := lcimport.Export(ctx, st, opts.Dir, lcimport.ExportOptions{Format: lcimport.ExportFormat(opts.Format), Classes: opts.Classes})
	if err != nil {
		return err
	}
	ios := opts.f.IO
	if opts.f.Global.JSON {
		return writeJSON(ios.Out, map[string]any{"dir": opts.Dir, "format": opts.Format, "classes": counts})
	}
	total := 0
	for _, n := range counts {
		total += n
	}
	fmt.Fprintf(ios.ErrOut, "%s exported %d objects in %d classes to %s\n", ios.Colors().SuccessIcon(), total, len(counts), opts.Dir)
	for _, c := range sortedStrings(counts) {
		fmt.Fprintf(ios.ErrOut, "  %-32s %9d\n", c, counts[c])
	}
	return nil
}
