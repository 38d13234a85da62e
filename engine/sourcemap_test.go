package engine

import (
	"os"
	"path/filepath"
	"testing"
)

// A deployed bundle's map points at the project it was built from; stacks must show those
// project-relative paths, not where the server keeps the version.
func TestMappedSourcesOfADeployedBundleAreProjectRelative(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "apps", "a1", "versions", "3")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	bundle := filepath.Join(dir, "sum.js")
	os.WriteFile(bundle, []byte("x\n"), 0o600)
	// one mapping: bundle line 1 column 0 → source 0 line 1 column 0
	os.WriteFile(bundle+".map", []byte(`{"version":3,"sources":["../../functions/sum/index.js"],"names":[],"mappings":"AAAA"}`), 0o600)
	m := newMapper(dir)
	if got, want := m.mapText("at exports.main ("+bundle+":1:1)"), "at exports.main (functions/sum/index.js:1:1)"; got != want {
		t.Fatalf("mapped %q, want %q", got, want)
	}
	// inside the project (fn dev), sources stay relative to it
	proj := t.TempDir()
	os.MkdirAll(filepath.Join(proj, ".fn", "dev"), 0o700)
	b2 := filepath.Join(proj, ".fn", "dev", "sum.js")
	os.WriteFile(b2, []byte("x\n"), 0o600)
	os.WriteFile(b2+".map", []byte(`{"version":3,"sources":["../../functions/sum/index.js"],"names":[],"mappings":"AAAA"}`), 0o600)
	if got, want := newMapper(proj).mapText(b2+":1:1"), "functions/sum/index.js:1:1"; got != want {
		t.Fatalf("dev: mapped %q, want %q", got, want)
	}
}
