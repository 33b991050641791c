package steps

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"openclaw-harden/system"
)

func step2Failed(cs []Check) []string {
	var f []string
	for _, c := range cs {
		if !c.OK {
			f = append(f, c.ID+" "+c.Name+": got "+c.Got+" ("+c.Reason+")")
		}
	}
	return f
}

func step2Pending(p Plan) []string {
	var out []string
	for _, c := range p.Pending() {
		out = append(out, c.Target)
	}
	return out
}

// A machine where everything is already as Step 2 wants it: the plan is empty and verification passes.
func TestStep2HardenedPlansNoChanges(t *testing.T) {
	e := newStep2Env(t)
	e.env["SSH_CONNECTION"] = "192.168.1.50 51234 192.168.1.10 22"
	p := e.plan()
	if p.Blocked != "" {
		t.Fatalf("blocked: %s", p.Blocked)
	}
	if !p.Empty() || p.Summary() != "No changes" {
		t.Fatalf("plan on a hardened machine: %s: %q", p.Summary(), step2Pending(p))
	}
	s := NewSession(e.h, e.a, nil)
	if err := s.Apply(context.Background(), HostStep{}, p); err != nil {
		t.Fatal(err)
	}
	if m := e.ufw.mutations(); len(m) != 0 {
		t.Errorf("an empty plan ran ufw commands that change state: %q", m)
	}
	if f := step2Failed(HostStep{}.Verify(context.Background(), e.h, e.a)); len(f) > 0 {
		t.Errorf("verification of a hardened machine failed:\n%s", strings.Join(f, "\n"))
	}
}

// A fresh Debian VM: http sources (both formats), the LAN router as resolver, no unattended-upgrades, IPv6 on,
// no ~/.openclaw, UFW inactive without rules. Plan, apply, then a second plan is empty and verify passes.
func TestStep2FreshMachine(t *testing.T) {
	e := newStep2Env(t)
	e.env["SSH_CONNECTION"] = "192.168.1.50 51234 192.168.1.10 22"
	e.env["SUDO_USER"] = "admin"
	e.write(resolvConf, "nameserver 192.168.1.1\n", 0o644)
	e.write(aptSourcesList, "deb http://deb.debian.org/debian bookworm main\ndeb http://security.debian.org/debian-security bookworm-security main\n", 0o644)
	e.write("/etc/apt/sources.list.d/debian.sources", "Types: deb\nURIs: http://deb.debian.org/debian\nSuites: bookworm-updates\nComponents: main\n", 0o644)
	os.Remove(filepath.Join(e.root, autoUpgrades))
	os.Remove(filepath.Join(e.root, ipv6DropIn))
	e.write(ipv6Sysctls[0], "0\n", 0o644)
	e.write(ipv6Sysctls[1], "0\n", 0o644)
	os.RemoveAll(filepath.Join(e.root, "home/admin/.openclaw"))
	e.write(ufwConf, "ENABLED=no\n", 0o644)
	e.write(ufwDefaults, "IPV6=yes\nDEFAULT_INPUT_POLICY=\"DROP\"\nDEFAULT_OUTPUT_POLICY=\"ACCEPT\"\n", 0o644)
	e.ufw.active = false
	e.ufw.save(nil, nil)
	e.fr.Set("dpkg-query -W -f=${db:Status-Status} unattended-upgrades", system.FakeResponse{Exit: 1, Stderr: "dpkg-query: no packages found matching unattended-upgrades"})
	e.fr.Set("apt-get -s -o Debug::NoLocking=1 full-upgrade", system.FakeResponse{Stdout: step2Testdata(t, "apt-sim-canary.txt")})
	e.write("/run/systemd/system/.keep", "", 0o644)

	p := e.plan()
	if p.Blocked != "" {
		t.Fatalf("blocked: %s", p.Blocked)
	}
	want := []string{resolvConf, aptSourcesList, "/etc/apt/sources.list.d/debian.sources", "packages (apt-get full-upgrade: 1)",
		"package unattended-upgrades", autoUpgrades, ipv6DropIn, "kernel IPv6 settings", "/home/admin/.openclaw",
		"ufw rules (/etc/ufw/user.rules)", "ufw default policy", "ufw status"}
	if got := step2Pending(p); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("pending changes:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	for _, c := range p.Pending() {
		switch c.Target {
		case resolvConf:
			if !strings.Contains(c.Warning, "192.168.1.1") {
				t.Errorf("resolver change without a warning naming the LAN resolver: %q", c.Warning)
			}
		case "packages (apt-get full-upgrade: 1)":
			if !strings.Contains(c.Diff(), "-openclaw-lab-canary 1.0") || !strings.Contains(c.Diff(), "+openclaw-lab-canary 1.1") {
				t.Errorf("package diff:\n%s", c.Diff())
			}
		}
	}
	s := NewSession(e.h, e.a, nil)
	if err := s.Apply(context.Background(), HostStep{}, p); err != nil {
		t.Fatal(err)
	}
	// What ran, in order (reads left out).
	var ran []string
	for _, c := range e.fr.CallsSnapshot() {
		if strings.HasPrefix(c, "apt-get -o") || strings.HasPrefix(c, "sysctl") || strings.HasPrefix(c, "systemctl") || strings.HasPrefix(c, "getent ahosts") {
			ran = append(ran, c)
		}
	}
	wantRan := []string{step2AptArgv("update"), step2AptArgv("-y", "full-upgrade"), step2AptArgv("install", "-y", "--no-install-recommends", "unattended-upgrades"),
		"systemctl enable --now unattended-upgrades.service", "sysctl --system", "getent ahostsv4 deb.debian.org", step2AptArgv("update")}
	if strings.Join(ran, "\n") != strings.Join(wantRan, "\n") {
		t.Errorf("commands:\n%s\nwant:\n%s", strings.Join(ran, "\n"), strings.Join(wantRan, "\n"))
	}
	m := e.ufw.mutations()
	if len(m) < 2 || m[len(m)-1] != "ufw --force enable" || m[len(m)-2] != "ufw default deny outgoing" {
		t.Errorf("ufw commands: %q", m)
	}
	for _, c := range m {
		if strings.Contains(c, "reset") {
			t.Errorf("UFW reset on a machine whose rules could be read: %q", c)
		}
	}
	if got := e.read(aptSourcesList); strings.Contains(got, "http://") {
		t.Errorf("sources.list still on http:\n%s", got)
	}
	if got := e.read("/etc/apt/sources.list.d/debian.sources"); !strings.Contains(got, "URIs: https://deb.debian.org/debian\n") {
		t.Errorf("debian.sources:\n%s", got)
	}
	if got := e.read(resolvConf); !strings.Contains(got, "nameserver 203.0.113.53\n") || strings.Contains(got, "192.168.1.1") {
		t.Errorf("resolv.conf:\n%s", got)
	}
	st, err := os.Stat(filepath.Join(e.root, "home/admin/.openclaw"))
	if err != nil || st.Mode().Perm() != 0o700 || !st.IsDir() {
		t.Errorf("~/.openclaw: %v %v", st, err)
	}
	// The backups hold what was there before.
	bs, err := e.h.Backups()
	if err != nil || len(bs) < 5 {
		t.Errorf("backups: %d %v", len(bs), err)
	}

	// The machine as it is now: unattended-upgrades installed, the kernel values applied, nothing to upgrade.
	e.fr.Set("dpkg-query -W -f=${db:Status-Status} unattended-upgrades", system.FakeResponse{Stdout: "installed"})
	e.fr.Set("apt-get -s -o Debug::NoLocking=1 full-upgrade", system.FakeResponse{Stdout: "Reading package lists...\n"})
	e.fr.Set("systemctl is-enabled unattended-upgrades.service", system.FakeResponse{Stdout: "enabled\n"})
	e.write(ipv6Sysctls[0], "1\n", 0o644)
	e.write(ipv6Sysctls[1], "1\n", 0o644)
	before := len(e.ufw.mutations())
	p2 := e.plan()
	if !p2.Empty() {
		t.Errorf("second plan: %s: %q", p2.Summary(), step2Pending(p2))
	}
	if err := s.Apply(context.Background(), HostStep{}, p2); err != nil {
		t.Fatal(err)
	}
	if m := e.ufw.mutations(); len(m) != before {
		t.Errorf("the second run changed UFW: %q", m[before:])
	}
	if f := step2Failed(HostStep{}.Verify(context.Background(), e.h, e.a)); len(f) > 0 {
		t.Errorf("verification after apply failed:\n%s", strings.Join(f, "\n"))
	}
}

// An extra rule is deleted (by number) and nothing else is touched; no reset.
func TestStep2ExtraRuleDeleted(t *testing.T) {
	e := newStep2Env(t)
	e.setRules(append(e.desired(), ufwMustRule(t, "allow in proto tcp to any port 8080")))
	p := e.plan()
	if got := strings.Join(p.Commands, "\n"); got != "ufw --force delete 17\nufw --force delete 14" {
		t.Errorf("commands:\n%s", got)
	}
	if pt := step2Pending(p); len(pt) != 1 || pt[0] != "ufw rules (/etc/ufw/user.rules)" {
		t.Errorf("pending: %q", pt)
	}
	if d := p.Pending()[0].Diff(); !strings.Contains(d, "-allow in proto tcp to any port 8080\n") {
		t.Errorf("diff:\n%s", d)
	}
	if err := (HostStep{}).Apply(context.Background(), e.h, p); err != nil {
		t.Fatal(err)
	}
	if m := e.ufw.mutations(); strings.Join(m, "\n") != "ufw --force delete 17\nufw --force delete 14" {
		t.Errorf("ufw ran: %q", m)
	}
	if p := e.plan(); !p.Empty() {
		t.Errorf("after the delete: %q", step2Pending(p))
	}
}

// Step 4's block survives a reset that is needed because user.rules cannot be read.
func TestStep2ResetKeepsStep4Block(t *testing.T) {
	e := newStep2Env(t)
	e.write(ufwAfterRules, step2StockAfter+"\n"+step2TestBlock+"\n", 0o640)
	e.write(ufwUserRules, "*filter\n### tuple ### allow tcp 22\nCOMMIT\n", 0o640)
	p := e.plan()
	var rules *Change
	for i := range p.Changes {
		if p.Changes[i].Kind == "rules" {
			rules = &p.Changes[i]
		}
	}
	if rules == nil || !strings.Contains(rules.Warning, "DOCKER-USER block is kept") || p.Commands[0] != "ufw --force reset" {
		t.Fatalf("reset plan: %+v %q", rules, p.Commands)
	}
	if err := (HostStep{}).Apply(context.Background(), e.h, p); err != nil {
		t.Fatal(err)
	}
	if e.ufw.resets != 1 {
		t.Errorf("resets: %d", e.ufw.resets)
	}
	if got := e.read(ufwAfterRules); !strings.HasPrefix(got, step2StockAfter) || ufwStep4Block(got) != step2TestBlock {
		t.Errorf("after.rules after the reset:\n%s", got)
	}
	if p := e.plan(); !p.Empty() {
		t.Errorf("after the reset: %q", step2Pending(p))
	}
}

// Without a broken rule file there is never a reset, however different the rules are.
func TestStep2NoResetWhenReadable(t *testing.T) {
	e := newStep2Env(t)
	e.write(ufwAfterRules, step2StockAfter+"\n"+step2TestBlock+"\n", 0o640)
	e.setRules([]ufwRule{ufwMustRule(t, "allow in proto tcp to any port 22"), ufwMustRule(t, "allow out proto tcp to any port 80")})
	p := e.plan()
	if err := (HostStep{}).Apply(context.Background(), e.h, p); err != nil {
		t.Fatal(err)
	}
	if e.ufw.resets != 0 || ufwStep4Block(e.read(ufwAfterRules)) != step2TestBlock {
		t.Errorf("resets %d, after.rules:\n%s", e.ufw.resets, e.read(ufwAfterRules))
	}
}

func TestStep2GuardSSHOutsideAdminSource(t *testing.T) {
	for _, c := range []struct {
		name  string
		setup func(e *step2Env)
		want  string
	}{
		{"environment", func(e *step2Env) { e.env["SSH_CONNECTION"] = "192.168.1.60 51234 192.168.1.10 22" }, "comes from 192.168.1.60"},
		{"sudo dropped it: found in a parent process", func(e *step2Env) {
			e.write("/proc/self/stat", "900 (openclaw-harden) R 899 900 1 0 -1", 0o644)
			e.write("/proc/899/stat", "899 (sudo (x)) S 880 899 1 0 -1", 0o644)
			e.write("/proc/899/environ", "SUDO_USER=admin\x00LANG=C\x00", 0o644)
			e.write("/proc/880/stat", "880 (sh) S 870 880 1 0 -1", 0o644)
			e.write("/proc/880/environ", "USER=admin\x00SSH_CONNECTION=::ffff:192.168.1.60 51234 192.168.1.10 22\x00", 0o644)
		}, "comes from 192.168.1.60"},
		{"IPv6 client", func(e *step2Env) { e.env["SSH_CONNECTION"] = "2001:db8::5 51234 2001:db8::10 22" }, "comes from 2001:db8::5"},
		{"sshd on another port", func(e *step2Env) { e.env["SSH_CONNECTION"] = "192.168.1.50 51234 192.168.1.10 2222" }, "port 2222"},
	} {
		t.Run(c.name, func(t *testing.T) {
			e := newStep2Env(t)
			// lots to do, so that a refused apply that still ran would show
			e.write(resolvConf, "nameserver 192.168.1.1\n", 0o644)
			e.write(aptSourcesList, "deb http://deb.debian.org/debian bookworm main\n", 0o644)
			e.ufw.active = false
			e.setRules(nil)
			c.setup(e)
			p := e.plan()
			if !strings.Contains(p.Blocked, c.want) || strings.Count(p.Blocked, ". ") > 0 {
				t.Fatalf("Blocked = %q, want one sentence with %q", p.Blocked, c.want)
			}
			s := NewSession(e.h, e.a, nil)
			if err := s.Apply(context.Background(), HostStep{}, p); !errors.Is(err, ErrBlocked) {
				t.Fatalf("apply of a blocked plan: %v", err)
			}
			if m := e.ufw.mutations(); len(m) != 0 {
				t.Errorf("ufw ran: %q", m)
			}
			if got := e.read(resolvConf); got != "nameserver 192.168.1.1\n" {
				t.Errorf("resolv.conf changed: %q", got)
			}
			for _, call := range e.fr.CallsSnapshot() {
				if strings.HasPrefix(call, "apt-get -o") || strings.HasPrefix(call, "sysctl") {
					t.Errorf("ran %q", call)
				}
			}
		})
	}
}

func TestStep2GuardInsideAdminSource(t *testing.T) {
	e := newStep2Env(t)
	e.write("/proc/self/stat", "900 (openclaw-harden) R 899 900 1 0 -1", 0o644)
	e.write("/proc/899/stat", "899 (sudo) S 1 899 1 0 -1", 0o644)
	e.write("/proc/899/environ", "SSH_CONNECTION=192.168.1.50 51234 192.168.1.10 22\x00", 0o644)
	p := e.plan()
	if p.Blocked != "" {
		t.Fatal(p.Blocked)
	}
	if !strings.Contains(strings.Join(p.Notes, "\n"), "comes from 192.168.1.50 (SSH_CONNECTION of process 899)") {
		t.Errorf("notes: %q", p.Notes)
	}
}

func TestStep2AllowHTTPKeepsSources(t *testing.T) {
	e := newStep2Env(t)
	e.a.AllowHTTP = true
	e.write(aptSourcesList, "deb http://deb.debian.org/debian bookworm main\n", 0o644)
	p := e.plan()
	for _, c := range p.Pending() {
		if c.Target == aptSourcesList {
			t.Error("allow_http set, yet the sources are switched")
		}
		if c.Kind == "rules" && (!strings.Contains(c.After, "allow out proto tcp to any port 80") || !strings.Contains(c.Warning, "80/tcp")) {
			t.Errorf("rules change: %+v", c)
		}
	}
	if !strings.Contains(strings.Join(p.Notes, "\n"), "allow_http is set") {
		t.Errorf("no note about http: %q", p.Notes)
	}
}

func TestStep2HTTPSNeedsCACertificates(t *testing.T) {
	e := newStep2Env(t)
	e.write(aptSourcesList, "deb http://deb.debian.org/debian bookworm main\n", 0o644)
	e.fr.Set("dpkg-query -W -f=${db:Status-Status} ca-certificates", system.FakeResponse{Exit: 1})
	e.fr.Set(step2AptArgv("install", "-y", "--no-install-recommends", "ca-certificates"), system.FakeResponse{Stdout: "Setting up ca-certificates ...\n"})
	p := e.plan()
	if err := (HostStep{}).Apply(context.Background(), e.h, p); err != nil {
		t.Fatal(err)
	}
	calls := strings.Join(e.fr.CallsSnapshot(), "\n")
	ca := strings.Index(calls, "install -y --no-install-recommends ca-certificates")
	if ca < 0 || ca > strings.Index(calls, step2AptArgv("-y", "full-upgrade")) {
		t.Errorf("ca-certificates not installed before the https update:\n%s", calls)
	}
}

func TestStep2ApplyFailsWhenDNSBreaks(t *testing.T) {
	e := newStep2Env(t)
	e.write(resolvConf, "nameserver 192.168.1.1\n", 0o644)
	e.fr.Set("getent ahostsv4 deb.debian.org", system.FakeResponse{Exit: 2})
	err := HostStep{}.Apply(context.Background(), e.h, e.plan())
	if err == nil || !strings.Contains(err.Error(), "name resolution fails") || !strings.Contains(err.Error(), "203.0.113.53") {
		t.Fatalf("apply: %v", err)
	}
}

func TestStep2ApplyFailsWhenAptUpdateBreaks(t *testing.T) {
	e := newStep2Env(t)
	e.write(aptSourcesList, "deb http://deb.debian.org/debian bookworm main\n", 0o644)
	e.fr.Set(step2AptArgv("update"), system.FakeResponse{Stdout: "Err:1 https://deb.debian.org/debian bookworm InRelease\n  Could not connect\nW: Failed to fetch https://deb.debian.org/debian/dists/bookworm/InRelease\n"})
	err := HostStep{}.Apply(context.Background(), e.h, e.plan())
	if err == nil || !strings.Contains(err.Error(), "Failed to fetch") {
		t.Fatalf("apply: %v", err)
	}
}

// A plan made before someone changed UFW is not applied: the operator confirmed other edits.
func TestStep2StalePlanRefused(t *testing.T) {
	e := newStep2Env(t)
	e.setRules(e.desired()[1:])
	p := e.plan()
	e.setRules(e.desired()[2:])
	if err := (HostStep{}).Apply(context.Background(), e.h, p); err == nil || !strings.Contains(err.Error(), "changed since this plan") {
		t.Fatalf("apply of a stale plan: %v", err)
	}
	if m := e.ufw.mutations(); len(m) != 0 {
		t.Errorf("ufw ran: %q", m)
	}
}

func TestStep2DryRunChangesNothing(t *testing.T) {
	e := newStep2Env(t)
	e.write(resolvConf, "nameserver 192.168.1.1\n", 0o644)
	e.write(aptSourcesList, "deb http://deb.debian.org/debian bookworm main\n", 0o644)
	e.ufw.active = false
	e.setRules(nil)
	e.h.DryRun = true
	p := e.plan()
	if err := (HostStep{}).Apply(context.Background(), e.h, p); err != nil {
		t.Fatal(err)
	}
	if m := e.ufw.mutations(); len(m) != 0 {
		t.Errorf("dry run ran ufw: %q", m)
	}
	if e.read(resolvConf) != "nameserver 192.168.1.1\n" || strings.Contains(e.read(aptSourcesList), "https") {
		t.Error("dry run wrote files")
	}
	w := strings.Join(e.h.Would(), "\n")
	for _, s := range []string{"would write: /etc/resolv.conf", "would run: ufw --force enable", "would run: apt-get"} {
		if !strings.Contains(w, s) {
			t.Errorf("dry run did not report %q:\n%s", s, w)
		}
	}
}

func TestStep2VerifyFindings(t *testing.T) {
	e := newStep2Env(t)
	e.fr.Set("ss -H -tulpn", system.FakeResponse{Stdout: step2Testdata(t, "../audit/ss-debian.txt")})
	e.write(ipv6Sysctls[1], "0\n", 0o644)
	e.fr.Set("ip -j -6 addr", system.FakeResponse{Stdout: `[{"ifname":"eth0","addr_info":[{"family":"inet6","local":"2001:db8::10","prefixlen":64,"scope":"global"}]}]`})
	os.Chmod(filepath.Join(e.root, "home/admin/.openclaw"), 0o755)
	cs := HostStep{}.Verify(context.Background(), e.h, e.a)
	got := strings.Join(step2Failed(cs), "\n")
	for _, want := range []string{
		"step2.ipv6.default net.ipv6.conf.default.disable_ipv6: got 0",
		"step2.ipv6.global no global IPv6 address: got 2001:db8::10/64 (eth0)",
		"step2.openclaw-dir /home/admin/.openclaw: got directory, mode 0755, owner admin",
		"unexpected listener: got udp 0.0.0.0:5353 (avahi-daemon)",
		"unexpected listener: got tcp 0.0.0.0:8080 (docker-proxy)",
		"unexpected listener: got tcp *:3000 (Web Content)",
		"unexpected listener: got udp [fe80::be24:11ff:fe4a:9c01]:546 (dhclient)",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("missing finding %q in:\n%s", want, got)
		}
	}
	var findings []string
	for _, c := range cs {
		if c.ID == "step2.listen.unexpected" {
			findings = append(findings, c.Got)
		}
	}
	if len(findings) != 5 {
		t.Errorf("%d unexpected listeners: %q", len(findings), findings)
	}
	for _, notWanted := range []string{"0.0.0.0:22", ":68 ", "127.0.0.53", "18789", "[::]:22"} {
		if strings.Contains(strings.Join(findings, "\n"), notWanted) {
			t.Errorf("%q reported as unexpected:\n%s", notWanted, got)
		}
	}
}

func TestStep2UnknownDeployUserBlocks(t *testing.T) {
	e := newStep2Env(t)
	e.fr.Set("getent group sudo", system.FakeResponse{Stdout: "sudo:x:27:alice,bob\n"})
	p := e.plan()
	if !strings.Contains(p.Blocked, "set admin_user") {
		t.Errorf("Blocked = %q", p.Blocked)
	}
	e.a.AdminUser = "admin"
	if p := e.plan(); p.Blocked != "" {
		t.Errorf("admin_user set, still blocked: %s", p.Blocked)
	}
}
