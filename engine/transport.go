package engine

import (
	"fmt"
	"io"
	"os"
	"os/exec"
)

// A link carries the protocol between the engine and one worker: newline-delimited JSON requests
// to the worker, replies and records from it (runner.js is the other end). Two kinds exist:
// inherited pipes on fds 3 and 4 (the default where the platform lets a child inherit them), and
// one loopback TCP connection the worker opens back to the engine (Windows, or
// FN_ENGINE_TRANSPORT=tcp elsewhere, which is how the Windows transport is tested on Linux).
type link interface {
	// prepare adds to cmd, before it starts, what the worker needs to reach the engine.
	prepare(cmd *exec.Cmd)
	// started releases what only the child needed, once it has started.
	started()
	// open waits until the worker is connected and returns its messages and the writer of its
	// requests (closing the writer tells the worker to exit). It fails once exited or abort is
	// called before the worker connected.
	open() (io.ReadCloser, io.WriteCloser, error)
	// exited is called once the process has ended: a worker that never connected never will.
	exited()
	// abort closes everything still open, to end a reader held open by a leftover process.
	abort()
}

// The values FN_ENGINE_TRANSPORT takes.
const (
	transportFDs = "fds"
	transportTCP = "tcp"
)

// newLink makes the link for a worker about to start, of the kind FN_ENGINE_TRANSPORT names or
// else the platform's default (defaultTransport).
func newLink() (link, error) {
	kind := os.Getenv("FN_ENGINE_TRANSPORT")
	if kind == "" {
		kind = defaultTransport
	}
	switch kind {
	case transportTCP:
		return newTCPLink()
	case transportFDs:
		if !inheritsFDs {
			return nil, fmt.Errorf("FN_ENGINE_TRANSPORT=%s: this platform cannot pass fds 3 and 4 to a worker; use %s", kind, transportTCP)
		}
		return newPipeLink()
	}
	return nil, fmt.Errorf("FN_ENGINE_TRANSPORT=%q: want %s or %s", kind, transportFDs, transportTCP)
}

// pipeLink is fds 3 (requests) and 4 (replies) of the child.
type pipeLink struct {
	inR, inW, outR, outW *os.File
}

func newPipeLink() (*pipeLink, error) {
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
	return &pipeLink{inR: inR, inW: inW, outR: outR, outW: outW}, nil
}

func (l *pipeLink) prepare(cmd *exec.Cmd) { cmd.ExtraFiles = []*os.File{l.inR, l.outW} }

func (l *pipeLink) started() {
	l.inR.Close()
	l.outW.Close()
}

func (l *pipeLink) open() (io.ReadCloser, io.WriteCloser, error) {
	return l.outR, l.inW, nil
}

func (l *pipeLink) exited() {}

func (l *pipeLink) abort() {
	// the child's ends too, for a start that failed before started
	l.inR.Close()
	l.outW.Close()
	l.outR.Close()
	l.inW.Close()
}
