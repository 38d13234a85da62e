package commands

import (
	"fmt"

	"github.com/fnhq/fn/admin"
	"github.com/spf13/cobra"
)

func newCmdApps(f *Factory) *cobra.Command {
	cmd := &cobra.Command{
		Use:     "apps <command>",
		Short:   "Create, list and delete apps on the fn server",
		Example: "  $ fn apps create shop\n  $ fn apps list --json\n  $ fn apps delete shop",
		Args:    cobra.NoArgs,
	}
	var req admin.CreateAppRequest
	create := &cobra.Command{
		Use:   "create NAME",
		Short: "Create an app: app id, app key, master key, hook key and the wx environment id",
		Example: `  $ fn apps create shop
  $ fn apps create shop --wx-appid wx1234 --wx-secret …   # enables the wx.login exchange`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := f.Client(cmd.Context())
			if err != nil {
				return err
			}
			req.Name = args[0]
			app, err := c.CreateApp(cmd.Context(), req)
			if err != nil {
				return err
			}
			if f.Global.JSON {
				return writeJSON(f.IO.Out, app)
			}
			fmt.Fprintf(f.IO.ErrOut, "%s created app %s\n", f.IO.Colors().SuccessIcon(), app.Name)
			fmt.Fprintf(f.IO.Out, "appId      %s\nappKey     %s\nmasterKey  %s\nhookKey    %s\nenvId      %s\n", app.ID, app.AppKey, app.MasterKey, app.HookKey, app.EnvID)
			return nil
		},
	}
	create.Flags().StringVar(&req.AppID, "app-id", "", "keep an existing app id (an app moving from LeanCloud)")
	create.Flags().StringVar(&req.AppKey, "app-key", "", "keep an existing app key")
	create.Flags().StringVar(&req.MasterKey, "master-key", "", "keep an existing master key")
	create.Flags().StringVar(&req.HookKey, "hook-key", "", "keep an existing hook key")
	create.Flags().StringVar(&req.WXAppID, "wx-appid", "", "the mini-program's appid (for POST /wx/{app}/login)")
	create.Flags().StringVar(&req.WXSecret, "wx-secret", "", "the mini-program's app secret")
	list := &cobra.Command{
		Use:   "list",
		Short: "List apps",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := f.Client(cmd.Context())
			if err != nil {
				return err
			}
			apps, err := c.Apps(cmd.Context())
			if err != nil {
				return err
			}
			if f.Global.JSON {
				return writeJSON(f.IO.Out, apps)
			}
			for _, a := range apps {
				fmt.Fprintf(f.IO.Out, "%-20s %s  %s\n", a.Name, a.ID, a.CreatedAt.Format("2006-01-02 15:04"))
			}
			return nil
		},
	}
	var yes bool
	del := &cobra.Command{
		Use:   "delete NAME",
		Short: "Delete an app, its versions, data and logs",
		Long: `Delete an app with everything it has on the server: versions, artifacts, data, secrets and
logs. This cannot be undone. On a terminal fn asks you to type the app's name; elsewhere --yes
is required.`,
		Example: "  $ fn apps delete shop\n  $ fn apps delete shop --yes   # in scripts",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			name := args[0]
			if !yes {
				if !f.IO.CanPrompt() || f.Global.JSON {
					return usageErrorf("deleting app %s cannot be undone: add --yes to confirm", name)
				}
				typed, err := f.ask(cmd.Context(), fmt.Sprintf("Delete app %s with its versions, data, secrets and logs? This cannot be undone. Type its name to confirm", name), "", func(string) error { return nil })
				if err != nil {
					return err
				}
				if typed != name {
					return fmt.Errorf("not deleted: you typed %q, not %q", typed, name)
				}
			}
			c, err := f.Client(cmd.Context())
			if err != nil {
				return err
			}
			if err := c.DeleteApp(cmd.Context(), name); err != nil {
				return err
			}
			if f.Global.JSON {
				return writeJSON(f.IO.Out, map[string]any{"name": name, "deleted": true})
			}
			fmt.Fprintf(f.IO.ErrOut, "%s deleted app %s\n", f.IO.Colors().SuccessIcon(), name)
			return nil
		},
	}
	del.Flags().BoolVarP(&yes, "yes", "y", false, "delete without asking")
	cmd.AddCommand(create, list, del)
	return cmd
}
