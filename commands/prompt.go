package commands

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"

	"golang.org/x/term"
)

// prompter reads answers line by line from the input stream. The reads happen on one goroutine so
// that a prompt can give up when the command's context ends: the first Ctrl-C cancels the prompt
// (exit 130) instead of waiting for a line that would then be taken as the answer.
type prompter struct {
	once  sync.Once
	lines chan lineResult
}

type lineResult struct {
	line string
	err  error
}

func (p *prompter) start(in io.Reader) {
	p.once.Do(func() {
		p.lines = make(chan lineResult)
		go func() {
			r := bufio.NewReader(in)
			for {
				line, err := r.ReadString('\n')
				p.lines <- lineResult{line, err}
				if err != nil {
					close(p.lines)
					return
				}
			}
		}()
	})
}

// readLine waits for one line of input, or for ctx to end.
func (f *Factory) readLine(ctx context.Context) (string, error) {
	f.prompts.start(f.IO.In)
	select {
	case <-ctx.Done():
		fmt.Fprintln(f.IO.ErrOut) // leave the cursor on a fresh line after ^C
		return "", ctx.Err()
	case r, ok := <-f.prompts.lines:
		if !ok {
			return "", io.EOF
		}
		return r.line, r.err
	}
}

// ask prompts on stderr and reads one line, repeating until valid. An empty line takes def.
func (f *Factory) ask(ctx context.Context, question, def string, valid func(string) error) (string, error) {
	out := f.IO.ErrOut
	for {
		if def != "" {
			fmt.Fprintf(out, "? %s [%s]: ", question, def)
		} else {
			fmt.Fprintf(out, "? %s: ", question)
		}
		line, err := f.readLine(ctx)
		if ctx.Err() != nil {
			return "", ctx.Err()
		}
		line = strings.TrimSpace(line)
		if line == "" {
			line = def
		}
		if verr := valid(line); verr != nil {
			if err != nil {
				return "", &UsageError{Err: verr}
			}
			fmt.Fprintf(out, "  %v\n", verr)
			continue
		}
		return line, nil
	}
}

// confirm asks a yes/no question; def is the answer to an empty line.
func (f *Factory) confirm(ctx context.Context, question string, def bool) (bool, error) {
	d := "y/N"
	if def {
		d = "Y/n"
	}
	ans, err := f.ask(ctx, question, d, func(s string) error {
		switch strings.ToLower(s) {
		case "y", "yes", "n", "no", "y/n":
			return nil
		}
		return errors.New("answer y or n")
	})
	if err != nil {
		return false, err
	}
	switch strings.ToLower(ans) {
	case "y", "yes":
		return true, nil
	case "n", "no":
		return false, nil
	}
	return def, nil
}

// askSecret reads a line without echoing it when the input is a terminal. Ctrl-C cancels it as any
// prompt: term.ReadPassword leaves signals on, so the read runs on its own goroutine and a
// cancelled prompt turns echo back on before returning.
func (f *Factory) askSecret(ctx context.Context, question string) (string, error) {
	fmt.Fprintf(f.IO.ErrOut, "? %s: ", question)
	file, ok := f.IO.In.(*os.File)
	if !ok || !term.IsTerminal(int(file.Fd())) {
		line, err := f.readLine(ctx)
		if err != nil && line == "" {
			return "", err
		}
		return strings.TrimSpace(line), nil
	}
	fd := int(file.Fd())
	state, err := term.GetState(fd)
	if err != nil {
		return "", err
	}
	type res struct {
		b   []byte
		err error
	}
	done := make(chan res, 1)
	go func() {
		b, err := term.ReadPassword(fd)
		done <- res{b, err}
	}()
	select {
	case <-ctx.Done():
		term.Restore(fd, state)
		fmt.Fprintln(f.IO.ErrOut)
		return "", ctx.Err()
	case r := <-done:
		fmt.Fprintln(f.IO.ErrOut)
		if r.err != nil {
			return "", r.err
		}
		return strings.TrimSpace(string(r.b)), nil
	}
}
