package system

import (
	"context"
	"fmt"
	"io"
	"sync"
	"time"
)

// TraceEnv, when set to anything but "" or "0", makes the headless commands print every command they run,
// with its exit status and how long it took, to stderr: for finding what is slow on a small VM.
const TraceEnv = "OPENCLAW_HARDEN_TRACE"

// TraceRunner runs commands with R and prints one line per finished command to W. Argv never holds a
// secret (they go in Env or Stdin, which are not printed); Redact is applied anyway.
type TraceRunner struct {
	R      Runner
	W      io.Writer
	Redact func(string) string
	Start  time.Time

	mu sync.Mutex
}

func (t *TraceRunner) Run(ctx context.Context, c Cmd) ([]byte, error) {
	t0 := time.Now()
	out, err := t.R.Run(ctx, c)
	line := fmt.Sprintf("trace +%.3fs %6dms exit %d: %s\n", t0.Sub(t.Start).Seconds(), time.Since(t0).Milliseconds(), exitOf(err), shellQuote(c.Argv))
	if t.Redact != nil {
		line = t.Redact(line)
	}
	t.mu.Lock()
	_, _ = io.WriteString(t.W, line)
	t.mu.Unlock()
	return out, err
}

func exitOf(err error) int {
	if err == nil {
		return 0
	}
	return ExitCode(err)
}

// Trace wraps the Host's runner in a TraceRunner writing to w.
func (h *Host) Trace(w io.Writer) {
	h.Runner = &TraceRunner{R: h.Runner, W: w, Redact: h.Redact, Start: time.Now()}
}
