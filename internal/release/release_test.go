package main

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"debug/elf"
	"debug/macho"
	"debug/pe"
	"encoding/hex"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/fnhq/fn/internal/testutil"
)

// TestReleaseArchivesForEveryTarget builds every default target as make release does, checks
// SHA256SUMS, unpacks each archive and checks its binary: the host's runs fn version; the others
// are parsed (ELF, Mach-O, PE) for their format and architecture, and linux/arm64 runs under
// qemu-aarch64 where that is installed. Each cross-build costs about a minute on a 2-core
// machine, so by default the test builds three (the host, linux/arm64 and windows/amd64: every
// binary format but Mach-O, and both transports); FN_TEST_RELEASE_ALL=1 builds every target.
func TestReleaseArchivesForEveryTarget(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a release binary per platform")
	}
	targets := DefaultTargets
	if os.Getenv("FN_TEST_RELEASE_ALL") == "" {
		targets = testTargets()
	}
	dist := t.TempDir()
	const version = "v9.9.9-test"
	ldflags := "-s -w -X github.com/fnhq/fn/commands.Version=" + version + " -X github.com/fnhq/fn/commands.Commit=abc1234 -X github.com/fnhq/fn/commands.BuildDate=2026-03-01T00:00:00Z"
	if err := run(testutil.RepoRoot(), dist, version, ldflags, targets); err != nil {
		t.Fatal(err)
	}
	sums, err := os.ReadFile(filepath.Join(dist, "SHA256SUMS"))
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(sums), "\n"); n != len(targets) {
		t.Fatalf("SHA256SUMS has %d lines for %d targets:\n%s", n, len(targets), sums)
	}
	if exe, err := exec.LookPath("sha256sum"); err == nil {
		c := exec.Command(exe, "-c", "SHA256SUMS")
		c.Dir = dist
		if out, err := c.CombinedOutput(); err != nil {
			t.Fatalf("sha256sum -c: %v\n%s", err, out)
		}
	}
	for _, target := range targets {
		goos, goarch, _ := strings.Cut(target, "/")
		t.Run(goos+"_"+goarch, func(t *testing.T) {
			base := "fn_" + version + "_" + goos + "_" + goarch
			name, exe := base+".tar.gz", "fn"
			if goos == "windows" {
				name, exe = base+".zip", "fn.exe"
			}
			archive, err := os.ReadFile(filepath.Join(dist, name))
			if err != nil {
				t.Fatal(err)
			}
			sum := sha256.Sum256(archive)
			if line := hex.EncodeToString(sum[:]) + "  " + name + "\n"; !strings.Contains(string(sums), line) {
				t.Fatalf("SHA256SUMS lacks %q:\n%s", line, sums)
			}
			files := unpack(t, name, archive)
			if _, ok := files[base+"/README.md"]; !ok {
				t.Errorf("%s holds no README.md", name)
			}
			bin, ok := files[base+"/"+exe]
			if !ok {
				t.Fatalf("%s holds no %s", name, exe)
			}
			if bin.mode&0o111 == 0 {
				t.Errorf("%s is not executable: %o", exe, bin.mode)
			}
			if got := binaryPlatform(t, bin.data); got != target {
				t.Fatalf("%s is a %s binary", exe, got)
			}
			path := filepath.Join(t.TempDir(), exe)
			if err := os.WriteFile(path, bin.data, 0o755); err != nil {
				t.Fatal(err)
			}
			var cmd *exec.Cmd
			switch {
			case goos == runtime.GOOS && goarch == runtime.GOARCH:
				cmd = exec.Command(path, "version", "--json")
			case runtime.GOOS == "linux" && target == "linux/arm64":
				qemu, err := exec.LookPath("qemu-aarch64-static")
				if err != nil {
					if qemu, err = exec.LookPath("qemu-aarch64"); err != nil {
						t.Logf("no qemu-aarch64 to run it: checked its format only")
						return
					}
				}
				cmd = exec.Command(qemu, path, "version", "--json")
			default:
				return
			}
			out, err := cmd.Output()
			if err != nil {
				t.Fatalf("%s version: %v", exe, err)
			}
			var v struct{ Version, Commit, Date, OS, Arch string }
			if err := json.Unmarshal(out, &v); err != nil || v.Version != version || v.Commit != "abc1234" || v.Date != "2026-03-01T00:00:00Z" || v.OS != goos || v.Arch != goarch {
				t.Fatalf("fn version --json: %v\n%s", err, out)
			}
		})
	}
}

type archived struct {
	data []byte
	mode os.FileMode
}

// unpack reads a .tar.gz or .zip archive into memory.
func unpack(t *testing.T, name string, archive []byte) map[string]archived {
	t.Helper()
	files := map[string]archived{}
	if strings.HasSuffix(name, ".zip") {
		zr, err := zip.NewReader(bytes.NewReader(archive), int64(len(archive)))
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range zr.File {
			rc, err := f.Open()
			if err != nil {
				t.Fatal(err)
			}
			b, err := io.ReadAll(rc)
			rc.Close()
			if err != nil {
				t.Fatal(err)
			}
			files[f.Name] = archived{b, f.Mode()}
		}
		return files
	}
	gz, err := gzip.NewReader(bytes.NewReader(archive))
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(gz)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return files
		}
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		files[h.Name] = archived{b, os.FileMode(h.Mode)}
	}
}

// binaryPlatform says which GOOS/GOARCH an executable is for, from its headers.
func binaryPlatform(t *testing.T, b []byte) string {
	t.Helper()
	r := bytes.NewReader(b)
	if f, err := elf.NewFile(r); err == nil {
		if f.Type != elf.ET_EXEC || f.Class != elf.ELFCLASS64 {
			t.Errorf("ELF type %v class %v", f.Type, f.Class)
		}
		return "linux/" + map[elf.Machine]string{elf.EM_X86_64: "amd64", elf.EM_AARCH64: "arm64"}[f.Machine]
	}
	if f, err := macho.NewFile(r); err == nil {
		if f.Type != macho.TypeExec {
			t.Errorf("Mach-O type %v", f.Type)
		}
		return "darwin/" + map[macho.Cpu]string{macho.CpuAmd64: "amd64", macho.CpuArm64: "arm64"}[f.Cpu]
	}
	if f, err := pe.NewFile(r); err == nil {
		if f.Characteristics&pe.IMAGE_FILE_EXECUTABLE_IMAGE == 0 {
			t.Errorf("PE characteristics %#x: not an executable image", f.Characteristics)
		}
		if oh, ok := f.OptionalHeader.(*pe.OptionalHeader64); !ok || oh.Subsystem != pe.IMAGE_SUBSYSTEM_WINDOWS_CUI {
			t.Errorf("PE optional header %T: not a 64-bit console program", f.OptionalHeader)
		}
		return "windows/" + map[uint16]string{pe.IMAGE_FILE_MACHINE_AMD64: "amd64", pe.IMAGE_FILE_MACHINE_ARM64: "arm64"}[f.Machine]
	}
	return "unknown"
}

func TestReleaseRejectsBadInput(t *testing.T) {
	if err := run(".", t.TempDir(), "v1 ; rm -rf /", "", []string{"linux/amd64"}); err == nil || !strings.Contains(err.Error(), "letters, digits") {
		t.Fatalf("a version with spaces: %v", err)
	}
	if err := run(".", t.TempDir(), "v1", "", []string{"linux"}); err == nil || !strings.Contains(err.Error(), "want GOOS/GOARCH") {
		t.Fatalf("a target without arch: %v", err)
	}
	if err := run(".", t.TempDir(), "v1", "", []string{"linux/amd64", " linux/amd64"}); err == nil || !strings.Contains(err.Error(), "listed twice") {
		t.Fatalf("a target twice: %v", err)
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

// testTargets is the host's target plus linux/arm64 and windows/amd64, each once.
func testTargets() []string {
	out := []string{runtime.GOOS + "/" + runtime.GOARCH}
	for _, t := range []string{"linux/arm64", "windows/amd64"} {
		if !slices.Contains(out, t) {
			out = append(out, t)
		}
	}
	return out
}
