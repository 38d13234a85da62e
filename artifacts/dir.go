package artifacts

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
)

// Dir is the embedded artifact store: one file per blob, named by its hash, in one directory.
type Dir struct {
	dir string
}

var _ Store = (*Dir)(nil)

// OpenDir opens (creating it 0700 if needed) an artifact directory.
func OpenDir(dir string) (*Dir, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("artifacts: %w", err)
	}
	return &Dir{dir: dir}, nil
}

func (d *Dir) path(hash string) (string, error) {
	if !ValidHash(hash) {
		return "", fmt.Errorf("%w, got %q", ErrBadHash, clip(hash))
	}
	return filepath.Join(d.dir, hash), nil
}

// clip keeps a hostile hash from filling an error message.
func clip(s string) string {
	if len(s) > 80 {
		return s[:80] + "…"
	}
	return s
}

// Has implements Store.
func (d *Dir) Has(ctx context.Context, hash string) (bool, error) {
	p, err := d.path(hash)
	if err != nil {
		return false, err
	}
	switch _, err := os.Stat(p); {
	case err == nil:
		return true, nil
	case errors.Is(err, os.ErrNotExist):
		return false, nil
	default:
		return false, fmt.Errorf("artifacts: %w", err)
	}
}

// Put implements Store. The upload goes to a temporary file that is synced and renamed into
// place only once its hash checks out, so a reader never sees a partial blob and a crash leaves
// at most a stray temporary file.
func (d *Dir) Put(ctx context.Context, hash string, r io.Reader, max int64) (err error) {
	p, err := d.path(hash)
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(d.dir, ".upload-*")
	if err != nil {
		return fmt.Errorf("artifacts: %w", err)
	}
	defer func() {
		if err != nil {
			os.Remove(tmp.Name())
		}
	}()
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(tmp, h), io.LimitReader(ctxReader{ctx, r}, max+1))
	if err != nil {
		tmp.Close()
		return fmt.Errorf("artifacts: upload of %s failed: %w", hash[:12], err)
	}
	if n > max {
		tmp.Close()
		return fmt.Errorf("%w: %s is larger than %d bytes", ErrTooLarge, hash[:12], max)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != hash {
		tmp.Close()
		return fmt.Errorf("%w: %s has sha256 %s (truncated or altered upload)", ErrMismatch, hash[:12], got[:12])
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("artifacts: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("artifacts: %w", err)
	}
	// CreateTemp makes the file 0600 already; the content being right is all rename needs.
	if err := os.Rename(tmp.Name(), p); err != nil {
		return fmt.Errorf("artifacts: %w", err)
	}
	return syncDir(d.dir)
}

// syncDir makes the rename durable (Windows cannot sync a directory and needs no such step).
func syncDir(dir string) error {
	if runtime.GOOS == "windows" {
		return nil
	}
	f, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("artifacts: %w", err)
	}
	defer f.Close()
	if err := f.Sync(); err != nil && !errors.Is(err, os.ErrInvalid) {
		return fmt.Errorf("artifacts: syncing %s: %w", dir, err)
	}
	return nil
}

// Open implements Store.
func (d *Dir) Open(ctx context.Context, hash string) (io.ReadCloser, error) {
	p, err := d.path(hash)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(p)
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("%w: %s", ErrNotFound, hash)
	}
	if err != nil {
		return nil, fmt.Errorf("artifacts: %w", err)
	}
	return f, nil
}

// ctxReader stops a long upload when its request is cancelled.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
