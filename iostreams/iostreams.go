// Package iostreams is the small set of streams a command writes to: stdout for data (results, JSON),
// stderr for chatter, stdin for prompts, with terminal detection and a colour scheme that is on only
// for a terminal and never with NO_COLOR.
package iostreams

import (
	"bytes"
	"io"
	"os"

	"github.com/fatih/color"
	"github.com/mattn/go-isatty"
)

// IOStreams carries the process streams and what is known about them.
type IOStreams struct {
	In     io.Reader
	Out    io.Writer
	ErrOut io.Writer

	inTTY, outTTY, errTTY bool
	colorOn               bool
}

// System returns streams bound to the process's stdin, stdout and stderr.
func System() *IOStreams {
	s := &IOStreams{In: os.Stdin, Out: os.Stdout, ErrOut: os.Stderr}
	s.inTTY = isTerminal(os.Stdin)
	s.outTTY = isTerminal(os.Stdout)
	s.errTTY = isTerminal(os.Stderr)
	s.SetColorMode("auto")
	return s
}

// Test returns streams over buffers, as no terminal.
func Test() (*IOStreams, *bytes.Buffer, *bytes.Buffer, *bytes.Buffer) {
	in, out, errOut := &bytes.Buffer{}, &bytes.Buffer{}, &bytes.Buffer{}
	return &IOStreams{In: in, Out: out, ErrOut: errOut}, in, out, errOut
}

func isTerminal(f *os.File) bool {
	return isatty.IsTerminal(f.Fd()) || isatty.IsCygwinTerminal(f.Fd())
}

// SetTTY overrides terminal detection (tests).
func (s *IOStreams) SetTTY(in, out, errOut bool) { s.inTTY, s.outTTY, s.errTTY = in, out, errOut }

// IsStdinTTY reports whether prompts can be shown.
func (s *IOStreams) IsStdinTTY() bool { return s.inTTY }

// IsStdoutTTY reports whether stdout is a terminal.
func (s *IOStreams) IsStdoutTTY() bool { return s.outTTY }

// IsStderrTTY reports whether stderr is a terminal (progress and spinners go there, only then).
func (s *IOStreams) IsStderrTTY() bool { return s.errTTY }

// CanPrompt reports whether the command may ask questions.
func (s *IOStreams) CanPrompt() bool { return s.inTTY && s.errTTY }

// SetColorMode applies --color auto|always|never. auto means: stderr is a terminal and NO_COLOR is unset.
func (s *IOStreams) SetColorMode(mode string) {
	switch mode {
	case "always":
		s.colorOn = true
	case "never":
		s.colorOn = false
	default:
		_, noColor := os.LookupEnv("NO_COLOR")
		s.colorOn = s.errTTY && !noColor && os.Getenv("TERM") != "dumb"
	}
}

// ColorEnabled reports whether output is coloured.
func (s *IOStreams) ColorEnabled() bool { return s.colorOn }

// Colors returns the palette; each colour is disabled unless colour is on.
func (s *IOStreams) Colors() *ColorScheme {
	mk := func(attrs ...color.Attribute) *color.Color {
		c := color.New(attrs...)
		if s.colorOn {
			c.EnableColor()
		} else {
			c.DisableColor()
		}
		return c
	}
	return &ColorScheme{
		red: mk(color.FgRed), green: mk(color.FgGreen), yellow: mk(color.FgYellow),
		cyan: mk(color.FgCyan), gray: mk(color.FgHiBlack), bold: mk(color.Bold),
	}
}

// ColorScheme formats strings in colour when colour is enabled.
type ColorScheme struct{ red, green, yellow, cyan, gray, bold *color.Color }

func (c *ColorScheme) Red(s string) string    { return c.red.Sprint(s) }
func (c *ColorScheme) Green(s string) string  { return c.green.Sprint(s) }
func (c *ColorScheme) Yellow(s string) string { return c.yellow.Sprint(s) }
func (c *ColorScheme) Cyan(s string) string   { return c.cyan.Sprint(s) }
func (c *ColorScheme) Gray(s string) string   { return c.gray.Sprint(s) }
func (c *ColorScheme) Bold(s string) string   { return c.bold.Sprint(s) }

// SuccessIcon is a green check mark.
func (c *ColorScheme) SuccessIcon() string { return c.Green("✓") }

// FailureIcon is a red cross.
func (c *ColorScheme) FailureIcon() string { return c.Red("✗") }

// WarningIcon is a yellow exclamation mark.
func (c *ColorScheme) WarningIcon() string { return c.Yellow("!") }
