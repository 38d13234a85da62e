package iostreams

import (
	"strings"
	"sync"
	"testing"
)

type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestProgressOnlyOnATerminal(t *testing.T) {
	ios, _, _, errOut := Test()
	p := ios.NewProgress()
	p.Phase("building")
	p.Bytes("uploading", 10, 100)
	p.Stop()
	if errOut.Len() != 0 {
		t.Fatalf("progress without a terminal: %q", errOut.String())
	}
}

func TestProgressShowsThePhaseAndTheBytes(t *testing.T) {
	ios, _, _, _ := Test()
	buf := &syncBuffer{}
	ios.ErrOut = buf
	ios.SetTTY(false, false, true)
	p := ios.NewProgress()
	p.Phase("building")
	if !strings.Contains(buf.String(), "building…") {
		t.Fatalf("spinner: %q", buf.String())
	}
	p.Bytes("uploading", 0, 2048)
	p.Bytes("uploading", 2048, 2048)
	p.Stop()
	out := buf.String()
	if !strings.Contains(out, "uploading") || !strings.Contains(out, "100%") || !strings.Contains(out, "2.0/2.0 kB") {
		t.Fatalf("bar: %q", out)
	}
	if !strings.HasSuffix(out, "\r\033[2K") {
		t.Fatalf("Stop should clear the line: %q", out)
	}
	p.Stop() // twice is harmless
}
