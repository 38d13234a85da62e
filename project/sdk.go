package project

import (
	"encoding/json"
	"os"
	"path/filepath"
)

// LeanengineVersion is the version of the leanengine package that code in dir resolves (the
// nearest node_modules up the tree), or "unknown".
func LeanengineVersion(dir string) string {
	for d := dir; ; d = filepath.Dir(d) {
		b, err := os.ReadFile(filepath.Join(d, "node_modules", "leanengine", "package.json"))
		if err == nil {
			var pkg struct {
				Version string `json:"version"`
			}
			if json.Unmarshal(b, &pkg) == nil && pkg.Version != "" {
				return pkg.Version
			}
			return "unknown"
		}
		if filepath.Dir(d) == d {
			return "unknown"
		}
	}
}
