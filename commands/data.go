package commands

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/fnhq/fn/leanstorage"
	"github.com/fnhq/fn/localrun"
	"github.com/fnhq/fn/project"
	"github.com/fnhq/fn/wxdb"
)

func newCmdData(f *Factory) *cobra.Command {
	var wxEnv, collection, mode string
	cmd := &cobra.Command{
		Use:   "data <command>",
		Short: "List, export and import the local data: LeanStorage (lean) or the cloud database (wx)",
		Long: `fn dev keeps a lean project's LeanStorage in .fn/data.db. fn data exports it as JSON
({"ClassName": [objects…]}) and imports such a file. Like the console's import on LeanCloud, an
import fires no hooks. Users' passwords are kept as hashes; an imported user may carry a plain
"password", which is hashed on import.

A wx project's cloud database is in .fn/wxdb.db. fn data list names its collections; export and
import move one collection as JSON Lines, one document per line in Extended JSON (dates as
{"$date": …}), the format the CloudBase console exports and imports. --env picks the database
environment (default: the project's, which cloud.init() and DYNAMIC_CURRENT_ENV use).`,
		Example: `  $ fn data export > backup.json
  $ fn data import backup.json
  $ fn data list                                   # wx: the collections
  $ fn data export todos > todos.json              # wx: one collection as JSON Lines
  $ fn data import todos.json --mode upsert        # wx: into the collection todos
  $ fn dev --reset-data                            # start from an empty store`,
		Args: cobra.NoArgs,
	}
	load := func() (*project.Project, error) { return project.Load(f.Global.ProjectDir) }
	openData := func() (*leanstorage.Service, func(), error) {
		p, err := load()
		if err != nil {
			return nil, nil, err
		}
		if p.Dialect != project.Lean {
			return nil, nil, errors.New("fn data works on lean projects here; this project's dialect is " + string(p.Dialect))
		}
		st, err := localrun.OpenData(p, false)
		if err != nil {
			return nil, nil, err
		}
		return leanstorage.New(st, nil, nil), func() { st.Close() }, nil
	}
	// openWX opens a wx project's cloud database; p is nil for a lean project.
	openWX := func() (*project.Project, *wxdb.DB, string, error) {
		p, err := load()
		if err != nil || p.Dialect != project.WX {
			return p, nil, "", err
		}
		env := wxEnv
		if env == "" {
			env = p.EnvID
		}
		db, err := localrun.OpenWXData(p, false)
		if err != nil {
			return nil, nil, "", err
		}
		return p, db, env, nil
	}
	list := &cobra.Command{
		Use:     "list",
		Short:   "List the collections of a wx project's cloud database",
		Example: "  $ fn data list\n  $ fn data list --env prod-4gx1 --json",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			p, db, env, err := openWX()
			if err != nil {
				return err
			}
			if db == nil {
				return errors.New("fn data list is for wx projects (the cloud database); this project's dialect is " + string(p.Dialect))
			}
			defer db.Close()
			names, err := db.Collections(cmd.Context(), env)
			if err != nil {
				return err
			}
			if names == nil {
				names = []string{}
			}
			if f.Global.JSON {
				return writeJSON(f.IO.Out, map[string]any{"env": env, "collections": names})
			}
			for _, n := range names {
				fmt.Fprintln(f.IO.Out, n)
			}
			if len(names) == 0 {
				fmt.Fprintf(f.IO.ErrOut, "no collections in environment %s\n", env)
			}
			return nil
		},
	}
	export := &cobra.Command{
		Use:     "export [COLLECTION]",
		Short:   "Print every object as JSON (lean), or one collection as JSON Lines (wx)",
		Example: "  $ fn data export > backup.json\n  $ fn data export todos > todos.json",
		Args:    cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			_, db, env, err := openWX()
			if err != nil {
				return err
			}
			if db != nil {
				defer db.Close()
				if len(args) == 0 {
					names, _ := db.Collections(cmd.Context(), env)
					return &UsageError{Err: fmt.Errorf("name the collection to export: fn data export COLLECTION (collections in %s: %s)", env, listOrNone(names))}
				}
				n, err := db.Export(cmd.Context(), env, args[0], f.IO.Out)
				if err != nil {
					return err
				}
				if !f.Global.JSON {
					fmt.Fprintf(f.IO.ErrOut, "%s exported %d documents of %s\n", f.IO.Colors().SuccessIcon(), n, args[0])
				}
				return nil
			}
			if len(args) > 0 {
				return &UsageError{Err: errors.New("a lean export takes no collection: it exports every class")}
			}
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
		Short:   "Load objects from a JSON file (lean, no hooks fire), or JSON Lines into a collection (wx)",
		Example: "  $ fn data import backup.json\n  $ fn data import todos.json                      # wx: into todos\n  $ fn data import export.json --collection todos --mode upsert",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			_, db, env, err := openWX()
			if err != nil {
				return err
			}
			if db != nil {
				defer db.Close()
				return importWX(cmd, f, db, env, args[0], collection, mode)
			}
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
	for _, c := range []*cobra.Command{list, export, imp} {
		c.Flags().StringVar(&wxEnv, "env", "", "wx: the database environment (default: the project's environment id)")
	}
	imp.Flags().StringVar(&collection, "collection", "", "wx: the collection to import into (default: the file's name without its extension)")
	imp.Flags().StringVar(&mode, "mode", "insert", "wx: insert (a document whose _id exists fails the import) or upsert (it is replaced)")
	cmd.AddCommand(list, export, imp)
	for _, c := range cmd.Commands() {
		wrapArgs(c)
	}
	return cmd
}

func importWX(cmd *cobra.Command, f *Factory, db *wxdb.DB, env, file, collection, mode string) error {
	var m wxdb.ImportMode
	switch mode {
	case "insert":
		m = wxdb.ImportInsert
	case "upsert":
		m = wxdb.ImportUpsert
	default:
		return usageErrorf("--mode must be insert or upsert, got %q", mode)
	}
	if collection == "" {
		base := filepath.Base(file)
		collection = strings.TrimSuffix(base, filepath.Ext(base))
	}
	in, err := os.Open(file)
	if err != nil {
		return &UsageError{Err: err}
	}
	defer in.Close()
	n, err := db.Import(cmd.Context(), env, collection, in, m)
	if err != nil {
		return fmt.Errorf("%s: %w", file, err)
	}
	if f.Global.JSON {
		return writeJSON(f.IO.Out, map[string]any{"imported": n, "collection": collection, "env": env})
	}
	fmt.Fprintf(f.IO.ErrOut, "%s imported %d documents into %s\n", f.IO.Colors().SuccessIcon(), n, collection)
	return nil
}

func listOrNone(names []string) string {
	if len(names) == 0 {
		return "none yet"
	}
	return strings.Join(names, ", ")
}
