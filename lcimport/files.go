package lcimport

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"sync"
	"time"

	"github.com/fnhq/fn/store"
)

// FileOptions say how an import fetches the contents of _File objects.
type FileOptions struct {
	// URL, when set, gives the url a _File gets once its content is in the target (the old one
	// is kept in _lc_url). It must depend on the object only, so that re-imports compare equal.
	URL func(o *store.Object) string
	// Parallel downloads at a time (4 when zero).
	Parallel int
	// Client fetches the contents (http.DefaultClient's transport with a 10-minute timeout
	// when nil).
	Client *http.Client
	// MaxSize is the largest content accepted (2 GiB when zero).
	MaxSize int64
	// Attempts per file for network errors, 429 and 5xx (3 when zero), Backoff between them.
	Attempts int
	Backoff  func(attempt int) time.Duration
	// SkipContent only rewrites urls (with URL) and fetches nothing: the side of an import into
	// fn serve that receives the objects, while the client sends the contents.
	SkipContent bool
}

// FileReport counts file contents.
type FileReport struct {
	Downloaded    int      `json:"downloaded"`
	Present       int      `json:"present"` // already in the target with the right size and checksum
	Failed        int      `json:"failed"`
	Bytes         int64    `json:"bytes"`
	Errors        []string `json:"errors,omitempty"`
	ErrorsOmitted int      `json:"errorsOmitted,omitempty"`
}

var md5RE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[0-9a-f]{32}$`) })

type fileJob struct {
	meta FileMeta
	url  string
	pos  Position
}

// prepareFile reads a _File object's content location and rewrites its url.
func prepareFile(o *store.Object, opts *FileOptions) (*FileMeta, error) {
	raw, _ := o.Fields["url"].(string)
	if orig, ok := o.Fields[FieldLCURL].(string); ok && orig != "" {
		raw = orig // an export of fn's own store: the content is still where LeanCloud had it
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("%w: _File url %q is not an http(s) URL", ErrInvalid, truncate(raw))
	}
	meta := &FileMeta{ObjectID: o.ID, Size: -1, URL: raw}
	meta.Name, _ = o.Fields["name"].(string)
	if md, ok := o.Fields["metaData"].(map[string]any); ok {
		if sum, ok := md["_checksum"].(string); ok && md5RE().MatchString(sum) {
			meta.MD5 = sum
		}
		if size, ok := md["size"].(float64); ok && size >= 0 {
			meta.Size = int64(size)
		}
	}
	if opts.URL != nil {
		o.Fields[FieldLCURL] = raw
		o.Fields["url"] = opts.URL(o)
	}
	return meta, nil
}

// fileLoader downloads contents in the background, a bounded number at a time; add blocks when
// all workers are busy, so pending downloads never pile up in memory.
type fileLoader struct {
	t      FileTarget
	opts   *FileOptions
	client *http.Client
	jobs   chan fileJob
	wg     sync.WaitGroup
	cancel context.CancelFunc

	mu  sync.Mutex
	rep FileReport
}

func newFileLoader(ctx context.Context, t FileTarget, opts *FileOptions) *fileLoader {
	ctx, cancel := context.WithCancel(ctx)
	n := opts.Parallel
	if n <= 0 {
		n = 4
	}
	l := &fileLoader{t: t, opts: opts, client: opts.Client, jobs: make(chan fileJob), cancel: cancel}
	if l.client == nil {
		l.client = &http.Client{Timeout: 10 * time.Minute}
	}
	for range n {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			for j := range l.jobs {
				l.run(ctx, j)
			}
		}()
	}
	return l
}

func (l *fileLoader) add(meta FileMeta, pos Position) {
	l.jobs <- fileJob{meta: meta, url: meta.URL, pos: pos}
}

func (l *fileLoader) wait() *FileReport {
	close(l.jobs)
	l.wg.Wait()
	l.cancel()
	l.mu.Lock()
	defer l.mu.Unlock()
	rep := l.rep
	return &rep
}

func (l *fileLoader) stop() { l.cancel() }

func (l *fileLoader) note(f func(r *FileReport)) {
	l.mu.Lock()
	f(&l.rep)
	l.mu.Unlock()
}

func (l *fileLoader) failed(j fileJob, err error) {
	l.note(func(r *FileReport) {
		r.Failed++
		if len(r.Errors) < 100 {
			r.Errors = append(r.Errors, (&RecordError{Pos: j.pos, Class: "_File", ID: j.meta.ObjectID, Err: err}).Error())
		} else {
			r.ErrorsOmitted++
		}
	})
}

func (l *fileLoader) run(ctx context.Context, j fileJob) {
	if ctx.Err() != nil {
		l.failed(j, ctx.Err())
		return
	}
	has, err := l.t.HasFile(ctx, j.meta)
	if err != nil {
		l.failed(j, err)
		return
	}
	if has {
		l.note(func(r *FileReport) { r.Present++ })
		return
	}
	attempts := l.opts.Attempts
	if attempts <= 0 {
		attempts = 3
	}
	for a := 1; ; a++ {
		n, retry, err := l.download(ctx, j)
		if err == nil {
			l.note(func(r *FileReport) { r.Downloaded++; r.Bytes += n })
			return
		}
		if !retry || a >= attempts || ctx.Err() != nil {
			l.failed(j, err)
			return
		}
		d := time.Duration(a) * time.Second
		if l.opts.Backoff != nil {
			d = l.opts.Backoff(a)
		}
		select {
		case <-time.After(d):
		case <-ctx.Done():
			l.failed(j, ctx.Err())
			return
		}
	}
}

func (l *fileLoader) download(ctx context.Context, j fileJob) (int64, bool, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, j.url, nil)
	if err != nil {
		return 0, false, err
	}
	resp, err := l.client.Do(req)
	if err != nil {
		return 0, true, fmt.Errorf("downloading: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		retry := resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500
		return 0, retry, fmt.Errorf("downloading: HTTP %d", resp.StatusCode)
	}
	max := l.opts.MaxSize
	if max <= 0 {
		max = 2 << 30
	}
	vr := &verifyingReader{r: resp.Body, want: j.meta, max: max, h: md5.New()}
	if err := l.t.PutFile(ctx, j.meta, vr); err != nil {
		// a connection cut short is worth another try; a wrong checksum is not
		return 0, !errors.Is(err, ErrChecksum) && !errors.Is(err, ErrTooLarge), err
	}
	return vr.n, false, nil
}

// verifyingReader passes content through and, at its end, fails instead of ending when the
// size or MD5 differ from what the _File object says.
type verifyingReader struct {
	r    io.Reader
	want FileMeta
	max  int64
	h    hash.Hash
	n    int64
}

func (v *verifyingReader) Read(p []byte) (int, error) {
	n, err := v.r.Read(p)
	v.n += int64(n)
	v.h.Write(p[:n])
	if v.n > v.max {
		return n, fmt.Errorf("%w: content larger than %d bytes", ErrTooLarge, v.max)
	}
	if errors.Is(err, io.EOF) {
		if v.want.Size >= 0 && v.n != v.want.Size {
			return n, fmt.Errorf("%w: %d bytes, metaData.size says %d", ErrChecksum, v.n, v.want.Size)
		}
		if v.want.MD5 != "" {
			if got := hex.EncodeToString(v.h.Sum(nil)); got != v.want.MD5 {
				return n, fmt.Errorf("%w: MD5 %s, metaData._checksum says %s", ErrChecksum, got, v.want.MD5)
			}
		}
	}
	return n, err
}

// Fetcher downloads _File contents from their old URLs into a FileTarget in the background, a
// bounded number at a time (Add blocks while all are busy), with the same retries and checks
// as Import's own downloads.
type Fetcher struct{ l *fileLoader }

// NewFetcher starts a fetcher; Wait ends it.
func NewFetcher(ctx context.Context, t FileTarget, opts *FileOptions) *Fetcher {
	return &Fetcher{l: newFileLoader(ctx, t, opts)}
}

// Add queues a content download.
func (f *Fetcher) Add(meta FileMeta, pos Position) { f.l.add(meta, pos) }

// Failed counts a file whose content cannot be fetched.
func (f *Fetcher) Failed(meta FileMeta, pos Position, err error) {
	f.l.failed(fileJob{meta: meta, pos: pos}, err)
}

// Wait waits for the queued downloads and reports them.
func (f *Fetcher) Wait() *FileReport { return f.l.wait() }

// Stop abandons the downloads still running.
func (f *Fetcher) Stop() { f.l.stop() }

// FileMetaOf reads where a raw _File record's content is (its url, or the LeanCloud url an
// earlier import kept), its size and checksum, without changing the record.
func FileMetaOf(rec Record) (*FileMeta, error) {
	b, err := json.Marshal(rec.Fields)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	var cp map[string]any
	if err := json.Unmarshal(b, &cp); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	c, err := convert(Record{Class: rec.Class, Fields: cp, Pos: rec.Pos})
	if err != nil {
		return nil, err
	}
	return prepareFile(c.obj, &FileOptions{})
}

// VerifyContent passes content through and fails at its end (ErrChecksum) when its size or MD5
// differ from meta's, or as soon as it grows past max bytes (ErrTooLarge).
func VerifyContent(r io.Reader, meta FileMeta, max int64) io.Reader {
	return &verifyingReader{r: r, want: meta, max: max, h: md5.New()}
}
