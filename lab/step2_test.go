package lab

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
)

// step2Sums fingerprints everything Step 2 may change on the VM, to show that a refused run changed nothing
// and that a second run leaves it all as it was.
const step2Sums = `sha256sum /etc/apt/sources.list /etc/resolv.conf /etc/ufw/user.rules /etc/ufw/user6.rules /etc/ufw/ufw.conf \
	/etc/default/ufw /etc/ufw/after.rules /etc/apt/apt.conf.d/20auto-upgrades /etc/sysctl.d/99-openclaw-disable-ipv6.conf 2>&1
ls /etc/apt/sources.list.d /etc/sysctl.d /etc/ufw
dpkg-query -W openclaw-lab-canary unattended-upgrades 2>&1
ufw status verbose
iptables -S | sha256sum
ip6tables -S | sha256sum
sysctl net.ipv6.conf.all.disable_ipv6 net.ipv6.conf.default.disable_ipv6
stat -c '%n %a %U' /home/admin/.openclaw 2>&1
true`

// step2Probe runs a shell probe on the VM and reports whether it succeeded and what it printed.
func step2Probe(l *Lab, cmd string) (bool, string) {
	o, e, code, err := l.RunTimeout(cmd, nil, 2*time.Minute)
	if err != nil {
		return false, err.Error()
	}
	return code == 0, oneLine(fmt.Sprintf("exit %d %s %s", code, o, e), 160)
}

// TestLabStep2Host proves Step 2 on a fresh VM, headless, in one boot:
//
//   - before: every must-fail target answers (liveness proof); the VM's resolver is switched to the LAN
//     router (dnsmasq on 192.168.1.1, the variant of a DHCP-configured VM) and resolves through it; apt
//     sources are http://;
//   - guard: Step 2 from the admin host's session with admin_source 192.168.1.60/32 refuses (exit 1, the
//     Blocked sentence) and nothing Step 2 touches changes;
//   - apply (admin_source 192.168.1.50/32): sources switched to https://, the canary upgraded, unattended-
//     upgrades installed and effective, IPv6 off, ~/.openclaw 0700, the resolver pointed at the lab DNS, UFW
//     active with the LAN and private denies before the allows;
//   - network: SSH from 192.168.1.50 works, from 192.168.1.2 it does not; from the VM the LAN, 10.0.0.1 and
//     169.254.169.254 fail while HTTPS to 203.0.113.10 and DNS through the lab resolver work, and so does
//     `apt-get update` over https;
//   - a second run plans "No changes", runs no ufw command and changes nothing; verify is green (after a
//     reboot too: TestLabFullRun).
func TestLabStep2Host(t *testing.T) {
	l := Start(t)
	rec := ProveLiveness(t, l)
	t.Logf("liveness: %d probes, all answered", len(rec.Probes))
	if err := l.InstallBinary(); err != nil {
		t.Fatalf("the project binary could not be built or installed: %v", err)
	}
	answers, err := os.ReadFile(filepath.Join(srcDir(), "testdata", "lab.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(answers), "admin_source: "+AdminAddr+"/32") {
		t.Fatalf("lab.yaml does not set admin_source %s/32:\n%s", AdminAddr, answers)
	}
	wrong := strings.Replace(string(answers), "admin_source: "+AdminAddr+"/32", "admin_source: 192.168.1.60/32", 1)
	if err := l.WriteFile("/root/lab.yaml", answers, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := l.WriteFile("/root/lab-wrong-admin.yaml", []byte(wrong), 0o600); err != nil {
		t.Fatal(err)
	}
	const apply = "openclaw-harden apply --answers /root/lab.yaml --yes --step 2"

	t.Run("before", func(t *testing.T) {
		done := l.Phase("step 2: the VM before")
		defer done()
		// The variant "the VM's resolver is the LAN router", folded into this boot: it resolves now.
		l.MustRun(t, "printf 'nameserver "+RouterLAN+"\\n' > /etc/resolv.conf")
		if o := l.MustRun(t, "getent ahostsv4 deb.debian.org | head -n1"); !strings.HasPrefix(o, MirrorAddr) {
			t.Errorf("through the LAN router, deb.debian.org resolves to %q, want %s", o, MirrorAddr)
		}
		if o := l.MustRun(t, "cat /etc/apt/sources.list"); !strings.Contains(o, "deb http://deb.debian.org/debian") {
			t.Errorf("the image's sources are not http:// as the test needs:\n%s", o)
		}
		if o := l.MustRun(t, "dpkg-query -W -f='${Version}' openclaw-lab-canary"); o != "1.0" {
			t.Errorf("canary %q before, want 1.0", o)
		}
		if o := l.MustRun(t, "ufw status"); !strings.Contains(o, "inactive") {
			t.Errorf("ufw before: %q", o)
		}
	})
	if t.Failed() {
		t.FailNow()
	}

	t.Run("guard-outside-admin-source", func(t *testing.T) {
		done := l.Phase("step 2: refuse from outside admin_source")
		defer done()
		before := l.MustRun(t, step2Sums)
		o, e, code, err := l.Run("openclaw-harden apply --answers /root/lab-wrong-admin.yaml --yes --step 2")
		t.Logf("apply --step 2 with admin_source 192.168.1.60/32: exit %d\nstdout:\n%s\nstderr:\n%s", code, o, e)
		const sentence = "This SSH session comes from " + AdminAddr + ", which is outside admin_source 192.168.1.60/32, " +
			"so enabling UFW would cut it off: set admin_source to include " + AdminAddr + " or run Step 2 from the admin machine."
		if err != nil || code != 1 {
			t.Errorf("exit %d %v, want 1", code, err)
		}
		if !strings.Contains(o, "BLOCKED: "+sentence) || !strings.Contains(e, "step 2: blocked: "+sentence) {
			t.Errorf("the Blocked sentence is missing")
		}
		if strings.Contains(o, "applying") || strings.Contains(o, "run: ") {
			t.Error("something ran although the step refused")
		}
		if after := l.MustRun(t, step2Sums); after != before {
			t.Errorf("the VM changed although Step 2 refused:\nbefore:\n%s\nafter:\n%s", before, after)
		}
	})
	if t.Failed() {
		t.FailNow()
	}

	t.Run("apply", func(t *testing.T) {
		// Steps 0 and 2 together, as the profile runs them: keys only first, then the host layer.
		d0 := l.Phase("step 0: apply headless (before Step 2)")
		o0, e0, code0, err0 := l.RunTimeout("openclaw-harden apply --answers /root/lab.yaml --yes --step 0", nil, 10*time.Minute)
		d0()
		if err0 != nil || code0 != 0 {
			t.Fatalf("apply --step 0: exit %d, %v\n%s\n%s", code0, err0, o0, e0)
		}
		done := l.Phase("step 2: apply headless")
		o, e, code, err := l.RunTimeout(apply, nil, 40*time.Minute)
		done()
		t.Logf("apply --step 2: exit %d\nstdout:\n%s\nstderr:\n%s", code, o, e)
		if err != nil || code != 0 {
			t.Fatalf("apply --step 2: exit %d, %v", code, err)
		}
		for _, want := range []string{
			"Your SSH session comes from " + AdminAddr + " (SSH_CONNECTION of process", // found above sudo
			"the system resolver " + RouterLAN + " is not among the chosen resolvers",
			"-deb http://deb.debian.org/debian bookworm main", "+deb https://deb.debian.org/debian bookworm main",
			"-openclaw-lab-canary 1.0", "+openclaw-lab-canary 1.1",
			"full-upgrade -> exit 0", "install -y --no-install-recommends unattended-upgrades -> exit 0",
			"run: sysctl --system -> exit 0", "run: ufw --force enable -> exit 0",
			"✓ step 2 UFW active", "✓ step 2 kernel chain ufw-user-output in order", "✓ step 2 name resolution",
		} {
			if !strings.Contains(o, want) {
				t.Errorf("apply output lacks %q", want)
			}
		}
		if strings.Contains(o, "ufw --force reset") {
			t.Error("Step 2 reset UFW on a fresh VM")
		}
	})
	if t.Failed() {
		t.FailNow()
	}

	t.Run("effects", func(t *testing.T) {
		done := l.Phase("step 2: effects on the VM")
		defer done()
		expect := map[string]func(string) bool{
			"dpkg-query -W -f='${Version}' openclaw-lab-canary":          func(o string) bool { return o == "1.1" },
			"dpkg-query -W -f='${db:Status-Status}' unattended-upgrades": func(o string) bool { return o == "installed" },
			"apt-config dump | grep -E '^APT::Periodic::(Update-Package-Lists|Unattended-Upgrade) '": func(o string) bool {
				return strings.Contains(o, `Update-Package-Lists "1";`) && strings.Contains(o, `Unattended-Upgrade "1";`)
			},
			"grep -c 'http://' /etc/apt/sources.list || true":                                           func(o string) bool { return strings.TrimSpace(o) == "0" },
			"grep -c '^deb https://' /etc/apt/sources.list":                                             func(o string) bool { return strings.TrimSpace(o) == "2" },
			"grep '^nameserver' /etc/resolv.conf":                                                       func(o string) bool { return strings.TrimSpace(o) == "nameserver "+DNSAddr },
			"cat /proc/sys/net/ipv6/conf/all/disable_ipv6 /proc/sys/net/ipv6/conf/default/disable_ipv6": func(o string) bool { return o == "1\n1\n" },
			"ip -6 addr show scope global":                                                              func(o string) bool { return strings.TrimSpace(o) == "" },
			"stat -c '%a %U %F' /home/admin/.openclaw":                                                  func(o string) bool { return strings.TrimSpace(o) == "700 admin directory" },
			"ufw status verbose | head -n 3": func(o string) bool {
				return strings.Contains(o, "Status: active") && strings.Contains(o, "deny (incoming), deny (outgoing)")
			},
			"systemctl is-enabled unattended-upgrades.service": func(o string) bool { return strings.TrimSpace(o) == "enabled" },
		}
		for cmd, ok := range expect {
			o := l.MustRun(t, cmd)
			if !ok(o) {
				t.Errorf("%s: %q", cmd, o)
			}
		}
		// First match: in the kernel, every DROP of ufw-user-output comes before its first ACCEPT.
		rules := l.MustRun(t, "iptables -S ufw-user-output")
		t.Logf("iptables -S ufw-user-output on the VM:\n%s", rules)
		lastDrop, firstAccept, drops := -1, -1, 0
		for i, line := range strings.Split(rules, "\n") {
			switch {
			case strings.HasSuffix(line, "-j DROP"):
				lastDrop, drops = i, drops+1
			case strings.HasSuffix(line, "-j ACCEPT") && firstAccept < 0:
				firstAccept = i
			}
		}
		if drops != 8 || firstAccept < 0 || lastDrop > firstAccept {
			t.Errorf("ufw-user-output: %d DROPs, last at line %d, first ACCEPT at line %d", drops, lastDrop, firstAccept)
		}
	})

	t.Run("network", func(t *testing.T) {
		done := l.Phase("step 2: network probes")
		defer done()
		// SSH in: from the admin source a new key login works; from another LAN host nothing answers.
		c, err := l.SSHFrom(NSAdmin, AdminUser, ssh.PublicKeys(l.Signer()))
		if err != nil {
			t.Errorf("after Step 2, a new SSH login from %s: %v", AdminAddr, err)
		} else {
			c.Close()
		}
		// Step 0 ran first: from the admin source, passwords and root are refused.
		for _, c := range []struct{ user, pw string }{{AdminUser, AdminPassword}, {"root", RootPassword}} {
			// A refusal counts only when sshd answered and turned the password down (err == nil).
			if ok, err := step0Login(l, c.user, step0Passwords(c.pw)...); ok || err != nil {
				t.Errorf("after Steps 0 and 2, the password login as %s from %s: ok=%v %v; want refused", c.user, AdminAddr, ok, err)
			}
		}
		t0 := time.Now()
		if conn, err := DialFrom(NSLAN, net.JoinHostPort(VMAddr, "22"), 5*time.Second); err == nil {
			_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
			b := make([]byte, 64)
			n, _ := io.ReadAtLeast(conn, b, 8)
			conn.Close()
			if strings.HasPrefix(string(b[:n]), "SSH-") {
				t.Errorf("after Step 2, sshd answers %s from %s: %q", VMAddr, LANHostAddr, b[:n])
			}
		} else {
			t.Logf("SSH from %s to %s: %v after %.1fs (as wanted)", LANHostAddr, VMAddr, err, time.Since(t0).Seconds())
		}
		// From the VM: the LAN and the private ranges fail; the internet's HTTPS and the lab DNS work.
		for _, u := range MustFailHTTP {
			if ok, detail := step2Probe(l, "curl -sS -m 5 -o /dev/null -w '%{http_code}' "+u); ok {
				t.Errorf("after Step 2, %s answers from the VM: %s", u, detail)
			}
		}
		for name, cmd := range map[string]string{
			"tcp " + LANHostAddr + ":22":  "timeout 5 bash -c 'exec 3<>/dev/tcp/" + LANHostAddr + "/22; head -c 8 <&3'",
			"tcp " + LANHostAddr + ":443": "curl -sk -m 5 -o /dev/null https://" + LANHostAddr + "/",
			// dig prints its timeout on stdout: only the answer counts as working
			"dns via the LAN router (UDP)": "dig +short +time=2 +tries=1 @" + RouterLAN + " api.telegram.org | grep -qx " + InetAddr,
			"dns via the LAN router (TCP)": "dig +tcp +short +time=2 +tries=1 @" + RouterLAN + " api.telegram.org | grep -qx " + InetAddr,
		} {
			if ok, detail := step2Probe(l, cmd); ok {
				t.Errorf("after Step 2, %s works from the VM: %s", name, detail)
			}
		}
		for name, c := range map[string]struct {
			cmd  string
			want string
		}{
			"https://api.telegram.org/":        {"curl -sS -m 10 -o /dev/null -w '%{http_code}' https://api.telegram.org/", "200"},
			"https://" + InetAddr + " by name": {"curl -sS -m 10 -o /dev/null -w '%{remote_ip}' https://www.lab.test/", InetAddr},
			"dns via the system resolver":      {"getent ahostsv4 api.telegram.org | head -n1 | cut -d' ' -f1", InetAddr},
			"dns to the lab resolver (TCP)":    {"dig +tcp +short +time=3 @" + DNSAddr + " api.telegram.org", InetAddr},
		} {
			o, e, code, err := l.RunTimeout(c.cmd, nil, 5*time.Minute)
			if err != nil || code != 0 || strings.TrimSpace(o) != c.want {
				t.Errorf("after Step 2, %s from the VM: exit %d %v %q %q, want %q", name, code, err, o, e, c.want)
			}
		}
		o, e, code, err := l.RunTimeout("apt-get -q update 2>&1", nil, 5*time.Minute)
		if err != nil || code != 0 || strings.Count(o, "https://") < 2 || strings.Contains(o, "http://") ||
			strings.Contains(o, "\nW:") || strings.Contains(o, "\nE:") || strings.Contains(o, "Err:") {
			t.Errorf("after Step 2, apt-get update from the VM: exit %d %v\n%s%s", code, err, o, e)
		}
	})

	t.Run("second-run", func(t *testing.T) {
		done := l.Phase("step 2: second run")
		before := l.MustRun(t, step2Sums)
		o, e, code, err := l.RunTimeout(apply, nil, 10*time.Minute)
		done()
		t.Logf("second apply --step 2: exit %d\nstdout:\n%s\nstderr:\n%s", code, o, e)
		if err != nil || code != 0 || !strings.Contains(o, "No changes") || strings.Contains(o, "applying") {
			t.Errorf("second run: exit %d %v; want exit 0 and \"No changes\"", code, err)
		}
		if strings.Contains(o, "run: ufw") || strings.Contains(o, "run: apt-get") {
			t.Error("the second run ran ufw or apt-get")
		}
		if after := l.MustRun(t, step2Sums); after != before {
			t.Errorf("the second run changed the VM:\nbefore:\n%s\nafter:\n%s", before, after)
		}
		step2VerifyJSON(t, l, "verify after the second run")
	})

	// Step 2 after a reboot (with every other step applied): TestLabFullRun.

	var b strings.Builder
	for _, tm := range l.Timings() {
		fmt.Fprintf(&b, "  %-50s %6.1fs\n", tm.Phase, tm.Took.Seconds())
	}
	t.Logf("lab figures:\n%s", b.String())
}

// step2VerifyJSON runs `verify --step 2 --json` on the VM and fails t unless every check passed.
func step2VerifyJSON(t *testing.T, l *Lab, what string) {
	t.Helper()
	o, e, code, err := l.Run("openclaw-harden verify --answers /root/lab.yaml --step 2 --json")
	var rep struct {
		OK    bool `json:"ok"`
		Steps []struct {
			Checks []struct {
				Name, Expect, Got, Reason string
				OK                        bool
			} `json:"checks"`
		} `json:"steps"`
	}
	if jerr := json.Unmarshal([]byte(o), &rep); jerr != nil || err != nil {
		t.Fatalf("%s: exit %d %v %v\n%s\n%s", what, code, err, jerr, o, e)
	}
	n := 0
	for _, s := range rep.Steps {
		for _, c := range s.Checks {
			n++
			if !c.OK {
				t.Errorf("%s: %s: expected %s, got %s (%s)", what, c.Name, c.Expect, c.Got, c.Reason)
			}
		}
	}
	if !rep.OK || code != 0 || n < 15 {
		t.Errorf("%s: ok %v, exit %d, %d checks", what, rep.OK, code, n)
	}
	t.Logf("%s: %d checks, ok %v", what, n, rep.OK)
}
