package engine

import (
	"bufio"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"unicode/utf8"
)

// Bounds on what a function can make the engine hold or pass on.
const (
	// MaxRecordBytes bounds one log record's message; a longer one is cut and marked.
	MaxRecordBytes = 64 << 10
	// MaxInvocationLogBytes bounds the log output of one invocation; past it one note says that
	// further output was dropped.
	MaxInvocationLogBytes = 1 << 20
	// maxProtocolLine bounds one protocol message (a 1 MB result, escaped, fits with room to spare).
	maxProtocolLine = 8 << 20
)

// lineReader reads newline-terminated lines but holds at most max bytes of one: the rest of a
// longer line is read, counted and discarded, so a function writing 100 MB without a newline
// costs fn max bytes, not 100 MB.
type lineReader struct {
	br   *bufio.Reader
	max  int
	buf  []byte
	peak atomic.Int64 // the most bytes of one line ever held
}

func newLineReader(r io.Reader, max int) *lineReader {
	size := 64 << 10
	if max < size {
		size = max
	}
	return &lineReader{br: bufio.NewReaderSize(r, size), max: max}
}

// next returns the next line without its newline (valid until the following call), how many of
// its bytes were dropped, and the read error that ended it, if any.
func (lr *lineReader) next() (line []byte, dropped int64, err error) {
	if cap(lr.buf) > 256<<10 {
		lr.buf = nil // a rare large line (a big result): do not keep its buffer
	}
	lr.buf = lr.buf[:0]
	for {
		chunk, rerr := lr.br.ReadSlice('\n')
		if rerr == nil {
			chunk = chunk[:len(chunk)-1]
		}
		take := chunk
		if room := lr.max - len(lr.buf); len(take) > room {
			take = take[:room]
		}
		lr.buf = append(lr.buf, take...)
		dropped += int64(len(chunk) - len(take))
		if n := int64(len(lr.buf)); n > lr.peak.Load() {
			lr.peak.Store(n)
		}
		if rerr == bufio.ErrBufferFull {
			continue
		}
		return lr.buf, dropped, rerr
	}
}

// truncated cuts text to MaxRecordBytes (at a character boundary) and says how much was cut.
// dropped is what was already cut before text got here.
func truncated(text string, dropped int64) string {
	if dropped == 0 && len(text) <= MaxRecordBytes {
		return text
	}
	const room = MaxRecordBytes - 32 // for the marker
	if len(text) > room {
		cut := room
		for cut > 0 && !utf8.RuneStart(text[cut]) {
			cut--
		}
		dropped += int64(len(text) - cut)
		text = text[:cut]
	}
	return text + "… [truncated " + byteSize(dropped) + "]"
}

func byteSize(n int64) string {
	switch {
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d bytes", n)
}

// logBudget counts one invocation's log output.
type logBudget struct {
	used  atomic.Int64
	noted atomic.Bool
}

// budgets holds the log budget of every invocation in flight, by request id.
type budgets struct{ m sync.Map }

// open starts counting for rid; the returned func stops.
func (b *budgets) open(rid string) (*logBudget, func()) {
	mine := &logBudget{}
	if v, loaded := b.m.LoadOrStore(rid, mine); loaded {
		return v.(*logBudget), func() {} // another invocation with the same id: they share its budget
	}
	return mine, func() { b.m.CompareAndDelete(rid, mine) }
}

// find returns the budget of an invocation in flight.
func (b *budgets) find(rid string) *logBudget {
	if v, ok := b.m.Load(rid); ok {
		return v.(*logBudget)
	}
	return nil
}

// spend charges n bytes. It reports whether the record may pass and whether the one note about
// dropped output is due now.
func (lb *logBudget) spend(n int) (ok, note bool) {
	if lb == nil {
		return true, false
	}
	if lb.used.Add(int64(n)) <= MaxInvocationLogBytes {
		return true, false
	}
	return false, lb.noted.CompareAndSwap(false, true)
}
