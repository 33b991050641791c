package main

import (
	"context"
	"io"
	"os"
)

func runWizard(ctx context.Context, o *opts, stdout, stderr io.Writer) error {
	if !isTerminal(os.Stdin) || !isTerminal(stdout) {
		return usagef("the wizard needs a terminal; for scripts use plan, apply --yes, verify --json (see --help)")
	}
	if err := environment(o, stderr); err != nil {
		return err
	}
	return usagef("the wizard is being built; use plan/apply/verify")
}
