package ui

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/charmbracelet/x/exp/golden"

	"openclaw-harden/steps"
	"openclaw-harden/system"
)

// The wizard's screens for the real Steps 0, 2 and 3 (not the fake steps of TestGolden), over a fake host
// whose runner answers the read-only commands those steps run. The fixtures are the minimum of the steps'
// own unit-test worlds (steps/step0_ssh_test.go, steps/step2_fake_test.go), copied here because _test
// helpers do not cross packages; the captured command outputs are read from steps/testdata.
// Regenerate with: go test ./ui -run TestRealStepScreens -update

const (
	realJournalArgv = "journalctl -u ssh.service _UID=0 --no-pager -o cat -n 20000"
	// the session the tool runs in: the journal's "Accepted publickey for admin from 192.168.1.50 port 50522"
	realThisSession = "192.168.1.50 50522 192.168.1.10 22"
	realEmptyRules  = "*filter\n### RULES ###\n\n### END RULES ###\nCOMMIT\n"
)

// realWorld is a temp root with a fake runner and environment, shared by the Step 0, 2 and 3 fixtures.
type realWorld struct {
	root string
	fr   *system.FakeRunner
	env  map[string]string
	host *system.Host
}

func newRealWorld(t *testing.T, outputs map[string]string) *realWorld {
	t.Helper()
	root := t.TempDir()
	w := &realWorld{root: root, fr: system.NewFakeRunner(outputs), env: map[string]string{"SUDO_USER": "admin"}}
	w.host = system.NewFakeHost(root, filepath.Join(root, "var/lib/openclaw-harden"), w.fr, false)
	w.host.Env = func(k string) string { return w.env[k] }
	w.host.Clock = func() time.Time { return testNow }
	return w
}

func (w *realWorld) write(t *testing.T, p, content string) {
	t.Helper()
	full := filepath.Join(w.root, p)
	if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(full, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func (w *realWorld) remove(t *testing.T, p string) {
	t.Helper()
	if err := os.Remove(filepath.Join(w.root, p)); err != nil {
		t.Fatal(err)
	}
}

// session runs the given real steps over the world with the answers.
func (w *realWorld) session(a steps.Answers, ss ...steps.Step) *steps.Session {
	s := steps.NewSession(w.host, a, nil)
	s.Steps = ss
	return s
}

func stepsTestdata(t *testing.T, step, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "steps", "testdata", step, name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// newStep0RealWorld is the lab image: Debian 12's sshd_config, cloud-init's 50-cloud-init.conf with
// PasswordAuthentication yes, user admin in group sudo with a key, and a key login by admin in the journal
// that is this very session.
func newStep0RealWorld(t *testing.T) *realWorld {
	t.Helper()
	w := newRealWorld(t, map[string]string{
		"sshd -T":             stepsTestdata(t, "step0", "sshd-T-cloudinit.txt"),
		"getent passwd admin": "admin:x:1000:1000:Admin,,,:/home/admin:/bin/bash\n",
		"id -nG admin":        "admin sudo users\n",
		"getent group sudo":   "sudo:x:27:admin\n",
		realJournalArgv:       stepsTestdata(t, "step0", "journal-ssh.txt"),
	})
	w.env["SSH_CONNECTION"] = realThisSession
	w.write(t, "/etc/ssh/sshd_config", stepsTestdata(t, "step0", "debian12-sshd_config"))
	w.write(t, "/etc/ssh/sshd_config.d/50-cloud-init.conf", "PasswordAuthentication yes\n")
	w.write(t, "/home/admin/.ssh/authorized_keys", stepsTestdata(t, "step0", "admin_authorized_keys"))
	return w
}

// newStep2RealWorld is a fresh Debian VM: http sources, the LAN router as resolver, no unattended-upgrades,
// IPv6 on, no ~/.openclaw, UFW inactive without rules; the operator is in admin_source.
func newStep2RealWorld(t *testing.T) (*realWorld, steps.Answers) {
	t.Helper()
	w := newRealWorld(t, map[string]string{
		"apt-get -s -o Debug::NoLocking=1 full-upgrade":        stepsTestdata(t, "step2", "apt-sim-canary.txt"),
		"dpkg-query -W -f=${db:Status-Status} ca-certificates": "installed",
		"getent group sudo":   "sudo:x:27:admin\n",
		"getent passwd admin": "admin:x:1000:1000:Admin:/home/admin:/bin/bash\n",
		"ss -H -tulpn":        "tcp   LISTEN 0      128          0.0.0.0:22         0.0.0.0:*    users:((\"sshd\",pid=601,fd=3))\n",
		"apt-config dump":     stepsTestdata(t, "step2", "apt-config-dump-uu.txt"),
		"ip -j -6 addr":       "[]\n",
		"ufw version":         "ufw 0.36.2\n",
		"ufw status verbose":  "Status: inactive\n",
	})
	w.fr.Set("dpkg-query -W -f=${db:Status-Status} unattended-upgrades",
		system.FakeResponse{Exit: 1, Stderr: "dpkg-query: no packages found matching unattended-upgrades"})
	w.fr.Set("iptables -S ufw-user-input", system.FakeResponse{Exit: 1, Stderr: "iptables: No chain/target/match by that name."})
	w.fr.Set("iptables -S ufw-user-output", system.FakeResponse{Exit: 1, Stderr: "iptables: No chain/target/match by that name."})
	w.env["SSH_CONNECTION"] = "192.168.1.50 51234 192.168.1.10 22"
	w.write(t, "/etc/resolv.conf", "nameserver 192.168.1.1\n")
	w.write(t, "/etc/apt/sources.list", "deb http://deb.debian.org/debian bookworm main\ndeb http://security.debian.org/debian-security bookworm-security main\n")
	w.write(t, "/proc/sys/net/ipv6/conf/all/disable_ipv6", "0\n")
	w.write(t, "/proc/sys/net/ipv6/conf/default/disable_ipv6", "0\n")
	w.write(t, "/etc/ufw/ufw.conf", "ENABLED=no\n")
	w.write(t, "/etc/default/ufw", "IPV6=yes\nDEFAULT_INPUT_POLICY=\"DROP\"\nDEFAULT_OUTPUT_POLICY=\"ACCEPT\"\n")
	w.write(t, "/etc/ufw/after.rules", "# stock after.rules\n*filter\n:ufw-after-input - [0:0]\nCOMMIT\n")
	w.write(t, "/usr/share/ufw/iptables/after.rules", "# stock after.rules\n*filter\n:ufw-after-input - [0:0]\nCOMMIT\n")
	w.write(t, "/etc/ufw/user.rules", realEmptyRules)
	w.write(t, "/etc/ufw/user6.rules", realEmptyRules)
	w.write(t, "/run/systemd/system/.keep", "")
	a := steps.Defaults()
	a.AdminSource = "192.168.1.50/32"
	a.Resolvers = []string{"203.0.113.53"}
	return w, a
}

func step0Answers() steps.Answers {
	a := steps.Defaults()
	a.AdminSource = "192.168.1.50/32"
	return a
}

// scrollTo presses j until the line holding marker is the first one under the two header lines, or the
// view stops moving; it fails when marker never shows.
func scrollTo(t *testing.T, m Model, marker string) Model {
	t.Helper()
	for i := 0; i < 200; i++ {
		view := plain(m)
		lines := strings.Split(view, "\n")
		at := -1
		for j, l := range lines {
			if strings.Contains(l, marker) {
				at = j
				break
			}
		}
		if at >= 0 && at <= 2 {
			return m
		}
		next := press(t, m, "j")
		if plain(next) == view {
			if at < 0 {
				t.Fatalf("%q is not on the screen after scrolling to the end:\n%s", marker, view)
			}
			return m
		}
		m = next
	}
	t.Fatalf("scrolled 200 lines without reaching %q", marker)
	return m
}

func TestRealStepScreens(t *testing.T) {
	cases := []struct {
		name  string
		build func(t *testing.T) Model
		wants []string
	}{
		{"step0_plan_diff", func(t *testing.T) Model {
			w := newStep0RealWorld(t)
			m := start(t, newTestModel(w.session(step0Answers(), steps.SSHStep{}), Options{}))
			if m.phase != phasePlan {
				t.Fatalf("phase %d, want the plan", m.phase)
			}
			return scrollTo(t, m, "~ sshd effective settings (sshd -T)")
		}, []string{"Secure VM access (SSH keys only)", "~ sshd effective settings (sshd -T)",
			"-passwordauthentication yes", "-permitrootlogin yes", "+passwordauthentication no", "+permitrootlogin no"}},

		{"step0_blocked_no_key", func(t *testing.T) Model {
			w := newStep0RealWorld(t)
			w.remove(t, "/home/admin/.ssh/authorized_keys")
			m := start(t, newTestModel(w.session(step0Answers(), steps.SSHStep{}), Options{}))
			if m.phase != phaseBlocked {
				t.Fatalf("phase %d, want the refusal", m.phase)
			}
			return m
		}, []string{"admin has no SSH key", "switching passwords off would lock", "Nothing was changed", "ssh-keygen -t ed25519 -C \"openclaw-vm\"", "ssh-copy-id -i ~/.ssh/openclaw_vm.pub admin@192.168.1.10"}},

		{"step0_risk", func(t *testing.T) Model {
			w := newStep0RealWorld(t)
			w.fr.Set(realJournalArgv, system.FakeResponse{Stdout: "Server listening on 0.0.0.0 port 22.\nAccepted password for admin from 192.168.1.50 port 50522 ssh2\n"})
			m := press(t, start(t, newTestModel(w.session(step0Answers(), steps.SSHStep{}), Options{})), "enter")
			if m.phase != phaseRisk {
				t.Fatalf("phase %d, want the risk screen", m.phase)
			}
			return m
		}, []string{"This step carries a named risk", "no key login for admin has been seen", "locked out", `type "accept"`}},

		{"step2_plan_diff", func(t *testing.T) Model {
			w, a := newStep2RealWorld(t)
			m := start(t, newTestModel(w.session(a, steps.HostStep{}), Options{}))
			if m.phase != phasePlan {
				t.Fatalf("phase %d, want the plan", m.phase)
			}
			return scrollTo(t, m, "What will change")
		}, []string{"Host OS hardening", "/etc/resolv.conf", "-nameserver 192.168.1.1", "+nameserver 203.0.113.53",
			"+deb https://deb.debian.org/debian bookworm main"}},

		{"step2_blocked_outside_admin_source", func(t *testing.T) Model {
			w, a := newStep2RealWorld(t)
			w.env["SSH_CONNECTION"] = "192.168.1.60 51234 192.168.1.10 22"
			m := start(t, newTestModel(w.session(a, steps.HostStep{}), Options{}))
			if m.phase != phaseBlocked {
				t.Fatalf("phase %d, want the refusal", m.phase)
			}
			return m
		}, []string{"Refused: This SSH session comes from 192.168.1.60", "admin_source 192.168.1.50/32", "Nothing was changed"}},

		{"step3_confirm_switches", func(t *testing.T) Model {
			w := newRealWorld(t, nil)
			a := steps.Defaults()
			a.AdminSource = "192.168.1.50"
			m := press(t, start(t, newTestModel(w.session(a, steps.ProxmoxStep{}), Options{})), "enter", "y")
			if m.phase != phaseVerified || steps.Passed(m.checks[0]) {
				t.Fatalf("want a failed verification before confirmation; phase %d:\n%s", m.phase, plain(m))
			}
			requireContains(t, plain(m), "o confirm on the node")
			m = press(t, m, "o")
			if m.phase != phaseSwitches {
				t.Fatalf("phase %d after o, want the confirmation screen", m.phase)
			}
			return m
		}, []string{"Confirm by hand", "VM 100's rules installed as generated", "$ sha256sum /etc/pve/firewall/100.fw",
			"datacenter firewall on", "$ pve-firewall status", "y confirm"}},
		{"step3_confirm_switches_end", func(t *testing.T) Model {
			w := newRealWorld(t, nil)
			a := steps.Defaults()
			a.AdminSource = "192.168.1.50"
			m := press(t, start(t, newTestModel(w.session(a, steps.ProxmoxStep{}), Options{})), "enter", "y")
			if m.phase != phaseVerified || steps.Passed(m.checks[0]) {
				t.Fatalf("want a failed verification before confirmation; phase %d:\n%s", m.phase, plain(m))
			}
			requireContains(t, plain(m), "o confirm on the node")
			m = press(t, m, "o")
			if m.phase != phaseSwitches {
				t.Fatalf("phase %d after o, want the confirmation screen", m.phase)
			}
			return scrollTo(t, m, "firewall flag on the VM's net0")
		}, []string{"firewall flag on the VM's net0", "$ qm config 100 | grep ^net0:", "$ qm pending 100 | grep net0",
			"firewall=1 in the current", "y confirm"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m := c.build(t)
			view := plain(m)
			assertFits(t, view, m.width, m.height)
			if m.width != 80 || m.height != 24 {
				t.Fatalf("rendered at %d×%d, want 80×24", m.width, m.height)
			}
			requireContains(t, view, c.wants...)
			if strings.Contains(view, os.TempDir()) {
				t.Errorf("the screen shows a temp path, so the golden would not be stable:\n%s", view)
			}
			golden.RequireEqual(t, []byte(view))
		})
	}
}
