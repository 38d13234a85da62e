//go:build linux

package commands

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/creack/pty"
	"golang.org/x/sys/unix"

	"github.com/fnhq/fn/internal/testutil"
	"github.com/fnhq/fn/iostreams"
)

// TestFnHelperProcess is not a test: run by the pty tests as a child process, it is fn itself
// (Main, with its real signal handling), started on a pseudo-terminal.
func TestFnHelperProcess(t *testing.T) {
	raw := os.Getenv("FN_TEST_HELPER_ARGS")
	if raw == "" {
		return
	}
	var args []string
	if err := json.Unmarshal([]byte(raw), &args); err != nil {
		os.Exit(99)
	}
	os.Args = append([]string{"fn"}, args...)
	os.Exit(int(Main()))
}

// ptyFn is fn running on a pseudo-terminal, as a person would see it.
type ptyFn struct {
	t    *testing.T
	cmd  *exec.Cmd
	tty  *os.File
	mu   sync.Mutex
	out  bytes.Buffer
	done chan error
}

func startPty(t *testing.T, dir string, env []string, args ...string) *ptyFn {
	t.Helper()
	raw, _ := json.Marshal(args)
	cmd := exec.Command(os.Args[0], "-test.run=^TestFnHelperProcess$")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), append(env, "FN_TEST_HELPER_ARGS="+string(raw), "NO_COLOR=1")...)
	tty, err := pty.StartWithSize(cmd, &pty.Winsize{Rows: 40, Cols: 200})
	if err != nil {
		t.Fatal(err)
	}
	p := &ptyFn{t: t, cmd: cmd, tty: tty, done: make(chan error, 1)}
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := tty.Read(buf)
			p.mu.Lock()
			p.out.Write(buf[:n])
			p.mu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	go func() { p.done <- cmd.Wait() }()
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			<-p.done
		}
		tty.Close()
	})
	return p
}

func (p *ptyFn) screen() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.String()
}

func (p *ptyFn) waitFor(what string) {
	p.t.Helper()
	testutil.Eventually(p.t, 30*time.Second, "the terminal to show "+what, func() bool { return strings.Contains(p.screen(), what) })
}

func (p *ptyFn) write(s string) {
	p.t.Helper()
	if _, err := io.WriteString(p.tty, s); err != nil {
		p.t.Fatal(err)
	}
}

// exitCode waits for fn to end and returns its exit code.
func (p *ptyFn) exitCode() int {
	p.t.Helper()
	select {
	case err := <-p.done:
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return ee.ExitCode()
		}
		if err != nil {
			p.t.Fatal(err)
		}
		return 0
	case <-time.After(30 * time.Second):
		p.t.Fatalf("fn did not exit; the terminal shows:\n%s", p.screen())
		return -1
	}
}

func TestFirstCtrlCAtAPromptExits130(t *testing.T) {
	t.Run("init", func(t *testing.T) {
		dir := t.TempDir()
		p := startPty(t, dir, nil, "init", "--no-install")
		p.waitFor("? Project name [my-functions]: ")
		p.write("\x03") // Ctrl-C, as the terminal's line discipline turns it into SIGINT
		if code := p.exitCode(); code != int(ExitInterrupted) {
			t.Fatalf("exit %d, want 130; screen:\n%s", code, p.screen())
		}
		if entries, _ := os.ReadDir(dir); len(entries) != 0 {
			t.Fatalf("a cancelled fn init wrote %d entries", len(entries))
		}
		if strings.Contains(p.screen(), "error:") {
			t.Fatalf("Ctrl-C is not an error to report:\n%s", p.screen())
		}
	})
	t.Run("init at the second question", func(t *testing.T) {
		dir := t.TempDir()
		p := startPty(t, dir, nil, "init", "--no-install")
		p.waitFor("? Project name [my-functions]: ")
		p.write("shop\r")
		p.waitFor("? Template")
		p.write("\x03")
		if code := p.exitCode(); code != int(ExitInterrupted) {
			t.Fatalf("exit %d, want 130; screen:\n%s", code, p.screen())
		}
		if _, err := os.Stat(filepath.Join(dir, "shop")); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("a cancelled fn init created the project: %v", err)
		}
	})
	t.Run("deploy", func(t *testing.T) {
		srv := newFakeServer(t, "tok", "shop")
		dir := leanProject(t, "shop")
		p := startPty(t, dir, []string{"FN_SERVER=" + srv.URL, "FN_TOKEN=tok", "XDG_CONFIG_HOME=" + t.TempDir()}, "deploy")
		p.waitFor("? Environment (staging or production; production is what clients reach by default) [production]: ")
		p.write("\x03")
		if code := p.exitCode(); code != int(ExitInterrupted) {
			t.Fatalf("exit %d, want 130; screen:\n%s", code, p.screen())
		}
		if n := len(srv.calls); n != 0 {
			t.Fatalf("a cancelled deploy called the server %d times", n)
		}
	})
}

func TestLoginAsksForTheTokenWithoutEcho(t *testing.T) {
	srv := newFakeServer(t, "tok-secret-123")
	cfg := t.TempDir()
	p := startPty(t, t.TempDir(), []string{"XDG_CONFIG_HOME=" + cfg}, "login", "--server", srv.URL)
	p.waitFor("? Admin token (input hidden): ")
	// fn prints the prompt, then turns echo off: type once it is off, as a person would
	testutil.Eventually(t, 30*time.Second, "echo to be turned off", func() bool {
		tio, err := unix.IoctlGetTermios(int(p.tty.Fd()), unix.TCGETS)
		return err == nil && tio.Lflag&unix.ECHO == 0
	})
	p.write("tok-secret-123\r")
	if code := p.exitCode(); code != 0 {
		t.Fatalf("exit %d; screen:\n%s", code, p.screen())
	}
	if strings.Contains(p.screen(), "tok-secret-123") {
		t.Fatalf("the token was echoed:\n%s", p.screen())
	}
	if !strings.Contains(p.screen(), "logged in to "+srv.URL) {
		t.Fatalf("screen:\n%s", p.screen())
	}
	b, err := os.ReadFile(filepath.Join(cfg, "fn", "credentials.json"))
	if err != nil || !strings.Contains(string(b), "tok-secret-123") {
		t.Fatalf("credentials not stored: %v %s", err, b)
	}
}

func TestLoginReadsTheTokenFromStdinOrAFile(t *testing.T) {
	srv := newFakeServer(t, "tok-from-elsewhere")
	t.Setenv("XDG_CONFIG_HOME", t.TempDir())
	dir := t.TempDir()
	file := testutil.WriteFile(t, dir, "token", "tok-from-elsewhere\n")
	if r := fn(t, dir, "login", "--server", srv.URL, "--token-file", file); r.code != 0 {
		t.Fatalf("--token-file: exit %d %s", r.code, r.err)
	}
	ios, in, _, errOut := iostreams.Test()
	in.WriteString("tok-from-elsewhere\n")
	if code := Run(t.Context(), []string{"login", "--server", srv.URL, "--token", "-"}, ios); code != 0 {
		t.Fatalf("--token -: exit %d %s", code, errOut.String())
	}
	if srv.called("GET /__fn/whoami") != 2 {
		t.Fatalf("whoami calls: %v", srv.calls)
	}
	big := testutil.WriteFile(t, dir, "big", strings.Repeat("x", maxTokenBytes+1))
	if r := fn(t, dir, "login", "--server", srv.URL, "--token-file", big); r.code != ExitUsage || !strings.Contains(r.err, "larger than 4096 bytes") {
		t.Fatalf("a huge token file: exit %d %s", r.code, r.err)
	}
}
