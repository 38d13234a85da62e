package commands

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/fnhq/fn/leanstorage"
	"github.com/fnhq/fn/localrun"
	"github.com/fnhq/fn/project"
)

func newCmdData(f *Factory) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "data <command>",
		Short: "Export and import the local LeanStorage data of a lean project",
		Long: `fn dev keeps a lean project's LeanStorage in .fn/data.db. fn data exports it as JSON
({"ClassName": [objects…]}) and imports such a file. Like the console's import on LeanCloud, an
import fires no hooks. Users' passwords are kept as hashes; an imported user may carry a plain
"password", which is hashed on import.`,
		Example: `  $ fn data export > backup.json
  $ fn data import backup.json
  $ fn dev --reset-data                # start from an empty store`,
		Args: cobra.NoArgs,
	}
	openData := func() (*leanstorage.Service, func(), error) {
		p, err := project.Load(f.Global.ProjectDir)
		if err != nil {
			return nil, nil, err
		}
		if p.Dialect != project.Lean {
			return nil, nil, errors.New("fn data works on lean projects (LeanStorage); this project's dialect is " + string(p.Dialect))
		}
		st, err := localrun.OpenData(p, false)
		if err != nil {
			return nil, nil, err
		}
		return leanstorage.New(st, nil, nil), func() { st.Close() }, nil
	}
	export := &cobra.Command{
		Use:     "export",
		Short:   "Print every object as JSON",
		Example: "  $ fn data export > backup.json",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			svc, done, err := openData()
			if err != nil {
				return err
			}
			defer done()
			data, err := svc.Export(cmd.Context())
			if err != nil {
				return err
			}
			return writeJSON(f.IO.Out, data)
		},
	}
	imp := &cobra.Command{
		Use:     "import FILE",
		Short:   "Load objects from a JSON file (no hooks fire)",
		Example: "  $ fn data import backup.json",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			raw, err := os.ReadFile(args[0])
			if err != nil {
				return &UsageError{Err: err}
			}
			var data map[string][]map[string]any
			if err := json.Unmarshal(raw, &data); err != nil {
				return fmt.Errorf("%s: expected {\"ClassName\": [objects…]}: %v", args[0], err)
			}
			svc, done, err := openData()
			if err != nil {
				return err
			}
			defer done()
			n, err := svc.Import(cmd.Context(), data)
			if err != nil {
				return fmt.Errorf("%s: %w", args[0], err)
			}
			if f.Global.JSON {
				return writeJSON(f.IO.Out, map[string]any{"imported": n})
			}
			fmt.Fprintf(f.IO.ErrOut, "%s imported %d objects (no hooks fired)\n", f.IO.Colors().SuccessIcon(), n)
			return nil
		},
	}
	cmd.AddCommand(export, imp)
	return cmd
}
