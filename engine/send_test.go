package engine

import (
	"bytes"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fnhq/fn/internal/testutil"
)

// gateWriter records each Write; the first one blocks until released, so that the lines sent
// meanwhile have to queue.
type gateWriter struct {
	mu      sync.Mutex
	writes  [][]byte
	entered chan struct{}
	release chan struct{}
	fail    error
}

func (g *gateWriter) Write(p []byte) (int, error) {
	g.mu.Lock()
	first := len(g.writes) == 0
	g.writes = append(g.writes, append([]byte(nil), p...))
	g.mu.Unlock()
	if first {
		close(g.entered)
		<-g.release
	}
	if g.fail != nil {
		return 0, g.fail
	}
	return len(p), nil
}

func (g *gateWriter) Close() error { return nil }

func (g *gateWriter) snapshot() [][]byte {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([][]byte(nil), g.writes...)
}

func TestSendGathersLinesQueuedDuringAWrite(t *testing.T) {
	g := &gateWriter{entered: make(chan struct{}), release: make(chan struct{})}
	w := &worker{in: g}
	first := make(chan error, 1)
	go func() { first <- w.send([]byte("line 0\n")) }()
	<-g.entered
	// the first write is under way: these queue, and their callers return at once
	const n = 20
	for i := 1; i <= n; i++ {
		if err := w.send([]byte(fmt.Sprintf("line %d\n", i))); err != nil {
			t.Fatalf("queued send %d: %v", i, err)
		}
	}
	if got := len(g.snapshot()); got != 1 {
		t.Fatalf("%d writes while the first one blocks; want 1 (the others queued)", got)
	}
	close(g.release)
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	writes := g.snapshot()
	if len(writes) != 2 {
		t.Fatalf("%d writes; want 2: the first line, then the %d queued ones in one write", len(writes), n)
	}
	var lines []string
	for _, b := range writes {
		lines = append(lines, strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")...)
	}
	sort.Strings(lines)
	want := make([]string, 0, n+1)
	for i := 0; i <= n; i++ {
		want = append(want, fmt.Sprintf("line %d", i))
	}
	sort.Strings(want)
	if strings.Join(lines, "|") != strings.Join(want, "|") {
		t.Fatalf("lines written:\n%q\nwant every line once, whole:\n%q", lines, want)
	}
	// nothing is left behind: the next line is written by its own caller at once
	if err := w.send([]byte("after\n")); err != nil {
		t.Fatal(err)
	}
	if last := g.snapshot(); !bytes.Equal(last[len(last)-1], []byte("after\n")) {
		t.Fatalf("last write %q; want the lone line on its own", last[len(last)-1])
	}
}

// call reuses the buffer a request was encoded into once send returns: send must have written
// the line or copied it by then, whether it wrote it itself or queued it behind another write.
func TestSendKeepsNoReferenceToTheCallersLine(t *testing.T) {
	g := &gateWriter{entered: make(chan struct{}), release: make(chan struct{})}
	w := &worker{in: g}
	first := make(chan error, 1)
	go func() { first <- w.send([]byte("line 0\n")) }()
	<-g.entered
	queued := []byte("line 1\n")
	if err := w.send(queued); err != nil {
		t.Fatal(err)
	}
	copy(queued, "XXXXXX") // the caller's buffer goes to the next call
	close(g.release)
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	writes := g.snapshot()
	if len(writes) != 2 || string(writes[0]) != "line 0\n" || string(writes[1]) != "line 1\n" {
		t.Fatalf("written %q; want the lines as they were when sent", writes)
	}
}

func TestSendReportsAFailedWriteToItsCaller(t *testing.T) {
	g := &gateWriter{entered: make(chan struct{}), release: make(chan struct{}), fail: errors.New("broken pipe")}
	w := &worker{in: g}
	first := make(chan error, 1)
	go func() { first <- w.send([]byte("a\n")) }()
	<-g.entered
	if err := w.send([]byte("b\n")); err != nil {
		t.Fatalf("a queued send fails only through the worker's end, got %v", err)
	}
	close(g.release)
	if err := <-first; err == nil || err.Error() != "broken pipe" {
		t.Fatalf("the writing caller got %v; want its write's error", err)
	}
	// the queue went with the failed write, and the writer role was given up before send returned
	w.wmu.Lock()
	writing, queued := w.writing, len(w.queued)
	w.wmu.Unlock()
	if writing || queued != 0 {
		t.Fatalf("after the failed write: writing=%v, %d bytes queued; want neither", writing, queued)
	}
}

// stepWriter blocks every Write until the test lets it through, so that lines can be queued
// during each one.
type stepWriter struct {
	mu      sync.Mutex
	lines   []string
	entered chan struct{}
	next    chan struct{}
}

func (s *stepWriter) Write(p []byte) (int, error) {
	s.entered <- struct{}{}
	<-s.next
	s.mu.Lock()
	s.lines = append(s.lines, strings.Split(strings.TrimSuffix(string(p), "\n"), "\n")...)
	s.mu.Unlock()
	return len(p), nil
}

func (s *stepWriter) Close() error { return nil }

// A caller writes for others a bounded number of rounds, then a goroutine sends the rest: the
// caller is not held by a stream of others' requests, and no line is left unsent.
func TestSendHandsOverAfterBoundedRounds(t *testing.T) {
	s := &stepWriter{entered: make(chan struct{}), next: make(chan struct{})}
	w := &worker{in: s}
	first := make(chan error, 1)
	go func() { first <- w.send([]byte("own\n")) }()
	const extra = maxSendRounds + 3
	for i := 0; i < extra; i++ {
		<-s.entered // a write is under way: this line queues for the next round
		if err := w.send([]byte(fmt.Sprintf("queued %d\n", i))); err != nil {
			t.Fatal(err)
		}
		s.next <- struct{}{}
	}
	// the caller returns after its own write and maxSendRounds rounds, though lines keep coming
	select {
	case err := <-first:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the first caller is still writing for others")
	}
	// the last queued line is written by the goroutine that took over
	<-s.entered
	s.next <- struct{}{}
	testutil.Eventually(t, 5*time.Second, "every line written", func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		return len(s.lines) == extra+1
	})
	s.mu.Lock()
	got := append([]string(nil), s.lines...)
	s.mu.Unlock()
	sort.Strings(got)
	want := []string{"own"}
	for i := 0; i < extra; i++ {
		want = append(want, fmt.Sprintf("queued %d", i))
	}
	sort.Strings(want)
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("lines %q; want %q", got, want)
	}
	testutil.Eventually(t, 5*time.Second, "the writer role given up", func() bool {
		w.wmu.Lock()
		defer w.wmu.Unlock()
		return !w.writing
	})
}
