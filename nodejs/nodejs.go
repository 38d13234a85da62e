// Package nodejs finds the Node.js executable that runs function workers and checks its version.
package nodejs

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"
)

// MinMajor is the oldest Node.js major version fn supports.
const MinMajor = 18

// MinNodeMajor returns MinMajor (for messages in other packages).
func MinNodeMajor() int { return MinMajor }

// EnvNode names an explicit node executable (FN_NODE), for machines with several versions.
const EnvNode = "FN_NODE"

// Node is a usable Node.js installation.
type Node struct {
	Path    string `json:"path"`
	Version string `json:"version"` // e.g. v20.20.2
	Major   int    `json:"major"`
}

// ErrNotFound means no node executable is on PATH (or at FN_NODE).
var ErrNotFound = errors.New("Node.js not found")

// TooOldError is a node older than MinMajor.
type TooOldError struct{ Node Node }

func (e *TooOldError) Error() string {
	return fmt.Sprintf("Node.js %s at %s is too old: fn needs Node.js %d or newer", e.Node.Version, e.Node.Path, MinMajor)
}

var versionRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^v(\d+)\.(\d+)\.(\d+)`) })

// Find locates node (FN_NODE, else PATH) and checks that it is new enough.
func Find(ctx context.Context) (Node, error) {
	path := os.Getenv(EnvNode)
	if path == "" {
		p, err := exec.LookPath("node")
		if err != nil {
			return Node{}, fmt.Errorf("%w on PATH: fn runs functions in Node.js %d or newer; install it from https://nodejs.org or your package manager", ErrNotFound, MinMajor)
		}
		path = p
	}
	version, err := readVersion(ctx, path)
	if err != nil {
		return Node{}, err
	}
	n := Node{Path: path, Version: version}
	m := versionRE().FindStringSubmatch(n.Version)
	if m == nil {
		return n, fmt.Errorf("cannot read the Node.js version %q printed by %s", n.Version, path)
	}
	n.Major, _ = strconv.Atoi(m[1])
	if n.Major < MinMajor {
		return n, &TooOldError{Node: n}
	}
	return n, nil
}

// FindNPM locates npm on PATH.
func FindNPM() (string, error) {
	p, err := exec.LookPath("npm")
	if err != nil {
		return "", errors.New("npm not found on PATH (it comes with Node.js)")
	}
	return p, nil
}

// readVersion runs node --version, or answers from the user cache when the executable is the
// same file as when it last ran (path, size, mtime, inode): every fn dev and one-shot fn invoke
// asks, and a Node start costs 10–20 ms.
func readVersion(ctx context.Context, path string) (string, error) {
	key := ""
	if real, err := filepath.EvalSymlinks(path); err == nil {
		if st, err := os.Stat(real); err == nil {
			key = fmt.Sprintf("%s\x00%d\x00%d\x00%d", real, st.Size(), st.ModTime().UnixNano(), fileID(st))
		}
	}
	cache := ""
	if dir, err := os.UserCacheDir(); err == nil && key != "" {
		sum := sha256.Sum256([]byte(key))
		cache = filepath.Join(dir, "fn", "node-"+hex.EncodeToString(sum[:8]))
		if b, err := os.ReadFile(cache); err == nil && versionRE().Match(b) {
			return strings.TrimSpace(string(b)), nil
		}
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, path, "--version").Output()
	if err != nil {
		return "", fmt.Errorf("%w: running %s --version failed: %v", ErrNotFound, path, err)
	}
	version := strings.TrimSpace(string(out))
	if cache != "" && versionRE().MatchString(version) {
		// best effort: a cache that cannot be written only costs the next run a Node start
		if os.MkdirAll(filepath.Dir(cache), 0o700) == nil {
			tmp := fmt.Sprintf("%s.%d.tmp", cache, os.Getpid())
			if os.WriteFile(tmp, []byte(version), 0o600) == nil && os.Rename(tmp, cache) != nil {
				os.Remove(tmp)
			}
		}
	}
	return version, nil
}
