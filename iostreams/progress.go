package iostreams

import (
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/schollz/progressbar/v3"
)

// Progress shows what a long command is doing on stderr: a spinner with the name of the current
// phase, or a bar for a known number of bytes. It shows nothing unless stderr is a terminal, so
// piped and CI output stays clean.
type Progress struct {
	mu  sync.Mutex
	w   io.Writer
	on  bool
	bar *progressbar.ProgressBar
	max int64
}

// NewProgress returns a progress display for s's stderr.
func (s *IOStreams) NewProgress() *Progress {
	return &Progress{w: s.ErrOut, on: s.errTTY}
}

// Phase replaces what is shown with a spinner and the phase's name.
func (p *Progress) Phase(name string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.on {
		return
	}
	p.clear()
	p.bar = progressbar.NewOptions64(-1,
		progressbar.OptionSetWriter(p.w),
		progressbar.OptionSetDescription(name+"…"),
		progressbar.OptionSpinnerType(14),
		progressbar.OptionSetSpinnerChangeInterval(100*time.Millisecond),
		progressbar.OptionSetElapsedTime(true),
		progressbar.OptionClearOnFinish(),
		progressbar.OptionSetRenderBlankState(true),
		progressbar.OptionUseANSICodes(true),
	)
	p.max = -1
}

// Bytes shows a bar of sent out of total bytes, labelled.
func (p *Progress) Bytes(label string, sent, total int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.on {
		return
	}
	if p.bar == nil || p.max != total {
		p.clear()
		p.bar = progressbar.NewOptions64(total,
			progressbar.OptionSetWriter(p.w),
			progressbar.OptionSetDescription(label),
			progressbar.OptionShowBytes(true),
			progressbar.OptionShowCount(),
			progressbar.OptionSetWidth(30),
			progressbar.OptionThrottle(50*time.Millisecond),
			progressbar.OptionSetRenderBlankState(true),
			progressbar.OptionUseANSICodes(true),
			progressbar.OptionSetTheme(progressbar.Theme{Saucer: "█", SaucerPadding: "░", BarStart: "", BarEnd: ""}),
		)
		p.max = total
	}
	p.bar.Set64(sent)
}

// Stop removes the display, leaving the cursor at the start of an empty line.
func (p *Progress) Stop() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.clear()
}

func (p *Progress) clear() {
	if p.bar == nil {
		return
	}
	// Finish (not Exit) so that a spinner's ticker stops; a spinner clears itself on finishing, a
	// bar stays at 100% until the line is cleared here.
	p.bar.Finish()
	if p.max >= 0 {
		fmt.Fprint(p.w, "\r\033[2K")
	}
	p.bar = nil
}
