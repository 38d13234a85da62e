package commands

import (
	"fmt"

	"github.com/spf13/cobra"
)

func newCmdApps(f *Factory) *cobra.Command {
	cmd := &cobra.Command{
		Use:     "apps <command>",
		Short:   "Create, list and delete apps on the fn server",
		Example: "  $ fn apps create shop\n  $ fn apps list --json\n  $ fn apps delete shop",
		Args:    cobra.NoArgs,
	}
	var wxAppID, wxSecret string
	create := &cobra.Command{
		Use:   "create NAME",
		Short: "Create an app: app id, app key, master key, hook key and the wx environment id",
		Example: `  $ fn apps create shop
  $ fn apps create shop --wx-appid wx1234 --wx-secret …   # enables the wx.login exchange`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := client(cmd.Context())
			if err != nil {
				return err
			}
			app, err := c.CreateApp(cmd.Context(), args[0], wxAppID, wxSecret)
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
	create.Flags().StringVar(&wxAppID, "wx-appid", "", "the mini-program's appid (for POST /wx/{app}/login)")
	create.Flags().StringVar(&wxSecret, "wx-secret", "", "the mini-program's app secret")
	list := &cobra.Command{
		Use:   "list",
		Short: "List apps",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := client(cmd.Context())
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
	del := &cobra.Command{
		Use:   "delete NAME",
		Short: "Delete an app, its versions, data and logs",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := client(cmd.Context())
			if err != nil {
				return err
			}
			if err := c.DeleteApp(cmd.Context(), args[0]); err != nil {
				return err
			}
			fmt.Fprintf(f.IO.ErrOut, "%s deleted app %s\n", f.IO.Colors().SuccessIcon(), args[0])
			return nil
		},
	}
	cmd.AddCommand(create, list, del)
	return cmd
}
