package commands

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"

	"github.com/fnhq/fn/bundler"
	"github.com/fnhq/fn/deployer"
	"github.com/fnhq/fn/nodejs"
	"github.com/fnhq/fn/project"
)

// explain attaches a hint to library errors that have a usual fix.
func explain(err error) error {
	var hint *HintError
	if errors.As(err, &hint) {
		return err
	}
	var tooOld *nodejs.TooOldError
	var api *deployer.APIError
	var down *deployer.UnreachableError
	switch {
	case errors.As(err, &down):
		return withHint(err, "start it with 'fn serve', or log in to another server with 'fn login --server URL'")
	case errors.Is(err, deployer.ErrNotLoggedIn):
		return withHint(err, "run 'fn login --server URL', or set FN_SERVER and FN_TOKEN")
	case errors.As(err, &api) && api.NoSuchApp():
		name := strings.TrimSpace(strings.TrimPrefix(strings.TrimPrefix(api.Msg, "no such app"), ":"))
		if name == "" {
			name = "NAME"
		}
		return withHint(err, "create it with 'fn apps create %s', or name another app with --app", name)
	case errors.As(err, &api) && api.NotDeployed():
		env := strings.TrimSuffix(strings.TrimPrefix(api.Msg, "nothing is deployed to "), " yet")
		if env != DefaultEnv {
			return withHint(err, "deploy to it with 'fn deploy --env %s', or leave out --env to use %s", env, DefaultEnv)
		}
		return withHint(err, "deploy to it with 'fn deploy --env %s' (fn uses %s unless --env says otherwise: %s)", env, DefaultEnv, defaultEnvWhy)
	case errors.As(err, &api) && api.Status == http.StatusUnauthorized:
		return withHint(err, "the server did not accept the token: log in again with 'fn login', or check FN_TOKEN")
	case errors.Is(err, project.ErrNoProject):
		return withHint(err, "create a project with 'fn init', or point at one with -C DIR")
	case errors.As(err, &tooOld):
		return withHint(err, "install Node.js %d or newer (https://nodejs.org), or set FN_NODE to a newer node", nodejs.MinNodeMajor())
	case errors.Is(err, nodejs.ErrNotFound):
		return withHint(err, "install Node.js %d or newer (https://nodejs.org), or set FN_NODE to its path; 'fn doctor' checks the set-up", nodejs.MinNodeMajor())
	}
	return err
}

// formatError renders an error; build errors keep esbuild's formatting (with colour on a terminal).
func formatError(err error, color bool) string {
	var be *bundler.BuildError
	var mbe *bundler.MultiBuildError
	switch {
	case errors.As(err, &mbe):
		return "build failed\n" + mbe.Format(color)
	case errors.As(err, &be):
		return "build failed\n" + be.Format(color)
	}
	return err.Error()
}

// writeJSON prints v as indented JSON: the one way commands print machine output.
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}

// errorCode is the machine-readable kind of an error under --json.
func errorCode(err error, exit ExitCode) string {
	var api *deployer.APIError
	var down *deployer.UnreachableError
	var be *bundler.BuildError
	var mbe *bundler.MultiBuildError
	switch {
	case exit == ExitInterrupted:
		return "interrupted"
	case exit == ExitUsage:
		return "usage"
	case errors.Is(err, project.ErrNoProject):
		return "no_project"
	case errors.Is(err, deployer.ErrNotLoggedIn):
		return "not_logged_in"
	case errors.As(err, &down):
		return "server_unreachable"
	case errors.As(err, &api) && api.NoSuchApp():
		return "no_such_app"
	case errors.As(err, &api) && api.NotDeployed():
		return "not_deployed"
	case errors.As(err, &api) && api.Status == http.StatusUnauthorized:
		return "unauthorized"
	case errors.As(err, &api) && api.Status == http.StatusNotFound:
		return "not_found"
	case errors.As(err, &api):
		return "server_error"
	case errors.As(err, &be) || errors.As(err, &mbe):
		return "build_failed"
	case errors.Is(err, nodejs.ErrNotFound):
		return "node_not_found"
	}
	return "error"
}
