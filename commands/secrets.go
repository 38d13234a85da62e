package commands

import (
	"bufio"
	"fmt"
	"strings"

	"github.com/spf13/cobra"
)

func newCmdSecrets(f *Factory) *cobra.Command {
	var app string
	cmd := &cobra.Command{
		Use:   "secrets <command>",
		Short: "Set, unset and list secrets: env vars of an app's functions, never printed back",
		Example: `  $ fn secrets set API_KEY --value …
  $ echo -n "$API_KEY" | fn secrets set API_KEY
  $ fn secrets list
  $ fn secrets unset API_KEY`,
		Args: cobra.NoArgs,
	}
	cmd.PersistentFlags().StringVar(&app, "app", "", "the app (default: the project's name)")
	var value string
	set := &cobra.Command{
		Use:   "set NAME",
		Short: "Set a secret (from --value or stdin); the functions restart with it",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if !cmd.Flags().Changed("value") {
				if f.IO.IsStdinTTY() {
					return usageErrorf("give the value with --value or on stdin")
				}
				b, err := bufio.NewReader(f.IO.In).ReadString(0)
				if err != nil && b == "" {
					return usageErrorf("no value on stdin")
				}
				value = strings.TrimRight(b, "\r\n")
			}
			c, app, err := appClient(cmd.Context(), f, app)
			if err != nil {
				return err
			}
			if err := c.SetSecret(cmd.Context(), app, args[0], value); err != nil {
				return err
			}
			if f.Global.JSON {
				return writeJSON(f.IO.Out, map[string]any{"app": app, "name": args[0], "set": true})
			}
			fmt.Fprintf(f.IO.ErrOut, "%s secret %s set for %s\n", f.IO.Colors().SuccessIcon(), args[0], app)
			return nil
		},
	}
	set.Flags().StringVar(&value, "value", "", "the secret's value")
	unset := &cobra.Command{
		Use:   "unset NAME",
		Short: "Remove a secret",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, app, err := appClient(cmd.Context(), f, app)
			if err != nil {
				return err
			}
			if err := c.UnsetSecret(cmd.Context(), app, args[0]); err != nil {
				return err
			}
			if f.Global.JSON {
				return writeJSON(f.IO.Out, map[string]any{"app": app, "name": args[0], "set": false})
			}
			fmt.Fprintf(f.IO.ErrOut, "%s secret %s removed from %s\n", f.IO.Colors().SuccessIcon(), args[0], app)
			return nil
		},
	}
	list := &cobra.Command{
		Use:   "list",
		Short: "List secret names (values are never shown)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, app, err := appClient(cmd.Context(), f, app)
			if err != nil {
				return err
			}
			names, err := c.SecretNames(cmd.Context(), app)
			if err != nil {
				return err
			}
			if f.Global.JSON {
				if names == nil {
					names = []string{}
				}
				return writeJSON(f.IO.Out, names)
			}
			for _, n := range names {
				fmt.Fprintln(f.IO.Out, n)
			}
			return nil
		},
	}
	cmd.AddCommand(set, unset, list)
	return cmd
}
