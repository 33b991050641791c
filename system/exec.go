// Package system is the only package that touches the operating system: commands, files, iptables, state.
// Everything else reaches the machine through a *Host, so dry-run is enforced here once, not by each caller.
package system

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"time"
)

// DefaultTimeout bounds every command that does not ask for more: a hung tool must not hang the wizard.
const DefaultTimeout = 60 * time.Second

// Cmd is one command to run. Argv[0] is looked up in PATH.
type Cmd struct {
	Argv    []string
	Stdin   []byte
	Timeout time.Duration // 0 means DefaultTimeout
	// Output, when set, receives the command's combined output as it is produced (long apt runs show progress).
	Output func(line string)
	// Env is added to the environment. It is never journaled or put in errors: it may carry tokens.
	Env []string
}

// Runner runs commands. The real one is ExecRunner; FakeRunner answers from a script for unit tests.
type Runner interface {
	Run(ctx context.Context, c Cmd) (stdout []byte, err error)
}

// CmdError says what ran, how it ended and what it printed, so an operator can rerun it by hand.
type CmdError struct {
	Argv     []string
	ExitCode int // -1 when the command did not start or was killed
	Output   string
	Err      error
}

func (e *CmdError) Error() string {
	out := strings.TrimSpace(e.Output)
	if len(out) > 2000 {
		out = out[:2000] + "…"
	}
	msg := fmt.Sprintf("running %q failed (exit status %d): %v", strings.Join(e.Argv, " "), e.ExitCode, e.Err)
	if out != "" {
		msg += "\n" + out
	}
	return msg
}

func (e *CmdError) Unwrap() error { return e.Err }

// ExitCode returns the exit status carried by err, or -1 when err did not come from a finished command.
func ExitCode(err error) int {
	var ce *CmdError
	if errors.As(err, &ce) {
		return ce.ExitCode
	}
	return -1
}

// ExecRunner runs real commands with LC_ALL=C so that parsed output is never translated.
type ExecRunner struct{}

func (ExecRunner) Run(ctx context.Context, c Cmd) ([]byte, error) {
	if len(c.Argv) == 0 {
		return nil, errors.New("empty command")
	}
	t := c.Timeout
	if t == 0 {
		t = DefaultTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, t)
	defer cancel()
	cmd := exec.CommandContext(ctx, c.Argv[0], c.Argv[1:]...)
	cmd.Env = append(append(os.Environ(), "LC_ALL=C", "LANG=C", "DEBIAN_FRONTEND=noninteractive"), c.Env...)
	cmd.WaitDelay = 2 * time.Second
	if c.Stdin != nil {
		cmd.Stdin = bytes.NewReader(c.Stdin)
	}
	var stdout, stderr bytes.Buffer
	if c.Output != nil {
		lw := &lineWriter{fn: c.Output}
		cmd.Stdout = io.MultiWriter(&stdout, lw)
		cmd.Stderr = io.MultiWriter(&stderr, lw)
		defer lw.flush()
	} else {
		cmd.Stdout = &stdout
		cmd.Stderr = &stderr
	}
	err := cmd.Run()
	if err == nil {
		return stdout.Bytes(), nil
	}
	code := -1
	var ee *exec.ExitError
	if errors.As(err, &ee) && ee.Exited() {
		code = ee.ExitCode()
	}
	if ctx.Err() == context.DeadlineExceeded {
		err = fmt.Errorf("timed out after %s", t)
	}
	return stdout.Bytes(), &CmdError{Argv: c.Argv, ExitCode: code, Output: stderr.String() + stdout.String(), Err: err}
}

// lineWriter hands complete lines to fn; apt prints progress with \r, which counts as a line end too.
type lineWriter struct {
	fn  func(string)
	buf []byte
}

func (w *lineWriter) Write(p []byte) (int, error) {
	w.buf = append(w.buf, p...)
	for {
		i := bytes.IndexAny(w.buf, "\r\n")
		if i < 0 {
			break
		}
		if line := strings.TrimSpace(string(w.buf[:i])); line != "" {
			w.fn(line)
		}
		w.buf = w.buf[i+1:]
	}
	return len(p), nil
}

func (w *lineWriter) flush() {
	if line := strings.TrimSpace(string(w.buf)); line != "" {
		w.fn(line)
	}
	w.buf = nil
}

// LookPath reports whether a tool is installed; missing tools are facts to report, not crashes.
func LookPath(name string) (string, error) { return exec.LookPath(name) }
