package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func runCLI(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(context.Background(), args, &out, &errb)
	return code, out.String(), errb.String()
}

func TestHelpForEveryCommandHasAnExample(t *testing.T) {
	code, out, _ := runCLI(t, "--help")
	if code != 0 || !strings.Contains(out, "Exit codes") {
		t.Fatalf("--help: %d %q", code, out)
	}
	for _, c := range commands() {
		code, out, _ := runCLI(t, c.name, "--help")
		if code != 0 || !strings.Contains(out, "Example:\n  openclaw-harden "+c.name) || !strings.Contains(out, "--dry-run") {
			t.Errorf("%s --help: %d\n%s", c.name, code, out)
		}
	}
}

func TestUsageErrorsExit2WithOneSentence(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(bad, []byte("lan_cidr: 192.168.1.0/24\ndocker_subnet: 192.168.1.128/25\n"), 0o600)
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"frob"}, `unknown command "frob"`},
		{[]string{"plan", "--bogus"}, "unknown flag -bogus"},
		{[]string{"plan", "--step", "9"}, `--step "9" is not a step number`},
		{[]string{"apply", "--yes"}, "apply needs --answers FILE"},
		{[]string{"apply", "--answers", bad}, "add --yes to confirm"},
		{[]string{"verify", "--yes"}, "verify does not take --yes"},
		{[]string{"render", "nope"}, `render "nope": unknown artifact`},
		{[]string{"check", "nope", "f"}, `check "nope": unknown kind`},
		{[]string{"audit"}, `audit needs "snapshot" or "diff"`},
		{[]string{"--state-dir", dir, "plan", "--answers", bad}, "bad.yaml: docker_subnet: 192.168.1.128/25 overlaps lan_cidr 192.168.1.0/24"},
		{[]string{"--state-dir", dir, "plan", "--answers", filepath.Join(dir, "none.yaml")}, "no such file"},
	}
	for _, c := range cases {
		code, _, errs := runCLI(t, c.args...)
		if code != 2 || !strings.Contains(errs, c.want) || strings.Count(strings.TrimSpace(errs), "\n") > 1 {
			t.Errorf("%v: exit %d, stderr %q; want 2 and %q", c.args, code, errs, c.want)
		}
	}
}

// Step 1 runs for real on this machine: read-only commands, and writes only into a temp state dir.
func TestStep1ApplyVerifyAndRerunSaysNoChanges(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("apply needs root")
	}
	dir := t.TempDir()
	ans := filepath.Join(dir, "a.yaml")
	os.WriteFile(ans, []byte("admin_source: 192.168.1.50\n"), 0o600)
	code, out, errs := runCLI(t, "apply", "--answers", ans, "--yes", "--step", "1", "--state-dir", dir)
	if code != 0 || !strings.Contains(out, "✓ step 1 baseline parses") {
		t.Fatalf("apply: %d\n%s\n%s", code, out, errs)
	}
	code, out, _ = runCLI(t, "apply", "--answers", ans, "--yes", "--step", "1", "--state-dir", dir)
	if code != 0 || !strings.Contains(out, "No changes") {
		t.Fatalf("second apply: %d\n%s", code, out)
	}
	code, out, _ = runCLI(t, "verify", "--json", "--step", "1", "--state-dir", dir)
	var rep verifyReport
	if code != 0 || json.Unmarshal([]byte(out), &rep) != nil || !rep.OK || rep.Version != 1 || len(rep.Steps) != 1 || len(rep.Steps[0].Checks) == 0 {
		t.Fatalf("verify --json: %d\n%s", code, out)
	}
	// Every other step is not available yet and must fail verification, never pass.
	code, out, _ = runCLI(t, "verify", "--json", "--state-dir", dir)
	if code != 1 || json.Unmarshal([]byte(out), &rep) != nil || rep.OK {
		t.Fatalf("full verify: %d\n%s", code, out)
	}
	for _, sr := range rep.Steps {
		if sr.Step != 1 && (sr.OK || sr.Available) {
			t.Errorf("step %d reported ok=%v available=%v", sr.Step, sr.OK, sr.Available)
		}
	}
	code, out, _ = runCLI(t, "audit", "diff", "--state-dir", dir)
	if code != 0 || !strings.Contains(out, "Audit diff:") {
		t.Fatalf("audit diff: %d\n%s", code, out)
	}
	// Full apply stops at Step 0, which is not available yet.
	code, _, errs = runCLI(t, "apply", "--answers", ans, "--yes", "--state-dir", dir)
	if code != 1 || !strings.Contains(errs, "step 0: not available yet") {
		t.Fatalf("full apply: %d %q", code, errs)
	}
}

func TestDryRunWritesNothing(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state")
	ans := filepath.Join(t.TempDir(), "a.yaml")
	os.WriteFile(ans, []byte("admin_source: 192.168.1.50\n"), 0o600)
	code, out, errs := runCLI(t, "--dry-run", "apply", "--answers", ans, "--yes", "--step", "1", "--state-dir", dir)
	if code != 0 || !strings.Contains(out, "dry run: step 1 not applied") {
		t.Fatalf("dry-run apply: %d\n%s\n%s", code, out, errs)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Fatalf("dry run created the state dir: %v", err)
	}
}

// The binary refuses to run as a normal user without --dry-run, and with --dry-run says what needs root.
func TestNonRootBinary(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to switch to an unprivileged user")
	}
	if _, err := exec.LookPath("setpriv"); err != nil {
		t.Skip("setpriv not installed")
	}
	bin := filepath.Join(t.TempDir(), "openclaw-harden")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	os.Chmod(filepath.Dir(bin), 0o755)
	state := filepath.Join(t.TempDir(), "s")
	asNobody := func(args ...string) (int, string) {
		cmd := exec.Command("setpriv", append([]string{"--reuid=65534", "--regid=65534", "--clear-groups", bin}, args...)...)
		cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "OPENCLAW_HARDEN_STATE_DIR=" + state}
		out, _ := cmd.CombinedOutput()
		return cmd.ProcessState.ExitCode(), string(out)
	}
	code, out := asNobody("plan")
	if code != 2 || !strings.Contains(out, "must run as root") {
		t.Fatalf("plan as nobody: %d %q", code, out)
	}
	code, out = asNobody("plan", "--dry-run", "--step", "1")
	if code != 0 || !strings.Contains(out, "need root for the complete view") || !strings.Contains(out, "Step 1: Baseline audit") {
		t.Fatalf("dry-run plan as nobody: %d\n%s", code, out)
	}
}
