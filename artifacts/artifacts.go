// Package artifacts stores deploy artifacts (bundles and source maps) by content: the name of a
// blob is the sha256 of its bytes, so an upload is verified and stored once however many
// versions use it. Backends pass artifacts/artifactstest.
package artifacts

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"os"
	"regexp"
	"sync"
)

// Errors a backend returns.
var (
	ErrNotFound = errors.New("no such artifact")
	ErrMismatch = errors.New("the content does not match its sha256")
	ErrTooLarge = errors.New("the artifact is over the size limit")
	ErrBadHash  = errors.New("an artifact hash is 64 lower-case hex digits")
)

var hashRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[0-9a-f]{64}$`) })

// ValidHash reports whether h is a sha256 in lower-case hex.
func ValidHash(h string) bool { return hashRE().MatchString(h) }

// Store is an artifact backend.
type Store interface {
	// Has reports whether the artifact is stored (ErrBadHash for a malformed hash).
	Has(ctx context.Context, hash string) (bool, error)
	// Put stores r's content under hash if its sha256 is hash and it is at most max bytes; a
	// truncated, oversized or altered upload stores nothing (ErrMismatch, ErrTooLarge).
	Put(ctx context.Context, hash string, r io.Reader, max int64) error
	// Open reads an artifact (ErrNotFound).
	Open(ctx context.Context, hash string) (io.ReadCloser, error)
}

// HashFile is the artifact hash of a file's contents (hex SHA-256), without reading it whole.
func HashFile(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
