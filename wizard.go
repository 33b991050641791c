package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"openclaw-harden/steps"
	"openclaw-harden/system"
	"openclaw-harden/ui"
)

func runWizard(ctx context.Context, o *opts, stdout, stderr io.Writer) error {
	if !isTerminal(os.Stdin) || !isTerminal(stdout) {
		return usagef("the wizard needs a terminal; for scripts use plan, apply --yes, verify --json (see --help)")
	}
	if err := environment(o, stderr); err != nil {
		return err
	}
	s, err := openSession(o, stderr)
	if err != nil {
		return err
	}
	release, err := lockSession(s)
	if err != nil {
		return err
	}
	defer release()
	h := s.Host
	err = ui.Run(ctx, s, ui.Options{
		DryRun:         o.dryRun,
		NoColor:        os.Getenv("NO_COLOR") != "",
		AnswersPath:    o.answers,
		AskAdminSource: proposeAdminSource(h.Getenv),
		Audit: ui.AuditHooks{
			TakeAfter: func(ctx context.Context) error {
				snap, err := steps.TakeSnapshot(ctx, h)
				if err != nil {
					return err
				}
				_, err = steps.SaveSnapshot(h, snap, "after")
				return err
			},
			Latest: func() (string, string, error) { return latestAuditText(context.Background(), s) },
		},
		// Offered on Steps 4 and 5: the verification after it is what proves the DOCKER-USER rules survive.
		RestartDocker: func(ctx context.Context) error {
			_, err := h.ExecCmd(ctx, system.Cmd{Argv: []string{"systemctl", "restart", "docker"}, Timeout: 3 * time.Minute})
			return err
		},
	})
	if err != nil {
		return err
	}
	for _, st := range s.Steps {
		if s.Status(st.ID()).Status != steps.StatusPassed {
			// Quitting is how an operator pauses; the exit status stays 0 and the resume point is named.
			fmt.Fprintf(stdout, "Stopped before every step passed (step %d: %s). Run openclaw-harden again to resume.\n", st.ID(), s.Status(st.ID()).Status)
			return nil
		}
	}
	return nil
}

// latestAuditText renders the baseline and the latest snapshot one fact per line, so a line diff of the two
// is the per-item diff (added, removed, changed) the operator reads on the final screen. In dry-run mode
// nothing was saved, so "now" is a fresh snapshot.
func latestAuditText(ctx context.Context, s *steps.Session) (string, string, error) {
	h := s.Host
	base, latest, err := steps.LatestSnapshots(h)
	if err != nil {
		return "", "", err
	}
	if base == "" {
		return "", "", fmt.Errorf("there is no baseline in %s/audits yet (Step 1 has not been applied), so there is nothing to compare with", h.StateDir)
	}
	before, err := steps.LoadSnapshot(h, base)
	if err != nil {
		return "", "", err
	}
	var after steps.Snapshot
	if latest == "" || latest == base || h.DryRun {
		after, err = steps.TakeSnapshot(ctx, h)
	} else {
		after, err = steps.LoadSnapshot(h, latest)
	}
	if err != nil {
		return "", "", err
	}
	return factLines(before), factLines(after), nil
}

func factLines(s steps.Snapshot) string {
	var b strings.Builder
	for _, it := range s.Items {
		fmt.Fprintf(&b, "%s · %s: %s\n", it.Section, it.Key, it.Value)
	}
	return b.String()
}
