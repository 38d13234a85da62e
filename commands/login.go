package commands

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/fnhq/fn/deployer"
)

func newCmdLogin(f *Factory) *cobra.Command {
	var server, token string
	cmd := &cobra.Command{
		Use:   "login",
		Short: "Store the URL and admin token of an fn server",
		Long: `Check the token against the server and store both in your config directory (mode 0600).
The token is never printed back. In CI, set FN_SERVER and FN_TOKEN instead.`,
		Example: "  $ fn login --server http://127.0.0.1:8080 --token fnadm_…",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if server == "" || token == "" {
				return usageErrorf("--server and --token are required")
			}
			c := deployer.Credentials{Server: strings.TrimRight(server, "/"), Token: token}
			if _, err := deployer.New(c).Whoami(cmd.Context()); err != nil {
				return fmt.Errorf("the server did not accept the token: %w", err)
			}
			path, err := deployer.SaveCredentials(c)
			if err != nil {
				return err
			}
			if f.Global.JSON {
				return writeJSON(f.IO.Out, map[string]string{"server": c.Server, "credentials": path})
			}
			fmt.Fprintf(f.IO.ErrOut, "%s logged in to %s (credentials in %s)\n", f.IO.Colors().SuccessIcon(), c.Server, path)
			return nil
		},
	}
	cmd.Flags().StringVar(&server, "server", "", "the fn server's URL")
	cmd.Flags().StringVar(&token, "token", "", "the admin token fn serve printed")
	return cmd
}

func newCmdLogout(f *Factory) *cobra.Command {
	return &cobra.Command{
		Use:   "logout",
		Short: "Forget the stored server and token",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := deployer.DeleteCredentials(); err != nil {
				return err
			}
			fmt.Fprintf(f.IO.ErrOut, "%s logged out\n", f.IO.Colors().SuccessIcon())
			return nil
		},
	}
}

func newCmdWhoami(f *Factory) *cobra.Command {
	return &cobra.Command{
		Use:   "whoami",
		Short: "Show which fn server you are logged in to",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := client(cmd.Context())
			if err != nil {
				return err
			}
			info, err := c.Whoami(cmd.Context())
			if err != nil {
				return err
			}
			if f.Global.JSON {
				return writeJSON(f.IO.Out, map[string]any{"server": c.Creds.Server, "role": info["role"], "apps": info["apps"]})
			}
			fmt.Fprintf(f.IO.Out, "%s as %v (%v apps)\n", c.Creds.Server, info["role"], info["apps"])
			return nil
		},
	}
}

// client returns a deployer client from the stored or environment credentials.
func client(ctx context.Context) (*deployer.Client, error) {
	c, err := deployer.LoadCredentials()
	if errors.Is(err, deployer.ErrNotLoggedIn) {
		return nil, withHint(err, "run 'fn login --server URL --token TOKEN', or set FN_SERVER and FN_TOKEN")
	}
	if err != nil {
		return nil, err
	}
	return deployer.New(c), nil
}
