package main

import (
	"archive/tar"
	"archive/zip"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/fnhq/fn/internal/testutil"
)

// TestReleaseArchiveRuns builds the linux/amd64 archive as make release does, checks its
// checksum, unpacks it and runs the binary's fn version.
func TestReleaseArchiveRuns(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a release binary")
	}
	if runtime.GOOS != "linux" || runtime.GOARCH != "amd64" {
		t.Skip("runs the linux/amd64 binary")
	}
	dist := t.TempDir()
	ldflags := "-s -w -X github.com/fnhq/fn/commands.Version=v9.9.9-test -X github.com/fnhq/fn/commands.Commit=abc1234 -X github.com/fnhq/fn/commands.BuildDate=2026-03-01T00:00:00Z"
	if err := run(testutil.RepoRoot(), dist, "v9.9.9-test", ldflags, []string{"linux/amd64"}); err != nil {
		t.Fatal(err)
	}
	name := "fn_v9.9.9-test_linux_amd64.tar.gz"
	sums, err := os.ReadFile(filepath.Join(dist, "SHA256SUMS"))
	if err != nil {
		t.Fatal(err)
	}
	archive, err := os.ReadFile(filepath.Join(dist, name))
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(archive)
	if want := hex.EncodeToString(sum[:]) + "  " + name + "\n"; string(sums) != want {
		t.Fatalf("SHA256SUMS:\n%s\nwant:\n%s", sums, want)
	}
	if exe, err := exec.LookPath("sha256sum"); err == nil {
		c := exec.Command(exe, "-c", "SHA256SUMS")
		c.Dir = dist
		if out, err := c.CombinedOutput(); err != nil {
			t.Fatalf("sha256sum -c: %v\n%s", err, out)
		}
	}

	bin := filepath.Join(t.TempDir(), "fn")
	gz, err := gzip.NewReader(strings.NewReader(string(archive)))
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(gz)
	var names []string
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, h.Name)
		if h.Name == "fn_v9.9.9-test_linux_amd64/fn" {
			if h.Mode&0o111 == 0 {
				t.Fatalf("the binary is not executable: %o", h.Mode)
			}
			b, _ := io.ReadAll(tr)
			if err := os.WriteFile(bin, b, 0o755); err != nil {
				t.Fatal(err)
			}
		}
	}
	if !strings.Contains(strings.Join(names, ","), "fn_v9.9.9-test_linux_amd64/README.md") {
		t.Fatalf("archive holds %v", names)
	}
	out, err := exec.Command(bin, "version", "--json").Output()
	if err != nil {
		t.Fatalf("fn version: %v", err)
	}
	var v struct{ Version, Commit, Date, OS, Arch string }
	if err := json.Unmarshal(out, &v); err != nil || v.Version != "v9.9.9-test" || v.Commit != "abc1234" || v.Date != "2026-03-01T00:00:00Z" || v.OS != "linux" || v.Arch != "amd64" {
		t.Fatalf("fn version --json: %v\n%s", err, out)
	}
}

func TestReleaseRejectsBadInput(t *testing.T) {
	if err := run(".", t.TempDir(), "v1 ; rm -rf /", "", []string{"linux/amd64"}); err == nil || !strings.Contains(err.Error(), "letters, digits") {
		t.Fatalf("a version with spaces: %v", err)
	}
	if err := run(".", t.TempDir(), "v1", "", []string{"linux"}); err == nil || !strings.Contains(err.Error(), "want GOOS/GOARCH") {
		t.Fatalf("a target without arch: %v", err)
	}
}

func TestZipArchiveKeepsNamesAndModes(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "fn.exe")
	if err := os.WriteFile(src, []byte("MZ binary"), 0o755); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "fn.zip")
	if err := writeZip(out, []entry{{src, "fn_v1_windows_amd64/fn.exe", 0o755}}); err != nil {
		t.Fatal(err)
	}
	zr, err := zip.OpenReader(out)
	if err != nil {
		t.Fatal(err)
	}
	defer zr.Close()
	if len(zr.File) != 1 || zr.File[0].Name != "fn_v1_windows_amd64/fn.exe" || zr.File[0].Mode().Perm() != 0o755 {
		t.Fatalf("zip holds %+v", zr.File)
	}
	rc, _ := zr.File[0].Open()
	b, _ := io.ReadAll(rc)
	rc.Close()
	if string(b) != "MZ binary" {
		t.Fatalf("content %q", b)
	}
}
