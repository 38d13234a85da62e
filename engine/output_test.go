package engine

import (
	"strings"
	"testing"
	"time"

	"github.com/fnhq/fn/bundler"
	"github.com/fnhq/fn/internal/testutil"
)

func TestLineReaderHoldsAtMostItsBound(t *testing.T) {
	in := strings.Repeat("a", 10) + "\n" + strings.Repeat("b", 1000) + "\n\nend"
	lr := newLineReader(strings.NewReader(in), 100)
	type line struct {
		text    string
		dropped int64
	}
	var got []line
	for {
		l, d, err := lr.next()
		if err == nil || len(l) > 0 {
			got = append(got, line{string(l), d})
		}
		if err != nil {
			break
		}
	}
	want := []line{{strings.Repeat("a", 10), 0}, {strings.Repeat("b", 100), 900}, {"", 0}, {"end", 0}}
	if len(got) != len(want) {
		t.Fatalf("lines %+v", got)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("line %d: %q (%d dropped), want %q (%d dropped)", i, got[i].text, got[i].dropped, want[i].text, want[i].dropped)
		}
	}
	if p := lr.peak.Load(); p != 100 {
		t.Errorf("held %d bytes of one line, want 100", p)
	}
}

func TestTruncatedMarksWhatWasCut(t *testing.T) {
	if got := truncated("short", 0); got != "short" {
		t.Errorf("short: %q", got)
	}
	long := strings.Repeat("é", MaxRecordBytes) // 2 bytes each
	got := truncated(long, 0)
	if len(got) > MaxRecordBytes || !strings.HasSuffix(got, "… [truncated 64.0 KB]") || !strings.HasPrefix(got, "éé") {
		t.Errorf("long: %d bytes, ends %q", len(got), got[len(got)-40:])
	}
	if got := truncated("kept", 100<<20); got != "kept… [truncated 100.0 MB]" {
		t.Errorf("already cut: %q", got)
	}
}

func TestOutputIsBounded(t *testing.T) {
	files := map[string]string{
		"fn.yaml": "name: conf\ndialect: wx\nfunctions:\n  loud:\n    maxInstances: 1\n    timeout: 60\n",
		"functions/loud/index.js": `exports.main = async (event) => {
  if (event.how === 'huge-console') console.log('x'.repeat(10 * 1024 * 1024))
  if (event.how === 'huge-stdout') process.stdout.write('y'.repeat(100 * 1024 * 1024))
  if (event.how === 'newline') process.stdout.write('\nafter\n')
  if (event.how === 'many-console') for (let i = 0; i < 3000; i++) console.log(String(i).padEnd(1000, '.'))
  if (event.how === 'many-stdout') for (let i = 0; i < 3000; i++) process.stdout.write(String(i).padEnd(1000, '.') + '\n')
  return { pid: process.pid }
}
`,
	}
	f := newFixture(t, files, bundler.Dev, Config{})
	call := func(how string) *Result {
		r := f.wx("loud", `{"how":"`+how+`"}`, nil)
		mustOK(t, r)
		return r
	}

	// one huge console record: cut at 64 KB with a marker
	r := call("huge-console")
	recs := f.logsFor(r.RequestID)
	if len(recs) != 1 || len(recs[0].Message) > MaxRecordBytes || !strings.HasSuffix(recs[0].Message, "… [truncated 9.9 MB]") {
		t.Errorf("huge console record: %d records, first %d bytes ending %q", len(recs), len(recs[0].Message), tailOf(recs[0].Message))
	}

	// 100 MB on stdout without a newline: fn holds 64 KB of it, and the record says what was cut
	call("huge-stdout")
	r = call("newline")
	var w *worker
	f.e.mu.Lock()
	p := f.e.pools["loud"]
	f.e.mu.Unlock()
	p.mu.Lock()
	for pw := range p.workers {
		w = pw
	}
	p.mu.Unlock()
	testutil.Eventually(t, 10*time.Second, "the two stdout lines", func() bool { return f.hasLog("after") })
	var big *Record
	f.mu.Lock()
	for i := range f.logs {
		if f.logs[i].Stream == "stdout" && strings.HasPrefix(f.logs[i].Message, "yyy") {
			big = &f.logs[i]
		}
	}
	f.mu.Unlock()
	if big == nil || len(big.Message) > MaxRecordBytes || !strings.HasSuffix(big.Message, "… [truncated 99.9 MB]") {
		t.Fatalf("the 100 MB stdout line: %+v", big)
	}
	if held := w.stdoutReader.Load().peak.Load(); held > MaxRecordBytes {
		t.Errorf("the engine held %d bytes of one stdout line; the bound is %d", held, MaxRecordBytes)
	}

	// many records: the invocation's output stops at 1 MB with one note
	for _, how := range []string{"many-console", "many-stdout"} {
		r := call(how)
		testutil.Eventually(t, 10*time.Second, how+": the drop note", func() bool {
			for _, rec := range f.logsFor(r.RequestID) {
				if rec.Stream == "fn" {
					return true
				}
			}
			return false
		})
		total, notes, n := 0, 0, 0
		for _, rec := range f.logsFor(r.RequestID) {
			if rec.Stream == "fn" {
				notes++
				if rec.Message != "this invocation logged more than 1.0 MB: further output dropped" {
					t.Errorf("%s: note %q", how, rec.Message)
				}
				continue
			}
			n++
			total += len(rec.Message)
		}
		if notes != 1 || total > MaxInvocationLogBytes || n < 900 || n >= 3000 {
			t.Errorf("%s: %d records of %d bytes and %d notes; want ~1 MB of records and one note", how, n, total, notes)
		}
	}
}

func tailOf(s string) string {
	if len(s) > 40 {
		return s[len(s)-40:]
	}
	return s
}
