package engine

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"os/exec"
	"sync"
	"time"
)

// tcpLink is a loopback TCP listener opened for one worker. The worker (runner.js, given the
// address by --fn-connect and a one-time token by FN_ENGINE_TOKEN) connects and sends the token
// and a newline first; the first connection that presents it carries the protocol both ways and
// the listener closes. Any other local process may connect to the port too: a connection without
// the token within tokenWait is dropped, and does not keep the worker from connecting.
type tcpLink struct {
	ln    net.Listener
	token string

	once   sync.Once
	closed chan struct{} // exited or abort was called

	mu      sync.Mutex
	conn    net.Conn // the worker's, once open returned it
	aborted bool
}

const (
	tokenBytes = 32
	// tokenWait bounds how long a connection may take to present the token.
	tokenWait = 5 * time.Second
	// maxHandshakes bounds the connections being checked at once; more are dropped at once.
	maxHandshakes = 16
)

func newTCPLink() (*tcpLink, error) {
	b := make([]byte, tokenBytes)
	if _, err := rand.Read(b); err != nil {
		return nil, fmt.Errorf("making the worker's token: %w", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("opening the worker's loopback listener: %w", err)
	}
	return &tcpLink{ln: ln, token: hex.EncodeToString(b), closed: make(chan struct{})}, nil
}

// prepare passes the address as an argument (an address is no secret) and the token in the
// environment, which other users cannot read; the runner removes it before function code runs.
// The engine's entry comes last, so a function's env cannot replace it.
func (l *tcpLink) prepare(cmd *exec.Cmd) {
	cmd.Args = append(cmd.Args, "--fn-connect="+l.ln.Addr().String())
	cmd.Env = append(cmd.Env, "FN_ENGINE_TOKEN="+l.token)
}

func (l *tcpLink) started() {}

func (l *tcpLink) open() (io.ReadCloser, io.WriteCloser, error) {
	won := make(chan net.Conn, 1)
	go l.accept(won)
	var c net.Conn
	select {
	case c = <-won:
	case <-l.closed:
		// a worker that connected and ended at once still said why
		select {
		case c = <-won:
		default:
			return nil, nil, errLinkClosed
		}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.aborted {
		c.Close()
		return nil, nil, errLinkClosed
	}
	l.conn = c
	return c, halfCloser{c}, nil
}

var errLinkClosed = errors.New("the worker ended before it connected to the engine")

// accept checks connections until one presents the token, then stops listening.
func (l *tcpLink) accept(won chan<- net.Conn) {
	defer l.ln.Close()
	slots := make(chan struct{}, maxHandshakes)
	var once sync.Once
	found := make(chan struct{})
	for {
		c, err := l.ln.Accept()
		if err != nil {
			return // closed: a connection won, the worker ended, or the start was abandoned
		}
		select {
		case slots <- struct{}{}:
		default:
			c.Close()
			continue
		}
		go func() {
			defer func() { <-slots }()
			if !l.checkToken(c) {
				c.Close()
				return
			}
			ok := false
			once.Do(func() { ok = true; close(found) })
			if !ok {
				c.Close()
				return
			}
			won <- c
			l.ln.Close()
		}()
		select {
		case <-found:
			return
		default:
		}
	}
}

// checkToken reads the first line of c, byte by byte so that nothing after it is consumed, and
// compares it with the token in constant time.
func (l *tcpLink) checkToken(c net.Conn) bool {
	c.SetReadDeadline(time.Now().Add(tokenWait))
	defer c.SetReadDeadline(time.Time{})
	var line [2 * tokenBytes]byte
	var b [1]byte
	for n := 0; ; n++ {
		if _, err := io.ReadFull(c, b[:]); err != nil {
			return false
		}
		if b[0] == '\n' {
			return n == len(line) && subtle.ConstantTimeCompare(line[:], []byte(l.token)) == 1
		}
		if n == len(line) {
			return false
		}
		line[n] = b[0]
	}
}

func (l *tcpLink) exited() { l.abortListener() }

func (l *tcpLink) abortListener() {
	l.once.Do(func() { close(l.closed) })
	l.ln.Close()
}

func (l *tcpLink) abort() {
	l.abortListener()
	l.mu.Lock()
	l.aborted = true
	if l.conn != nil {
		l.conn.Close()
	}
	l.mu.Unlock()
}

// halfCloser is the engine's sending side of the connection: closing it half-closes the
// connection, which tells the worker to exit while its last messages can still arrive.
type halfCloser struct{ net.Conn }

func (h halfCloser) Close() error {
	if tc, ok := h.Conn.(*net.TCPConn); ok {
		return tc.CloseWrite()
	}
	return h.Conn.Close()
}
