package engine

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// message is one protocol line in either direction. Fields are a union over the message types.
type message struct {
	T  string `json:"t"`
	ID uint64 `json:"id,omitempty"`

	// load
	Name    string `json:"name,omitempty"`
	File    string `json:"file,omitempty"`
	Version int64  `json:"version,omitempty"`
	Dialect string `json:"dialect,omitempty"`

	// invoke (wx)
	Fn        string          `json:"fn,omitempty"`
	RID       string          `json:"rid,omitempty"`
	Event     json.RawMessage `json:"event,omitempty"`
	Env       json.RawMessage `json:"env,omitempty"` // a JSON object, encoded in order by wxEnv
	Environ   string          `json:"environ,omitempty"`
	Namespace string          `json:"namespace,omitempty"`
	TimeoutMs int64           `json:"timeoutMs,omitempty"`
	// Concurrent: the worker runs other invocations at once, so the identity env is served per
	// invocation (AsyncLocalStorage) instead of written to process.env
	Concurrent bool `json:"concurrent,omitempty"`
	MemoryMB   int  `json:"memoryMB,omitempty"`

	// invoke (lean)
	Kind          string          `json:"kind,omitempty"`
	Params        json.RawMessage `json:"params,omitempty"`
	RPC           bool            `json:"rpc,omitempty"`
	SessionToken  string          `json:"sessionToken,omitempty"`
	RemoteAddress string          `json:"remoteAddress,omitempty"`
	ClassName     string          `json:"className,omitempty"`
	Hook          string          `json:"hook,omitempty"`
	HookKeyOK     bool            `json:"hookKeyOK,omitempty"`
	Master        bool            `json:"master,omitempty"`
	RealtimeHook  bool            `json:"realtimeHook,omitempty"`
	URL           string          `json:"url,omitempty"`
}

// reply is a line from a worker.
type reply struct {
	T     string          `json:"t"`
	ID    uint64          `json:"id"`
	OK    bool            `json:"ok"`
	Value json.RawMessage `json:"value"`
	Error *jsError        `json:"error"`
	// lean failures carry the HTTP status and body leanengine would send
	Status int             `json:"status"`
	Body   json.RawMessage `json:"body"`
	// load
	Names []string `json:"names"`
	Ms    float64  `json:"ms"`
	// log
	Level string `json:"level"`
	Msg   string `json:"msg"`
	RID   string `json:"rid"`
	Fn    string `json:"fn"`
	TS    int64  `json:"ts"`
	// fatal / exit
	Kind string `json:"kind"`
	Code int    `json:"code"`
	PID  int    `json:"pid"`
	Node string `json:"node"`
}

type jsError struct {
	Name    string          `json:"name"`
	Message string          `json:"message"`
	Stack   string          `json:"stack"`
	Kind    string          `json:"kind"`
	Code    json.RawMessage `json:"code"`
	Status  int             `json:"status"`
}

// workerSpec is what a worker is started with.
type workerSpec struct {
	node     string
	runner   string
	dir      string
	env      []string
	memoryMB int
	inspect  string // --inspect address, empty for none
	name     string // function or bundle name, for logs
}

// worker is one supervised Node.js process.
type worker struct {
	id   int64
	spec workerSpec
	cmd  *exec.Cmd
	pid  int

	wmu sync.Mutex
	in  *os.File // fd 3 of the child

	mu      sync.Mutex
	pending map[uint64]chan reply
	nextID  atomic.Uint64

	// state owned by the pool
	version  int64 // bundle version loaded
	reloads  int
	inflight atomic.Int32
	lastUsed atomic.Int64
	retired  atomic.Bool

	done     chan struct{} // closed after the process exited and was reaped
	dying    atomic.Bool   // the worker said it is exiting, or has exited: take no new work
	deathMu  sync.Mutex
	death    *FunctionError // why it died, if it did
	stderr   tail
	exitedAt time.Time

	logs     func(*worker, reply, string) // log records and raw output (stream name)
	owner    atomic.Pointer[pool]         // the pool the worker serves (nil while it is a spare)
	current  atomic.Value                 // request id of the invocation in flight (exclusive pools)
	onDeath  func(*worker)
	started  time.Time
	readyDur time.Duration
}

var workerSeq atomic.Int64

// startWorker spawns a worker in its own process group and waits until it is ready.
func startWorker(ctx context.Context, spec workerSpec, logs func(*worker, reply, string), onDeath func(*worker)) (*worker, error) {
	inR, inW, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		inR.Close()
		inW.Close()
		return nil, err
	}
	args := []string{"--no-deprecation"}
	if spec.memoryMB > 0 {
		args = append(args, "--max-old-space-size="+strconv.Itoa(spec.memoryMB))
	}
	if spec.inspect != "" {
		args = append(args, "--inspect="+spec.inspect)
	}
	args = append(args, spec.runner)
	cmd := exec.Command(spec.node, args...)
	cmd.Dir = spec.dir
	cmd.Env = spec.env
	cmd.ExtraFiles = []*os.File{inR, outW} // fd 3, fd 4
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	w := &worker{
		id: workerSeq.Add(1), spec: spec, cmd: cmd, in: inW,
		pending: map[uint64]chan reply{}, done: make(chan struct{}),
		logs: logs, onDeath: onDeath, started: time.Now(),
	}
	if err := cmd.Start(); err != nil {
		inR.Close()
		inW.Close()
		outR.Close()
		outW.Close()
		return nil, fmt.Errorf("starting node (%s): %w", spec.node, err)
	}
	w.pid = cmd.Process.Pid
	inR.Close()
	outW.Close()

	ready := make(chan reply, 1)
	var streams sync.WaitGroup
	streams.Add(3)
	go func() { defer streams.Done(); w.readProtocol(outR, ready) }()
	go func() { defer streams.Done(); w.readStream(stdout, "stdout") }()
	go func() { defer streams.Done(); w.readStream(stderr, "stderr") }()
	go func() {
		streams.Wait()
		err := cmd.Wait()
		w.dying.Store(true)
		w.exitedAt = time.Now()
		w.noteDeath(err)
		w.failPending()
		close(w.done)
		if w.onDeath != nil {
			w.onDeath(w)
		}
	}()

	timer := time.NewTimer(15 * time.Second)
	defer timer.Stop()
	select {
	case <-ready:
		w.readyDur = time.Since(w.started)
		w.lastUsed.Store(time.Now().UnixNano())
		return w, nil
	case <-w.done:
		return nil, w.deathError()
	case <-timer.C:
		w.kill()
		return nil, errors.New("node worker did not start within 15 s")
	case <-ctx.Done():
		w.kill()
		return nil, ctx.Err()
	}
}

func (w *worker) readProtocol(r io.ReadCloser, ready chan reply) {
	defer r.Close()
	br := bufio.NewReaderSize(r, 64<<10)
	for {
		line, err := br.ReadBytes('\n')
		if len(line) > 1 {
			var rp reply
			if jerr := json.Unmarshal(line, &rp); jerr == nil {
				w.dispatch(rp, ready)
			}
		}
		if err != nil {
			return
		}
	}
}

func (w *worker) dispatch(rp reply, ready chan reply) {
	switch rp.T {
	case "ready":
		select {
		case ready <- rp:
		default:
		}
	case "log":
		if w.logs != nil {
			w.logs(w, rp, "console")
		}
	case "fatal", "exit":
		w.dying.Store(true)
		w.deathMu.Lock()
		if w.death == nil {
			w.death = fatalError(rp)
		}
		w.deathMu.Unlock()
	default:
		w.mu.Lock()
		ch, ok := w.pending[rp.ID]
		delete(w.pending, rp.ID)
		w.mu.Unlock()
		if ok {
			ch <- rp
		} else if rp.T == "result" && w.logs != nil {
			w.logs(w, reply{Level: "warn", Msg: "a late result arrived after its invocation ended (timed out); it was dropped", Fn: w.spec.name}, "fn")
		}
	}
}

func fatalError(rp reply) *FunctionError {
	switch rp.T {
	case "exit":
		return &FunctionError{Kind: KindCrash, Message: fmt.Sprintf("the function called process.exit(%d); the worker was replaced", rp.Code)}
	}
	fe := &FunctionError{Kind: KindCrash}
	what := "an uncaught exception"
	if rp.Kind == "unhandledRejection" {
		what = "an unhandled promise rejection"
	}
	if rp.Error != nil {
		fe.Message = fmt.Sprintf("the worker crashed on %s: %s", what, rp.Error.Message)
		fe.Stack = rp.Error.Stack
	} else {
		fe.Message = "the worker crashed on " + what
	}
	return fe
}

func (w *worker) readStream(r io.Reader, stream string) {
	br := bufio.NewReaderSize(r, 16<<10)
	for {
		line, err := br.ReadString('\n')
		if line != "" {
			line = strings.TrimRight(line, "\n")
			if stream == "stderr" {
				w.stderr.add(line)
			}
			if w.logs != nil {
				level := "info"
				if stream == "stderr" {
					level = "error"
				}
				w.logs(w, reply{Level: level, Msg: line, Fn: w.spec.name}, stream)
			}
		}
		if err != nil {
			return
		}
	}
}

// noteDeath records why the process ended, when the protocol did not already say.
func (w *worker) noteDeath(waitErr error) {
	w.deathMu.Lock()
	defer w.deathMu.Unlock()
	if w.death != nil {
		return
	}
	text := w.stderr.String()
	switch {
	case strings.Contains(text, "heap out of memory") || strings.Contains(text, "Reached heap limit"):
		w.death = &FunctionError{Kind: KindMemory, Message: fmt.Sprintf("the function ran out of memory: it exceeded its limit of %d MB; the worker was replaced", w.spec.memoryMB)}
	case w.retired.Load():
		w.death = &FunctionError{Kind: KindCrash, Message: "the worker was stopped"}
	default:
		msg := "the worker exited unexpectedly"
		if waitErr != nil {
			msg += " (" + waitErr.Error() + ")"
		}
		if text != "" {
			msg += ": " + lastLines(text, 5)
		}
		w.death = &FunctionError{Kind: KindCrash, Message: msg}
	}
}

func (w *worker) deathError() *FunctionError {
	w.deathMu.Lock()
	defer w.deathMu.Unlock()
	if w.death == nil {
		return &FunctionError{Kind: KindCrash, Message: "the worker stopped"}
	}
	return w.death
}

func (w *worker) failPending() {
	w.mu.Lock()
	pending := w.pending
	w.pending = map[uint64]chan reply{}
	w.mu.Unlock()
	for _, ch := range pending {
		close(ch)
	}
}

func (w *worker) alive() bool {
	if w.dying.Load() {
		return false
	}
	select {
	case <-w.done:
		return false
	default:
		return true
	}
}

// call sends a request and waits for its reply, the worker's death, or ctx.
func (w *worker) call(ctx context.Context, m *message) (reply, error) {
	id := w.nextID.Add(1)
	m.ID = id
	ch := make(chan reply, 1)
	w.mu.Lock()
	if !w.alive() {
		w.mu.Unlock()
		return reply{}, w.deathError()
	}
	w.pending[id] = ch
	w.mu.Unlock()
	data, err := json.Marshal(m)
	if err != nil {
		w.forget(id)
		return reply{}, err
	}
	data = append(data, '\n')
	w.wmu.Lock()
	_, err = w.in.Write(data)
	w.wmu.Unlock()
	if err != nil {
		w.forget(id)
		<-w.done
		return reply{}, w.deathError()
	}
	select {
	case rp, ok := <-ch:
		if !ok {
			return reply{}, w.deathError()
		}
		return rp, nil
	case <-w.done:
		select {
		case rp, ok := <-ch:
			if ok {
				return rp, nil
			}
		default:
		}
		return reply{}, w.deathError()
	case <-ctx.Done():
		w.forget(id)
		return reply{}, ctx.Err()
	}
}

func (w *worker) forget(id uint64) {
	w.mu.Lock()
	delete(w.pending, id)
	w.mu.Unlock()
}

// ping reports whether the worker answers within d (a blocked event loop does not).
func (w *worker) ping(d time.Duration) bool {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	rp, err := w.call(ctx, &message{T: "ping"})
	return err == nil && rp.T == "pong"
}

// kill ends the whole process group at once.
func (w *worker) kill() {
	w.retired.Store(true)
	if w.pid > 0 {
		syscall.Kill(-w.pid, syscall.SIGKILL)
	}
}

// killStuck kills a worker whose event loop no longer answers, recording why, so that the
// invocations still on it fail with that reason and the pool starts a replacement.
func (w *worker) killStuck(reason string) {
	w.deathMu.Lock()
	if w.death == nil {
		w.death = &FunctionError{Kind: KindCrash, Message: reason}
	}
	w.deathMu.Unlock()
	if w.pid > 0 {
		syscall.Kill(-w.pid, syscall.SIGKILL)
	}
}

// stop asks the worker to exit (closing its input), then signals its group: SIGTERM after grace,
// SIGKILL after another grace. It returns once the process has been reaped.
func (w *worker) stop(grace time.Duration) {
	w.retired.Store(true)
	w.wmu.Lock()
	w.in.Close()
	w.wmu.Unlock()
	select {
	case <-w.done:
		return
	case <-time.After(grace):
	}
	syscall.Kill(-w.pid, syscall.SIGTERM)
	select {
	case <-w.done:
		return
	case <-time.After(grace):
	}
	syscall.Kill(-w.pid, syscall.SIGKILL)
	<-w.done
}

// tail keeps the last few KB of a stream (stderr, to explain a crash).
type tail struct {
	mu  sync.Mutex
	buf []string
}

func (t *tail) add(line string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, line)
	if len(t.buf) > 50 {
		t.buf = t.buf[len(t.buf)-50:]
	}
}

func (t *tail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return strings.Join(t.buf, "\n")
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
