package lcimport

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/maphash"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// An import into an app of fn serve (or a running fn dev) reads the export where it is, on the
// client, and sends its records to the admin API in bounded batches of NDJSON, one WireRecord
// a line; the server applies each batch with the same Import and StoreTarget as a local import,
// so that reports, idempotence and resumption are the same. File contents go up separately,
// one request per file, after the batch holding their _File object.

// WireRecord is one line of an import batch.
type WireRecord struct {
	Class  string         `json:"class"`
	Object map[string]any `json:"object"`
	File   string         `json:"file,omitempty"`
	Line   int            `json:"line,omitempty"`
}

// Limits of one import batch, on both sides.
const (
	// MaxBatchRecords is the most records one batch holds.
	MaxBatchRecords = 5000
	// MaxBatchBytes is the size a client fills a batch to (one larger record goes alone).
	MaxBatchBytes = 8 << 20
	// MaxWireLine bounds one line of a batch: the largest object and its envelope.
	MaxWireLine = MaxObjectSize + 64<<10
	// MaxBatchBody bounds one batch request's body.
	MaxBatchBody = 64 << 20
)

// ErrBatch is a batch the server cannot read (too many records, a line too long).
var ErrBatch = errors.New("invalid import batch")

// wireSource reads a batch.
type wireSource struct {
	sc    *bufio.Scanner
	lines int
	count int
}

// NewWireSource reads the records of one batch (the server's side). Lines longer than
// MaxWireLine or more than MaxBatchRecords records end it with ErrBatch; a line that is not a
// record is a *RecordError at its position.
func NewWireSource(r io.Reader) Source {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), MaxWireLine)
	return &wireSource{sc: sc}
}

func (s *wireSource) Next(ctx context.Context) (Record, error) {
	for {
		if err := ctx.Err(); err != nil {
			return Record{}, err
		}
		if !s.sc.Scan() {
			if err := s.sc.Err(); err != nil {
				if errors.Is(err, bufio.ErrTooLong) {
					return Record{}, fmt.Errorf("%w: line %d is longer than %d bytes", ErrBatch, s.lines+1, MaxWireLine)
				}
				return Record{}, fmt.Errorf("%w: %v", ErrBatch, err)
			}
			return Record{}, io.EOF
		}
		s.lines++
		line := bytes.TrimSpace(s.sc.Bytes())
		if len(line) == 0 {
			continue
		}
		s.count++
		if s.count > MaxBatchRecords {
			return Record{}, fmt.Errorf("%w: more than %d records in one batch", ErrBatch, MaxBatchRecords)
		}
		var w WireRecord
		pos := Position{File: "batch", Line: s.lines}
		if err := json.Unmarshal(line, &w); err != nil || w.Object == nil {
			return Record{}, recordErr(pos, "", fmt.Errorf("%w: a batch line must be {\"class\":…,\"object\":{…}}", ErrMalformed))
		}
		if w.File != "" {
			pos = Position{File: truncate(w.File), Line: w.Line}
		}
		return Record{Class: w.Class, Fields: w.Object, Pos: pos}, nil
	}
}

func (s *wireSource) Close() error { return nil }

// BatchResult is what the server answers for one batch: the report and, when the batch
// stopped early, why.
type BatchResult struct {
	Report *Report `json:"report"`
	Error  string  `json:"error,omitempty"`
}

// Server is an app on an fn server (or a running fn dev, app "-") as an import's destination,
// reached through the admin API.
type Server struct {
	URL   string // the server, e.g. https://fn.example.com
	Token string // the admin token or the app's master key ("" for fn dev)
	App   string
	HTTP  *http.Client
}

func (s *Server) client() *http.Client {
	if s.HTTP != nil {
		return s.HTTP
	}
	return &http.Client{Timeout: 10 * time.Minute}
}

func (s *Server) path(rest string) string {
	return strings.TrimRight(s.URL, "/") + "/__fn/apps/" + url.PathEscape(s.App) + "/import" + rest
}

func (s *Server) do(ctx context.Context, method, u string, body io.Reader, ctype string, out any) error {
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		return err
	}
	if s.Token != "" {
		req.Header.Set("Authorization", "Bearer "+s.Token)
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	resp, err := s.client().Do(req)
	if err != nil {
		return fmt.Errorf("cannot reach the fn server at %s: %w", s.URL, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode >= 300 {
		var e struct {
			Error string `json:"error"`
		}
		json.Unmarshal(b, &e)
		if e.Error == "" {
			e.Error = resp.Status
		}
		return fmt.Errorf("fn server: %s %s: %s", method, strings.TrimPrefix(u, s.URL), e.Error)
	}
	if out != nil {
		return json.Unmarshal(b, out)
	}
	return nil
}

// ImportBatch sends one batch (NDJSON of WireRecords). keepFileURLs: _File objects keep the
// URLs they have (their contents are not copied, so fn's own URLs would point at nothing).
func (s *Server) ImportBatch(ctx context.Context, batch []byte, dryRun bool, onError ErrorPolicy, keepFileURLs bool) (*BatchResult, error) {
	q := url.Values{}
	if dryRun {
		q.Set("dryRun", "1")
	}
	if keepFileURLs {
		q.Set("files", "keep")
	}
	if onError == Abort {
		q.Set("onError", "abort")
	}
	var res BatchResult
	if err := s.do(ctx, http.MethodPost, s.path("?"+q.Encode()), bytes.NewReader(batch), "application/x-ndjson", &res); err != nil {
		return nil, err
	}
	if res.Report == nil {
		return nil, errors.New("fn server: the import answer has no report")
	}
	return &res, nil
}

// Fold folds the relation tables into their owners, once every batch is in.
func (s *Server) Fold(ctx context.Context, joins []string) (map[string]FoldReport, error) {
	b, _ := json.Marshal(map[string]any{"classes": joins})
	var out map[string]FoldReport
	return out, s.do(ctx, http.MethodPost, s.path("/fold"), bytes.NewReader(b), "application/json", &out)
}

func fileQuery(f FileMeta) string {
	q := url.Values{}
	if f.Size >= 0 {
		q.Set("size", strconv.FormatInt(f.Size, 10))
	}
	if f.MD5 != "" {
		q.Set("md5", f.MD5)
	}
	return q.Encode()
}

// HasFile implements FileTarget.
func (s *Server) HasFile(ctx context.Context, f FileMeta) (bool, error) {
	var out struct {
		Present bool `json:"present"`
	}
	err := s.do(ctx, http.MethodGet, s.path("/files/"+url.PathEscape(f.ObjectID)+"?"+fileQuery(f)), nil, "", &out)
	return out.Present, err
}

// PutFile implements FileTarget: the content streams up; a content that fails its checks on
// the way cuts the request, and the server keeps nothing of it.
func (s *Server) PutFile(ctx context.Context, f FileMeta, content io.Reader) error {
	var readErr error
	body := readerFunc(func(p []byte) (int, error) {
		n, err := content.Read(p)
		if err != nil && !errors.Is(err, io.EOF) {
			readErr = err
		}
		return n, err
	})
	err := s.do(ctx, http.MethodPut, s.path("/files/"+url.PathEscape(f.ObjectID)+"?"+fileQuery(f)), body, "application/octet-stream", nil)
	if readErr != nil {
		return readErr
	}
	return err
}

type readerFunc func(p []byte) (int, error)

func (f readerFunc) Read(p []byte) (int, error) { return f(p) }

// ImportInto reads src and sends every record to the server in batches; with opts.Files it
// then downloads each _File's content from its old URL and uploads it to the server (the
// server rewrites the objects' url to its own). The report is the sum of the batches'. A
// record the server failed is not committed to a resumable source, so running the import
// again goes on from there; records already in are reported unchanged.
func ImportInto(ctx context.Context, src Source, s *Server, opts Options) (*Report, error) {
	rep := &Report{DryRun: opts.DryRun, Classes: map[string]*ClassReport{}}
	maxErrors, every, only := opts.limits()
	committer, _ := src.(Committer)
	var fetch *Fetcher
	if opts.Files != nil && !opts.DryRun {
		fetch = NewFetcher(ctx, s, opts.Files)
		defer fetch.Stop()
	}
	class := func(name string) *ClassReport {
		c := rep.Classes[name]
		if c == nil {
			c = &ClassReport{}
			rep.Classes[name] = c
		}
		return c
	}
	addErr := func(msg string) {
		if len(rep.Errors) < maxErrors {
			rep.Errors = append(rep.Errors, msg)
		} else {
			rep.ErrorsOmitted++
		}
	}
	seed := maphash.MakeSeed()
	seen := map[uint64]struct{}{}
	joins := map[string]bool{}
	type pendingFile struct {
		meta FileMeta
		pos  Position
	}
	var (
		batch   bytes.Buffer
		commits []Record
		files   []pendingFile
		n       int
	)
	flush := func() error {
		if n == 0 {
			return nil
		}
		res, err := s.ImportBatch(ctx, batch.Bytes(), opts.DryRun, opts.OnError, opts.Files == nil)
		if err != nil {
			return err
		}
		for c, cr := range res.Report.Classes {
			t := class(c)
			t.Added += cr.Added
			t.Changed += cr.Changed
			t.Unchanged += cr.Unchanged
			t.Failed += cr.Failed
		}
		for _, e := range res.Report.Errors {
			addErr(e)
		}
		rep.ErrorsOmitted += res.Report.ErrorsOmitted
		rep.Sessions += res.Report.Sessions
		if res.Error != "" {
			// the server stopped inside the batch: commit nothing of it, a resumed import redoes it
			return errors.New(res.Error)
		}
		if committer != nil {
			for _, r := range commits {
				if err := committer.Commit(r); err != nil {
					return err
				}
			}
		}
		if fetch != nil {
			for _, f := range files {
				fetch.Add(f.meta, f.pos)
			}
		}
		batch.Reset()
		commits, files, n = commits[:0], files[:0], 0
		return nil
	}
	finish := func(err error) (*Report, error) {
		if fetch != nil {
			rep.Files = fetch.Wait()
			fetch = nil
		}
		return rep, err
	}
	records, lastClass := 0, ""
	buffered, _ := src.(interface{ Buffered() int })
	for {
		if buffered != nil && buffered.Buffered() == 0 {
			if err := flush(); err != nil {
				return finish(err)
			}
		}
		rec, err := src.Next(ctx)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			var fe *fatalError
			var re *RecordError
			switch {
			case errors.As(err, &fe):
				class(fe.Class).Failed++
				addErr(fe.Error())
				if ferr := flush(); ferr != nil {
					return finish(ferr)
				}
				return finish(fe.RecordError)
			case errors.As(err, &re):
				class(re.Class).Failed++
				addErr(re.Error())
				if opts.OnError == Abort {
					if ferr := flush(); ferr != nil {
						return finish(ferr)
					}
					return finish(re)
				}
				continue
			}
			if ferr := flush(); ferr != nil {
				return finish(ferr)
			}
			return finish(err)
		}
		records++
		if opts.Progress != nil && (records%every == 0 || (rec.Class != lastClass && lastClass != "")) {
			opts.Progress(Progress{Class: rec.Class, Records: records})
		}
		lastClass = rec.Class
		if len(only) > 0 && !only[rec.Class] {
			if rep.Skipped == nil {
				rep.Skipped = map[string]int{}
			}
			rep.Skipped[rec.Class]++
			continue
		}
		id, _ := rec.Fields["objectId"].(string)
		if id != "" {
			var h maphash.Hash
			h.SetSeed(seed)
			h.WriteString(rec.Class)
			h.WriteByte(0)
			h.WriteString(id)
			sum := h.Sum64()
			if _, dup := seen[sum]; dup {
				class(rec.Class).Failed++
				addErr((&RecordError{Pos: rec.Pos, Class: rec.Class, ID: truncate(id), Err: fmt.Errorf("%w: it appeared earlier in the input; the first one was kept", ErrDuplicate)}).Error())
				if opts.OnError == Abort {
					if ferr := flush(); ferr != nil {
						return finish(ferr)
					}
					return finish(errors.New(rep.Errors[len(rep.Errors)-1]))
				}
				continue
			}
			seen[sum] = struct{}{}
		}
		if rec.Class == "_File" && fetch != nil {
			if meta, err := FileMetaOf(rec); err == nil {
				files = append(files, pendingFile{*meta, rec.Pos})
			} else {
				fetch.Failed(FileMeta{ObjectID: truncate(id)}, rec.Pos, err)
			}
		}
		if _, _, isJoin := JoinParts(rec.Class); isJoin {
			joins[rec.Class] = true
		}
		line, err := json.Marshal(WireRecord{Class: rec.Class, Object: rec.Fields, File: rec.Pos.File, Line: rec.Pos.Line})
		if err != nil {
			class(rec.Class).Failed++
			addErr((&RecordError{Pos: rec.Pos, Class: rec.Class, ID: truncate(id), Err: fmt.Errorf("%w: %v", ErrMalformed, err)}).Error())
			continue
		}
		if n > 0 && (n >= MaxBatchRecords || batch.Len()+len(line)+1 > MaxBatchBytes) {
			if err := flush(); err != nil {
				return finish(err)
			}
		}
		batch.Write(line)
		batch.WriteByte('\n')
		commits = append(commits, Record{Class: rec.Class, Fields: map[string]any{"objectId": id}, Pos: rec.Pos})
		n++
	}
	if err := flush(); err != nil {
		return finish(err)
	}
	if opts.Progress != nil {
		opts.Progress(Progress{Class: lastClass, Records: records})
	}
	if !opts.DryRun && len(joins) > 0 {
		names := sortedKeys(joins)
		folds, err := s.Fold(ctx, names)
		rep.Relations = folds
		if err != nil {
			return finish(fmt.Errorf("folding relation tables into their owners: %w", err))
		}
	}
	if _, err := finish(nil); err != nil {
		return rep, err
	}
	return rep, ctx.Err()
}
