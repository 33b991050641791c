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
		{[]string{"--state-dir", dir, "plan", "--answers", bad}, "bad.yaml:2: docker_subnet: 192.168.1.128/25 overlaps lan_cidr 192.168.1.0/24"},
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
	// Steps not available yet must fail verification, never pass; so the whole verify fails.
	code, out, _ = runCLI(t, "verify", "--json", "--state-dir", dir)
	if code != 1 || json.Unmarshal([]byte(out), &rep) != nil || rep.OK || len(rep.Steps) != 9 {
		t.Fatalf("full verify: %d\n%s", code, out)
	}
	for _, sr := range rep.Steps {
		if !sr.Available && sr.OK {
			t.Errorf("step %d is not available yet but reported ok", sr.Step)
		}
		for _, c := range sr.Checks {
			if c.Step != sr.Step {
				t.Errorf("step %d: check %s carries step %d", sr.Step, c.ID, c.Step)
			}
		}
	}
	code, out, _ = runCLI(t, "audit", "diff", "--state-dir", dir)
	if code != 0 || !strings.Contains(out, "Audit diff:") {
		t.Fatalf("audit diff: %d\n%s", code, out)
	}
	// A full apply on this machine (not a hardened VM, no key login seen) must stop at Step 0.
	code, _, errs = runCLI(t, "apply", "--answers", ans, "--yes", "--state-dir", dir, "--dry-run")
	if code != 1 || !strings.HasPrefix(errs, "step 0: ") {
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

func TestCheckProxmoxFW(t *testing.T) {
	dir := t.TempDir()
	good, err := os.ReadFile("pvefw/testdata/100.fw")
	if err != nil {
		t.Skip("pvefw testdata missing: ", err)
	}
	gp := filepath.Join(dir, "100.fw")
	os.WriteFile(gp, good, 0o600)
	if code, out, errs := runCLI(t, "check", "proxmox-fw", gp); code != 0 || out != "" {
		t.Fatalf("good file: %d %q %q", code, out, errs)
	}
	bad := filepath.Join(dir, "101.fw")
	os.WriteFile(bad, []byte("[OPTIONS]\nenable: 1\npolicy_in: DROP\npolicy_out: DROP\n\n[RULES]\nOUT ACCEPT -p tcp -dport 443\nOUT DROP -dest 10.0.0.0/8#lan -p tcp\n"), 0o600)
	code, out, _ := runCLI(t, "check", "proxmox-fw", bad)
	if code != 1 || !strings.Contains(out, bad+":8: error:") {
		t.Fatalf("bad file: %d\n%s", code, out)
	}
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		if !strings.HasPrefix(l, bad+":") {
			t.Errorf("finding not in FILE:LINE: form: %q", l)
		}
	}
}
