package appenv

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
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fnhq/fn/engine"
)

// App mode: a LeanEngine project with its own web server (server.js that listens on
// LEANCLOUD_APP_PORT, or npm start) runs as the platform runs it. The environment starts the
// APP PROCESS — a supervised child in its own process group, with LEANCLOUD_APP_PORT set to a
// free loopback port and the LEANCLOUD_* variables pointing at this environment's API — and
// routes everything that is not LeanStorage to it by reverse proxy. Cloud functions and hooks
// then run inside the app process through its own leanengine middleware, so that AV.init and
// AV.Cloud.useMasterKey() in server.js are honoured; hooks and timers reach it over HTTP with
// the hook key, as LeanCloud's servers call it.

// AppSpec is the app process a release runs (nil for the shared-worker path).
type AppSpec struct {
	// Command is the program and its arguments; "node" is the environment's Node.
	Command []string `json:"command"`
	// Env is added to the process's environment (the project's env, fn serve's secrets).
	Env map[string]string `json:"env,omitempty"`
	// StartTimeout bounds how long the process may take to listen (default 60 s).
	StartTimeout time.Duration `json:"-"`
}

// AppStartError is an app process that did not start serving.
type AppStartError struct {
	Command string
	Reason  string
	Output  []string // its last lines of output
}

func (e *AppStartError) Error() string {
	msg := fmt.Sprintf("the app process (%s) %s", e.Command, e.Reason)
	if len(e.Output) > 0 {
		msg += "; its last output:\n  " + strings.Join(e.Output, "\n  ")
	}
	return msg
}

const (
	appTailLines    = 20
	appLineMax      = 64 << 10
	appStopGrace    = 5 * time.Second
	appProbeEvery   = 20 * time.Millisecond
	appStartDefault = 60 * time.Second
)

// appProc is one running app process.
type appProc struct {
	cmd      *exec.Cmd
	pid      int
	port     int
	base     string // http://127.0.0.1:<port>
	command  string
	done     chan struct{} // closed once the process has exited and been waited for
	exitErr  error
	inflight sync.WaitGroup
	stopping atomic.Bool
	client   *http.Client

	tailMu sync.Mutex
	tail   []string

	funcsMu sync.Mutex
	funcs   []string
}

// freeLoopbackPort asks the system for a port nobody listens on.
func freeLoopbackPort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// startApp starts the release's app process in dir and waits until it answers HTTP.
func (e *Env) startApp(ctx context.Context, rel *Release, version int) (*appProc, error) {
	spec := rel.App
	if len(spec.Command) == 0 {
		return nil, errors.New("appenv: the app process has no command")
	}
	port, err := freeLoopbackPort()
	if err != nil {
		return nil, fmt.Errorf("no free port for the app process: %w", err)
	}
	args := append([]string(nil), spec.Command...)
	switch args[0] {
	case "node":
		if e.cfg.Node != "" {
			args[0] = e.cfg.Node
		}
	case "npm":
		if npm, err := exec.LookPath("npm"); err == nil {
			args[0] = npm
		}
	}
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Dir = rel.Dir
	cmd.Env = e.appEnviron(rel, port)
	isolateApp(cmd)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	p := &appProc{cmd: cmd, port: port, base: "http://127.0.0.1:" + strconv.Itoa(port), command: strings.Join(spec.Command, " "),
		done: make(chan struct{}), client: &http.Client{Transport: appTransport()}}
	if err := cmd.Start(); err != nil {
		return nil, &AppStartError{Command: p.command, Reason: "could not start: " + err.Error()}
	}
	p.pid = cmd.Process.Pid
	logf := e.engineRecord(version)
	var streams sync.WaitGroup
	streams.Add(2)
	go func() { defer streams.Done(); p.readStream(stdout, "stdout", logf) }()
	go func() { defer streams.Done(); p.readStream(stderr, "stderr", logf) }()
	go func() {
		streams.Wait() // Wait closes the pipes: read them to the end first
		p.exitErr = cmd.Wait()
		reapGroup(p.pid)
		close(p.done)
		if !p.stopping.Load() {
			logf(engine.Record{Time: time.Now(), Level: "error", Function: "app", Stream: "fn", PID: p.pid,
				Message: fmt.Sprintf("the app process (%s) exited: %v", p.command, exitText(p.exitErr))})
		}
	}()
	timeout := spec.StartTimeout
	if timeout <= 0 {
		timeout = appStartDefault
	}
	if err := p.waitReady(ctx, timeout); err != nil {
		p.stop(0)
		return nil, err
	}
	p.refreshFunctions(e.cfg.Keys)
	return p, nil
}

func exitText(err error) string {
	if err == nil {
		return "exit status 0"
	}
	return err.Error()
}

// appEnviron is the app process's environment: what a worker gets from fn's, the SDK env with
// the app's own port (LEANCLOUD_APP_PORT, and PORT for apps that read that), then the release's.
func (e *Env) appEnviron(rel *Release, port int) []string {
	env := appHostEnv(e.cfg.InheritEnv, e.cfg.ScratchDir, os.Environ())
	sdk := e.SDKEnv()
	sdk["LEANCLOUD_APP_PORT"] = strconv.Itoa(port)
	sdk["PORT"] = strconv.Itoa(port)
	sdk["LEANCLOUD_APP_INSTANCE"] = "fn"
	for k, v := range sdk {
		env = append(env, k+"="+v)
	}
	for k, v := range rel.Env {
		env = append(env, k+"="+v)
	}
	if rel.App != nil {
		for k, v := range rel.App.Env {
			env = append(env, k+"="+v)
		}
	}
	return env
}

// appInherited are the variables of fn's environment the app process gets (as a worker does).
var appInherited = map[string]bool{
	"PATH": true, "HOME": true, "LANG": true, "LANGUAGE": true, "TZ": true, "TMPDIR": true, "USER": true, "LOGNAME": true,
	"Path": true, "PATHEXT": true, "SYSTEMROOT": true, "SystemRoot": true, "WINDIR": true, "COMSPEC": true, "TEMP": true, "TMP": true,
	"USERPROFILE": true, "APPDATA": true, "LOCALAPPDATA": true,
}

func appHostEnv(inherit bool, scratch string, environ []string) []string {
	env := make([]string, 0, 24)
	for _, kv := range environ {
		k, _, _ := strings.Cut(kv, "=")
		if scratch != "" && (k == "HOME" || k == "TMPDIR" || k == "USERPROFILE" || k == "TEMP" || k == "TMP") {
			continue
		}
		switch {
		case strings.HasPrefix(k, "FN_") || k == "NODE_OPTIONS" || strings.HasPrefix(k, "LEANCLOUD_") || strings.HasPrefix(k, "LC_API") || strings.HasPrefix(k, "LC_APP"):
		case inherit || appInherited[k] || strings.HasPrefix(k, "LC_"):
			env = append(env, kv)
		}
	}
	if scratch != "" {
		os.MkdirAll(scratch, 0o700)
		env = append(env, "HOME="+scratch, "TMPDIR="+scratch, "USERPROFILE="+scratch, "TEMP="+scratch, "TMP="+scratch)
	}
	return env
}

// readStream turns the process's output into log records, one per line (bounded).
func (p *appProc) readStream(r io.Reader, stream string, logf func(engine.Record)) {
	br := bufio.NewReaderSize(r, 16<<10)
	var line []byte
	dropped := 0
	for {
		chunk, err := br.ReadSlice('\n')
		if len(line)+len(chunk) <= appLineMax {
			line = append(line, chunk...)
		} else {
			room := appLineMax - len(line)
			if room > 0 {
				line = append(line, chunk[:room]...)
			}
			dropped += len(chunk) - max(room, 0)
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		if len(line) > 0 || dropped > 0 {
			msg := strings.TrimRight(string(line), "\r\n")
			if dropped > 0 {
				msg += fmt.Sprintf(" … [truncated %d]", dropped)
			}
			level := "info"
			if stream == "stderr" {
				level = "error"
			}
			p.remember(msg)
			logf(engine.Record{Time: time.Now(), Level: level, Function: "app", Message: msg, Stream: stream, PID: p.pid})
		}
		line, dropped = line[:0], 0
		if err != nil {
			return
		}
	}
}

func (p *appProc) remember(line string) {
	p.tailMu.Lock()
	defer p.tailMu.Unlock()
	p.tail = append(p.tail, line)
	if len(p.tail) > appTailLines {
		p.tail = p.tail[len(p.tail)-appTailLines:]
	}
}

func (p *appProc) lastOutput() []string {
	p.tailMu.Lock()
	defer p.tailMu.Unlock()
	return append([]string(nil), p.tail...)
}

// waitReady polls the app's port until it answers any HTTP request (LeanCloud's health check
// is GET /__engine/1/ping, which the leanengine middleware answers).
func (p *appProc) waitReady(ctx context.Context, timeout time.Duration) error {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	tick := time.NewTicker(appProbeEvery)
	defer tick.Stop()
	probe := &http.Client{Timeout: time.Second, Transport: appTransport()}
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, p.base+"/__engine/1/ping", nil)
		if resp, err := probe.Do(req); err == nil {
			io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
			resp.Body.Close()
			return nil
		}
		select {
		case <-p.done:
			return &AppStartError{Command: p.command, Reason: "exited before it listened on LEANCLOUD_APP_PORT (" +
				exitText(p.exitErr) + ")", Output: p.lastOutput()}
		case <-deadline.C:
			return &AppStartError{Command: p.command, Reason: fmt.Sprintf("did not listen on LEANCLOUD_APP_PORT=%d within %v", p.port, timeout),
				Output: p.lastOutput()}
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
}

// stop lets requests in flight finish (within grace), asks the process group to end, and kills
// it if it has not within appStopGrace; the process is always waited for.
func (p *appProc) stop(grace time.Duration) {
	p.stopping.Store(true)
	if grace > 0 {
		drained := make(chan struct{})
		go func() { p.inflight.Wait(); close(drained) }()
		t := time.NewTimer(grace)
		select {
		case <-drained:
		case <-p.done:
		case <-t.C:
		}
		t.Stop()
	}
	signalApp(p.pid, false)
	t := time.NewTimer(appStopGrace)
	defer t.Stop()
	select {
	case <-p.done:
		signalApp(p.pid, true) // what it started and left behind in its group
		return
	case <-t.C:
	}
	signalApp(p.pid, true)
	<-p.done
}

func (p *appProc) alive() bool {
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

func appTransport() *http.Transport {
	return &http.Transport{Proxy: nil, DialContext: (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
		MaxIdleConnsPerHost: 64, IdleConnTimeout: 30 * time.Second, ResponseHeaderTimeout: 0}
}

// refreshFunctions asks the app's leanengine middleware what it defines (master key).
func (p *appProc) refreshFunctions(k Keys) {
	req, _ := http.NewRequest(http.MethodGet, p.base+"/1.1/functions/_ops/metadatas", nil)
	req.Header.Set("X-LC-Id", k.AppID)
	req.Header.Set("X-LC-Key", k.MasterKey+",master")
	c := &http.Client{Timeout: 5 * time.Second, Transport: p.client.Transport}
	resp, err := c.Do(req)
	if err != nil {
		return
	}
	defer resp.Body.Close()
	var body struct {
		Result []string `json:"result"`
	}
	if resp.StatusCode == http.StatusOK && json.NewDecoder(io.LimitReader(resp.Body, 4<<20)).Decode(&body) == nil {
		p.funcsMu.Lock()
		p.funcs = body.Result
		p.funcsMu.Unlock()
	}
}

func (p *appProc) functions() []string {
	p.funcsMu.Lock()
	defer p.funcsMu.Unlock()
	return append([]string(nil), p.funcs...)
}

// leanPath is where leanengine's middleware serves a lean invocation.
func leanPath(req engine.LeanRequest) string {
	switch req.Kind {
	case engine.LeanClassHook:
		return "/1.1/functions/" + req.ClassName + "/" + req.Hook
	case engine.LeanUserHook:
		if req.Hook == "onVerified" {
			return "/1.1/functions/onVerified/" + req.ClassName
		}
		return "/1.1/functions/_User/" + req.Hook
	case "bigquery":
		return "/1.1/functions/BigQuery/onComplete"
	}
	if req.RPC {
		return "/1.1/call/" + req.Name
	}
	return "/1.1/functions/" + req.Name
}

// invokeApp runs a lean invocation (a hook fired by LeanStorage, a timer, fn invoke) inside the
// app process over HTTP, as LeanCloud's servers call a LeanEngine app: the app id, the hook key
// for hooks, the master key when the caller had it, the user's session, the client address.
func (e *Env) invokeApp(ctx context.Context, p *appProc, req engine.LeanRequest) *engine.LeanResult {
	start := time.Now()
	if req.RequestID == "" {
		req.RequestID = engine.NewRequestID()
	}
	res := &engine.LeanResult{RequestID: req.RequestID}
	timeout := req.Timeout
	if timeout <= 0 {
		timeout = 15 * time.Second
		if rel := e.Release(); rel != nil {
			for _, b := range rel.Manifest.Bundles {
				if b.Config.Timeout > 0 {
					timeout = time.Duration(b.Config.Timeout) * time.Second
				}
			}
		}
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	params := req.Params
	if len(bytes.TrimSpace(params)) == 0 {
		params = json.RawMessage("{}")
	}
	hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, p.base+leanPath(req), bytes.NewReader(params))
	if err != nil {
		return appFail(res, start, 500, err.Error())
	}
	k := e.cfg.Keys
	h := hreq.Header
	h.Set("Content-Type", "application/json")
	h.Set("X-LC-Id", k.AppID)
	h.Set("X-LC-Key", k.AppKey)
	if req.Master {
		h.Set("X-LC-Key", k.MasterKey+",master")
	}
	if req.HookKeyOK || req.Kind != engine.LeanFunction {
		h.Set("X-LC-Hook-Key", k.HookKey)
	}
	if req.SessionToken != "" {
		h.Set("X-LC-Session", req.SessionToken)
	}
	if req.RemoteAddress != "" {
		h.Set("X-Real-IP", req.RemoteAddress)
	}
	h.Set("X-Request-Id", req.RequestID)
	p.inflight.Add(1)
	defer p.inflight.Done()
	resp, err := p.client.Do(hreq)
	if err != nil {
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			e.note("error", req.Name, fmt.Sprintf("LeanEngine function timeout, url=%s, timeout=%d", leanPath(req), timeout.Milliseconds()))
			res.Status, res.Body, res.Duration = 503, engine.LeanTimeoutBody, time.Since(start)
			res.Err = &engine.FunctionError{Kind: engine.KindTimeout, Message: "The request timed out on the server."}
			return res
		}
		if !p.alive() {
			return appFail(res, start, 503, fmt.Sprintf("the app process is not running (%s)", exitText(p.exitErr)))
		}
		return appFail(res, start, 502, "the app process did not answer: "+err.Error())
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 20<<20))
	if err != nil {
		return appFail(res, start, 502, "the app process's answer could not be read: "+err.Error())
	}
	res.Status, res.Body, res.Duration = resp.StatusCode, bytes.TrimRight(body, "\n"), time.Since(start)
	if !json.Valid(res.Body) {
		res.Body, _ = json.Marshal(map[string]any{"code": 1, "error": strings.TrimSpace(string(body))})
	}
	if res.Status != http.StatusOK {
		var eb struct {
			Code  int    `json:"code"`
			Error string `json:"error"`
		}
		json.Unmarshal(res.Body, &eb)
		kind := engine.KindException
		if res.Status == http.StatusNotFound {
			kind = engine.KindNotFound
		}
		res.Err = &engine.FunctionError{Kind: kind, Message: eb.Error}
	}
	return res
}

func appFail(res *engine.LeanResult, start time.Time, status int, msg string) *engine.LeanResult {
	res.Status, res.Duration = status, time.Since(start)
	res.Body, _ = json.Marshal(map[string]any{"code": 1, "error": msg})
	res.Err = &engine.FunctionError{Kind: engine.KindException, Message: msg}
	return res
}
