// Command openclaw-harden takes a Debian VM that hosts OpenClaw from fresh to a verified, three-layer
// isolated deployment, as a wizard or as headless commands. See README.md.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
	"syscall"
)

// Exit codes are part of the command-line contract.
const (
	exitOK    = 0
	exitCheck = 1 // a verification or check failed
	exitUsage = 2 // usage or environment error
)

// usageError is an error whose one sentence is the whole message and whose exit code is 2.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error { return usageError{fmt.Sprintf(format, args...)} }

// failedError means findings were printed and the exit code is 1.
type failedError struct{ msg string }

func (e failedError) Error() string { return e.msg }

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	err := dispatch(ctx, args, stdout, stderr)
	var ue usageError
	var fe failedError
	switch {
	case err == nil:
		return exitOK
	case errors.Is(err, errHelp):
		return exitOK
	case errors.As(err, &fe):
		if fe.msg != "" {
			fmt.Fprintln(stderr, fe.msg)
		}
		return exitCheck
	case errors.As(err, &ue):
		fmt.Fprintln(stderr, "openclaw-harden: "+ue.msg)
		return exitUsage
	default:
		fmt.Fprintln(stderr, "openclaw-harden: "+err.Error())
		return exitUsage
	}
}

// requireLinux is the first thing every command that looks at the system checks.
func requireLinux() error {
	if runtime.GOOS != "linux" {
		return usagef("openclaw-harden runs only on Linux (the VM that hosts OpenClaw); this is %s.", runtime.GOOS)
	}
	return nil
}
