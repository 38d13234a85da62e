// Command build bundles the console's code editor (CodeMirror 6 from console/web/node_modules,
// installed by npm ci from the pinned lockfile) with esbuild into console/dist/editor.js, which
// the console embeds. make console runs it; without it the console falls back to a textarea.
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"github.com/evanw/esbuild/pkg/api"
)

func main() {
	dir := flag.String("dir", "console", "the console package directory")
	flag.Parse()
	web := filepath.Join(*dir, "web")
	if _, err := os.Stat(filepath.Join(web, "node_modules", "@codemirror", "view")); err != nil {
		fmt.Fprintln(os.Stderr, "console/web/node_modules is missing: run npm ci in console/web (make console does)")
		os.Exit(1)
	}
	res := api.Build(api.BuildOptions{
		EntryPoints:       []string{filepath.Join(web, "editor", "index.js")},
		Outfile:           filepath.Join(*dir, "dist", "editor.js"),
		Bundle:            true,
		Format:            api.FormatESModule,
		Target:            api.ES2020,
		MinifyWhitespace:  true,
		MinifyIdentifiers: true,
		MinifySyntax:      true,
		LegalComments:     api.LegalCommentsEndOfFile,
		Write:             true,
		LogLevel:          api.LogLevelWarning,
	})
	if len(res.Errors) > 0 {
		os.Exit(1)
	}
}
