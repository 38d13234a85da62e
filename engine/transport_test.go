package engine

import (
	"bufio"
	"errors"
	"io"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/fnhq/fn/bundler"
	"github.com/fnhq/fn/internal/testutil"
)

// The loopback TCP transport (Windows' only one) carries everything fds 3 and 4 do: invocations,
// logs, crash and exit notices sent as the process ends, kills and the final stop.
func TestWorkersOverLoopbackTCP(t *testing.T) {
	t.Setenv("FN_ENGINE_TRANSPORT", transportTCP)
	files := map[string]string{
		"fn.yaml": "name: conf\ndialect: wx\nfunctions:\n  spin:\n    timeout: 1\n",
		"functions/echo/index.js": `exports.main = async (event) => {
  console.log('hello over tcp', event.x)
  return { pid: process.pid, x: event.x, token: process.env.FN_ENGINE_TOKEN === undefined ? 'hidden' : 'visible',
    connect: process.argv.filter((a) => a.startsWith('--fn-connect=')) }
}
`,
		"functions/crash/index.js": `exports.main = async (event) => {
  if (event.how === 'exit') process.exit(3)
  if (event.how === 'throw') setTimeout(() => { throw new Error('thrown over tcp') }, 1)
  if (event.how) return new Promise(() => {})
  return { pid: process.pid }
}
`,
		"functions/spin/index.js": `exports.main = (event) => { if (event.ok) return { pid: process.pid }; for (;;) {} }
`,
	}
	f := newFixture(t, files, bundler.Dev, Config{})

	r := f.wx("echo", `{"x":42}`, nil)
	v := mustOK(t, r)
	if v["x"] != float64(42) || v["token"] != "hidden" {
		t.Fatalf("echo: %v", v)
	}
	if c, _ := v["connect"].([]any); len(c) != 1 || !strings.HasPrefix(c[0].(string), "--fn-connect=127.0.0.1:") {
		t.Errorf("the worker's connect argument: %v", v["connect"])
	}
	testutil.Eventually(t, 5*time.Second, "the invocation's console record", func() bool {
		for _, rec := range f.logsFor(r.RequestID) {
			if rec.Message == "hello over tcp 42" && rec.Stream == "console" && rec.Function == "echo" {
				return true
			}
		}
		return false
	})

	// The crash and exit notices are written as the process ends.
	for how, want := range map[string]string{
		"exit":  "the function called process.exit(3)",
		"throw": "the worker crashed on an uncaught exception: thrown over tcp",
	} {
		pid := mustOK(t, f.wx("crash", `{}`, nil))["pid"]
		r := f.wx("crash", `{"how":"`+how+`"}`, nil)
		if r.Err == nil || r.Err.Kind != KindCrash || !strings.Contains(r.Err.Message, want) {
			t.Fatalf("%s: %+v", how, r.Err)
		}
		if got := mustOK(t, f.wx("crash", `{}`, nil))["pid"]; got == pid {
			t.Errorf("%s: worker %v should have been replaced", how, pid)
		}
	}

	// A stuck event loop: the worker is killed, a new one connects.
	spinPID := int(mustOK(t, f.wx("spin", `{"ok":true}`, nil))["pid"].(float64))
	if r := f.wx("spin", `{}`, nil); r.Err == nil || r.Err.Kind != KindTimeout {
		t.Fatalf("spin: %+v", r.Err)
	}
	testutil.Eventually(t, 5*time.Second, "the stuck worker to be killed", func() bool { return !processAlive(spinPID) })
	if got := int(mustOK(t, f.wx("spin", `{"ok":true}`, nil))["pid"].(float64)); got == spinPID {
		t.Errorf("the stuck worker %d should have been replaced", spinPID)
	}

	// Close stops every worker (half-closing its connection) and reaps it.
	pids := []int{}
	for _, w := range f.e.Stats().Workers {
		pids = append(pids, w.PID)
	}
	if len(pids) < 3 {
		t.Fatalf("workers: %+v", f.e.Stats().Workers)
	}
	f.e.Close(5 * time.Second)
	for _, pid := range pids {
		if processAlive(pid) {
			t.Errorf("worker %d outlived Close", pid)
		}
	}
}

// Other local processes can reach the listener: only the connection that presents the token is
// the worker's, a silent or wrong one is dropped without keeping the worker out.
func TestTCPLinkTakesOnlyTheTokenHolder(t *testing.T) {
	l, err := newTCPLink()
	if err != nil {
		t.Fatal(err)
	}
	defer l.abort()
	addr := l.ln.Addr().String()
	if !strings.HasPrefix(addr, "127.0.0.1:") || len(l.token) != 2*tokenBytes {
		t.Fatalf("listener %s, token of %d characters", addr, len(l.token))
	}
	type opened struct {
		r   io.ReadCloser
		w   io.WriteCloser
		err error
	}
	done := make(chan opened, 1)
	go func() {
		r, w, err := l.open()
		done <- opened{r, w, err}
	}()

	silent, err := net.Dial("tcp", addr) // holds its slot until tokenWait
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	for _, bad := range []string{"wrong\n", strings.Repeat("a", 2*tokenBytes) + "\n", l.token + "x\n", strings.Repeat("b", 4096)} {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		c.Write([]byte(bad))
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		if _, err := c.Read(make([]byte, 1)); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
			t.Errorf("a connection sending %.20q was not dropped: %v", bad, err)
		}
		c.Close()
	}

	worker, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer worker.Close()
	// the token and the first message in one write: nothing past the token is lost
	worker.Write([]byte(l.token + "\n" + `{"t":"ready"}` + "\n"))
	o := <-done
	if o.err != nil {
		t.Fatal(o.err)
	}
	line, err := bufio.NewReader(o.r).ReadString('\n')
	if err != nil || line != `{"t":"ready"}`+"\n" {
		t.Fatalf("first message %q, %v", line, err)
	}
	o.w.Write([]byte(`{"t":"ping","id":1}` + "\n"))
	o.w.Close() // half-close: the worker reads the request, then the end
	got, err := io.ReadAll(worker)
	if err != nil || string(got) != `{"t":"ping","id":1}`+"\n" {
		t.Fatalf("worker read %q, %v", got, err)
	}
	worker.Write([]byte(`{"t":"exit","code":0}` + "\n")) // still heard after the half-close
	if line, err := bufio.NewReader(o.r).ReadString('\n'); err != nil || !strings.Contains(line, "exit") {
		t.Fatalf("after the half-close: %q, %v", line, err)
	}
	testutil.Eventually(t, 5*time.Second, "the listener to close once the worker connected", func() bool {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
		}
		return err != nil
	})
}

// A worker that ends before it connects ends the wait for it.
func TestTCPLinkOpenEndsWhenTheWorkerEnds(t *testing.T) {
	l, err := newTCPLink()
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, _, err := l.open()
		done <- err
	}()
	l.exited()
	if err := <-done; !errors.Is(err, errLinkClosed) {
		t.Fatalf("open: %v", err)
	}
}

func TestTransportChoice(t *testing.T) {
	t.Setenv("FN_ENGINE_TRANSPORT", "carrier-pigeon")
	if _, err := newLink(); err == nil || err.Error() != `FN_ENGINE_TRANSPORT="carrier-pigeon": want fds or tcp` {
		t.Fatalf("unknown transport: %v", err)
	}
	t.Setenv("FN_ENGINE_TRANSPORT", "")
	l, err := newLink()
	if err != nil {
		t.Fatal(err)
	}
	defer l.abort()
	if _, isTCP := l.(*tcpLink); isTCP != (defaultTransport == transportTCP) {
		t.Fatalf("default link %T, want %s", l, defaultTransport)
	}
}
