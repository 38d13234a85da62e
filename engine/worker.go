package engine

import (
	"bytes"
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
	"time"
)

// workerSpec is what a worker is started with.
type workerSpec struct {
	node     string
	runner   string
	dir      string
	env      []string
	memoryMB int
	inspect  string // --inspect address, empty for none
	name     string // function or bundle name, for logs
	sandbox  func(*exec.Cmd) error
	nice     int    // start at this nice value (a crash-looping function's worker)
	preload  string // a package the runner requires before it is ready (SDK spares)
	cache    string // V8 code cache directory for node_modules (Config.CodeCacheDir), empty for none
	bundles  bool   // the code cache takes the bundles too (Config.CodeCacheBundles)
}

// worker is one supervised Node.js process.
type worker struct {
	id   int64
	spec workerSpec
	cmd  *exec.Cmd
	pid  int
	ps   procState // what ends its process tree where groups do not (proc_*.go)

	wmu sync.Mutex
	in  io.WriteCloser // requests to the worker (its fd 3, or its connection: link)
	// writing is set while a caller writes requests (outside wmu); lines that arrive meanwhile
	// wait in queued and go with that caller's next write (send)
	writing bool
	queued  []byte
	spare   []byte

	mu      sync.Mutex
	pending map[uint64]chan []byte
	nextID  atomic.Uint64

	// state owned by the pool
	version  int64 // bundle version loaded
	reloads  int
	inflight atomic.Int32
	lastUsed atomic.Int64
	retired  atomic.Bool
	// suspect counts timed-out invocations whose health check is pending: a shared worker takes
	// no new invocation meanwhile (a stuck one would fail it when it is killed)
	suspect atomic.Int32

	stdoutReader atomic.Pointer[lineReader] // (tests: how much of a line it held)

	done     chan struct{} // closed after the process exited and was reaped
	dying    atomic.Bool   // the worker said it is exiting, or has exited: take no new work
	deathMu  sync.Mutex
	death    *FunctionError // why it died, if it did
	stderr   tail
	exitedAt time.Time

	logs     func(*worker, logMsg, string) // log records and raw output (stream name)
	owner    atomic.Pointer[pool]          // the pool the worker serves (nil while it is a spare)
	current  atomic.Pointer[invocation]    // the latest invocation of an exclusive worker, for its raw output
	onDeath  func(*worker)
	started  time.Time
	readyDur time.Duration
	prio     priority // CPU priority (priority.go)
}

var workerSeq atomic.Int64

// invocation is what raw output is attributed to.
type invocation struct {
	rid    string
	budget *logBudget
}

// tagEnv is the environment entry that marks the worker's processes: every process it starts
// inherits it, which lets fn find them after they left the worker's process group.
func (w *worker) tagEnv() string {
	return "FN_WORKER_ID=" + strconv.Itoa(os.Getpid()) + "." + strconv.FormatInt(w.id, 10)
}

// startWorker spawns a worker in its own process group and waits until it is ready.
func startWorker(ctx context.Context, spec workerSpec, logs func(*worker, logMsg, string), onDeath func(*worker)) (*worker, error) {
	// the protocol's link (fds 3 and 4, or loopback TCP), stdout, stderr: plain pipes, so that
	// Wait does not wait for (or close) them
	proto, err := newLink()
	if err != nil {
		return nil, err
	}
	var pipes [2][2]*os.File
	closeAll := func() {
		proto.abort()
		for _, p := range pipes {
			for _, f := range p {
				if f != nil {
					f.Close()
				}
			}
		}
	}
	for i := range pipes {
		r, w, err := os.Pipe()
		if err != nil {
			closeAll()
			return nil, err
		}
		pipes[i] = [2]*os.File{r, w}
	}
	stdoutR, stdoutW := pipes[0][0], pipes[0][1]
	stderrR, stderrW := pipes[1][0], pipes[1][1]
	growPipe(stdoutW)
	growPipe(stderrW)
	args := []string{"--no-deprecation"}
	if spec.memoryMB > 0 {
		args = append(args, "--max-old-space-size="+strconv.Itoa(spec.memoryMB))
	}
	if spec.inspect != "" {
		args = append(args, "--inspect="+spec.inspect)
	}
	args = append(args, spec.runner)
	if sweeping() {
		args = append(args, "--fn-swept")
	}
	if spec.preload != "" {
		args = append(args, "--fn-preload="+spec.preload)
	}
	if spec.cache != "" {
		args = append(args, "--fn-code-cache="+spec.cache)
		if spec.bundles {
			args = append(args, "--fn-code-cache-bundles")
		}
	}
	cmd := exec.Command(spec.node, args...)
	cmd.Dir = spec.dir
	w := &worker{id: workerSeq.Add(1)}
	cmd.Env = append(spec.env[:len(spec.env):len(spec.env)], w.tagEnv())
	proto.prepare(cmd)
	cmd.Stdout, cmd.Stderr = stdoutW, stderrW
	isolate(cmd)
	if spec.sandbox != nil {
		if err := spec.sandbox(cmd); err != nil {
			closeAll()
			return nil, fmt.Errorf("confining the worker: %w", err)
		}
	}
	w.spec, w.cmd = spec, cmd
	w.pending, w.done = map[uint64]chan []byte{}, make(chan struct{})
	w.logs, w.onDeath, w.started = logs, onDeath, time.Now()
	if err := cmd.Start(); err != nil {
		closeAll()
		return nil, fmt.Errorf("starting node (%s): %w", spec.node, err)
	}
	w.pid = cmd.Process.Pid
	w.adopt()
	if spec.nice > 0 {
		w.startNice(spec.nice)
	}
	proto.started()
	stdoutW.Close()
	stderrW.Close()

	ready := make(chan readyMsg, 1)
	var streams sync.WaitGroup
	streams.Add(3)
	go func() {
		defer streams.Done()
		outR, inW, err := proto.open()
		if err != nil {
			return // the process ended first; Wait's goroutine says why
		}
		w.wmu.Lock()
		w.in = inW
		w.wmu.Unlock()
		w.readProtocol(outR, ready)
	}()
	go func() { defer streams.Done(); w.readStream(stdoutR, "stdout") }()
	go func() { defer streams.Done(); w.readStream(stderrR, "stderr") }()
	go func() {
		err := cmd.Wait()
		proto.exited()
		// Processes the worker left behind hold copies of its pipes: once they are gone the
		// streams end. One that escaped the sweep (it replaced its environment and left the
		// group) must not keep the worker from being declared dead.
		w.sweepOrphans()
		ended := make(chan struct{})
		go func() { streams.Wait(); close(ended) }()
		select {
		case <-ended:
		case <-time.After(2 * time.Second):
			proto.abort()
			stdoutR.Close()
			stderrR.Close()
			<-ended
		}
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
	case rm := <-ready:
		if err := rm.check(); err != nil {
			w.kill()
			<-w.done
			return nil, err
		}
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

func (w *worker) readProtocol(r io.ReadCloser, ready chan readyMsg) {
	defer r.Close()
	lr := newLineReader(r, maxProtocolLine)
	for {
		line, dropped, err := lr.next()
		if dropped > 0 {
			// the runner never sends this much: it is broken, or function code wrote to fd 4
			w.killStuck(fmt.Sprintf("the worker sent a protocol message of more than %s; it was killed", byteSize(maxProtocolLine)))
		} else if len(line) > 0 {
			if h, ok := peekHeader(line); ok {
				w.dispatch(h, append([]byte(nil), line...), ready)
			}
		}
		if err != nil {
			return
		}
	}
}

func (w *worker) dispatch(h header, line []byte, ready chan readyMsg) {
	switch h.T {
	case msgReady:
		var m readyMsg
		if json.Unmarshal(line, &m) == nil {
			select {
			case ready <- m:
			default:
			}
		}
	case msgLog:
		var m logMsg
		if w.logs != nil && json.Unmarshal(line, &m) == nil {
			w.logs(w, m, "console")
		}
	case msgFatal, msgExit:
		w.dying.Store(true)
		fe := deathNotice(h.T, line)
		w.deathMu.Lock()
		if w.death == nil {
			w.death = fe
		}
		w.deathMu.Unlock()
	case msgLoaded, msgResult, msgPong:
		w.mu.Lock()
		ch, ok := w.pending[h.ID]
		delete(w.pending, h.ID)
		w.mu.Unlock()
		if ok {
			ch <- line
		} else if h.T == msgResult && w.logs != nil {
			w.logs(w, logMsg{Level: "warn", Msg: "a late result arrived after its invocation ended (timed out); it was dropped", Fn: w.spec.name}, "fn")
		}
	}
}

// deathNotice is why a worker that announced its end dies.
func deathNotice(kind msgKind, line []byte) *FunctionError {
	if kind == msgExit {
		var m exitMsg
		json.Unmarshal(line, &m)
		return &FunctionError{Kind: KindCrash, Message: fmt.Sprintf("the function called process.exit(%d); the worker was replaced", m.Code)}
	}
	var m fatalMsg
	json.Unmarshal(line, &m)
	fe := &FunctionError{Kind: KindCrash}
	what := "an uncaught exception"
	if m.Kind == "unhandledRejection" {
		what = "an unhandled promise rejection"
	}
	if m.Error != nil {
		fe.Message = fmt.Sprintf("the worker crashed on %s: %s", what, m.Error.Message)
		fe.Stack = m.Error.Stack
	} else {
		fe.Message = "the worker crashed on " + what
	}
	return fe
}

func (w *worker) readStream(r io.ReadCloser, stream string) {
	defer r.Close()
	lr := newLineReader(r, MaxRecordBytes)
	if stream == "stdout" {
		w.stdoutReader.Store(lr)
	}
	for {
		line, dropped, err := lr.next()
		if err == nil || len(line) > 0 || dropped > 0 {
			text := truncated(string(line), dropped)
			if stream == "stderr" {
				w.stderr.add(text)
			}
			if w.logs != nil {
				level := "info"
				if stream == "stderr" {
					level = "error"
				}
				keep, as := true, stream
				if stream == "stderr" && w.spec.inspect != "" {
					// Node's inspector notices are not errors: say which function's worker listens
					var msg string
					if msg, keep = inspectorNotice(text); msg != "" {
						level, as, text = "info", "fn", "inspector for "+w.spec.name+": "+msg
					}
				}
				if keep {
					w.logs(w, logMsg{Level: level, Msg: text, Fn: w.spec.name}, as)
				}
			}
		}
		if err != nil {
			return
		}
	}
}

// inspectorNotice recognises Node's inspector lines on stderr: the listening address (msg), the
// help line that follows it (dropped), and attach/detach notices. keep is false for a dropped line;
// msg is "" for a line that is not the inspector's.
func inspectorNotice(line string) (msg string, keep bool) {
	switch {
	case strings.HasPrefix(line, "Debugger listening on "):
		return strings.TrimPrefix(line, "Debugger listening on "), true
	case strings.HasPrefix(line, "For help, see: https://nodejs.org/"):
		return "", false
	case line == "Debugger attached.", strings.HasPrefix(line, "Waiting for the debugger to disconnect"):
		return line, true
	}
	return "", true
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
	w.pending = map[uint64]chan []byte{}
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

// call sends a request and waits for its reply (decoded into resp), the worker's death, or ctx.
func (w *worker) call(ctx context.Context, m request, resp any) error {
	id := w.nextID.Add(1)
	m.head().ID = id
	ch := make(chan []byte, 1)
	w.mu.Lock()
	if !w.alive() {
		w.mu.Unlock()
		return w.deathError()
	}
	w.pending[id] = ch
	w.mu.Unlock()
	buf := requestBufs.Get().(*[]byte)
	data, err := encodeRequest((*buf)[:0], m)
	if err != nil {
		w.forget(id)
		return err
	}
	err = w.send(data)
	if cap(data) <= maxPooledRequest {
		*buf = data[:0] // send wrote the line or copied it into the queue: the buffer is free
		requestBufs.Put(buf)
	}
	if err != nil {
		w.forget(id)
		<-w.done
		return w.deathError()
	}
	var line []byte
	select {
	case l, ok := <-ch:
		if !ok {
			return w.deathError()
		}
		line = l
	case <-w.done:
		select {
		case l, ok := <-ch:
			if !ok {
				return w.deathError()
			}
			line = l
		default:
			return w.deathError()
		}
	case <-ctx.Done():
		w.forget(id)
		return ctx.Err()
	}
	if rp, ok := resp.(*resultMsg); ok && decodeSuccess(line, id, rp) {
		return nil
	}
	if err := json.Unmarshal(line, resp); err != nil {
		return &FunctionError{Kind: KindCrash, Message: fmt.Sprintf("the worker sent an unreadable %s reply: %v", m.head().T, err)}
	}
	return nil
}

// requestBufs are the buffers requests are encoded into, one per call in flight (an encoded
// call is ~600 bytes, and a request per call was a tenth of what fn serve allocated per call).
var requestBufs = sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}

// maxPooledRequest is the largest buffer requestBufs keeps: a large event's is left to the GC.
const maxPooledRequest = 16 << 10

// maxSendRounds bounds how many gathered writes one caller makes for others before a goroutine
// takes over, so that no caller waits long past its own request under a steady stream of them.
const maxSendRounds = 4

// maxSpareSend is the largest buffer of gathered lines kept for reuse.
const maxSpareSend = 64 << 10

// send writes one request line. A line that arrives while another caller is writing is queued
// and sent by that caller right after its own write, with every other line queued meanwhile:
// many concurrent calls then cost the engine one write and the worker one wake-up. A lone call
// is written at once, as before. Only the caller whose own write failed learns of the failure;
// a queued caller finds out from the worker's end (a failed write to a worker means it is gone
// or going, and its end closes done), as callers whose request was written do.
func (w *worker) send(data []byte) error {
	w.wmu.Lock()
	if w.writing {
		w.queued = append(w.queued, data...)
		w.wmu.Unlock()
		return nil
	}
	w.writing = true
	in := w.in
	w.wmu.Unlock()
	if _, err := in.Write(data); err != nil {
		w.wmu.Lock()
		w.writing, w.queued = false, w.queued[:0]
		w.wmu.Unlock()
		return err
	}
	w.sendQueued(in, maxSendRounds)
	return nil
}

// sendQueued writes what was queued during the last write, until nothing is (rounds < 0: no
// bound); past rounds it hands the rest to a goroutine.
func (w *worker) sendQueued(in io.Writer, rounds int) {
	for i := 0; ; i++ {
		w.wmu.Lock()
		if len(w.queued) == 0 {
			w.writing = false
			w.wmu.Unlock()
			return
		}
		if rounds >= 0 && i == rounds {
			w.wmu.Unlock()
			go w.sendQueued(in, -1)
			return
		}
		buf := w.queued
		w.queued, w.spare = w.spare[:0], nil
		w.wmu.Unlock()
		_, err := in.Write(buf)
		w.wmu.Lock()
		if cap(buf) <= maxSpareSend {
			w.spare = buf[:0] // kept for the next round, unless a large request made it large
		}
		if err != nil {
			w.writing, w.queued = false, w.queued[:0]
			w.wmu.Unlock()
			return
		}
		w.wmu.Unlock()
	}
}

// decodeSuccess reads the runner's success reply, {"t":"result","id":N,"ok":true,"value":…},
// by its layout (sendRaw in runner.js): the value is checked and passed on as it is, not decoded.
func decodeSuccess(line []byte, id uint64, rp *resultMsg) bool {
	var pre [64]byte
	p := append(pre[:0], `{"t":"result","id":`...)
	p = strconv.AppendUint(p, id, 10)
	p = append(p, `,"ok":true,"value":`...)
	if len(line) < len(p)+2 || !bytes.HasPrefix(line, p) || line[len(line)-1] != '}' {
		return false
	}
	v := line[len(p) : len(line)-1]
	if !json.Valid(v) {
		return false
	}
	rp.OK, rp.Value = true, v
	return true
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
	return w.call(ctx, newPingMsg(), &pongMsg{}) == nil
}

// kill ends the worker and every process it started at once.
func (w *worker) kill() {
	w.retired.Store(true)
	w.killNow()
}

// killStuck kills a worker whose event loop no longer answers, recording why, so that the
// invocations still on it fail with that reason and the pool starts a replacement.
func (w *worker) killStuck(reason string) {
	w.deathMu.Lock()
	if w.death == nil {
		w.death = &FunctionError{Kind: KindCrash, Message: reason}
	}
	w.deathMu.Unlock()
	w.killNow()
}

// stop asks the worker to exit (closing its input), then signals its group: SIGTERM after grace,
// SIGKILL after another grace. It returns once the process has been reaped, and with it every
// process it left behind (sweepOrphans).
func (w *worker) stop(grace time.Duration) {
	w.retired.Store(true)
	w.wmu.Lock()
	if w.in != nil {
		w.in.Close()
	}
	w.wmu.Unlock()
	select {
	case <-w.done:
		return
	case <-time.After(grace):
	}
	w.terminate()
	select {
	case <-w.done:
		return
	case <-time.After(grace):
	}
	w.killNow()
	<-w.done
}

// tail keeps the last few KB of a stream (stderr, to explain a crash).
type tail struct {
	mu  sync.Mutex
	buf []string
}

func (t *tail) add(line string) {
	if len(line) > 2048 {
		line = line[:2048]
	}
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
