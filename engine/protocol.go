package engine

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
)

// The protocol between the engine and runner.js: newline-delimited JSON, Go → worker on the
// worker's fd 3, worker → Go on its fd 4. Every message is an object whose first member is "t",
// its kind; requests and their replies also carry "id" as the second member, so that a reply is
// routed by reading its first bytes and decoded once, by the caller that expects it. Replies may
// come in any order. The runner lists the same messages in its header; protocol_test.go checks
// that both lists agree.
//
// Closing fd 3 tells the worker to exit: there is no stop message.

// protocolVersion changes whenever a message changes shape. The worker says which version it
// speaks in its ready message; a different one is refused (a stale or foreign runner file).
const protocolVersion = 2

// msgKind is the "t" of a message.
type msgKind string

// Go → worker.
const (
	msgLoad   msgKind = "load"   // evaluate a bundle: loadMsg → loadedMsg
	msgInvoke msgKind = "invoke" // run a function: wxInvokeMsg or leanInvokeMsg → resultMsg
	msgPing   msgKind = "ping"   // is the event loop free: pingMsg → pongMsg
)

// Worker → Go.
const (
	msgReady  msgKind = "ready"  // the runner is up: readyMsg, once, first
	msgLoaded msgKind = "loaded" // reply to load
	msgResult msgKind = "result" // reply to invoke
	msgPong   msgKind = "pong"   // reply to ping
	msgLog    msgKind = "log"    // a console call: logMsg
	msgFatal  msgKind = "fatal"  // the worker is dying of an uncaught error: fatalMsg
	msgExit   msgKind = "exit"   // the function called process.exit: exitMsg
)

// protocolKinds is every kind, for the check against runner.js.
var protocolKinds = []msgKind{msgLoad, msgInvoke, msgPing, msgReady, msgLoaded, msgResult, msgPong, msgLog, msgFatal, msgExit}

// header starts every request.
type header struct {
	T  msgKind `json:"t"`
	ID uint64  `json:"id"`
}

// request is a Go → worker message that expects a reply.
type request interface {
	head() *header
}

func (h *header) head() *header { return h }

// loadMsg asks the worker to evaluate a bundle as a fresh CommonJS module.
type loadMsg struct {
	header
	Name    string `json:"name"`
	File    string `json:"file"`
	Version int64  `json:"version"`
	Dialect string `json:"dialect"`
	// Env is set in process.env first: a pre-started spare gets its function's env this way.
	Env json.RawMessage `json:"env,omitempty"`
	// ModuleDir is where the bundle's require() of packages starts looking (a wx function's own
	// folder, with its own node_modules); empty: the bundle's directory.
	ModuleDir string `json:"moduleDir,omitempty"`
}

func newLoadMsg(name, file string, version int64, dialect string, env json.RawMessage, moduleDir string) *loadMsg {
	return &loadMsg{header: header{T: msgLoad}, Name: name, File: file, Version: version, Dialect: dialect, Env: env, ModuleDir: moduleDir}
}

// wxInvokeMsg runs a WeChat cloud function.
type wxInvokeMsg struct {
	header
	Dialect   string          `json:"dialect"` // "wx"
	Fn        string          `json:"fn"`
	RID       string          `json:"rid"`
	Event     json.RawMessage `json:"event"`
	Env       json.RawMessage `json:"env"` // a JSON object, encoded in order by wxEnv
	Environ   string          `json:"environ"`
	Namespace string          `json:"namespace"`
	TimeoutMs int64           `json:"timeoutMs"`
	// TimeLimitMs is the function's time limit as context.time_limit_in_ms reports it (TimeoutMs
	// is what is left of it when the worker gets the call).
	TimeLimitMs int64 `json:"timeLimitMs,omitempty"`
	MemoryMB    int   `json:"memoryMB"`
	// Concurrent: the worker runs other invocations at once, so the identity env is served per
	// invocation (AsyncLocalStorage) instead of written to process.env
	Concurrent bool `json:"concurrent,omitempty"`
}

func newWXInvokeMsg() *wxInvokeMsg {
	return &wxInvokeMsg{header: header{T: msgInvoke}, Dialect: "wx"}
}

// leanInvokeMsg runs a LeanEngine function or hook.
type leanInvokeMsg struct {
	header
	Dialect       string          `json:"dialect"` // "lean"
	Kind          string          `json:"kind"`    // a LeanKind
	Fn            string          `json:"fn"`      // for log records: the function, or Class.hook
	RID           string          `json:"rid"`
	Name          string          `json:"name,omitempty"`
	Hook          string          `json:"hook,omitempty"`
	ClassName     string          `json:"className,omitempty"`
	Params        json.RawMessage `json:"params"`
	RPC           bool            `json:"rpc,omitempty"`
	SessionToken  string          `json:"sessionToken,omitempty"`
	RemoteAddress string          `json:"remoteAddress,omitempty"`
	HookKeyOK     bool            `json:"hookKeyOK,omitempty"`
	Master        bool            `json:"master,omitempty"`
	RealtimeHook  bool            `json:"realtimeHook,omitempty"`
	URL           string          `json:"url"`
	TimeoutMs     int64           `json:"timeoutMs"`
}

func newLeanInvokeMsg() *leanInvokeMsg {
	return &leanInvokeMsg{header: header{T: msgInvoke}, Dialect: "lean"}
}

type pingMsg struct{ header }

func newPingMsg() *pingMsg { return &pingMsg{header{T: msgPing}} }

// readyMsg is the worker's first line.
type readyMsg struct {
	Protocol int    `json:"protocol"`
	PID      int    `json:"pid"`
	Node     string `json:"node"`
}

// check refuses a runner that speaks another protocol version.
func (m *readyMsg) check() error {
	if m.Protocol != protocolVersion {
		return fmt.Errorf("the worker's runner speaks protocol version %d, this engine speaks version %d (a stale or foreign runner file?)", m.Protocol, protocolVersion)
	}
	return nil
}

// loadedMsg answers a load.
type loadedMsg struct {
	OK    bool     `json:"ok"`
	Error *jsError `json:"error"`
	Names []string `json:"names"` // lean: the functions in the registry
	Ms    float64  `json:"ms"`
}

// resultMsg answers an invoke.
type resultMsg struct {
	OK    bool            `json:"ok"`
	Value json.RawMessage `json:"value"`
	Error *jsError        `json:"error"`
	// lean failures carry the HTTP status and body leanengine would send
	Status int             `json:"status"`
	Body   json.RawMessage `json:"body"`
}

type pongMsg struct{}

// logMsg is one console call, attributed to its invocation (rid) through AsyncLocalStorage.
type logMsg struct {
	Level string `json:"level"`
	Msg   string `json:"msg"`
	RID   string `json:"rid"`
	Fn    string `json:"fn"`
	TS    int64  `json:"ts"`
}

// fatalMsg: an uncaught exception or unhandled rejection that ends the worker.
type fatalMsg struct {
	Kind  string   `json:"kind"` // uncaughtException or unhandledRejection
	RID   string   `json:"rid"`
	Error *jsError `json:"error"`
}

// exitMsg: the function called process.exit.
type exitMsg struct {
	Code int    `json:"code"`
	RID  string `json:"rid"`
}

// jsError is a JavaScript error as the runner describes it.
type jsError struct {
	Name    string          `json:"name"`
	Message string          `json:"message"`
	Stack   string          `json:"stack"`
	Kind    string          `json:"kind"` // an error kind of this package, when the runner decided it
	Code    json.RawMessage `json:"code"`
	Status  int             `json:"status"`
}

// encodeRequest appends the line sent for a request to dst.
func encodeRequest(dst []byte, m request) ([]byte, error) {
	if a, ok := m.(appender); ok {
		data, err := a.appendJSON(dst)
		if err != nil {
			return nil, err
		}
		return append(data, '\n'), nil
	}
	data, err := json.Marshal(m)
	if err != nil {
		return nil, err
	}
	return append(data, '\n'), nil
}

// peekHeader reads the kind and id from the start of a line ({"t":"result","id":12,…}) without
// decoding the rest, which only the receiver of the reply decodes. A line in another order is
// decoded in full.
func peekHeader(line []byte) (header, bool) {
	const pre = `{"t":"`
	if bytes.HasPrefix(line, []byte(pre)) {
		rest := line[len(pre):]
		if end := bytes.IndexByte(rest, '"'); end > 0 {
			h := header{T: msgKind(rest[:end])}
			rest = rest[end+1:]
			const idPre = `,"id":`
			if !bytes.HasPrefix(rest, []byte(idPre)) {
				return h, true
			}
			rest = rest[len(idPre):]
			n := 0
			for n < len(rest) && rest[n] >= '0' && rest[n] <= '9' {
				n++
			}
			if id, err := strconv.ParseUint(string(rest[:n]), 10, 64); err == nil {
				h.ID = id
				return h, true
			}
		}
	}
	var h header
	if err := json.Unmarshal(line, &h); err != nil || h.T == "" {
		return header{}, false
	}
	return h, true
}
