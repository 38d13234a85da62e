// Package deployer is the client side of fn serve: credentials, the admin API, building and
// uploading a deploy (only artifacts the server lacks), and following logs with resume. It never
// prints; progress and records go to callbacks.
package deployer

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/fnhq/fn/admin"
	"github.com/fnhq/fn/api"
	"github.com/fnhq/fn/artifacts"
	"github.com/fnhq/fn/bundler"
	"github.com/fnhq/fn/project"
)

// Credentials say which server to talk to, with which token.
type Credentials struct {
	Server string `json:"server"`
	Token  string `json:"token"`
}

// ErrNotLoggedIn means no credentials were found.
var ErrNotLoggedIn = errors.New("not logged in to an fn server")

// CredentialsPath is where fn login keeps the credentials.
func CredentialsPath() (string, error) {
	dir, err := os.UserConfigDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(dir, "fn", "credentials.json"), nil
}

// LoadCredentials reads FN_SERVER/FN_TOKEN, else the credentials file.
func LoadCredentials() (Credentials, error) {
	if s, t := os.Getenv("FN_SERVER"), os.Getenv("FN_TOKEN"); s != "" && t != "" {
		return Credentials{Server: strings.TrimRight(s, "/"), Token: t}, nil
	}
	path, err := CredentialsPath()
	if err != nil {
		return Credentials{}, err
	}
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return Credentials{}, ErrNotLoggedIn
	}
	if err != nil {
		return Credentials{}, err
	}
	var c Credentials
	if err := json.Unmarshal(b, &c); err != nil || c.Server == "" || c.Token == "" {
		return Credentials{}, fmt.Errorf("%s is damaged: log in again (%v)", path, err)
	}
	return c, nil
}

// SaveCredentials writes the credentials file, readable by the user only.
func SaveCredentials(c Credentials) (string, error) {
	path, err := CredentialsPath()
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return "", err
	}
	b, _ := json.MarshalIndent(c, "", "  ")
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return "", err
	}
	return path, os.Rename(tmp, path)
}

// DeleteCredentials removes the credentials file.
func DeleteCredentials() error {
	path, err := CredentialsPath()
	if err != nil {
		return err
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}

// Client talks to an fn server's admin API.
type Client struct {
	Creds Credentials
	HTTP  *http.Client
	// Trace, when set, is told about every HTTP call once it has an answer (or failed).
	Trace func(Call)
}

// Call describes one HTTP call to the server, for --verbose. URL never carries credentials (the
// token travels in a header).
type Call struct {
	Method   string
	URL      string
	Status   int // 0 when no answer came
	Duration time.Duration
	Err      error
}

// UnreachableError means the server could not be reached at all (as opposed to an answer with an
// error status).
type UnreachableError struct {
	Server string
	Reason string // "connection refused", "no such host", "timed out", …
	Err    error
}

func (e *UnreachableError) Error() string {
	msg := fmt.Sprintf("cannot reach the fn server at %s: %s", e.Server, e.Reason)
	if e.Reason == "connection refused" {
		msg += " (is fn serve running?)"
	}
	return msg
}
func (e *UnreachableError) Unwrap() error { return e.Err }

// unreachable names why a request got no answer in words, without Go's dial details.
func unreachable(server string, err error) error {
	var dnsErr *net.DNSError
	var opErr *net.OpError
	reason := ""
	switch {
	case errors.Is(err, context.Canceled):
		return err
	case errors.Is(err, syscall.ECONNREFUSED):
		reason = "connection refused"
	case errors.Is(err, syscall.ECONNRESET):
		reason = "the connection was reset"
	case errors.As(err, &dnsErr):
		reason = fmt.Sprintf("no such host %q", dnsErr.Name)
	case errors.Is(err, context.DeadlineExceeded) || os.IsTimeout(err):
		reason = "timed out"
	case errors.As(err, &opErr) && opErr.Err != nil:
		reason = opErr.Err.Error()
	default:
		var uerr *url.Error
		if errors.As(err, &uerr) {
			reason = uerr.Err.Error()
		} else {
			reason = err.Error()
		}
	}
	return &UnreachableError{Server: redactURL(server), Reason: reason, Err: err}
}

// redactURL drops a user:password part from a URL, should the server have been given with one.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.User == nil {
		return raw
	}
	u.User = nil
	return u.String()
}

// New returns a client.
func New(c Credentials) *Client {
	return &Client{Creds: c, HTTP: &http.Client{Timeout: 5 * time.Minute}}
}

// APIError is an error the server answered.
type APIError struct {
	Status int
	Msg    string
}

func (e *APIError) Error() string { return e.Msg }

// NoSuchApp reports whether the server said the app does not exist.
func (e *APIError) NoSuchApp() bool {
	return e.Status == http.StatusNotFound && strings.HasPrefix(e.Msg, "no such app")
}

// NotDeployed reports whether the server said the environment has no version yet.
func (e *APIError) NotDeployed() bool {
	return strings.HasPrefix(e.Msg, "nothing is deployed to ")
}

func (c *Client) request(ctx context.Context, method, path string, body io.Reader, contentType string) (*http.Response, error) {
	return c.requestSized(ctx, method, path, body, -1, contentType)
}

// requestSized sends a request whose body has a known size (-1: unknown), so that a body
// wrapped for progress reports still goes out with a Content-Length.
func (c *Client) requestSized(ctx context.Context, method, path string, body io.Reader, size int64, contentType string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, c.Creds.Server+path, body)
	if err != nil {
		return nil, fmt.Errorf("invalid fn server URL %q: %w", redactURL(c.Creds.Server), err)
	}
	if size >= 0 {
		req.ContentLength = size
	}
	req.Header.Set("Authorization", "Bearer "+c.Creds.Token)
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	start := time.Now()
	resp, err := c.HTTP.Do(req)
	if c.Trace != nil {
		call := Call{Method: method, URL: redactURL(c.Creds.Server) + path, Duration: time.Since(start), Err: err}
		if resp != nil {
			call.Status = resp.StatusCode
		}
		c.Trace(call)
	}
	if err != nil {
		return nil, unreachable(c.Creds.Server, err)
	}
	if resp.StatusCode >= 300 {
		defer resp.Body.Close()
		var e struct {
			Error string `json:"error"`
		}
		b, _ := io.ReadAll(resp.Body)
		json.Unmarshal(b, &e)
		if e.Error == "" {
			e.Error = fmt.Sprintf("%s %s: %s", method, path, resp.Status)
		}
		return nil, &APIError{Status: resp.StatusCode, Msg: e.Error}
	}
	return resp, nil
}

func (c *Client) call(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	resp, err := c.request(ctx, method, path, body, "application/json")
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if out == nil {
		return nil
	}
	return json.NewDecoder(resp.Body).Decode(out)
}

func esc(s string) string { return url.PathEscape(s) }

// Whoami checks the token.
func (c *Client) Whoami(ctx context.Context) (map[string]any, error) {
	var out map[string]any
	return out, c.call(ctx, http.MethodGet, "/__fn/whoami", nil, &out)
}

// CreateApp creates an app (with its old keys when req has them).
func (c *Client) CreateApp(ctx context.Context, req admin.CreateAppRequest) (*api.App, error) {
	var app api.App
	err := c.call(ctx, http.MethodPost, "/__fn/apps", req, &app)
	return &app, err
}

// Apps lists the apps.
func (c *Client) Apps(ctx context.Context) ([]api.App, error) {
	var apps []api.App
	return apps, c.call(ctx, http.MethodGet, "/__fn/apps", nil, &apps)
}

// DeleteApp deletes an app.
func (c *Client) DeleteApp(ctx context.Context, app string) error {
	return c.call(ctx, http.MethodDelete, "/__fn/apps/"+esc(app), nil, nil)
}

// Versions lists versions.
func (c *Client) Versions(ctx context.Context, app, env string) ([]api.Version, error) {
	var vs []api.Version
	q := ""
	if env != "" {
		q = "?env=" + url.QueryEscape(env)
	}
	return vs, c.call(ctx, http.MethodGet, "/__fn/apps/"+esc(app)+"/versions"+q, nil, &vs)
}

// Rollback reactivates an earlier version.
func (c *Client) Rollback(ctx context.Context, app, env string, to int) (*api.Version, error) {
	var v api.Version
	return &v, c.call(ctx, http.MethodPost, "/__fn/apps/"+esc(app)+"/rollback", map[string]any{"env": env, "to": to}, &v)
}

// Promote deploys staging's artifacts to production.
func (c *Client) Promote(ctx context.Context, app, message, who string) (*api.DeployResult, error) {
	var res api.DeployResult
	return &res, c.call(ctx, http.MethodPost, "/__fn/apps/"+esc(app)+"/promote", map[string]string{"message": message, "who": who}, &res)
}

// SetSecret sets a secret; UnsetSecret removes it; SecretNames lists names.
func (c *Client) SetSecret(ctx context.Context, app, name, value string) error {
	return c.call(ctx, http.MethodPut, "/__fn/apps/"+esc(app)+"/secrets/"+esc(name), map[string]string{"value": value}, nil)
}

func (c *Client) UnsetSecret(ctx context.Context, app, name string) error {
	return c.call(ctx, http.MethodDelete, "/__fn/apps/"+esc(app)+"/secrets/"+esc(name), nil, nil)
}

func (c *Client) SecretNames(ctx context.Context, app string) ([]string, error) {
	var out struct {
		Names []string `json:"names"`
	}
	return out.Names, c.call(ctx, http.MethodGet, "/__fn/apps/"+esc(app)+"/secrets", nil, &out)
}

// Timers lists an environment's timers; TimerControl enables, disables or triggers one.
func (c *Client) Timers(ctx context.Context, app, env string) ([]api.TimerStatus, error) {
	var out []api.TimerStatus
	return out, c.call(ctx, http.MethodGet, "/__fn/apps/"+esc(app)+"/timers/"+esc(env), nil, &out)
}

func (c *Client) TimerControl(ctx context.Context, app, env, name, action string) error {
	return c.call(ctx, http.MethodPost, "/__fn/apps/"+esc(app)+"/timers/"+esc(env)+"/"+esc(name)+"/"+esc(action), nil, nil)
}

// Invoke calls a function of an environment (a deployed one, or fn dev's with env "dev").
func (c *Client) Invoke(ctx context.Context, app, env, name string, req api.InvokeRequest) (*api.Outcome, error) {
	var out api.Outcome
	return &out, c.call(ctx, http.MethodPost, "/__fn/apps/"+esc(app)+"/invoke/"+esc(env)+"/"+esc(name), req, &out)
}

// Replay repeats a logged call of an environment (same function, event and identity).
func (c *Client) Replay(ctx context.Context, app, env, requestID string) (*api.Outcome, error) {
	var out api.Outcome
	return &out, c.call(ctx, http.MethodPost, "/__fn/apps/"+esc(app)+"/replay/"+esc(env)+"/"+esc(requestID), nil, &out)
}

// Functions lists an environment's functions.
func (c *Client) Functions(ctx context.Context, app, env string) ([]api.Function, error) {
	var out []api.Function
	return out, c.call(ctx, http.MethodGet, "/__fn/apps/"+esc(app)+"/functions/"+esc(env), nil, &out)
}

// ---- deploy

// DeployOptions describe a deploy.
type DeployOptions struct {
	App     string
	Env     string
	Message string
	Who     string
	DryRun  bool
	// Phase is told when the deploy enters a phase: PhaseBuild, PhaseCheck, PhaseUpload, PhaseActivate.
	Phase func(phase string)
	// Upload is told the bytes sent so far of all the artifacts the server lacks.
	Upload func(sent, total int64)
}

// The phases of a deploy, in order.
const (
	PhaseBuild    = "building"
	PhaseCheck    = "checking what the server has"
	PhaseUpload   = "uploading"
	PhaseActivate = "activating"
)

func (o DeployOptions) phase(name string) {
	if o.Phase != nil {
		o.Phase(name)
	}
}

// countingReader reports the bytes read through it.
type countingReader struct {
	r      io.Reader
	report func(n int64)
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	if n > 0 {
		c.report(int64(n))
	}
	return n, err
}

// Outcome is a deploy's result, with what was uploaded.
type Outcome struct {
	api.DeployResult
	Uploaded    int     `json:"uploaded"`
	Reused      int     `json:"reused"`
	BuildMs     float64 `json:"buildMs"`
	UploadBytes int64   `json:"uploadBytes"`
}

// Deploy builds the project's production bundles (minified, source maps kept), uploads the
// artifacts the server lacks, and asks it to activate the new version.
func (c *Client) Deploy(ctx context.Context, p *project.Project, o DeployOptions) (*Outcome, error) {
	if p.Detected {
		return c.deployTree(ctx, p, o)
	}
	entries, err := p.Entries()
	if err != nil {
		return nil, err
	}
	o.phase(PhaseBuild)
	b, err := bundler.New(bundler.Options{ProjectDir: p.Dir, OutDir: p.StatePath("deploy"), Dialect: p.Dialect, Target: p.Runtime,
		Mode: bundler.Production, Minify: true, External: p.Build.External, DepsCache: p.StatePath("cache", "deps")}, entries)
	if err != nil {
		return nil, err
	}
	defer b.Dispose()
	m, _, err := b.Build()
	if err != nil {
		return nil, err
	}
	out := &Outcome{BuildMs: m.BuildMs}
	files := map[string]string{} // hash → path
	mapHashes := map[string]string{}
	for _, a := range m.Bundles {
		mapPath := p.StatePath("deploy", a.SourceMap)
		mapHash, err := artifacts.HashFile(mapPath)
		if err != nil {
			return nil, err
		}
		mapHashes[a.Name] = mapHash
		files[a.Hash] = p.StatePath("deploy", a.File)
		files[mapHash] = mapPath
	}
	manifest := m.APIManifest(p, mapHashes, true)
	if p.Dialect == project.Lean {
		manifest.SDKVersion = project.LeanengineVersion(p.Dir)
	}
	return c.upload(ctx, o, manifest, files, out)
}

// upload sends the artifacts the server lacks, then the deploy request.
func (c *Client) upload(ctx context.Context, o DeployOptions, manifest api.Manifest, files map[string]string, out *Outcome) (*Outcome, error) {
	req := api.DeployRequest{Env: o.Env, Message: o.Message, Who: o.Who, DryRun: o.DryRun, Manifest: manifest}
	if o.DryRun {
		o.phase(PhaseCheck)
		err := c.call(ctx, http.MethodPost, "/__fn/apps/"+esc(o.App)+"/deploy", req, &out.DeployResult)
		return out, err
	}
	o.phase(PhaseCheck)
	hashes := make([]string, 0, len(files))
	for h := range files {
		hashes = append(hashes, h)
	}
	var missing struct {
		Missing []string `json:"missing"`
	}
	for start := 0; start < len(hashes); start += 10000 { // the server's bound per request
		chunk := hashes[start:min(start+10000, len(hashes))]
		var part struct {
			Missing []string `json:"missing"`
		}
		if err := c.call(ctx, http.MethodPost, "/__fn/apps/"+esc(o.App)+"/blobs/missing", map[string]any{"hashes": chunk}, &part); err != nil {
			return nil, err
		}
		missing.Missing = append(missing.Missing, part.Missing...)
	}
	out.Reused = len(hashes) - len(missing.Missing)
	var total int64
	var sent atomic.Int64 // the HTTP transport reads bodies on its own goroutine
	for _, h := range missing.Missing {
		path, ok := files[h]
		if !ok {
			return nil, fmt.Errorf("the server asked for an artifact this deploy does not have (%.12s)", h)
		}
		st, err := os.Stat(path)
		if err != nil {
			return nil, err
		}
		total += st.Size()
	}
	if len(missing.Missing) > 0 {
		o.phase(PhaseUpload)
	}
	if o.Upload != nil {
		report, mu := o.Upload, &sync.Mutex{}
		o.Upload = func(done, total int64) { mu.Lock(); report(done, total); mu.Unlock() }
	}
	// a project tree is thousands of small files: several uploads at a time
	var mu sync.Mutex
	var firstErr error
	next := 0
	var wg sync.WaitGroup
	for w := 0; w < min(8, len(missing.Missing)); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				mu.Lock()
				if firstErr != nil || next >= len(missing.Missing) || ctx.Err() != nil {
					mu.Unlock()
					return
				}
				h := missing.Missing[next]
				next++
				mu.Unlock()
				size, err := c.uploadOne(ctx, o, h, files[h], &sent, total)
				mu.Lock()
				if err != nil && firstErr == nil {
					firstErr = err
				}
				if err == nil {
					out.Uploaded++
					out.UploadBytes += size
				}
				mu.Unlock()
				if err != nil {
					return
				}
			}
		}()
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if firstErr != nil {
		return nil, firstErr
	}
	o.phase(PhaseActivate)
	if err := c.call(ctx, http.MethodPost, "/__fn/apps/"+esc(o.App)+"/deploy", req, &out.DeployResult); err != nil {
		return nil, err
	}
	return out, nil
}

// uploadOne sends one artifact, reporting the bytes sent.
func (c *Client) uploadOne(ctx context.Context, o DeployOptions, hash, path string, sent *atomic.Int64, total int64) (int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return 0, err
	}
	var body io.Reader = f
	if o.Upload != nil {
		o.Upload(sent.Load(), total)
		body = &countingReader{r: f, report: func(n int64) { o.Upload(sent.Add(n), total) }}
	}
	resp, err := c.requestSized(ctx, http.MethodPut, "/__fn/apps/"+esc(o.App)+"/blobs/"+hash, body, st.Size(), "application/octet-stream")
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return st.Size(), nil
}

// ---- logs

// LogQuery selects records.
type LogQuery struct {
	Function, Level, RequestID, Search, Env string
	Since                                   time.Time
	Follow                                  bool
}

// Logs prints matching records through fn; with Follow it streams until ctx ends, reconnecting
// after a dropped connection and resuming after the last record seen (no gaps, no duplicates).
// AppLogsPath is the log stream of an app (fn dev serves its project's as app "-").
func AppLogsPath(app string) string { return "/__fn/apps/" + esc(app) + "/logs" }

// Logs reads the records of the log stream at path.
func (c *Client) Logs(ctx context.Context, path string, q LogQuery, fn func(api.LogRecord)) error {
	var after int64
	for {
		v := url.Values{}
		for k, val := range map[string]string{"function": q.Function, "level": q.Level, "requestId": q.RequestID, "search": q.Search, "env": q.Env} {
			if val != "" {
				v.Set(k, val)
			}
		}
		if !q.Since.IsZero() && after == 0 {
			v.Set("since", q.Since.UTC().Format(time.RFC3339))
		}
		if after > 0 {
			v.Set("after", fmt.Sprint(after))
		}
		if q.Follow {
			v.Set("follow", "1")
		}
		stream := &http.Client{} // no timeout: a follow stream stays open
		c2 := &Client{Creds: c.Creds, HTTP: stream, Trace: c.Trace}
		resp, err := c2.request(ctx, http.MethodGet, path+"?"+v.Encode(), nil, "")
		if err != nil {
			var api *APIError
			if errors.As(err, &api) || !q.Follow || ctx.Err() != nil {
				return err
			}
		} else {
			sc := bufio.NewScanner(resp.Body)
			sc.Buffer(make([]byte, 1<<20), 16<<20)
			for sc.Scan() {
				line := bytes.TrimSpace(sc.Bytes())
				if len(line) == 0 {
					continue // keep-alive
				}
				var rec api.LogRecord
				if json.Unmarshal(line, &rec) == nil && rec.ID > after {
					after = rec.ID
					fn(rec)
				}
			}
			resp.Body.Close()
		}
		if !q.Follow || ctx.Err() != nil {
			return ctx.Err()
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(500 * time.Millisecond): // reconnect
		}
	}
}

// deployTree deploys a LeanEngine project without fn.yaml as its tree (see tree.go), with a
// loader bundle for the shared workers and, for an app with its own web server, its command.
func (c *Client) deployTree(ctx context.Context, p *project.Project, o DeployOptions) (*Outcome, error) {
	start := time.Now()
	tree, err := projectTree(p)
	if err != nil {
		return nil, err
	}
	out := &Outcome{}
	dir := p.StatePath("deploy")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	js, sm := bundler.TreeLoader(p.Entry)
	jsPath, mapPath := filepath.Join(dir, project.LeanBundleName+".js"), filepath.Join(dir, project.LeanBundleName+".js.map")
	if err := os.WriteFile(jsPath, js, 0o644); err != nil {
		return nil, err
	}
	if err := os.WriteFile(mapPath, sm, 0o644); err != nil {
		return nil, err
	}
	jsHash, _ := artifacts.HashFile(jsPath)
	mapHash, _ := artifacts.HashFile(mapPath)
	files := map[string]string{jsHash: jsPath, mapHash: mapPath}
	manifest := api.Manifest{Dialect: string(project.Lean), Timers: p.Timers, Timezone: p.Timezone,
		SDKVersion: project.LeanengineVersion(p.Dir)}
	cfg := p.Function(project.LeanBundleName)
	for k := range p.LocalEnv {
		delete(cfg.Env, k)
	}
	manifest.Bundles = []api.Bundle{{Name: project.LeanBundleName, Hash: jsHash, MapHash: mapHash, Size: int64(len(js)), Config: cfg}}
	for _, f := range tree {
		manifest.Files = append(manifest.Files, f.File)
		files[f.Hash] = f.abs
	}
	if p.App != nil {
		manifest.App = p.App.Command
	}
	out.BuildMs = float64(time.Since(start).Microseconds()) / 1000
	return c.upload(ctx, o, manifest, files, out)
}
