package commands

import (
	"encoding/json"
	"errors"
	"io"

	"github.com/fnhq/fn/bundler"
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
	switch {
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
