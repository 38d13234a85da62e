package commands

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/fnhq/fn/deployer"
)

type loginOptions struct {
	f         *Factory
	Server    string
	Token     string
	TokenFile string
}

func newCmdLogin(f *Factory) *cobra.Command {
	opts := &loginOptions{f: f}
	cmd := &cobra.Command{
		Use:   "login",
		Short: "Store the URL and admin token of an fn server",
		Long: `Check the token against the server and store both in your config directory (mode 0600).
The token is never printed back. On a terminal fn login asks for it without showing what you
type, so it stays out of your shell history; --token - reads it from stdin and --token-file
from a file. In CI, set FN_SERVER and FN_TOKEN instead.`,
		Example: `  $ fn login --server http://127.0.0.1:8080             # asks for the token
  $ fn login --server https://fn.example.com --token-file ~/.fn-token
  $ pass show fn | fn login --server https://fn.example.com --token -`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if opts.Server == "" {
				return usageErrorf("--server is required: the URL fn serve listens on, e.g. http://127.0.0.1:8080")
			}
			if cmd.Flags().Changed("token") && opts.TokenFile != "" {
				return usageErrorf("--token and --token-file cannot be used together")
			}
			return runLogin(cmd.Context(), opts)
		},
	}
	cmd.Flags().StringVar(&opts.Server, "server", "", "the fn server's URL")
	cmd.Flags().StringVar(&opts.Token, "token", "", "the admin token fn serve printed; - reads it from stdin (asked for on a terminal when not given)")
	cmd.Flags().StringVar(&opts.TokenFile, "token-file", "", "read the admin token from this file")
	return cmd
}

// maxTokenBytes bounds what fn login reads as a token.
const maxTokenBytes = 4096

func runLogin(ctx context.Context, opts *loginOptions) error {
	f := opts.f
	u, err := url.Parse(opts.Server)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return usageErrorf("invalid --server %q: give the URL with http:// or https://, e.g. http://127.0.0.1:8080", opts.Server)
	}
	token, err := loginToken(ctx, opts)
	if err != nil {
		return err
	}
	c := deployer.Credentials{Server: strings.TrimRight(opts.Server, "/"), Token: token}
	if _, err := newClient(ctx, c).Whoami(ctx); err != nil {
		var api *deployer.APIError
		if errors.As(err, &api) && (api.Status == http.StatusUnauthorized || api.Status == http.StatusForbidden) {
			return withHint(fmt.Errorf("the server at %s did not accept the token: %w", c.Server, err),
				"use the admin token fn serve printed on its first start (or its --admin-token-file)")
		}
		return err
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
}

// loginToken takes the token from --token, --token -, --token-file or a hidden prompt.
func loginToken(ctx context.Context, opts *loginOptions) (string, error) {
	f := opts.f
	var token string
	switch {
	case opts.TokenFile != "":
		b, err := readBounded(opts.TokenFile, maxTokenBytes)
		if err != nil {
			return "", &UsageError{Err: fmt.Errorf("--token-file: %w", err)}
		}
		token = string(b)
	case opts.Token == "-":
		b, err := io.ReadAll(io.LimitReader(f.IO.In, maxTokenBytes+1))
		if err != nil {
			return "", err
		}
		if len(b) > maxTokenBytes {
			return "", usageErrorf("--token -: the token on stdin is longer than %d bytes", maxTokenBytes)
		}
		token = string(b)
	case opts.Token != "":
		token = opts.Token
	case f.IO.CanPrompt() && !f.Global.JSON:
		t, err := f.askSecret(ctx, "Admin token (input hidden)")
		if err != nil {
			return "", err
		}
		token = t
	default:
		return "", usageErrorf("no token: give it with --token-file FILE or --token - (stdin), or run fn login on a terminal to be asked")
	}
	token = strings.TrimSpace(token)
	if token == "" {
		return "", usageErrorf("the token is empty")
	}
	if strings.ContainsAny(token, " \t\r\n") {
		return "", usageErrorf("the token must be one line without spaces")
	}
	return token, nil
}

// readBounded reads a small file, refusing one larger than limit.
func readBounded(path string, limit int64) ([]byte, error) {
	file, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer file.Close()
	b, err := io.ReadAll(io.LimitReader(file, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("%s is larger than %d bytes", path, limit)
	}
	return b, nil
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
			c, err := f.Client(cmd.Context())
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

// Client returns the fn server's client, built once per invocation from the stored or
// environment credentials (FN_SERVER/FN_TOKEN over the credentials file).
func (f *Factory) Client(ctx context.Context) (*deployer.Client, error) {
	f.clientOnce.Do(func() {
		c, err := deployer.LoadCredentials()
		if errors.Is(err, deployer.ErrNotLoggedIn) {
			f.clientErr = withHint(err, "run 'fn login --server URL', or set FN_SERVER and FN_TOKEN")
			return
		}
		if err != nil {
			f.clientErr = err
			return
		}
		f.client = newClient(ctx, c)
	})
	return f.client, f.clientErr
}

// newClient returns a client that, with --verbose, prints each HTTP call it makes.
func newClient(ctx context.Context, creds deployer.Credentials) *deployer.Client {
	c := deployer.New(creds)
	if f := factoryFrom(ctx); f != nil && f.Global.Verbose {
		c.Trace = func(call deployer.Call) {
			status := fmt.Sprint(call.Status)
			if call.Err != nil {
				status = "no answer"
			}
			verbosef(f, "%s %s → %s in %d ms", call.Method, call.URL, status, call.Duration.Milliseconds())
		}
	}
	return c
}
