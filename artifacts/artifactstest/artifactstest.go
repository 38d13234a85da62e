// Package artifactstest is the conformance suite of artifacts.Store: every backend runs it.
package artifactstest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"

	"github.com/fnhq/fn/artifacts"
)

// Options describe what a backend can do beyond the interface.
type Options struct {
	// Reopen opens again the storage that s was opened on (nil: the backend keeps nothing across
	// a reopen and those tests are skipped).
	Reopen func(t *testing.T, s artifacts.Store) artifacts.Store
}

// Run runs the suite; open returns a new, empty store for one test.
func Run(t *testing.T, open func(t *testing.T) artifacts.Store, o Options) {
	ctx := context.Background()

	t.Run("PutHasOpen", func(t *testing.T) {
		s := open(t)
		blob := []byte("exports.main = async () => 42\n")
		h := Hash(blob)
		mustHas(t, s, h, false)
		if err := s.Put(ctx, h, bytes.NewReader(blob), 1<<20); err != nil {
			t.Fatalf("Put: %v", err)
		}
		mustHas(t, s, h, true)
		mustContent(t, s, h, blob)
		// a second put of the same content is fine and changes nothing
		if err := s.Put(ctx, h, bytes.NewReader(blob), 1<<20); err != nil {
			t.Fatalf("second Put: %v", err)
		}
		mustContent(t, s, h, blob)
	})

	t.Run("EmptyAndExactlyMax", func(t *testing.T) {
		s := open(t)
		if err := s.Put(ctx, Hash(nil), bytes.NewReader(nil), 10); err != nil {
			t.Fatalf("Put of an empty blob: %v", err)
		}
		mustContent(t, s, Hash(nil), nil)
		blob := []byte("0123456789")
		if err := s.Put(ctx, Hash(blob), bytes.NewReader(blob), int64(len(blob))); err != nil {
			t.Fatalf("Put of exactly max bytes: %v", err)
		}
		mustContent(t, s, Hash(blob), blob)
	})

	t.Run("MismatchStoresNothing", func(t *testing.T) {
		s := open(t)
		want := []byte("the real content")
		h := Hash(want)
		err := s.Put(ctx, h, strings.NewReader("the altered content"), 1<<20)
		if !errors.Is(err, artifacts.ErrMismatch) {
			t.Fatalf("Put of other content: %v, want ErrMismatch", err)
		}
		mustHas(t, s, h, false)
		// a truncated upload is a mismatch too
		err = s.Put(ctx, h, bytes.NewReader(want[:5]), 1<<20)
		if !errors.Is(err, artifacts.ErrMismatch) {
			t.Fatalf("Put of truncated content: %v, want ErrMismatch", err)
		}
		mustHas(t, s, h, false)
	})

	t.Run("TooLargeStoresNothing", func(t *testing.T) {
		s := open(t)
		blob := bytes.Repeat([]byte("x"), 101)
		h := Hash(blob)
		err := s.Put(ctx, h, bytes.NewReader(blob), 100)
		if !errors.Is(err, artifacts.ErrTooLarge) {
			t.Fatalf("Put of 101 bytes with max 100: %v, want ErrTooLarge", err)
		}
		mustHas(t, s, h, false)
		// an endless upload stops at the limit instead of filling the disk
		err = s.Put(ctx, h, endless{}, 1000)
		if !errors.Is(err, artifacts.ErrTooLarge) {
			t.Fatalf("Put of an endless reader: %v, want ErrTooLarge", err)
		}
		mustHas(t, s, h, false)
	})

	t.Run("BrokenUploadStoresNothing", func(t *testing.T) {
		s := open(t)
		blob := []byte("half of it arrives")
		h := Hash(blob)
		broken := io.MultiReader(bytes.NewReader(blob[:4]), failing{})
		err := s.Put(ctx, h, broken, 1<<20)
		if err == nil {
			t.Fatal("Put of a failing reader succeeded")
		}
		mustHas(t, s, h, false)
	})

	t.Run("CancelledStoresNothing", func(t *testing.T) {
		s := open(t)
		blob := []byte("too late")
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		if err := s.Put(cctx, Hash(blob), bytes.NewReader(blob), 1<<20); err == nil {
			t.Fatal("Put with a cancelled context succeeded")
		}
		mustHas(t, s, Hash(blob), false)
	})

	t.Run("BadHash", func(t *testing.T) {
		s := open(t)
		blob := []byte("x")
		upper := strings.ToUpper(Hash(blob))
		for _, h := range []string{"", "abc", upper, Hash(blob) + "0", "../../../../etc/passwd", strings.Repeat("g", 64)} {
			if err := s.Put(ctx, h, bytes.NewReader(blob), 10); !errors.Is(err, artifacts.ErrBadHash) {
				t.Errorf("Put(%q): %v, want ErrBadHash", h, err)
			}
			if _, err := s.Has(ctx, h); !errors.Is(err, artifacts.ErrBadHash) {
				t.Errorf("Has(%q): %v, want ErrBadHash", h, err)
			}
			if rc, err := s.Open(ctx, h); !errors.Is(err, artifacts.ErrBadHash) {
				if rc != nil {
					rc.Close()
				}
				t.Errorf("Open(%q): %v, want ErrBadHash", h, err)
			}
		}
		mustHas(t, s, Hash(blob), false)
	})

	t.Run("OpenMissing", func(t *testing.T) {
		s := open(t)
		rc, err := s.Open(ctx, Hash([]byte("never stored")))
		if !errors.Is(err, artifacts.ErrNotFound) {
			if rc != nil {
				rc.Close()
			}
			t.Fatalf("Open of a missing blob: %v, want ErrNotFound", err)
		}
	})

	t.Run("ConcurrentPutsOfOneBlob", func(t *testing.T) {
		s := open(t)
		blob := bytes.Repeat([]byte("same bytes from many deploys\n"), 4096)
		h := Hash(blob)
		const n = 16
		errs := make(chan error, n)
		var wg sync.WaitGroup
		for i := 0; i < n; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				errs <- s.Put(ctx, h, bytes.NewReader(blob), int64(len(blob)))
			}()
		}
		// readers during the puts see either nothing or the whole blob
		for i := 0; i < 20; i++ {
			if ok, err := s.Has(ctx, h); err != nil {
				t.Fatalf("Has during puts: %v", err)
			} else if ok {
				mustContent(t, s, h, blob)
			}
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Errorf("concurrent Put: %v", err)
			}
		}
		mustContent(t, s, h, blob)
	})

	t.Run("ConcurrentPutsOfDifferentBlobs", func(t *testing.T) {
		s := open(t)
		const n = 16
		var wg sync.WaitGroup
		for i := 0; i < n; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				b := []byte(fmt.Sprintf("blob %d", i))
				if err := s.Put(ctx, Hash(b), bytes.NewReader(b), 100); err != nil {
					t.Errorf("Put %d: %v", i, err)
				}
			}()
		}
		wg.Wait()
		for i := 0; i < n; i++ {
			b := []byte(fmt.Sprintf("blob %d", i))
			mustContent(t, s, Hash(b), b)
		}
	})

	t.Run("Reopen", func(t *testing.T) {
		if o.Reopen == nil {
			t.Skip("the backend keeps nothing across a reopen")
		}
		s := open(t)
		blob := []byte("kept")
		if err := s.Put(ctx, Hash(blob), bytes.NewReader(blob), 100); err != nil {
			t.Fatal(err)
		}
		s = o.Reopen(t, s)
		mustContent(t, s, Hash(blob), blob)
		mustHas(t, s, Hash([]byte("other")), false)
	})
}

// Hash is the name of a blob.
func Hash(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

func mustHas(t *testing.T, s artifacts.Store, h string, want bool) {
	t.Helper()
	got, err := s.Has(context.Background(), h)
	if err != nil {
		t.Fatalf("Has(%s): %v", h[:12], err)
	}
	if got != want {
		t.Fatalf("Has(%s) = %v, want %v", h[:12], got, want)
	}
	if !want {
		rc, err := s.Open(context.Background(), h)
		if rc != nil {
			rc.Close()
		}
		if !errors.Is(err, artifacts.ErrNotFound) {
			t.Fatalf("Open(%s) of a blob that is not stored: %v, want ErrNotFound", h[:12], err)
		}
	}
}

func mustContent(t *testing.T, s artifacts.Store, h string, want []byte) {
	t.Helper()
	rc, err := s.Open(context.Background(), h)
	if err != nil {
		t.Fatalf("Open(%s): %v", h[:12], err)
	}
	defer rc.Close()
	got, err := io.ReadAll(rc)
	if err != nil {
		t.Fatalf("reading %s: %v", h[:12], err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("content of %s: %d bytes (sha256 %s), want %d bytes", h[:12], len(got), Hash(got)[:12], len(want))
	}
}

type endless struct{}

func (endless) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = 'y'
	}
	return len(p), nil
}

type failing struct{}

func (failing) Read([]byte) (int, error) { return 0, errors.New("connection reset") }
