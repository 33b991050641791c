package steps

import (
	"context"
	"strings"

	"openclaw-harden/system"
)

var (
	_ Reloader = SSHStep{}
	_ Reloader = DockerUserStep{}
	_ Reloader = DaemonStep{}
)

// AfterRollback reloads sshd (never restarts it, so open sessions stay up) after its drop-in was restored.
func (SSHStep) AfterRollback(ctx context.Context, h *system.Host) error {
	_, err := h.Exec(ctx, "systemctl", "reload", sshdUnit)
	return err
}

// AfterRollback makes the restored after.rules what the kernel runs: without a block the chain goes back to
// Docker's lone RETURN (a reload alone would leave the old rules loaded until the next boot), then UFW, when
// active, is reloaded.
func (DockerUserStep) AfterRollback(ctx context.Context, h *system.Host) error {
	if err := ResetDockerUserWithoutBlock(ctx, h); err != nil {
		return err
	}
	out, err := h.Read(ctx, "ufw", "status")
	if err != nil || !containsLine(string(out), "Status: active") {
		return nil
	}
	_, err = h.ExecCmd(ctx, system.Cmd{Argv: []string{"ufw", "reload"}, Timeout: step4Timeout})
	return err
}

// AfterRollback restarts Docker on the restored daemon.json and waits for it.
func (DaemonStep) AfterRollback(ctx context.Context, h *system.Host) error {
	return restartDocker(ctx, h)
}

func containsLine(s, line string) bool {
	for _, l := range strings.Split(s, "\n") {
		if strings.TrimSpace(l) == line {
			return true
		}
	}
	return false
}
