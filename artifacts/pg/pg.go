// Package pg stores artifacts in PostgreSQL, as rows of 1 MB bytea chunks. The database rather
// than an S3 bucket: fn's promise for a cluster is PostgreSQL alone, artifacts are small (bundles
// and source maps, bounded by the upload limit) and written once per deploy, and a row commits
// in the same database the version that names it lives in, so a replica never sees a version
// whose blobs are not there. Chunks instead of one value keep a Put's and an Open's memory at
// a chunk, and large objects would need their own cleanup (lo_unlink) and privileges.
package pg

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"

	"github.com/fnhq/fn/artifacts"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// ChunkSize is the bytes of one stored row.
const ChunkSize = 1 << 20

// Store is the PostgreSQL artifact store.
type Store struct{ pool *pgxpool.Pool }

var _ artifacts.Store = (*Store)(nil)

// New returns a store over a pool migrated by pgdb.Open.
func New(pool *pgxpool.Pool) *Store { return &Store{pool: pool} }

func check(hash string) error {
	if !artifacts.ValidHash(hash) {
		if len(hash) > 80 {
			hash = hash[:80] + "…"
		}
		return fmt.Errorf("%w, got %q", artifacts.ErrBadHash, hash)
	}
	return nil
}

// Has implements artifacts.Store.
func (s *Store) Has(ctx context.Context, hash string) (bool, error) {
	if err := check(hash); err != nil {
		return false, err
	}
	var ok bool
	if err := s.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM fn_blobs WHERE hash = $1)`, hash).Scan(&ok); err != nil {
		return false, fmt.Errorf("artifacts: %w", err)
	}
	return ok, nil
}

// Put implements artifacts.Store: the chunks and the blob row commit together once the content
// is verified, or not at all. Concurrent puts of one blob both succeed and store it once.
func (s *Store) Put(ctx context.Context, hash string, r io.Reader, max int64) error {
	if err := check(hash); err != nil {
		return err
	}
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		// one writer per blob: a second put of the same content waits, then finds it stored
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtextextended($1, 11))`, hash); err != nil {
			return fmt.Errorf("artifacts: %w", err)
		}
		var have bool
		if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM fn_blobs WHERE hash = $1)`, hash).Scan(&have); err != nil {
			return fmt.Errorf("artifacts: %w", err)
		}
		sum := sha256.New()
		lr := &io.LimitedReader{R: r, N: max + 1}
		buf := make([]byte, ChunkSize)
		var size int64
		for n := 0; ; n++ {
			if err := ctx.Err(); err != nil {
				return fmt.Errorf("artifacts: upload of %s: %w", hash[:12], err)
			}
			k, err := io.ReadFull(lr, buf)
			if k > 0 {
				size += int64(k)
				if size > max {
					return fmt.Errorf("%w: %s is larger than %d bytes", artifacts.ErrTooLarge, hash[:12], max)
				}
				sum.Write(buf[:k])
				if !have {
					if _, err := tx.Exec(ctx, `INSERT INTO fn_blob_chunks (hash, n, data) VALUES ($1, $2, $3)
						ON CONFLICT (hash, n) DO UPDATE SET data = excluded.data`, hash, n, buf[:k]); err != nil {
						return fmt.Errorf("artifacts: %w", err)
					}
				}
			}
			if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
				break
			}
			if err != nil {
				return fmt.Errorf("artifacts: upload of %s failed: %w", hash[:12], err)
			}
		}
		if got := hex.EncodeToString(sum.Sum(nil)); got != hash {
			return fmt.Errorf("%w: %s has sha256 %s (truncated or altered upload)", artifacts.ErrMismatch, hash[:12], got[:12])
		}
		if have {
			return nil
		}
		if _, err := tx.Exec(ctx, `INSERT INTO fn_blobs (hash, size) VALUES ($1, $2) ON CONFLICT (hash) DO NOTHING`, hash, size); err != nil {
			return fmt.Errorf("artifacts: %w", err)
		}
		return nil
	})
}

// Open implements artifacts.Store: chunks are read one at a time as the caller reads.
func (s *Store) Open(ctx context.Context, hash string) (io.ReadCloser, error) {
	if err := check(hash); err != nil {
		return nil, err
	}
	var size int64
	err := s.pool.QueryRow(ctx, `SELECT size FROM fn_blobs WHERE hash = $1`, hash).Scan(&size)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("%w: %s", artifacts.ErrNotFound, hash)
	}
	if err != nil {
		return nil, fmt.Errorf("artifacts: %w", err)
	}
	return &reader{ctx: ctx, s: s, hash: hash, left: size}, nil
}

type reader struct {
	ctx  context.Context
	s    *Store
	hash string
	n    int
	left int64
	cur  bytes.Reader
}

func (r *reader) Read(p []byte) (int, error) {
	for r.cur.Len() == 0 {
		if r.left <= 0 {
			return 0, io.EOF
		}
		var data []byte
		err := r.s.pool.QueryRow(r.ctx, `SELECT data FROM fn_blob_chunks WHERE hash = $1 AND n = $2`, r.hash, r.n).Scan(&data)
		if err != nil {
			return 0, fmt.Errorf("artifacts: reading chunk %d of %s: %w", r.n, r.hash[:12], err)
		}
		r.n++
		r.left -= int64(len(data))
		r.cur.Reset(data)
	}
	return r.cur.Read(p)
}

func (r *reader) Close() error { return nil }
