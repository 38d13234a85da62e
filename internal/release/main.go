// Command release builds fn's release archives: one per target (tar.gz, zip for Windows) with the
// binary, README and licence, and a SHA256SUMS file beside them. make release runs it.
//
//	go run ./internal/release -dist dist -version v1.2.3 -ldflags "…" [-targets linux/amd64,…]
package main

import (
	"archive/tar"
	"archive/zip"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"time"
)

// DefaultTargets are the platforms a release covers (the Makefile's RELEASE_TARGETS too).
var DefaultTargets = []string{"linux/amd64", "linux/arm64", "darwin/amd64", "darwin/arm64", "windows/amd64", "windows/arm64"}

func main() {
	dist := flag.String("dist", "dist", "where the archives go (emptied first)")
	version := flag.String("version", "dev", "the version in the archives' names")
	ldflags := flag.String("ldflags", "", "linker flags for go build")
	targets := flag.String("targets", strings.Join(DefaultTargets, ","), "comma-separated GOOS/GOARCH pairs")
	root := flag.String("root", ".", "the repository root")
	flag.Parse()
	if err := run(*root, *dist, *version, *ldflags, strings.Split(*targets, ",")); err != nil {
		fmt.Fprintln(os.Stderr, "release:", err)
		os.Exit(1)
	}
}

var safeVersion = regexp.MustCompile(`^[A-Za-z0-9._+-]{1,64}$`)

func run(root, dist, version, ldflags string, targets []string) error {
	if !safeVersion.MatchString(version) {
		return fmt.Errorf("version %q: use letters, digits and ._+- only", version)
	}
	if err := os.RemoveAll(dist); err != nil {
		return err
	}
	if err := os.MkdirAll(dist, 0o755); err != nil {
		return err
	}
	type platform struct{ goos, goarch string }
	var platforms []platform
	for _, t := range targets {
		goos, goarch, ok := strings.Cut(strings.TrimSpace(t), "/")
		if !ok || goos == "" || goarch == "" {
			return fmt.Errorf("target %q: want GOOS/GOARCH", t)
		}
		for _, q := range platforms {
			if q == (platform{goos, goarch}) {
				return fmt.Errorf("target %q: listed twice", t)
			}
		}
		platforms = append(platforms, platform{goos, goarch})
	}
	// Two builds at a time: a build's link step uses one core, its compile steps all of them.
	archives := make([]string, len(platforms))
	errs := make([]error, len(platforms))
	slots := make(chan struct{}, 2)
	var wg sync.WaitGroup
	for i, p := range platforms {
		wg.Add(1)
		go func() {
			defer wg.Done()
			slots <- struct{}{}
			defer func() { <-slots }()
			name, err := buildOne(root, dist, version, ldflags, p.goos, p.goarch)
			if err != nil {
				errs[i] = fmt.Errorf("%s/%s: %w", p.goos, p.goarch, err)
				return
			}
			archives[i] = name
			fmt.Fprintf(os.Stderr, "built %s\n", filepath.Join(dist, name))
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	return writeSums(dist, archives)
}

// buildOne builds fn for one platform and archives it; it returns the archive's file name.
func buildOne(root, dist, version, ldflags, goos, goarch string) (string, error) {
	base := fmt.Sprintf("fn_%s_%s_%s", version, goos, goarch)
	exe := "fn"
	if goos == "windows" {
		exe = "fn.exe"
	}
	tmp, err := os.MkdirTemp("", "fn-release-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(tmp)
	bin := filepath.Join(tmp, exe)
	cmd := exec.Command("go", "build", "-trimpath", "-ldflags", ldflags, "-o", bin, "./cmd/fn")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "GOOS="+goos, "GOARCH="+goarch, "CGO_ENABLED=0")
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("go build: %w", err)
	}
	files := []entry{{bin, base + "/" + exe, 0o755}}
	for _, doc := range []string{"README.md", "LICENSE"} {
		if _, err := os.Stat(filepath.Join(root, doc)); err == nil {
			files = append(files, entry{filepath.Join(root, doc), base + "/" + doc, 0o644})
		}
	}
	if goos == "windows" {
		return base + ".zip", writeZip(filepath.Join(dist, base+".zip"), files)
	}
	return base + ".tar.gz", writeTarGz(filepath.Join(dist, base+".tar.gz"), files)
}

type entry struct {
	src, name string
	mode      os.FileMode
}

// modTime is fixed so that archives of the same build are the same bytes.
var modTime = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)

func writeTarGz(path string, files []entry) error {
	out, err := os.Create(path)
	if err != nil {
		return err
	}
	defer out.Close()
	gz := gzip.NewWriter(out)
	tw := tar.NewWriter(gz)
	for _, e := range files {
		b, err := os.ReadFile(e.src)
		if err != nil {
			return err
		}
		if err := tw.WriteHeader(&tar.Header{Name: e.name, Mode: int64(e.mode), Size: int64(len(b)), ModTime: modTime, Typeflag: tar.TypeReg}); err != nil {
			return err
		}
		if _, err := tw.Write(b); err != nil {
			return err
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	if err := gz.Close(); err != nil {
		return err
	}
	return out.Close()
}

func writeZip(path string, files []entry) error {
	out, err := os.Create(path)
	if err != nil {
		return err
	}
	defer out.Close()
	zw := zip.NewWriter(out)
	for _, e := range files {
		h := &zip.FileHeader{Name: e.name, Method: zip.Deflate, Modified: modTime}
		h.SetMode(e.mode)
		w, err := zw.CreateHeader(h)
		if err != nil {
			return err
		}
		f, err := os.Open(e.src)
		if err != nil {
			return err
		}
		_, err = io.Copy(w, f)
		f.Close()
		if err != nil {
			return err
		}
	}
	if err := zw.Close(); err != nil {
		return err
	}
	return out.Close()
}

// writeSums writes SHA256SUMS in the format sha256sum -c reads.
func writeSums(dist string, names []string) error {
	sort.Strings(names)
	var b strings.Builder
	for _, n := range names {
		f, err := os.Open(filepath.Join(dist, n))
		if err != nil {
			return err
		}
		h := sha256.New()
		_, err = io.Copy(h, f)
		f.Close()
		if err != nil {
			return err
		}
		fmt.Fprintf(&b, "%s  %s\n", hex.EncodeToString(h.Sum(nil)), n)
	}
	return os.WriteFile(filepath.Join(dist, "SHA256SUMS"), []byte(b.String()), 0o644)
}
