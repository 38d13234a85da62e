package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/fnhq/fn/internal/testutil"
)

const chromium = "/usr/bin/chromium"

var (
	fnBin     string
	browser   context.Context // one browser for the test binary; each test gets its own browser context
	noBrowser string
)

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	dir, err := os.MkdirTemp("", "fn-console-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	if _, err := os.Stat(chromium); err != nil {
		noBrowser = chromium + " is missing (apt-get install chromium; .ci/run installs it): the console's end-to-end tests are skipped"
		return m.Run()
	}
	fnBin = filepath.Join(dir, "fn")
	if out, err := exec.Command("go", "build", "-o", fnBin, filepath.Join(testutil.RepoRoot(), "cmd", "fn")).CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "go build: %v\n%s", err, out)
		return 1
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromium),
		chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true), chromedp.NoFirstRun, chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true), chromedp.UserDataDir(filepath.Join(dir, "profile")),
		chromedp.WindowSize(1200, 760),
	}
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancelAlloc()
	b, cancelBrowser := chromedp.NewContext(alloc)
	defer cancelBrowser()
	if err := chromedp.Do(b); err != nil {
		fmt.Fprintf(os.Stderr, "starting chromium: %v\n", err)
		return 1
	}
	browser = b
	return m.Run()
}

// tab opens a page in a fresh browser context (its own cookies) of the shared browser.
func tab(t *testing.T) context.Context {
	t.Helper()
	if noBrowser != "" {
		t.Skip(noBrowser)
	}
	ctx, cancel := chromedp.NewContext(browser, chromedp.WithNewBrowserContext())
	t.Cleanup(cancel)
	ctx, cancelT := context.WithTimeout(ctx, 3*time.Minute)
	t.Cleanup(cancelT)
	if err := chromedp.Do(ctx); err != nil {
		t.Fatal(err)
	}
	return ctx
}

type step = chromedp.Action[chromedp.Void]

// do runs browser steps, failing the test with what was asked and what the page shows.
func do(t *testing.T, ctx context.Context, what string, steps ...step) {
	t.Helper()
	// each group of steps has its deadline (WaitVisible and friends wait for as long as the context lives)
	sctx, cancel := context.WithTimeout(ctx, 45*time.Second)
	defer cancel()
	if err := chromedp.Do(sctx, steps...); err != nil {
		body, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.body ? document.body.innerText.slice(0, 3000) : ""`))
		t.Fatalf("%s: %v\npage:\n%s", what, err, body)
	}
}

// eval evaluates a JavaScript expression in the page (promises awaited).
func eval[T any](t *testing.T, ctx context.Context, expr string) T {
	t.Helper()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatalf("evaluating %s: %v", expr, err)
	}
	return v
}

func void[T any](a chromedp.Action[T]) step {
	return func(ctx context.Context, tg *chromedp.Target) (chromedp.Void, error) {
		_, err := a(ctx, tg)
		return chromedp.Void{}, err
	}
}

// waitJS polls a JavaScript expression until it is truthy (chromedp's deadline-bound poll).
func waitJS(expr string) step {
	return void(chromedp.Poll[bool](expr, chromedp.WithPollingTimeout(20*time.Second), chromedp.WithPollingInterval(50*time.Millisecond)))
}

// waitText waits until the element sel contains text.
func waitText(sel, text string) step {
	return waitJS(fmt.Sprintf(`(() => { const e = document.querySelector(%q); return !!e && e.textContent.includes(%q) })()`, sel, text))
}

// setValue sets a form control and fires input and change, as typing would.
func setValue(sel, v string) step {
	return void(chromedp.Evaluate[bool](fmt.Sprintf(`(() => { const e = document.querySelector(%q); e.value = %q; e.dispatchEvent(new Event("input", {bubbles: true})); e.dispatchEvent(new Event("change", {bubbles: true})); return true })()`, sel, v)))
}

func click(sel string) step { return chromedp.Click(chromedp.CSS(sel)) }

func textOf(t *testing.T, ctx context.Context, sel string) string {
	t.Helper()
	return eval[string](t, ctx, fmt.Sprintf(`(() => { const e = document.querySelector(%q); return e ? e.textContent : "" })()`, sel))
}

var artifactsOnce sync.Once
var artifacts string

func artifactDir(t *testing.T) string {
	artifactsOnce.Do(func() {
		artifacts = os.Getenv("FN_TEST_ARTIFACTS")
		if artifacts == "" {
			d, err := os.MkdirTemp("", "fn-console-shots-")
			if err == nil {
				artifacts = d
			}
		} else {
			artifacts = filepath.Join(artifacts, "console")
		}
		os.MkdirAll(artifacts, 0o755)
	})
	return artifacts
}

// shot writes a PNG screenshot of the viewport as a test artifact.
func shot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	buf, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	if err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	p := filepath.Join(artifactDir(t), name+".png")
	if err := os.WriteFile(p, buf, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot %s", p)
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

type lockedBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}
func (l *lockedBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// proc is a running fn dev or fn serve.
type proc struct {
	cmd    *exec.Cmd
	url    string
	stderr *lockedBuf
}

func start(t *testing.T, dir string, env []string, probe string, want int, args ...string) *proc {
	t.Helper()
	port := freePort(t)
	p := &proc{url: fmt.Sprintf("http://127.0.0.1:%d", port), stderr: &lockedBuf{}}
	for i, a := range args {
		args[i] = strings.ReplaceAll(a, "{port}", fmt.Sprint(port))
	}
	p.cmd = exec.Command(fnBin, args...)
	p.cmd.Dir = dir
	p.cmd.Env = append(os.Environ(), append([]string{"NO_COLOR=1"}, env...)...)
	p.cmd.Stderr = p.stderr
	p.cmd.Stdout = p.stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		p.cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { p.cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			p.cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			t.Logf("%s output:\n%s", args[0], p.stderr)
		}
	})
	testutil.Eventually(t, 60*time.Second, args[0]+" to answer", func() bool {
		res, err := http.Get(p.url + probe)
		if err != nil {
			return false
		}
		res.Body.Close()
		return res.StatusCode == want
	})
	return p
}

// call sends a request from outside the page and decodes the JSON answer.
func call(t *testing.T, method, url string, headers map[string]string, body string) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(method, url, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	res, err := (&http.Client{Timeout: 60 * time.Second}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	var m map[string]any
	json.Unmarshal(b, &m)
	return res.StatusCode, m
}

func fnRun(t *testing.T, dir string, env []string, args ...string) string {
	t.Helper()
	cmd := exec.Command(fnBin, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), append([]string{"NO_COLOR=1"}, env...)...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("fn %s: %v\n%s%s", strings.Join(args, " "), err, out.String(), errb.String())
	}
	return out.String()
}
