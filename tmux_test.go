package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestTmuxWizardDryRun runs the real binary in tmux at 80×24, as an operator would over SSH, and reads the
// screen: the first screen and Step 1 render, and q exits cleanly.
func TestTmuxWizardDryRun(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and drives tmux; not a -short test")
	}
	if _, err := exec.LookPath("tmux"); err != nil {
		t.Skip("tmux not installed")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "openclaw-harden")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	sock := filepath.Join(dir, "tmux.sock")
	state := filepath.Join(dir, "state")
	tmux := func(args ...string) string {
		out, err := exec.Command("tmux", append([]string{"-S", sock}, args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("tmux %v: %v\n%s", args, err, out)
		}
		return string(out)
	}
	script := bin + " --dry-run --state-dir " + state + "; echo EXIT=$?; sleep 60"
	tmux("new-session", "-d", "-s", "w", "-x", "80", "-y", "24", "env", "-u", "SSH_CONNECTION", "TERM=xterm-256color", "sh", "-c", script)
	t.Cleanup(func() { exec.Command("tmux", "-S", sock, "kill-server").Run() })

	screen := func() string { return tmux("capture-pane", "-p", "-t", "w") }
	waitFor := func(want string) string {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for {
			s := screen()
			if strings.Contains(s, want) {
				return s
			}
			if time.Now().After(deadline) {
				t.Fatalf("screen never showed %q; it shows:\n%s", want, s)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	first := waitFor("admin source")
	for _, want := range []string{"DRY RUN", "0 Secure VM access", "8 Verification matrix"} {
		if !strings.Contains(first, want) {
			t.Errorf("first screen lacks %q:\n%s", want, first)
		}
	}
	checkSize(t, first)
	tmux("send-keys", "-t", "w", "192.168.1.50", "Enter")
	waitFor("Step 0")
	// This machine is no hardening target: Step 0 plans, is blocked or cannot plan; a dry run goes on with enter.
	waitFor("Step 0 · Secure VM access")
	for i := 0; i < 40 && strings.Contains(screen(), "Planning"); i++ {
		time.Sleep(250 * time.Millisecond)
	}
	// Whatever Step 0 shows (a plan, a refusal, an error), a dry run walks on: enter, and y on a confirmation.
	for i := 0; i < 10 && !strings.Contains(screen(), "Step 1 · Baseline audit"); i++ {
		if strings.Contains(screen(), "y apply") {
			tmux("send-keys", "-t", "w", "y")
		} else {
			tmux("send-keys", "-t", "w", "Enter")
		}
		time.Sleep(time.Second)
	}
	s1 := waitFor("Step 1 · Baseline audit")
	waitFor("On this system now")
	checkSize(t, s1)
	tmux("send-keys", "-t", "w", "q")
	end := waitFor("EXIT=")
	if !strings.Contains(end, "EXIT=0") {
		t.Fatalf("q did not exit cleanly:\n%s", end)
	}
	if _, err := os.Stat(state); !os.IsNotExist(err) {
		t.Fatalf("the dry-run wizard created its state dir: %v", err)
	}
}

func checkSize(t *testing.T, s string) {
	t.Helper()
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > 24 {
		t.Errorf("screen has %d lines", len(lines))
	}
	for _, l := range lines {
		if n := len([]rune(l)); n > 80 {
			t.Errorf("line wider than 80 columns (%d): %q", n, l)
		}
	}
}
