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
	"sync"
	"testing"
	"time"

	"openclaw-harden/system"
)

// ufwSandbox runs every command in a private mount namespace where /etc/ufw, /lib/ufw and /etc/default/ufw
// are bind mounts of copies under root, inside the network namespace ns. UFW run through it reads and
// writes only the copies and loads its rules into ns's iptables: this machine's UFW, iptables and sysctls
// are never touched. The Host's Root is the same directory, so the files the step reads are the ones UFW sees.
type ufwSandbox struct {
	root, ns string

	mu    sync.Mutex
	calls []string
}

const sandboxScript = `set -e
mount --bind "$1/etc/ufw" /etc/ufw
mount --bind "$1/lib/ufw" /lib/ufw
mount --bind "$1/etc/default/ufw" /etc/default/ufw
ns=$2
shift 2
exec ip netns exec "$ns" "$@"`

func (s *ufwSandbox) Run(ctx context.Context, c system.Cmd) ([]byte, error) {
	if len(c.Argv) == 0 {
		return nil, errors.New("empty command")
	}
	s.mu.Lock()
	s.calls = append(s.calls, strings.Join(c.Argv, " "))
	s.mu.Unlock()
	if _, err := exec.LookPath(c.Argv[0]); err != nil {
		return nil, &system.CmdError{Argv: c.Argv, ExitCode: 127, Output: err.Error(), Err: err}
	}
	orig := c.Argv
	c.Argv = append([]string{"unshare", "-m", "--propagation", "private", "sh", "-c", sandboxScript, "sh", s.root, s.ns}, c.Argv...)
	out, err := system.ExecRunner{}.Run(ctx, c)
	var ce *system.CmdError
	if errors.As(err, &ce) {
		ce.Argv = orig
	}
	return out, err
}

func (s *ufwSandbox) take() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.calls
	s.calls = nil
	return c
}

// hostFirewallState fingerprints this machine's own UFW files, iptables rules and UFW status, to prove the
// test left them alone.
func hostFirewallState(t *testing.T) string {
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
	b, _ := os.ReadFile("/etc/default/ufw")
	h.Write(b)
	for _, argv := range [][]string{{"iptables", "-S"}, {"ip6tables", "-S"}, {"ufw", "status", "verbose"}} {
		out, _ := exec.Command(argv[0], argv[1:]...).CombinedOutput()
		fmt.Fprintf(h, "%v\n%s\n", argv, out)
	}
	return hex.EncodeToString(h.Sum(nil))
}

func sh(t *testing.T, argv ...string) string {
	t.Helper()
	out, err := exec.Command(argv[0], argv[1:]...).CombinedOutput()
	if err != nil {
		t.Fatalf("%q: %v\n%s", argv, err, out)
	}
	return string(out)
}

// TestNetnsUFWApply runs Step 2's UFW part for real: the real ufw binary, in a fresh network namespace with a
// private copy of UFW's files. It applies the lab's rule set to a fresh UFW, reads the live iptables of the
// namespace (the LAN and private denies ahead of the allows), plans again (no changes, and no ufw command
// that changes anything runs), repairs drift with single deletes and inserts (no reset), and finally
// resets a UFW whose rule file is damaged, with Step 4's block in after.rules written back and loaded.
func TestNetnsUFWApply(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: skipping the real-kernel namespace test")
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root to create network and mount namespaces")
	}
	for _, tool := range []string{"ufw", "ip", "iptables", "ip6tables", "unshare", "mount"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s is not installed", tool)
		}
	}
	hostBefore := hostFirewallState(t)

	// The sandbox: copies of UFW's configuration, starting from the package's own empty rule files.
	root := t.TempDir()
	for _, d := range []string{"etc/default", "lib", "state"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	sh(t, "cp", "-a", "/etc/ufw", filepath.Join(root, "etc/ufw"))
	sh(t, "cp", "-a", "/lib/ufw/.", filepath.Join(root, "lib/ufw"))
	for _, f := range []string{"user.rules", "user6.rules", "after.rules"} {
		sh(t, "cp", filepath.Join("/usr/share/ufw/iptables", f), filepath.Join(root, "etc/ufw", f))
	}
	stock, err := os.ReadFile(filepath.Join(root, "etc/ufw/after.rules"))
	if err != nil {
		t.Fatal(err)
	}
	// Step 4's block, as it will be written: a DOCKER-USER chain the namespace's iptables will show once loaded.
	block := step2BlockBegin + "\n*filter\n:DOCKER-USER - [0:0]\n-A DOCKER-USER -d 192.168.1.0/24 -j DROP\n-A DOCKER-USER -d 10.0.0.0/8 -j DROP\n-A DOCKER-USER -j RETURN\nCOMMIT\n" + step2BlockEnd
	os.WriteFile(filepath.Join(root, "etc/ufw/after.rules"), []byte(string(stock)+"\n"+block+"\n"), 0o640)
	os.WriteFile(filepath.Join(root, "etc/ufw/ufw.conf"), []byte("ENABLED=no\nLOGLEVEL=low\n"), 0o644)
	os.WriteFile(filepath.Join(root, "etc/ufw/empty-sysctl.conf"), nil, 0o644)
	// The package's defaults, without sysctls or kernel modules (those are not per-namespace everywhere).
	os.WriteFile(filepath.Join(root, "etc/default/ufw"), []byte(`IPV6=yes
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
	ns := "ochs2-" + hex.EncodeToString(buf)
	sh(t, "ip", "netns", "add", ns)
	t.Cleanup(func() {
		if out, err := exec.Command("ip", "netns", "del", ns).CombinedOutput(); err != nil {
			t.Errorf("removing the test namespace %s: %v\n%s", ns, err, out)
		}
		if after := hostFirewallState(t); after != hostBefore {
			t.Errorf("this machine's own UFW files, iptables rules or UFW status changed during the test")
		}
	})
	sh(t, "ip", "-n", ns, "link", "set", "lo", "up")

	box := &ufwSandbox{root: root, ns: ns}
	h := system.NewHost(filepath.Join(root, "state"), false)
	h.Root, h.Runner = root, box
	h.Env = func(string) string { return "" }
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	a := step2LabAnswers()
	desired := ufwFlatten(step2MustDesired(t, a))
	ipt := func(chain string) string {
		out, err := box.Run(ctx, system.Cmd{Argv: []string{"iptables", "-S", chain}})
		if err != nil {
			t.Fatalf("iptables -S %s in %s: %v", chain, ns, err)
		}
		return string(out)
	}
	plan := func() (ufwPlan, []Change) {
		t.Helper()
		live, err := readUFW(ctx, h)
		if err != nil {
			t.Fatal(err)
		}
		return planUFW(live, desired)
	}
	checkLive := func(stage string) {
		t.Helper()
		if got, want := ipt("ufw-user-output"), step2Testdata(t, "iptables-S-ufw-user-output.txt"); got != want {
			t.Errorf("%s: iptables -S ufw-user-output in the namespace:\n%s\nwant:\n%s", stage, got, want)
		}
		if got, want := ipt("ufw-user-input"), step2Testdata(t, "iptables-S-ufw-user-input.txt"); got != want {
			t.Errorf("%s: iptables -S ufw-user-input:\n%s\nwant:\n%s", stage, got, want)
		}
		if out := ipt("OUTPUT"); !strings.HasPrefix(out, "-P OUTPUT DROP\n") {
			t.Errorf("%s: OUTPUT policy:\n%s", stage, out)
		}
		if out := ipt("INPUT"); !strings.HasPrefix(out, "-P INPUT DROP\n") {
			t.Errorf("%s: INPUT policy:\n%s", stage, out)
		}
		if f := step2Failed(verifyUFW(ctx, h, desired)); len(f) > 0 {
			t.Errorf("%s: verification failed:\n%s", stage, strings.Join(f, "\n"))
		}
		if out := ipt("DOCKER-USER"); !strings.Contains(out, "-A DOCKER-USER -d 10.0.0.0/8 -j DROP") {
			t.Errorf("%s: Step 4's block from after.rules is not loaded:\n%s", stage, out)
		}
	}
	mutating := func(calls []string) []string {
		var m []string
		for _, c := range calls {
			if strings.HasPrefix(c, "ufw ") && c != "ufw status verbose" && c != "ufw version" {
				m = append(m, c)
			}
		}
		return m
	}

	// 1. A fresh UFW: every rule added in order, defaults set, enabled.
	t0 := time.Now()
	u, _ := plan()
	if u.empty() || u.Reset || !u.Enable {
		t.Fatalf("first plan: %+v", u)
	}
	if err := applyUFW(ctx, h, u); err != nil {
		t.Fatal(err)
	}
	t.Logf("first apply: %d ufw commands in %.1fs:\n%s", len(mutating(box.take())), time.Since(t0).Seconds(), strings.Join(u.commands(), "\n"))
	checkLive("after the first apply")

	// 2. Again: nothing to do, and nothing that changes state runs.
	u, changes := plan()
	for _, c := range changes {
		if c.Action() != "=" {
			t.Errorf("second plan changes %s:\n%s", c.Target, c.Diff())
		}
	}
	if !u.empty() {
		t.Errorf("second plan is not empty: %q", u.commands())
	}
	if err := applyUFW(ctx, h, u); err != nil {
		t.Fatal(err)
	}
	if m := mutating(box.take()); len(m) != 0 {
		t.Errorf("the second run ran ufw commands that change state: %q", m)
	}

	// 3. Drift: an extra rule, and the LAN deny deleted by hand. Repaired by one delete and one insert each.
	for _, argv := range [][]string{{"ufw", "allow", "8080/tcp"}, {"ufw", "--force", "delete", "2"}} {
		if out, err := box.Run(ctx, system.Cmd{Argv: argv}); err != nil {
			t.Fatalf("%q: %v\n%s", argv, err, out)
		}
	}
	box.take()
	u, _ = plan()
	want := []string{"ufw --force delete 16", "ufw --force delete 13", "ufw insert 2 deny out to 192.168.1.0/24"}
	if got := u.commands(); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("drift plan:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if err := applyUFW(ctx, h, u); err != nil {
		t.Fatal(err)
	}
	if m := mutating(box.take()); strings.Join(m, "\n") != strings.Join(want, "\n") {
		t.Errorf("drift repair ran:\n%s", strings.Join(m, "\n"))
	}
	checkLive("after the drift repair")

	// 4. A damaged user.rules: the only case for a reset. Step 4's block is written back and loaded.
	f, err := os.OpenFile(filepath.Join(root, "etc/ufw/user.rules"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString("\n### tuple ### allow tcp 22\n")
	f.Close()
	u, _ = plan()
	if !u.Reset || u.Block != block {
		t.Fatalf("plan for a damaged user.rules: reset %v, block %q", u.Reset, u.Block)
	}
	if err := applyUFW(ctx, h, u); err != nil {
		t.Fatal(err)
	}
	if m := mutating(box.take()); len(m) == 0 || m[0] != "ufw --force reset" {
		t.Errorf("reset run: %q", m)
	}
	after, _ := os.ReadFile(filepath.Join(root, "etc/ufw/after.rules"))
	if !strings.HasPrefix(string(after), string(stock)) || ufwStep4Block(string(after)) != block {
		t.Errorf("after.rules after the reset:\n%s", after)
	}
	checkLive("after the reset")
	if u, _ := plan(); !u.empty() {
		t.Errorf("plan after the reset: %q", u.commands())
	}
}
