package lcimport

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"
)

// RemoteOptions say which LeanCloud app to scan.
type RemoteOptions struct {
	AppID     string
	MasterKey string
	// ServerURL is the app's API server (https://xxxxxxxx.api.lncldglobal.com or the domain
	// bound in the console), without /1.1.
	ServerURL string
	// Classes to scan; when empty they are listed with GET /1.1/schemas.
	Classes []string
	// StatePath keeps per-class progress, so that an interrupted scan resumes where it stopped
	// (no resuming when empty).
	StatePath string
	Client    *http.Client
	// PageSize is the scan's limit (1000, LeanCloud's maximum, when zero).
	PageSize int
	// Attempts per request for network errors, 429 and 5xx (8 when zero); Backoff between
	// them (exponential from 1 s to 1 min with jitter when nil; a Retry-After header wins).
	Attempts int
	Backoff  func(attempt int) time.Duration
	// Sleep waits (time.Sleep honouring ctx when nil): tests replace it.
	Sleep func(ctx context.Context, d time.Duration) error
}

// RemoteState is the progress file: per class, the last objectId imported and whether the
// class is finished. It holds no keys.
type RemoteState struct {
	AppID   string                 `json:"appId"`
	Server  string                 `json:"server"`
	Classes map[string]*ClassState `json:"classes"`
}

// ClassState is one class's scan progress.
type ClassState struct {
	LastID string `json:"lastId,omitempty"`
	Done   bool   `json:"done,omitempty"`
	Count  int    `json:"count"`
}

// Remote is a Source that pages through a running LeanCloud app with the scan API
// (GET /1.1/scan/classes/<Class>, master key, objectId order). A cursor lives 10 minutes: when
// one is refused, the scan restarts the class after the last objectId it received. Progress is
// saved before each page and at the end of each class.
type Remote struct {
	opts    RemoteOptions
	base    string
	client  *http.Client
	state   *RemoteState
	classes []string

	cur      string // the class being scanned
	cursor   string
	ended    bool // the class has no more pages
	lastSeen string
	buf      []map[string]any
	n        int

	// Requests and Restarts count scan requests and cursor restarts (for reports and tests).
	Requests int
	Restarts int
	Retries  int
}

// OpenRemote checks the options, loads the state file and lists the classes to scan.
func OpenRemote(ctx context.Context, opts RemoteOptions) (*Remote, error) {
	if opts.AppID == "" || opts.MasterKey == "" || opts.ServerURL == "" {
		return nil, errors.New("scanning a LeanCloud app needs its app id, master key and API server URL")
	}
	u, err := url.Parse(opts.ServerURL)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return nil, fmt.Errorf("API server %q is not an http(s) URL", opts.ServerURL)
	}
	if opts.PageSize <= 0 || opts.PageSize > 1000 {
		opts.PageSize = 1000
	}
	if opts.Attempts <= 0 {
		opts.Attempts = 8
	}
	r := &Remote{opts: opts, base: strings.TrimRight(u.String(), "/"), client: opts.Client}
	if r.client == nil {
		r.client = &http.Client{Timeout: 2 * time.Minute}
	}
	r.state = &RemoteState{AppID: opts.AppID, Server: r.base, Classes: map[string]*ClassState{}}
	if opts.StatePath != "" {
		b, err := os.ReadFile(opts.StatePath)
		switch {
		case err == nil:
			var s RemoteState
			if err := json.Unmarshal(b, &s); err != nil {
				return nil, fmt.Errorf("%s: not an import state file: %v", opts.StatePath, err)
			}
			if s.AppID != opts.AppID {
				return nil, fmt.Errorf("%s records an import of app %s, not %s: remove it to start over", opts.StatePath, s.AppID, opts.AppID)
			}
			if s.Classes == nil {
				s.Classes = map[string]*ClassState{}
			}
			r.state = &s
		case !errors.Is(err, os.ErrNotExist):
			return nil, err
		}
	}
	classes := opts.Classes
	if len(classes) == 0 {
		if classes, err = r.listClasses(ctx); err != nil {
			return nil, err
		}
	}
	for _, c := range classes {
		if !ValidClass(c) {
			return nil, fmt.Errorf("%w: class name %q", ErrInvalid, c)
		}
	}
	sort.Strings(classes)
	r.classes = classes
	return r, nil
}

// State is the scan's progress so far.
func (r *Remote) State() RemoteState { return *r.state }

func (r *Remote) listClasses(ctx context.Context) ([]string, error) {
	body, err := r.get(ctx, "/1.1/schemas", nil)
	if err != nil {
		return nil, fmt.Errorf("listing classes: %w", err)
	}
	// LeanCloud answers {"Class": schema, …}; Parse-style servers {"results": [{"className"}]}
	var parsed map[string]json.RawMessage
	if err := json.Unmarshal(body, &parsed); err != nil {
		return nil, fmt.Errorf("listing classes: the answer is not a JSON object")
	}
	var out []string
	if raw, ok := parsed["results"]; ok {
		var results []struct {
			ClassName string `json:"className"`
		}
		if json.Unmarshal(raw, &results) == nil {
			for _, c := range results {
				out = append(out, c.ClassName)
			}
			return out, nil
		}
	}
	for c := range parsed {
		out = append(out, c)
	}
	return out, nil
}

// Next implements Source.
func (r *Remote) Next(ctx context.Context) (Record, error) {
	for {
		if err := ctx.Err(); err != nil {
			return Record{}, err
		}
		if len(r.buf) > 0 {
			m := r.buf[0]
			r.buf = r.buf[1:]
			r.n++
			pos := Position{File: "leancloud:" + r.cur, Line: r.n}
			if m[tooLargeMark] == true {
				return Record{}, recordErr(pos, r.cur, ErrTooLarge)
			}
			return Record{Class: r.cur, Fields: m, Pos: pos}, nil
		}
		if r.cur != "" && r.ended {
			cs := r.classState(r.cur)
			cs.Done = true
			if err := r.save(); err != nil {
				return Record{}, err
			}
			r.cur = ""
		}
		if r.cur == "" {
			next := ""
			for _, c := range r.classes {
				if !r.classState(c).Done {
					next = c
					break
				}
			}
			if next == "" {
				return Record{}, io.EOF
			}
			r.classes = r.classes[indexOf(r.classes, next)+1:]
			r.cur, r.cursor, r.ended, r.n = next, "", false, 0
			r.lastSeen = r.classState(next).LastID
		}
		if err := r.save(); err != nil {
			return Record{}, err
		}
		if err := r.fetch(ctx); err != nil {
			return Record{}, err
		}
	}
}

func indexOf(list []string, s string) int {
	for i, x := range list {
		if x == s {
			return i
		}
	}
	return -1
}

func (r *Remote) classState(c string) *ClassState {
	cs := r.state.Classes[c]
	if cs == nil {
		cs = &ClassState{}
		r.state.Classes[c] = cs
	}
	return cs
}

// fetch gets the next page of the current class.
func (r *Remote) fetch(ctx context.Context) error {
	q := url.Values{"limit": {strconv.Itoa(r.opts.PageSize)}}
	if r.cursor != "" {
		q.Set("cursor", r.cursor)
	} else if r.lastSeen != "" {
		q.Set("where", whereAfter(r.lastSeen))
	}
	path := "/1.1/scan/classes/" + url.PathEscape(r.cur)
	body, err := r.get(ctx, path, q)
	var he *httpError
	if err != nil && r.cursor != "" && errors.As(err, &he) && he.status >= 400 && he.status < 500 {
		// the cursor expired (it lives 10 minutes): go on after the last object received
		r.Restarts++
		r.cursor = ""
		q.Del("cursor")
		if r.lastSeen != "" {
			q.Set("where", whereAfter(r.lastSeen))
		}
		body, err = r.get(ctx, path, q)
	}
	if err != nil {
		return fmt.Errorf("scanning %s: %w", r.cur, err)
	}
	var page struct {
		Results []json.RawMessage `json:"results"`
		Cursor  *string           `json:"cursor"`
	}
	if err := json.Unmarshal(body, &page); err != nil {
		return fmt.Errorf("scanning %s: the answer is not a scan page: %v", r.cur, err)
	}
	r.buf = r.buf[:0]
	for _, raw := range page.Results {
		var m map[string]any
		if len(raw) > MaxObjectSize {
			m = map[string]any{tooLargeMark: true}
		} else if err := json.Unmarshal(raw, &m); err != nil || m == nil {
			return fmt.Errorf("scanning %s: a result is not a JSON object", r.cur)
		}
		r.buf = append(r.buf, m)
		id, _ := m["objectId"].(string)
		if id != "" && r.lastSeen != "" && id <= r.lastSeen {
			return fmt.Errorf("scanning %s: objectId %s came after %s: the scan is not in objectId order, so it cannot be resumed safely", r.cur, id, r.lastSeen)
		}
		if id != "" {
			r.lastSeen = id
		}
	}
	if page.Cursor == nil || *page.Cursor == "" {
		r.ended, r.cursor = true, ""
	} else {
		r.cursor = *page.Cursor
	}
	return nil
}

func whereAfter(id string) string {
	b, _ := json.Marshal(map[string]any{"objectId": map[string]any{"$gt": id}})
	return string(b)
}

// Commit implements Committer: the record was imported, so a resumed scan starts after it.
func (r *Remote) Commit(rec Record) error {
	id, _ := rec.Fields["objectId"].(string)
	cs := r.classState(rec.Class)
	if id != "" && id > cs.LastID {
		cs.LastID = id
	}
	cs.Count++
	return nil
}

// Buffered is how many fetched records Next hands out before it asks LeanCloud again: an
// importer that batches sends what it holds before the source blocks, so that a resumed scan
// starts after it.
func (r *Remote) Buffered() int { return len(r.buf) }

// Close implements Source: it saves the progress.
func (r *Remote) Close() error { return r.save() }

func (r *Remote) save() error {
	if r.opts.StatePath == "" {
		return nil
	}
	b, err := json.MarshalIndent(r.state, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(r.opts.StatePath), 0o755); err != nil {
		return err
	}
	tmp := r.opts.StatePath + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, r.opts.StatePath)
}

// httpError is an answer LeanCloud refused a request with.
type httpError struct {
	status  int
	code    int
	message string
}

func (e *httpError) Error() string {
	if e.message != "" {
		return fmt.Sprintf("LeanCloud answered HTTP %d (code %d): %s", e.status, e.code, e.message)
	}
	return fmt.Sprintf("LeanCloud answered HTTP %d", e.status)
}

const maxPageBytes = 1 << 30

// tooLargeMark stands in for a scanned object over the size limit (never a real field name:
// field names cannot start with two underscores).
const tooLargeMark = "__fn_too_large"

// get sends a master-key request, retrying network errors, 429 and 5xx.
func (r *Remote) get(ctx context.Context, path string, q url.Values) ([]byte, error) {
	u := r.base + path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	for attempt := 1; ; attempt++ {
		if path != "/1.1/schemas" {
			r.Requests++
		}
		body, retryAfter, err := r.once(ctx, u)
		if err == nil {
			return body, nil
		}
		var he *httpError
		retry := !errors.As(err, &he) || he.status == http.StatusTooManyRequests || he.status >= 500
		if !retry || attempt >= r.opts.Attempts || ctx.Err() != nil {
			if he != nil && (he.status == http.StatusUnauthorized || he.status == http.StatusForbidden) {
				return nil, fmt.Errorf("%w (check the app id and master key)", err)
			}
			return nil, err
		}
		r.Retries++
		d := retryAfter
		if d <= 0 {
			d = r.backoff(attempt)
		}
		if err := r.sleep(ctx, d); err != nil {
			return nil, err
		}
	}
}

func (r *Remote) once(ctx context.Context, u string) ([]byte, time.Duration, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, 0, err
	}
	req.Header.Set("X-LC-Id", r.opts.AppID)
	req.Header.Set("X-LC-Key", r.opts.MasterKey+",master")
	req.Header.Set("Accept", "application/json")
	resp, err := r.client.Do(req)
	if err != nil {
		return nil, 0, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxPageBytes+1))
	if err != nil {
		return nil, 0, err
	}
	if len(body) > maxPageBytes {
		return nil, 0, &httpError{status: resp.StatusCode, message: "answer larger than 1 GiB"}
	}
	if resp.StatusCode == http.StatusOK {
		return body, 0, nil
	}
	he := &httpError{status: resp.StatusCode}
	var e struct {
		Code  int    `json:"code"`
		Error string `json:"error"`
	}
	if json.Unmarshal(body, &e) == nil {
		he.code, he.message = e.Code, truncate(e.Error)
	}
	var wait time.Duration
	if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && s > 0 {
		wait = min(time.Duration(s)*time.Second, 5*time.Minute)
	}
	return nil, wait, he
}

func (r *Remote) backoff(attempt int) time.Duration {
	if r.opts.Backoff != nil {
		return r.opts.Backoff(attempt)
	}
	d := time.Second << min(attempt-1, 6)
	d = min(d, time.Minute)
	return d/2 + rand.N(d/2+1)
}

func (r *Remote) sleep(ctx context.Context, d time.Duration) error {
	if r.opts.Sleep != nil {
		return r.opts.Sleep(ctx, d)
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
