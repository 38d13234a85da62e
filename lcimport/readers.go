package lcimport

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
)

// OpenOptions say how Open reads a path.
type OpenOptions struct {
	// Class names the class of a single file whose name is not the class (e.g. posts.jsonl).
	Class string
}

// Open reads an export: a file (.jsonl, .json, .csv, .bson), a directory of them (each file's
// name without its extension is its class, as LeanCloud names the files it exports), or an
// exportData / backup archive (.tar.gz, .tgz, .tar) holding such files.
func Open(name string, opts OpenOptions) (Source, error) {
	st, err := os.Stat(name)
	if err != nil {
		return nil, err
	}
	if st.IsDir() {
		if opts.Class != "" {
			return nil, fmt.Errorf("%s is a directory: a class name is given only for a single file", name)
		}
		return openDir(name)
	}
	lower := strings.ToLower(name)
	if strings.HasSuffix(lower, ".tar.gz") || strings.HasSuffix(lower, ".tgz") || strings.HasSuffix(lower, ".tar") {
		return openTar(name)
	}
	class := opts.Class
	if class == "" {
		var ok bool
		if class, ok = classFromName(filepath.Base(name)); !ok {
			return nil, fmt.Errorf("%s: cannot tell the class from the file name (use %s.jsonl, or name the class)", name, "<Class>")
		}
	}
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	src, err := fileSource(f, name, class, kindOf(lower))
	if err != nil {
		f.Close()
		return nil, err
	}
	return src, nil
}

type kind int

const (
	kindUnknown kind = iota
	kindJSONL
	kindJSON
	kindCSV
	kindBSON
)

func kindOf(name string) kind {
	switch strings.ToLower(path.Ext(name)) {
	case ".jsonl", ".ndjson":
		return kindJSONL
	case ".json":
		return kindJSON
	case ".csv":
		return kindCSV
	case ".bson":
		return kindBSON
	}
	return kindUnknown
}

// skipName reports files in an export that hold no objects: mongodump's metadata, schema
// exports, dot files.
func skipName(base string) bool {
	l := strings.ToLower(base)
	return strings.HasPrefix(base, ".") || strings.HasSuffix(l, ".metadata.json") || strings.HasSuffix(l, ".schema.json") ||
		l == "schema.json" || l == "schemas.json"
}

func classFromName(base string) (string, bool) {
	ext := path.Ext(base)
	if kindOf(base) == kindUnknown {
		return "", false
	}
	c := strings.TrimSuffix(base, ext)
	return c, ValidClass(c)
}

// fileSource reads one file of a known kind; rc is closed with the source.
func fileSource(rc io.ReadCloser, name, class string, k kind) (Source, error) {
	switch k {
	case kindJSONL:
		return newJSONL(rc, name, class), nil
	case kindCSV:
		return newCSV(rc, name, class)
	case kindBSON:
		return newBSON(rc, name, class), nil
	case kindJSON:
		br := bufio.NewReaderSize(rc, 64<<10)
		switch sniffJSON(br) {
		case '[':
			return newJSONArray(br, rc, name, class, false)
		case 'r':
			return newJSONArray(br, rc, name, class, true)
		default:
			return newJSONLFrom(br, rc, name, class), nil
		}
	}
	return nil, fmt.Errorf("%s: not an export file (.jsonl, .json, .csv or .bson)", name)
}

// sniffJSON tells a JSON array ('['), a {"results": [...]} object ('r') and JSON Lines apart
// from the first 64 KB: an object whose top level has a "results" key holding an array is a
// results dump, anything else starting with '{' is JSON Lines.
func sniffJSON(br *bufio.Reader) byte {
	head, _ := br.Peek(64 << 10)
	head = bytes.TrimPrefix(head, []byte("\xef\xbb\xbf"))
	trimmed := bytes.TrimLeft(head, " \t\r\n")
	if len(trimmed) > 0 && trimmed[0] == '[' {
		return '['
	}
	if topLevelResults(trimmed) {
		return 'r'
	}
	return '{'
}

// topLevelResults scans the start of a JSON object for a key "results" at depth 1 whose value
// is an array.
func topLevelResults(b []byte) bool {
	depth := 0
	for i := 0; i < len(b); i++ {
		switch c := b[i]; c {
		case '{', '[':
			depth++
		case '}', ']':
			depth--
			if depth == 0 {
				return false // the first object ended without one
			}
		case '"':
			j := i + 1
			for j < len(b) && b[j] != '"' {
				if b[j] == '\\' {
					j++
				}
				j++
			}
			if j >= len(b) {
				return false
			}
			if depth == 1 && string(b[i+1:j]) == "results" {
				rest := bytes.TrimLeft(b[j+1:], " \t\r\n")
				if len(rest) > 0 && rest[0] == ':' {
					rest = bytes.TrimLeft(rest[1:], " \t\r\n")
					return len(rest) > 0 && rest[0] == '['
				}
			}
			i = j
		}
	}
	return false
}

func openDir(dir string) (Source, error) {
	var files []string
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() || skipName(d.Name()) || kindOf(d.Name()) == kindUnknown {
			return nil
		}
		files = append(files, p)
		return nil
	})
	if err != nil {
		return nil, err
	}
	sort.Strings(files)
	m := &multiSource{}
	for _, p := range files {
		class, ok := classFromName(filepath.Base(p))
		if !ok {
			return nil, fmt.Errorf("%s: the file name is not a class name", p)
		}
		m.sources = append(m.sources, func() (Source, error) {
			f, err := os.Open(p)
			if err != nil {
				return nil, err
			}
			s, err := fileSource(f, p, class, kindOf(p))
			if err != nil {
				f.Close()
			}
			return s, err
		})
	}
	return m, nil
}

// ---- JSON Lines

type jsonlSource struct {
	br     *bufio.Reader
	closer io.Closer
	name   string
	class  string
	line   int
	buf    []byte
}

func newJSONL(rc io.ReadCloser, name, class string) *jsonlSource {
	return newJSONLFrom(bufio.NewReaderSize(rc, 64<<10), rc, name, class)
}

func newJSONLFrom(br *bufio.Reader, c io.Closer, name, class string) *jsonlSource {
	return &jsonlSource{br: br, closer: c, name: name, class: class}
}

func (s *jsonlSource) Next(ctx context.Context) (Record, error) {
	for {
		if err := ctx.Err(); err != nil {
			return Record{}, err
		}
		line, tooLarge, complete, err := readLine(s.br, s.buf[:0], MaxObjectSize)
		s.buf = line[:0]
		if errors.Is(err, io.ErrUnexpectedEOF) {
			// a cut-off archive or gzip stream
			return Record{}, &fatalError{recordErr(Position{File: s.name, Line: s.line + 1}, s.class, fmt.Errorf("%w: %v", ErrTruncated, err))}
		}
		if err != nil && !errors.Is(err, io.EOF) {
			return Record{}, fmt.Errorf("%s:%d: %w", s.name, s.line+1, err)
		}
		if errors.Is(err, io.EOF) && len(line) == 0 && !tooLarge {
			return Record{}, io.EOF
		}
		s.line++
		pos := Position{File: s.name, Line: s.line}
		if tooLarge {
			return Record{}, recordErr(pos, s.class, ErrTooLarge)
		}
		if s.line == 1 {
			line = bytes.TrimPrefix(line, []byte("\xef\xbb\xbf"))
		}
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal(line, &m); err != nil || m == nil {
			if !complete {
				return Record{}, recordErr(pos, s.class, fmt.Errorf("%w: the last line ends in the middle of an object", ErrTruncated))
			}
			return Record{}, recordErr(pos, s.class, fmt.Errorf("%w: not a JSON object: %v", ErrMalformed, jsonErr(err, m == nil)))
		}
		return Record{Class: s.class, Fields: m, Pos: pos}, nil
	}
}

func jsonErr(err error, null bool) string {
	if err == nil && null {
		return "null"
	}
	return err.Error()
}

func (s *jsonlSource) Close() error { return s.closer.Close() }

// readLine reads one line into buf (without its newline). A line longer than limit is read to
// its end but not kept (tooLarge). complete is false for a last line without a newline.
func readLine(br *bufio.Reader, buf []byte, limit int) (line []byte, tooLarge, complete bool, err error) {
	for {
		chunk, err := br.ReadSlice('\n')
		if !tooLarge {
			if len(buf)+len(chunk) > limit+2 {
				tooLarge, buf = true, buf[:0]
			} else {
				buf = append(buf, chunk...)
			}
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		if err == nil {
			buf = bytes.TrimSuffix(bytes.TrimSuffix(buf, []byte("\n")), []byte("\r"))
			return buf, tooLarge, true, nil
		}
		return buf, tooLarge, false, err
	}
}

// ---- JSON arrays and {"results": [...]}

// lineTracker counts lines in what a json.Decoder reads, so that an offset can be turned into
// a line without keeping the input, and stops a single value from growing past the size limit.
type lineTracker struct {
	r        io.Reader
	read     int64   // bytes read so far
	newlines []int64 // offsets of newlines not yet below the last asked offset
	before   int     // newlines dropped from the list
	budgetAt int64   // where the value being decoded starts
}

func (t *lineTracker) Read(p []byte) (int, error) {
	if t.read-t.budgetAt > MaxObjectSize+(1<<20) {
		return 0, ErrTooLarge
	}
	n, err := t.r.Read(p)
	for i := 0; i < n; i++ {
		if p[i] == '\n' {
			t.newlines = append(t.newlines, t.read+int64(i))
		}
	}
	t.read += int64(n)
	return n, err
}

// lineAt is the 1-based line of offset; offsets asked for must not go backwards.
func (t *lineTracker) lineAt(off int64) int {
	i := sort.Search(len(t.newlines), func(i int) bool { return t.newlines[i] >= off })
	t.before += i
	t.newlines = t.newlines[i:]
	return t.before + 1
}

type jsonArraySource struct {
	dec     *json.Decoder
	lt      *lineTracker
	closer  io.Closer
	name    string
	class   string
	results bool
	done    bool
}

func newJSONArray(r io.Reader, c io.Closer, name, class string, results bool) (*jsonArraySource, error) {
	lt := &lineTracker{r: r}
	s := &jsonArraySource{dec: json.NewDecoder(lt), lt: lt, closer: c, name: name, class: class, results: results}
	if results {
		if err := s.expectDelim('{'); err != nil {
			return nil, err
		}
		for {
			tok, err := s.dec.Token()
			if err != nil {
				return nil, s.fatal(err)
			}
			if tok == "results" {
				break
			}
			// other keys (count, className) carry no objects
			var skip json.RawMessage
			if err := s.dec.Decode(&skip); err != nil {
				return nil, s.fatal(err)
			}
		}
	}
	if err := s.expectDelim('['); err != nil {
		return nil, err
	}
	return s, nil
}

func (s *jsonArraySource) pos() Position {
	return Position{File: s.name, Line: s.lt.lineAt(s.dec.InputOffset())}
}

func (s *jsonArraySource) fatal(err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		err = fmt.Errorf("%w: the file ends in the middle of the JSON", ErrTruncated)
	} else if !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrTooLarge) && !errors.Is(err, ErrTruncated) {
		err = fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	return &RecordError{Pos: Position{File: s.name, Line: s.lt.lineAt(s.lt.read)}, Class: s.class, Err: err}
}

func (s *jsonArraySource) expectDelim(d json.Delim) error {
	tok, err := s.dec.Token()
	if err != nil {
		return s.fatal(err)
	}
	if tok != d {
		return s.fatal(fmt.Errorf("%w: expected %q, found %v", ErrMalformed, string(d), tok))
	}
	return nil
}

func (s *jsonArraySource) Next(ctx context.Context) (Record, error) {
	if s.done {
		return Record{}, io.EOF
	}
	if err := ctx.Err(); err != nil {
		return Record{}, err
	}
	if !s.dec.More() {
		if err := s.expectDelim(']'); err != nil {
			return Record{}, fatalOnly(err)
		}
		if s.results {
			for s.dec.More() {
				if _, err := s.dec.Token(); err != nil {
					return Record{}, fatalOnly(s.fatal(err))
				}
				var skip json.RawMessage
				if err := s.dec.Decode(&skip); err != nil {
					return Record{}, fatalOnly(s.fatal(err))
				}
			}
			if err := s.expectDelim('}'); err != nil {
				return Record{}, fatalOnly(err)
			}
		}
		if _, err := s.dec.Token(); !errors.Is(err, io.EOF) {
			return Record{}, fatalOnly(s.fatal(fmt.Errorf("%w: data after the end of the JSON", ErrMalformed)))
		}
		s.done = true
		return Record{}, io.EOF
	}
	s.lt.budgetAt = s.lt.read
	// the element starts after the separator and whitespace: its line is where its first
	// byte is, found after decoding
	var raw json.RawMessage
	if err := s.dec.Decode(&raw); err != nil {
		return Record{}, fatalOnly(s.fatal(err))
	}
	lead := int64(len(raw))
	end := s.dec.InputOffset()
	pos := Position{File: s.name, Line: s.lt.lineAt(end - lead)}
	if len(raw) > MaxObjectSize {
		return Record{}, recordErr(pos, s.class, ErrTooLarge)
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil || m == nil {
		return Record{}, recordErr(pos, s.class, fmt.Errorf("%w: array element is not a JSON object", ErrMalformed))
	}
	return Record{Class: s.class, Fields: m, Pos: pos}, nil
}

// fatalOnly marks a decoder error as ending the source: the JSON cannot be read past it.
func fatalOnly(err error) error {
	var re *RecordError
	if errors.As(err, &re) {
		return &fatalError{re}
	}
	return err
}

// fatalError is a RecordError after which the source cannot go on.
type fatalError struct{ *RecordError }

func (e *fatalError) Unwrap() error { return e.RecordError }

func (s *jsonArraySource) Close() error { return s.closer.Close() }

// ---- tar archives (exportData, backups)

type tarSource struct {
	name   string
	f      *os.File
	gz     *gzip.Reader
	tr     *tar.Reader
	cur    Source
	closer func() error
}

func openTar(name string) (Source, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	s := &tarSource{name: name, f: f}
	var r io.Reader = bufio.NewReaderSize(f, 256<<10)
	if !strings.HasSuffix(strings.ToLower(name), ".tar") {
		gz, err := gzip.NewReader(r)
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("%s: not a gzip file: %w", name, err)
		}
		s.gz, r = gz, gz
	}
	s.tr = tar.NewReader(r)
	return s, nil
}

func (s *tarSource) Next(ctx context.Context) (Record, error) {
	for {
		if err := ctx.Err(); err != nil {
			return Record{}, err
		}
		if s.cur != nil {
			rec, err := s.cur.Next(ctx)
			if !errors.Is(err, io.EOF) {
				return rec, err
			}
			s.cur = nil
		}
		h, err := s.tr.Next()
		if errors.Is(err, io.EOF) {
			return Record{}, io.EOF
		}
		if err != nil {
			if errors.Is(err, io.ErrUnexpectedEOF) {
				return Record{}, fmt.Errorf("%s: %w: the archive ends in the middle of an entry", s.name, ErrTruncated)
			}
			return Record{}, fmt.Errorf("%s: %w", s.name, err)
		}
		if h.Typeflag != tar.TypeReg {
			continue
		}
		// entry names are only labels: nothing is written where they point
		base := path.Base(h.Name)
		if skipName(base) || kindOf(base) == kindUnknown {
			continue
		}
		class, ok := classFromName(base)
		if !ok {
			return Record{}, fmt.Errorf("%s: entry %s: the file name is not a class name", s.name, h.Name)
		}
		src, err := fileSource(io.NopCloser(s.tr), s.name+":"+h.Name, class, kindOf(base))
		if err != nil {
			return Record{}, err
		}
		s.cur = src
	}
}

func (s *tarSource) Close() error {
	if s.gz != nil {
		s.gz.Close()
	}
	return s.f.Close()
}
