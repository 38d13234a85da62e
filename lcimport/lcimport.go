// Package lcimport moves an app's data out of LeanCloud and into fn: it reads LeanCloud's
// exports (the console's JSON Lines per class, JSON arrays, {results:[…]}, typed CSV, the
// exportData .tar.gz, mongodump BSON backups) or scans a running app over REST, and upserts
// every object, with its id, timestamps and ACL, into a Target (the local store, or later an app
// on fn serve). Writes go straight to the store: no hooks fire, as with LeanCloud's own import.
//
// Readers stream: an export is never held in memory, and every record carries the file and line
// it came from so that errors say where they are. Imports are idempotent (an object already
// stored with the same content is left alone) and therefore resumable: re-running an import
// after an interruption finishes it. A class import is not atomic.
package lcimport

import (
	"context"
	"errors"
	"fmt"
	"io"
)

// MaxObjectSize is the largest object accepted, as in LeanCloud (and MongoDB): 16 MB.
const MaxObjectSize = 16 << 20

// Errors a record can fail with; RecordError wraps one of them.
var (
	ErrMalformed   = errors.New("malformed data")
	ErrTruncated   = errors.New("input is truncated")
	ErrTooLarge    = errors.New("object larger than 16 MB")
	ErrUnknownType = errors.New("unknown __type")
	ErrInvalid     = errors.New("invalid value")
	ErrDuplicate   = errors.New("duplicate objectId in this input")
	ErrChecksum    = errors.New("file content does not match its checksum")
)

// Position is where a record came from: a file (or archive entry) and a line, or for a remote
// app "leancloud:<Class>" and the record's number in the scan.
type Position struct {
	File string
	Line int
}

func (p Position) String() string {
	if p.Line <= 0 {
		return p.File
	}
	return fmt.Sprintf("%s:%d", p.File, p.Line)
}

// Record is one object as LeanCloud's REST API encodes it, with the class it belongs to.
type Record struct {
	Class  string
	Fields map[string]any
	Pos    Position
}

// Source yields records. Next returns io.EOF after the last one. A *RecordError from Next is
// about one record and the source can go on; any other error ends the source.
type Source interface {
	Next(ctx context.Context) (Record, error)
	Close() error
}

// Committer is implemented by sources that keep progress (the LeanCloud scan): the importer
// calls Commit once it is done with a record, successfully or not.
type Committer interface {
	Commit(rec Record) error
}

// RecordError is a problem with one record.
type RecordError struct {
	Pos   Position
	Class string
	ID    string
	Err   error
}

func (e *RecordError) Error() string {
	prefix := e.Pos.String()
	what := e.Class
	if e.ID != "" {
		what += " " + e.ID
	}
	if what != "" {
		if prefix != "" {
			prefix += ": "
		}
		prefix += what
	}
	if prefix == "" {
		return e.Err.Error()
	}
	return prefix + ": " + e.Err.Error()
}

func (e *RecordError) Unwrap() error { return e.Err }

func recordErr(pos Position, class string, err error) *RecordError {
	return &RecordError{Pos: pos, Class: class, Err: err}
}

// multiSource chains sources, one after another.
type multiSource struct {
	sources []func() (Source, error)
	cur     Source
}

func (m *multiSource) Next(ctx context.Context) (Record, error) {
	for {
		if err := ctx.Err(); err != nil {
			return Record{}, err
		}
		if m.cur == nil {
			if len(m.sources) == 0 {
				return Record{}, io.EOF
			}
			open := m.sources[0]
			m.sources = m.sources[1:]
			s, err := open()
			if err != nil {
				return Record{}, err
			}
			m.cur = s
		}
		rec, err := m.cur.Next(ctx)
		if errors.Is(err, io.EOF) {
			m.cur.Close()
			m.cur = nil
			continue
		}
		return rec, err
	}
}

func (m *multiSource) Close() error {
	if m.cur != nil {
		return m.cur.Close()
	}
	return nil
}
