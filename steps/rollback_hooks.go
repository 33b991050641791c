package steps

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"time"

	"openclaw-harden/system"
)

var (
	_ Reloader = SSHStep{}
	_ Reloader = DockerUserStep{}
	_ Reloader = DaemonStep{}
	_ Reloader = ComposeStep{}
	_ Reloader = PolicyStep{}
)

// composeNetwork is the network compose makes for the project "openclaw" and its network "openclaw".
const composeNetwork = "openclaw_openclaw"

// Reload brings the gateway in line with compose.yaml and .env as they are now (compose recreates the
// container only when they differ from what runs) and waits for its health check.
func (ComposeStep) Reload(ctx context.Context, h *system.Host) error {
	if _, err := h.Stat(composePath()); errors.Is(err, fs.ErrNotExist) {
		// A rollback removed the compose file the tool created: the deployment goes with it, as on the VM
		// before Step 6 (the gateway's data under /opt/openclaw stays).
		if _, found, _ := inspectContainer(ctx, h, GatewayContainer); found {
			if _, err := h.ExecCmd(ctx, system.Cmd{Argv: []string{"docker", "rm", "-f", GatewayContainer}, Timeout: 3 * time.Minute}); err != nil {
				return err
			}
		}
		if _, err := h.Read(ctx, "docker", "network", "inspect", composeNetwork); err == nil {
			_, err := h.Exec(ctx, "docker", "network", "rm", composeNetwork)
			return err
		}
		return nil
	}
	cli, err := detectCompose(ctx, h)
	if err != nil {
		return err
	}
	if _, err := h.ExecCmd(ctx, system.Cmd{Argv: cli.cmd("up", "-d", "--remove-orphans"), Timeout: 10 * time.Minute, Output: progressFunc(h)}); err != nil {
		return err
	}
	if h.DryRun {
		return nil
	}
	return waitHealthy(ctx, h, GatewayContainer, healthTimeout)
}

// Reload restarts the gateway so it rereads openclaw.json as it is now.
func (PolicyStep) Reload(ctx context.Context, h *system.Host) error {
	if _, found, _ := inspectContainer(ctx, h, GatewayContainer); !found {
		return nil
	}
	if _, err := h.ExecCmd(ctx, system.Cmd{Argv: []string{"docker", "restart", "-t", "60", GatewayContainer}, Timeout: 3 * time.Minute}); err != nil {
		return fmt.Errorf("docker restart %s: %w", GatewayContainer, err)
	}
	if h.DryRun {
		return nil
	}
	return waitHealthy(ctx, h, GatewayContainer, healthTimeout)
}

// Reload reloads sshd (never restarts it, so open sessions stay up) on its drop-in as it is now.
func (SSHStep) Reload(ctx context.Context, h *system.Host) error {
	_, err := h.Exec(ctx, "systemctl", "reload", sshdUnit)
	return err
}

// Reload makes after.rules as it is now what the kernel runs: without a block the chain goes back to
// Docker's lone RETURN (a reload alone would leave the old rules loaded until the next boot), then UFW, when
// active, is reloaded.
func (DockerUserStep) Reload(ctx context.Context, h *system.Host) error {
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

// Reload restarts Docker on daemon.json as it is now and waits for it.
func (DaemonStep) Reload(ctx context.Context, h *system.Host) error {
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
