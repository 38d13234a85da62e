package console

import (
	"io/fs"
	"strings"
	"testing"
)

// The page's whole weight (every module, the stylesheet and, when built, the editor bundle),
// as served gzipped, stays within the budget of 300 KB.
func TestAssetBudget(t *testing.T) {
	total := 0
	names := []string{}
	fs.WalkDir(webFS, "web", func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			names = append(names, strings.TrimPrefix(p, "web/"))
		}
		return nil
	})
	for _, n := range names {
		a := load(n)
		if a == nil {
			t.Fatalf("%s does not load", n)
		}
		total += len(a.gz)
	}
	if hasEditor() {
		total += len(load("dist/editor.js").gz)
	} else {
		t.Log("the editor bundle is not built (make console): measuring the page alone")
	}
	t.Logf("%d files, %d bytes gzipped", len(names), total)
	if total > 300<<10 {
		t.Errorf("the console weighs %d KB gzipped, over the 300 KB budget", total>>10)
	}
	if len(names) < 8 {
		t.Errorf("only %d embedded files: %v", len(names), names)
	}
}
