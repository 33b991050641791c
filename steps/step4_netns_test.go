//go:build linux

package steps

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"openclaw-harden/system"
)

// step4Box runs each command in a private mount namespace in which /etc/ufw, /lib/ufw and /etc/default/ufw
// are bind mounts of copies under root, inside network namespace ns: the real ufw reads and writes only the
// copies and loads its rules into ns's iptables. This machine's UFW and iptables are never touched.
type step4Box struct{ root, ns string }

const step4BoxScript = `set -e
mount --bind "$1/etc/ufw" /etc/ufw
mount --bind "$1/lib/ufw" /lib/ufw
mount --bind "$1/etc/default/ufw" /etc/default/ufw
ns=$2
shift 2
exec ip netns exec "$ns" "$@"`

func (b step4Box) Run(ctx context.Context, c system.Cmd) ([]byte, error) {
	if len(c.Argv) == 0 {
		return nil, errors.New("empty command")
	}
	if _, err := exec.LookPath(c.Argv[0]); err != nil {
		return nil, &system.CmdError{Argv: c.Argv, ExitCode: 127, Output: err.Error(), Err: err}
	}
	orig := c.Argv
	c.Argv = append([]string{"unshare", "-m", "--propagation", "private", "sh", "-c", step4BoxScript, "sh", b.root, b.ns}, c.Argv...)
	out, err := system.ExecRunner{}.Run(ctx, c)
	var ce *system.CmdError
	if errors.As(err, &ce) {
		ce.Argv = orig
	}
	return out, err
}

// step4HostFirewall fingerprints this machine's UFW files and iptables rules, to prove the test left them alone.
func step4HostFirewall(t *testing.T) string {
	t.Helper()
	h := sha256.New()
	for _, dir := range []string{"/etc/ufw", "/lib/ufw"} {
		filepath.Walk(dir, func(p string, info os.FileInfo, err error) error {
			if err == nil && info.Mode().IsRegular() {
				b, _ := os.ReadFile(p)
				fmt.Fprintf(h, "%s %v %x\n", p, info.Mode(), sha256.Sum256(b))
			}
			return nil
		})
	}
	for _, argv := range [][]string{{"iptables", "-S"}, {"ufw", "status"}} {
		out, _ := exec.Command(argv[0], argv[1:]...).CombinedOutput()
		fmt.Fprintf(h, "%v\n%s\n", argv, out)
	}
	return hex.EncodeToString(h.Sum(nil))
}

func step4Sh(t *testing.T, argv ...string) string {
	t.Helper()
	out, err := exec.Command(argv[0], argv[1:]...).CombinedOutput()
	if err != nil {
		t.Fatalf("%q: %v\n%s", argv, err, out)
	}
	return string(out)
}

// TestNetnsDockerUserUFW applies Step 4 for real: the real ufw and iptables, in a fresh network namespace with
// a private copy of UFW's files, with a DOCKER-USER chain and FORWARD jump made the way Docker makes them. It
// checks the live chain order after `ufw reload`, that reloading again (and disable + enable, UFW's boot
// path) leaves exactly one copy, that `ufw --force reset` wipes the block from after.rules (the field note),
// and that applying Step 4 again restores it.
func TestNetnsDockerUserUFW(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: skipping the real-kernel namespace test")
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root to create network and mount namespaces")
	}
	for _, tool := range []string{"ufw", "ip", "iptables", "iptables-restore", "unshare", "mount"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s is not installed", tool)
		}
	}
	hostBefore := step4HostFirewall(t)

	root := t.TempDir()
	for _, d := range []string{"etc/default", "lib", "state"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	step4Sh(t, "cp", "-a", "/etc/ufw", filepath.Join(root, "etc/ufw"))
	step4Sh(t, "cp", "-a", "/lib/ufw/.", filepath.Join(root, "lib/ufw"))
	for _, f := range []string{"user.rules", "user6.rules", "after.rules"} {
		step4Sh(t, "cp", filepath.Join("/usr/share/ufw/iptables", f), filepath.Join(root, "etc/ufw", f))
	}
	stock, err := os.ReadFile(filepath.Join(root, "etc/ufw/after.rules"))
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(root, "etc/ufw/ufw.conf"), []byte("ENABLED=no\nLOGLEVEL=low\n"), 0o644)
	os.WriteFile(filepath.Join(root, "etc/ufw/empty-sysctl.conf"), nil, 0o644)
	os.WriteFile(filepath.Join(root, "etc/default/ufw"), []byte(`IPV6=no
DEFAULT_INPUT_POLICY="DROP"
DEFAULT_OUTPUT_POLICY="ACCEPT"
DEFAULT_FORWARD_POLICY="DROP"
DEFAULT_APPLICATION_POLICY="SKIP"
MANAGE_BUILTINS=no
IPT_SYSCTL=/etc/ufw/empty-sysctl.conf
IPT_MODULES=""
`), 0o644)

	buf := make([]byte, 4)
	rand.Read(buf)
	ns := "ochs4-" + hex.EncodeToString(buf)
	step4Sh(t, "ip", "netns", "add", ns)
	t.Cleanup(func() {
		if out, err := exec.Command("ip", "netns", "del", ns).CombinedOutput(); err != nil {
			t.Errorf("removing the test namespace %s: %v\n%s", ns, err, out)
		}
		if after := step4HostFirewall(t); after != hostBefore {
			t.Errorf("this machine's own UFW files or iptables rules changed during the test")
		}
	})
	step4Sh(t, "ip", "-n", ns, "link", "set", "lo", "up")
	box := step4Box{root: root, ns: ns}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	run := func(argv ...string) string {
		t.Helper()
		out, err := box.Run(ctx, system.Cmd{Argv: argv, Timeout: 2 * time.Minute})
		if err != nil {
			t.Fatalf("%s in %s: %v\n%s", strings.Join(argv, " "), ns, err, out)
		}
		return string(out)
	}
	// What Docker 20.10 sets up in filter: its chains, DOCKER-USER with a RETURN, the jump first in FORWARD.
	for _, argv := range [][]string{
		{"iptables", "-N", "DOCKER-USER"}, {"iptables", "-A", "DOCKER-USER", "-j", "RETURN"},
		{"iptables", "-N", "DOCKER-ISOLATION-STAGE-1"}, {"iptables", "-A", "DOCKER-ISOLATION-STAGE-1", "-j", "RETURN"},
		{"iptables", "-A", "FORWARD", "-j", "DOCKER-USER"}, {"iptables", "-A", "FORWARD", "-j", "DOCKER-ISOLATION-STAGE-1"},
		{"iptables", "-A", "FORWARD", "-o", "docker0", "-j", "ACCEPT"},
	} {
		run(argv...)
	}
	run("ufw", "--force", "enable")

	h := system.NewHost(filepath.Join(root, "state"), false)
	h.Root, h.Runner = root, box
	h.Env = func(string) string { return "" }
	a := step4Answers()
	want, err := expectedDockerUser(a)
	if err != nil {
		t.Fatal(err)
	}
	s := DockerUserStep{}
	chainIs := func(stage string) {
		t.Helper()
		got := ruleLines(run("iptables", "-S", "DOCKER-USER"), "-A DOCKER-USER")
		if strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Fatalf("%s: live DOCKER-USER:\n%s\nwant:\n%s", stage, strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
		fwd := ruleLines(run("iptables", "-S", "FORWARD"), "-A FORWARD")
		if len(fwd) == 0 || fwd[0] != forwardJumpRule || indexOf(fwd[1:], forwardJumpRule) >= 0 {
			t.Fatalf("%s: FORWARD:\n%s", stage, strings.Join(fwd, "\n"))
		}
		t.Logf("%s: DOCKER-USER has the %d rules in order; FORWARD rule 1 is the jump", stage, len(got))
	}
	apply := func(stage string) {
		t.Helper()
		p, err := s.Plan(ctx, h, a)
		if err != nil || p.Blocked != "" {
			t.Fatalf("%s: plan: %v %q", stage, err, p.Blocked)
		}
		if p.Empty() {
			t.Fatalf("%s: plan is empty", stage)
		}
		if err := s.Apply(ctx, h, p); err != nil {
			t.Fatalf("%s: apply: %v", stage, err)
		}
		if cs := s.Verify(ctx, h, a); !Passed(cs) {
			t.Fatalf("%s: verify: %+v", stage, cs)
		}
		chainIs(stage)
	}
	apply("first apply")
	if got, _ := os.ReadFile(filepath.Join(root, afterRulesPath)); !strings.HasPrefix(string(got), string(stock)) || strings.Count(string(got), DockerUserBegin) != 1 {
		t.Fatalf("after.rules does not keep the stock file and add one block")
	}

	run("ufw", "reload")
	chainIs("second ufw reload")
	run("ufw", "disable")
	run("ufw", "--force", "enable")
	chainIs("ufw disable + enable (the boot path)")
	if p, err := s.Plan(ctx, h, a); err != nil || !p.Empty() {
		t.Fatalf("plan after apply: %v %+v", err, p.Pending())
	}

	// The field note: ufw --force reset restores the stock after.rules, so the block is gone from the file.
	run("ufw", "--force", "reset")
	got, _ := os.ReadFile(filepath.Join(root, afterRulesPath))
	if strings.Contains(string(got), DockerUserBegin) || string(got) != string(stock) {
		t.Fatalf("after ufw --force reset, after.rules still has the block or is not the stock file:\n%s", got)
	}
	t.Logf("ufw --force reset: after.rules is the stock file again (%d bytes), the block is gone", len(got))
	run("ufw", "--force", "enable")
	p, err := s.Plan(ctx, h, a)
	if err != nil || p.Changes[0].Action() != "~" {
		t.Fatalf("plan after the reset must rewrite after.rules: %v %+v", err, p.Changes)
	}
	apply("re-apply after reset")
	run("ufw", "reload")
	chainIs("reload after re-apply")
}
