package steps

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/vishvananda/netns"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"

	"openclaw-harden/assets"
	"openclaw-harden/system"
)

// ---- fixtures ----

func step0Data(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "step0", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

const (
	journalArgv = "journalctl -u ssh.service _UID=0 --no-pager -o cat -n 20000"
	adminPasswd = "admin:x:1000:1000:Admin,,,:/home/admin:/bin/bash\n"
	// the session the tool runs in: the journal's "Accepted publickey for admin from 192.168.1.50 port 50522"
	thisSession = "192.168.1.50 50522 192.168.1.10 22"
)

// step0Runner is a FakeRunner that also answers the drop-in validator, whose argv holds a random temp path.
type step0Runner struct {
	*system.FakeRunner
	mu            sync.Mutex
	validateExit  int
	validated     []string // the content the validator saw
	validateCalls [][]string
}

func (r *step0Runner) Run(ctx context.Context, c system.Cmd) ([]byte, error) {
	if len(c.Argv) >= 4 && strings.Join(c.Argv[:3], " ") == "sshd -t -f" {
		b, _ := os.ReadFile(c.Argv[3])
		r.mu.Lock()
		r.validated = append(r.validated, string(b))
		r.validateCalls = append(r.validateCalls, c.Argv)
		exit := r.validateExit
		r.mu.Unlock()
		if exit != 0 {
			return nil, &system.CmdError{Argv: c.Argv, ExitCode: exit, Output: "line 9: Bad configuration option", Err: fmt.Errorf("exit status %d", exit)}
		}
		return nil, nil
	}
	return r.FakeRunner.Run(ctx, c)
}

// fakeSSH stands in for the SSH client checks.
type fakeSSH struct {
	mu       sync.Mutex
	offered  []string // what the running sshd lists after "none"
	none     bool
	probeErr error
	loginOK  map[string]bool // user → the login succeeds
	loginErr error           // a connection error instead of an answer
	agent    system.SSHKeySet
	agentErr error
	logins   []string // "user keys=N"
}

func (f *fakeSSH) ProbeAuth(_ context.Context, _ *system.Host, _ system.SSHTarget, _ string) (system.SSHAuthProbe, error) {
	if f.probeErr != nil {
		return system.SSHAuthProbe{}, f.probeErr
	}
	return system.SSHAuthProbe{Methods: f.offered, NoneAccepted: f.none}, nil
}

func (f *fakeSSH) Login(_ context.Context, _ *system.Host, _ system.SSHTarget, user string, k system.SSHKeySet) ([]string, error) {
	f.mu.Lock()
	f.logins = append(f.logins, fmt.Sprintf("%s keys=%d", user, k.Len()))
	f.mu.Unlock()
	if f.loginErr != nil {
		return nil, f.loginErr
	}
	if f.loginOK[user] {
		return f.offered, nil
	}
	return f.offered, fmt.Errorf("fake: %w", system.ErrSSHAuthRefused)
}

func (f *fakeSSH) AgentKeys(string) (system.SSHKeySet, func(), error) {
	if f.agent.Len() == 0 {
		return system.SSHKeySet{}, func() {}, errors.New("fake: no agent")
	}
	return f.agent, func() {}, f.agentErr
}

func (f *fakeSSH) ThrowawayKey() (system.SSHKeySet, error) { return system.ThrowawayKey() }

// step0World is a temp root laid out like the lab image: Debian 12's sshd_config (PermitRootLogin yes),
// cloud-init's 50-cloud-init.conf with PasswordAuthentication yes, user admin in group sudo with a key.
type step0World struct {
	root   string
	runner *step0Runner
	host   *system.Host
	env    map[string]string
	ssh    *fakeSSH
}

func newStep0World(t *testing.T) *step0World {
	t.Helper()
	root := t.TempDir()
	w := &step0World{root: root, env: map[string]string{"SUDO_USER": "admin", "SSH_CONNECTION": thisSession}}
	w.write(t, "/etc/ssh/sshd_config", step0Data(t, "debian12-sshd_config"))
	w.write(t, "/etc/ssh/sshd_config.d/50-cloud-init.conf", "PasswordAuthentication yes\n")
	w.write(t, "/home/admin/.ssh/authorized_keys", step0Data(t, "admin_authorized_keys"))
	fr := system.NewFakeRunner(map[string]string{
		"sshd -T":                      step0Data(t, "sshd-T-cloudinit.txt"),
		"getent passwd admin":          adminPasswd,
		"id -nG admin":                 "admin sudo users\n",
		"getent group sudo":            "sudo:x:27:admin\n",
		journalArgv:                    step0Data(t, "journal-ssh.txt"),
		"sshd -t":                      "",
		"systemctl reload ssh.service": "",
	})
	w.runner = &step0Runner{FakeRunner: fr}
	w.host = system.NewFakeHost(root, filepath.Join(root, "var/lib/openclaw-harden"), nil, false)
	w.host.Runner = w.runner
	w.host.Env = func(k string) string { return w.env[k] }
	w.ssh = &fakeSSH{offered: []string{"publickey", "password", "keyboard-interactive"}, loginOK: map[string]bool{"root": true}}
	return w
}

func (w *step0World) write(t *testing.T, p, content string) {
	t.Helper()
	full := filepath.Join(w.root, p)
	if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(full, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// harden makes the world look like Step 0 was applied and sshd reloaded.
func (w *step0World) harden(t *testing.T) {
	t.Helper()
	w.write(t, sshdDropinPath, assets.SSHDDropin())
	w.runner.Set("sshd -T", system.FakeResponse{Stdout: step0Data(t, "sshd-T-hardened.txt")})
	w.ssh.offered = []string{"publickey"}
	w.ssh.loginOK = map[string]bool{"admin": true}
}

func (w *step0World) step() SSHStep { return SSHStep{client: w.ssh} }

func (w *step0World) plan(t *testing.T, a Answers) Plan {
	t.Helper()
	p, err := w.step().Plan(context.Background(), w.host, a)
	if err != nil {
		t.Fatalf("Plan: %v", err)
	}
	return p
}

func noteWith(p Plan, sub string) bool {
	for _, n := range p.Notes {
		if strings.Contains(n, sub) {
			return true
		}
	}
	return false
}

func checkByID(cs []Check, id string) Check {
	for _, c := range cs {
		if c.ID == id {
			return c
		}
	}
	return Check{ID: id, Got: "missing"}
}

// ---- plan ----

// The image's cloud-init drop-in turns passwords on; the plan diffs against the effective values.
func TestStep0PlanCloudInitPasswords(t *testing.T) {
	w := newStep0World(t)
	p := w.plan(t, Defaults())
	if p.Blocked != "" || p.Risk != "" {
		t.Fatalf("blocked %q risk %q; notes:\n%s", p.Blocked, p.Risk, strings.Join(p.Notes, "\n"))
	}
	if p.Empty() || p.Summary() != "Apply 2 changes to 1 file and 1 other target?" {
		t.Errorf("summary %q", p.Summary())
	}
	file, eff := p.Changes[0], p.Changes[1]
	if file.Target != "/etc/ssh/sshd_config.d/00-openclaw-harden.conf" || file.Action() != "+" || file.After != assets.SSHDDropin() {
		t.Errorf("file change %+v", file)
	}
	if !strings.Contains(file.After, "Managed by openclaw-harden") || !strings.Contains(file.After, "sorts first") {
		t.Errorf("the drop-in has no header saying who manages it and why it sorts first:\n%s", file.After)
	}
	wantBefore := "passwordauthentication yes\nkbdinteractiveauthentication no\npermitrootlogin yes\npubkeyauthentication yes\n"
	wantAfter := "passwordauthentication no\nkbdinteractiveauthentication no\npermitrootlogin no\npubkeyauthentication yes\n"
	if eff.Before != wantBefore || eff.After != wantAfter || eff.Kind != "setting" {
		t.Errorf("effective change:\nbefore %q\nafter  %q", eff.Before, eff.After)
	}
	d := eff.Diff()
	for _, l := range []string{"-passwordauthentication yes", "+passwordauthentication no", "-permitrootlogin yes", "+permitrootlogin no"} {
		if !strings.Contains(d, l) {
			t.Errorf("effective diff lacks %q:\n%s", l, d)
		}
	}
	if !noteWith(p, "/etc/ssh/sshd_config.d/50-cloud-init.conf:1") {
		t.Errorf("no note naming the file that turns passwords on: %q", p.Notes)
	}
	if !noteWith(p, "this session logged in with a key") || !noteWith(p, "port 50522") {
		t.Errorf("the sshGuardCheck did not recognise this session's key login: %q", p.Notes)
	}
	if !strings.HasPrefix(strings.Join(file.Validate, " "), "sshd -t -f %s -o HostKey=/etc/ssh/ssh_host_rsa_key") {
		t.Errorf("validate argv %q", file.Validate)
	}
	cmds := strings.Join(p.Commands, "\n")
	for _, c := range []string{"sudo tee /etc/ssh/sshd_config.d/00-openclaw-harden.conf", "PasswordAuthentication no", "sudo sshd -t",
		"sudo systemctl reload ssh.service", "sudo sshd -T | grep -Ei '^(passwordauthentication|kbdinteractiveauthentication|permitrootlogin|pubkeyauthentication) '"} {
		if !strings.Contains(cmds, c) {
			t.Errorf("Commands lack %q:\n%s", c, cmds)
		}
	}
	if strings.Contains(cmds, "restart") {
		t.Error("Commands restart sshd; Step 0 reloads")
	}
	for _, c := range w.runner.CallsSnapshot() {
		if strings.HasPrefix(c, "systemctl") || c == "sshd -t" {
			t.Errorf("Plan ran %q; it must only read", c)
		}
	}
}

// Without SSH_CONNECTION (sudo dropped it) an earlier key login in the journal is enough.
func TestStep0PlanKeyLoginFromJournalHistory(t *testing.T) {
	w := newStep0World(t)
	delete(w.env, "SSH_CONNECTION")
	p := w.plan(t, Defaults())
	if p.Blocked != "" || p.Risk != "" {
		t.Fatalf("blocked %q risk %q", p.Blocked, p.Risk)
	}
	if !noteWith(p, `Key login proven: the journal of ssh.service shows "Accepted publickey for admin from 192.168.1.51 port 50600`) {
		t.Errorf("notes %q", p.Notes)
	}
}

func TestStep0GuardBlocksWithoutKey(t *testing.T) {
	w := newStep0World(t)
	if err := os.Remove(filepath.Join(w.root, "home/admin/.ssh/authorized_keys")); err != nil {
		t.Fatal(err)
	}
	p := w.plan(t, Defaults())
	want := "admin has no SSH key in /home/admin/.ssh/authorized_keys or /home/admin/.ssh/authorized_keys2, so switching passwords off would lock everyone out; add a key with the commands below, log in with it, and plan again"
	if p.Blocked != want {
		t.Fatalf("Blocked = %q\nwant      %q", p.Blocked, want)
	}
	if strings.Count(p.Blocked, ". ") > 0 {
		t.Errorf("Blocked is more than one sentence: %q", p.Blocked)
	}
	for _, c := range []string{`ssh-keygen -t ed25519 -C "openclaw-vm" -f ~/.ssh/openclaw_vm`,
		"ssh-copy-id -i ~/.ssh/openclaw_vm.pub admin@192.168.1.10", "ssh -i ~/.ssh/openclaw_vm admin@192.168.1.10"} {
		if !noteWith(p, c) {
			t.Errorf("notes lack %q: %q", c, p.Notes)
		}
	}
	if p.Risk != "" {
		t.Errorf("Risk %q set alongside Blocked", p.Risk)
	}
	// An empty file, or one with only comments and junk, is no key either.
	w.write(t, "/home/admin/.ssh/authorized_keys", "# my keys\nssh-ed25519 not-base64\n")
	if p := w.plan(t, Defaults()); !strings.HasPrefix(p.Blocked, "admin has no SSH key") {
		t.Errorf("junk authorized_keys: Blocked = %q", p.Blocked)
	}
}

func TestStep0RiskWithoutSeenLogin(t *testing.T) {
	w := newStep0World(t)
	w.runner.Set(journalArgv, system.FakeResponse{Stdout: "Server listening on 0.0.0.0 port 22.\nAccepted password for admin from 192.168.1.50 port 50522 ssh2\n"})
	p := w.plan(t, Defaults())
	want := "no key login for admin has been seen; if the key does not work you will be locked out once passwords are off"
	if p.Risk != want || p.Blocked != "" {
		t.Fatalf("risk %q blocked %q", p.Risk, p.Blocked)
	}
	if !noteWith(p, "ssh -i ~/.ssh/openclaw_vm admin@192.168.1.10") {
		t.Errorf("no note on how to remove the risk: %q", p.Notes)
	}
}

// Lines that are not sshd's own "Accepted publickey" (an attacker's user name) and logins with a key that
// is no longer authorized prove nothing.
func TestStep0RiskForgedOrStaleLoginLines(t *testing.T) {
	w := newStep0World(t)
	delete(w.env, "SSH_CONNECTION")
	j := step0Data(t, "journal-ssh.txt")
	var keep []string
	for _, l := range strings.Split(j, "\n") {
		if !strings.HasPrefix(l, "Accepted publickey for admin from 192.168.1.5") || strings.Contains(l, "port 41000") {
			keep = append(keep, l)
		}
	}
	w.runner.Set(journalArgv, system.FakeResponse{Stdout: strings.Join(keep, "\n")})
	p := w.plan(t, Defaults())
	if p.Risk == "" {
		t.Fatalf("forged or stale lines counted as a key login: notes %q", p.Notes)
	}
	if !noteWith(p, "1 key login(s) for admin, but with keys that are no longer in authorized_keys") {
		t.Errorf("notes %q", p.Notes)
	}
}

func TestParseAcceptedLogins(t *testing.T) {
	fp := "SHA256:tuaAVVGjGLY7/ERbA+IGlvPE88/sbZsCFqxvuXRCAIM"
	journal := "Accepted publickey for admin from 192.168.1.50 port 50522 ssh2: ED25519 " + fp + "\n" +
		"Invalid user Accepted publickey for admin from 1.2.3.4 port 1 ssh2: ED25519 " + fp + " from 203.0.113.9 port 4444\n" +
		"Invalid user sshd[1]: Accepted publickey for admin from 1.2.3.4 port 1 ssh2 from 203.0.113.9 port 4444\n" +
		"Accepted publickey for bob from 2001:db8::5 port 2 ssh2\n"
	got := parseAcceptedLogins(journal, false)
	if len(got) != 2 || got[0].User != "admin" || got[0].Port != "50522" || got[0].Key != "ED25519 "+fp || got[1].IP != "2001:db8::5" || got[1].Key != "" {
		t.Errorf("journal: %+v", got)
	}
	syslog := "2025-11-25T14:43:00.1+00:00 vm sshd[812]: Accepted publickey for admin from 192.168.1.50 port 50522 ssh2: ED25519 " + fp + "\n" +
		"Nov 25 14:43:01 vm sshd[813]: Invalid user x sshd[1]: Accepted publickey for admin from 1.2.3.4 port 1 ssh2 from 203.0.113.9 port 4444\n" +
		"Nov 25 14:43:02 vm sshd-session[814]: Accepted publickey for bob from 192.168.1.51 port 3 ssh2: RSA SHA256:abc\n"
	got = parseAcceptedLogins(syslog, true)
	if len(got) != 2 || got[0].User != "admin" || got[1].User != "bob" || got[1].Key != "RSA SHA256:abc" {
		t.Errorf("syslog: %+v", got)
	}
}

func TestStep0AdminUserResolution(t *testing.T) {
	w := newStep0World(t)
	w.runner.Set("getent passwd ops", system.FakeResponse{Stdout: "ops:x:1001:1001::/home/ops:/bin/bash\n"})
	w.runner.Set("getent passwd 1001", system.FakeResponse{Stdout: "ops:x:1001:1001::/home/ops:/bin/bash\n"})
	ctx := context.Background()
	if u, how := sshAdminUser(ctx, w.host, Answers{AdminUser: "ops"}); u != "ops" || !strings.Contains(how, "admin_user") {
		t.Errorf("answers: %q %q", u, how)
	}
	if u, how := sshAdminUser(ctx, w.host, Answers{}); u != "admin" || !strings.Contains(how, "SUDO_USER") {
		t.Errorf("SUDO_USER: %q %q", u, how)
	}
	w.env["SUDO_USER"] = "root"
	w.write(t, "/proc/self/loginuid", "1001")
	if u, how := sshAdminUser(ctx, w.host, Answers{}); u != "ops" || !strings.Contains(how, "login session") {
		t.Errorf("loginuid: %q %q", u, how)
	}
	w.write(t, "/proc/self/loginuid", "4294967295")
	if u, how := sshAdminUser(ctx, w.host, Answers{}); u != "admin" || !strings.Contains(how, "only member of group sudo") {
		t.Errorf("group sudo: %q %q", u, how)
	}
	w.runner.Set("getent group sudo", system.FakeResponse{Stdout: "sudo:x:27:admin,ops\n"})
	if u, _ := sshAdminUser(ctx, w.host, Answers{}); u != "" {
		t.Errorf("two sudo members: %q, want none", u)
	}
	p := w.plan(t, Answers{})
	if !strings.HasPrefix(p.Blocked, "no admin user found") {
		t.Errorf("Blocked = %q", p.Blocked)
	}
}

func TestStep0GuardNeedsSudo(t *testing.T) {
	w := newStep0World(t)
	w.runner.Set("id -nG admin", system.FakeResponse{Stdout: "admin users\n"})
	w.runner.Set("sudo -n -l -U admin", system.FakeResponse{Stdout: "User admin is not allowed to run sudo on vm.\n"})
	p := w.plan(t, Defaults())
	if !strings.HasPrefix(p.Blocked, "the admin user admin cannot use sudo") {
		t.Fatalf("Blocked = %q", p.Blocked)
	}
	// sudo rights from sudoers (not the group) are enough.
	w.runner.Set("sudo -n -l -U admin", system.FakeResponse{Stdout: "User admin may run the following commands on vm:\n    (ALL) NOPASSWD: ALL\n"})
	if p := w.plan(t, Defaults()); p.Blocked != "" {
		t.Errorf("sudoers rights: Blocked = %q", p.Blocked)
	}
}

// sudo drops SSH_CONNECTION; the session's shell (a parent process) still has it.
func TestStep0SessionFromParentProcess(t *testing.T) {
	w := newStep0World(t)
	delete(w.env, "SSH_CONNECTION")
	ppid := os.Getppid()
	w.write(t, fmt.Sprintf("/proc/%d/environ", ppid), "PATH=/usr/bin\x00USER=root\x00")
	w.write(t, fmt.Sprintf("/proc/%d/stat", ppid), fmt.Sprintf("%d (sudo) S 4242 1 1 0", ppid))
	w.write(t, "/proc/4242/environ", "SHELL=/bin/bash\x00SSH_CONNECTION="+thisSession+"\x00")
	v, where := sshSessionEnv(w.host, "SSH_CONNECTION")
	if v != thisSession || where != "process 4242" {
		t.Fatalf("sshSessionEnv = %q from %q", v, where)
	}
	if p := w.plan(t, Defaults()); !noteWith(p, "this session logged in with a key") {
		t.Errorf("notes %q", p.Notes)
	}
}

func TestStep0ConfigOrderRefusals(t *testing.T) {
	t.Run("no Include", func(t *testing.T) {
		w := newStep0World(t)
		cfg := strings.Replace(step0Data(t, "debian12-sshd_config"), "Include /etc/ssh/sshd_config.d/*.conf", "#Include removed", 1)
		w.write(t, "/etc/ssh/sshd_config", cfg)
		p := w.plan(t, Defaults())
		if !strings.HasPrefix(p.Blocked, "/etc/ssh/sshd_config does not include /etc/ssh/sshd_config.d/*.conf") {
			t.Fatalf("Blocked = %q", p.Blocked)
		}
		if !noteWith(p, "sed -i '1i Include /etc/ssh/sshd_config.d/*.conf' /etc/ssh/sshd_config") {
			t.Errorf("notes %q", p.Notes)
		}
	})
	t.Run("key before Include", func(t *testing.T) {
		w := newStep0World(t)
		w.write(t, "/etc/ssh/sshd_config", "PermitRootLogin yes\n"+step0Data(t, "debian12-sshd_config"))
		p := w.plan(t, Defaults())
		if !strings.HasPrefix(p.Blocked, "/etc/ssh/sshd_config:1 sets PermitRootLogin before the drop-in is read") {
			t.Fatalf("Blocked = %q", p.Blocked)
		}
	})
	t.Run("earlier drop-in", func(t *testing.T) {
		w := newStep0World(t)
		w.write(t, "/etc/ssh/sshd_config.d/00-aaa-early.conf", "# early\nPasswordAuthentication=yes\n")
		p := w.plan(t, Defaults())
		if !strings.HasPrefix(p.Blocked, "/etc/ssh/sshd_config.d/00-aaa-early.conf:2 sets PasswordAuthentication") {
			t.Fatalf("Blocked = %q", p.Blocked)
		}
	})
	t.Run("relative Include", func(t *testing.T) {
		w := newStep0World(t)
		cfg := strings.Replace(step0Data(t, "debian12-sshd_config"), "Include /etc/ssh/sshd_config.d/*.conf", "Include sshd_config.d/*.conf", 1)
		w.write(t, "/etc/ssh/sshd_config", cfg)
		if p := w.plan(t, Defaults()); p.Blocked != "" {
			t.Fatalf("Blocked = %q", p.Blocked)
		}
	})
	t.Run("Match block", func(t *testing.T) {
		w := newStep0World(t)
		w.write(t, "/etc/ssh/sshd_config", step0Data(t, "debian12-sshd_config")+"Match Address 192.168.1.0/24\n\tPasswordAuthentication yes\n")
		w.runner.Set("sshd -T -C user=admin,host=192.168.1.50,addr=192.168.1.50", system.FakeResponse{Stdout: step0Data(t, "sshd-T-C-match.txt")})
		p := w.plan(t, Defaults())
		if !strings.HasPrefix(p.Blocked, "/etc/ssh/sshd_config:124 sets PasswordAuthentication yes inside a Match block") {
			t.Fatalf("Blocked = %q", p.Blocked)
		}
		var matchChange *Change
		for i := range p.Changes {
			if strings.Contains(p.Changes[i].Target, "sshd -T -C") {
				matchChange = &p.Changes[i]
			}
		}
		if matchChange == nil || !strings.Contains(matchChange.Before, "passwordauthentication yes") {
			t.Errorf("no effective change for the admin's connection: %+v", p.Changes)
		}
		// A Match block that already says the hardened value is fine.
		w.write(t, "/etc/ssh/sshd_config", step0Data(t, "debian12-sshd_config")+"Match User backup\n\tPasswordAuthentication no\n")
		if p := w.plan(t, Defaults()); p.Blocked != "" {
			t.Errorf("harmless Match block: Blocked = %q", p.Blocked)
		}
	})
}

func TestStep0NoChangesWhenHardened(t *testing.T) {
	w := newStep0World(t)
	w.harden(t)
	// Even without a key the sshGuardCheck is not consulted: nothing will change.
	os.Remove(filepath.Join(w.root, "home/admin/.ssh/authorized_keys"))
	p := w.plan(t, Defaults())
	if !p.Empty() || p.Summary() != "No changes" || p.Blocked != "" || p.Risk != "" {
		t.Fatalf("hardened: summary %q blocked %q risk %q pending %+v", p.Summary(), p.Blocked, p.Risk, p.Pending())
	}
	// Apply of an empty plan runs nothing.
	before := len(w.runner.CallsSnapshot())
	if err := w.step().Apply(context.Background(), w.host, p); err != nil {
		t.Fatal(err)
	}
	if calls := w.runner.CallsSnapshot()[before:]; len(calls) != 0 {
		t.Errorf("Apply of an empty plan ran %q", calls)
	}
}

// The files are right but the running sshd still offers passwords: the plan reloads it.
func TestStep0PlanReloadsStaleDaemon(t *testing.T) {
	w := newStep0World(t)
	w.harden(t)
	w.ssh.offered = []string{"publickey", "password"}
	p := w.plan(t, Defaults())
	if p.Empty() || len(p.Pending()) != 1 || p.Pending()[0].Kind != "service" {
		t.Fatalf("pending %+v", p.Pending())
	}
	if sp := p.Data.(sshPlan); sp.Write || !sp.Reload {
		t.Errorf("plan data %+v", sp)
	}
	if err := w.step().Apply(context.Background(), w.host, p); err != nil {
		t.Fatal(err)
	}
	calls := strings.Join(w.runner.CallsSnapshot(), "\n")
	if !strings.Contains(calls, "systemctl reload ssh.service") || strings.Contains(calls, "\nsshd -t\n") {
		t.Errorf("calls:\n%s", calls)
	}
}

// ---- apply ----

func TestStep0ApplyDryRunOnlyRecords(t *testing.T) {
	w := newStep0World(t)
	p := w.plan(t, Defaults())
	w.host.DryRun = true
	before := len(w.runner.CallsSnapshot())
	if err := w.step().Apply(context.Background(), w.host, p); err != nil {
		t.Fatal(err)
	}
	want := []string{
		"would write: /etc/ssh/sshd_config.d/00-openclaw-harden.conf (" + fmt.Sprint(len(assets.SSHDDropin())) + " bytes, mode 0644)",
		"would run: sshd -t",
		"would run: systemctl reload ssh.service",
	}
	if got := w.host.Would(); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("would:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if calls := w.runner.CallsSnapshot()[before:]; len(calls) != 0 || len(w.runner.validateCalls) != 0 {
		t.Errorf("dry run ran %q (validator %d times)", calls, len(w.runner.validateCalls))
	}
	if _, err := os.Stat(filepath.Join(w.root, sshdDropinPath)); err == nil {
		t.Error("dry run wrote the drop-in")
	}
	if _, err := os.Stat(filepath.Join(w.host.StateDir, "journal.log")); err == nil {
		t.Error("dry run wrote the journal")
	}
}

func TestStep0ApplyWritesValidatesReloads(t *testing.T) {
	w := newStep0World(t)
	p := w.plan(t, Defaults())
	w.host.SetStep(0)
	if err := w.step().Apply(context.Background(), w.host, p); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(filepath.Join(w.root, sshdDropinPath))
	if err != nil || string(got) != assets.SSHDDropin() {
		t.Fatalf("drop-in: %v\n%s", err, got)
	}
	if st, _ := os.Stat(filepath.Join(w.root, sshdDropinPath)); st.Mode().Perm() != 0o644 {
		t.Errorf("mode %v", st.Mode())
	}
	if len(w.runner.validated) != 1 || w.runner.validated[0] != assets.SSHDDropin() {
		t.Errorf("the validator saw %q", w.runner.validated)
	}
	var order []string
	for _, c := range w.runner.CallsSnapshot() {
		if c == "sshd -t" || strings.HasPrefix(c, "systemctl") {
			order = append(order, c)
		}
	}
	if strings.Join(order, ", ") != "sshd -t, systemctl reload ssh.service" {
		t.Errorf("state-changing calls in order: %q", order)
	}
	backups, err := w.host.Backups()
	if err != nil || len(backups) != 1 || backups[0].Path != sshdDropinPath || backups[0].Existed || backups[0].Step != 0 {
		t.Errorf("backups %+v %v", backups, err)
	}
	journal, _ := os.ReadFile(filepath.Join(w.host.StateDir, "journal.log"))
	for _, s := range []string{"write: /etc/ssh/sshd_config.d/00-openclaw-harden.conf", "run: sshd -t -> exit 0", "run: systemctl reload ssh.service -> exit 0"} {
		if !strings.Contains(string(journal), s) {
			t.Errorf("journal lacks %q:\n%s", s, journal)
		}
	}
}

// sshd -t on the whole configuration fails after the move: the old drop-in comes back, no reload.
func TestStep0ApplyFullCheckFailsRestores(t *testing.T) {
	for _, existed := range []bool{false, true} {
		t.Run(fmt.Sprintf("existed=%v", existed), func(t *testing.T) {
			w := newStep0World(t)
			old := "# an older drop-in\nPasswordAuthentication yes\n"
			if existed {
				w.write(t, sshdDropinPath, old)
			}
			p := w.plan(t, Defaults())
			w.runner.Set("sshd -t", system.FakeResponse{Exit: 255, Stderr: "/etc/ssh/sshd_config line 130: Directive 'Bogus' is not allowed"})
			err := w.step().Apply(context.Background(), w.host, p)
			if err == nil || !strings.Contains(err.Error(), "sshd -t rejected the configuration") || !strings.Contains(err.Error(), "Bogus") {
				t.Fatalf("Apply: %v", err)
			}
			got, rerr := os.ReadFile(filepath.Join(w.root, sshdDropinPath))
			switch {
			case existed && string(got) != old:
				t.Errorf("the old drop-in was not put back: %q %v", got, rerr)
			case !existed && rerr == nil:
				t.Errorf("the new drop-in was left in place: %q", got)
			}
			for _, c := range w.runner.CallsSnapshot() {
				if strings.HasPrefix(c, "systemctl") {
					t.Errorf("sshd was reloaded after a failed check: %q", c)
				}
			}
		})
	}
}

func TestStep0ApplyValidatorRefusesFragment(t *testing.T) {
	w := newStep0World(t)
	p := w.plan(t, Defaults())
	w.runner.validateExit = 255
	err := w.step().Apply(context.Background(), w.host, p)
	if err == nil || !strings.Contains(err.Error(), "rejected by its validator") {
		t.Fatalf("Apply: %v", err)
	}
	if _, err := os.Stat(filepath.Join(w.root, sshdDropinPath)); err == nil {
		t.Error("a drop-in the validator refused was moved in")
	}
	for _, c := range w.runner.CallsSnapshot() {
		if strings.HasPrefix(c, "systemctl") || c == "sshd -t" {
			t.Errorf("ran %q after the validator refused", c)
		}
	}
}

func TestStep0ApplyReloadFails(t *testing.T) {
	w := newStep0World(t)
	p := w.plan(t, Defaults())
	w.runner.Set("systemctl reload ssh.service", system.FakeResponse{Exit: 1, Stderr: "ssh.service is not active, cannot reload."})
	err := w.step().Apply(context.Background(), w.host, p)
	if err == nil || !strings.Contains(err.Error(), "reloading ssh.service failed") || !strings.Contains(err.Error(), "not active") {
		t.Fatalf("Apply: %v", err)
	}
}

// ---- verify ----

func TestStep0VerifyHardened(t *testing.T) {
	w := newStep0World(t)
	w.harden(t)
	cs := w.step().Verify(context.Background(), w.host, Defaults())
	if !Passed(cs) {
		for _, c := range cs {
			t.Logf("%s ok=%v got=%q reason=%q", c.ID, c.OK, c.Got, c.Reason)
		}
		t.Fatal("verify failed on a hardened fake")
	}
	ids := []string{"step0.dropin", "step0.effective.passwordauthentication", "step0.effective.kbdinteractiveauthentication",
		"step0.effective.permitrootlogin", "step0.effective.pubkeyauthentication", "step0.client.methods", "step0.client.root", "step0.client.keylogin"}
	if len(cs) != len(ids) {
		t.Errorf("%d checks, want %d", len(cs), len(ids))
	}
	for _, id := range ids {
		if c := checkByID(cs, id); c.Got == "missing" {
			t.Errorf("no check %s", id)
		}
	}
	// No agent: the key-login check says plainly that it relied on the journal.
	kl := checkByID(cs, "step0.client.keylogin")
	if !strings.Contains(kl.Got, "not tried") || !strings.Contains(kl.Got, "Accepted publickey for admin from 192.168.1.50 port 50522") {
		t.Errorf("keylogin: %q", kl.Got)
	}
	if root := checkByID(cs, "step0.client.root"); !strings.Contains(root.Got, "throwaway key") {
		t.Errorf("root: %q", root.Got)
	}
}

// Every check can fail.
func TestStep0VerifyFailures(t *testing.T) {
	w := newStep0World(t) // cloud-init: nothing applied, sshd offers passwords, root gets in
	cs := w.step().Verify(context.Background(), w.host, Defaults())
	for _, id := range []string{"step0.dropin", "step0.effective.passwordauthentication", "step0.effective.permitrootlogin",
		"step0.client.methods", "step0.client.root"} {
		if c := checkByID(cs, id); c.OK || c.Reason == "" {
			t.Errorf("%s passed (or has no reason) on an unhardened fake: %+v", id, c)
		}
	}
	if c := checkByID(cs, "step0.effective.pubkeyauthentication"); !c.OK {
		t.Errorf("pubkeyauthentication: %+v", c)
	}

	w = newStep0World(t)
	w.harden(t)
	w.write(t, sshdDropinPath, assets.SSHDDropin()+"# edited\n")
	w.ssh.none = true
	cs = w.step().Verify(context.Background(), w.host, Defaults())
	if c := checkByID(cs, "step0.dropin"); c.OK || c.Got != "changed by hand" {
		t.Errorf("edited drop-in: %+v", c)
	}
	if c := checkByID(cs, "step0.client.methods"); c.OK || !strings.Contains(c.Got, "no authentication at all") {
		t.Errorf("none accepted: %+v", c)
	}

	// sshd does not answer: not a pass.
	w = newStep0World(t)
	w.harden(t)
	w.ssh.probeErr = errors.New("dial tcp 127.0.0.1:22: connect: connection refused")
	w.ssh.loginErr = w.ssh.probeErr
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // no retries
	cs = w.step().Verify(ctx, w.host, Defaults())
	for _, id := range []string{"step0.client.methods", "step0.client.root"} {
		if c := checkByID(cs, id); c.OK || c.Got != "no answer" {
			t.Errorf("%s with no sshd: %+v", id, c)
		}
	}

	// Key gone from authorized_keys and no agent: the key login cannot be shown.
	w = newStep0World(t)
	w.harden(t)
	os.Remove(filepath.Join(w.root, "home/admin/.ssh/authorized_keys"))
	cs = w.step().Verify(context.Background(), w.host, Defaults())
	if c := checkByID(cs, "step0.client.keylogin"); c.OK || !strings.Contains(c.Reason, "no authorized key") {
		t.Errorf("no key: %+v", c)
	}
	// No key login logged either.
	w = newStep0World(t)
	w.harden(t)
	w.runner.Set(journalArgv, system.FakeResponse{Stdout: "Server listening on 0.0.0.0 port 22.\n"})
	cs = w.step().Verify(context.Background(), w.host, Defaults())
	if c := checkByID(cs, "step0.client.keylogin"); c.OK {
		t.Errorf("no logged login: %+v", c)
	}
}

func TestStep0VerifyWithAgent(t *testing.T) {
	k, err := system.ThrowawayKey()
	if err != nil {
		t.Fatal(err)
	}
	w := newStep0World(t)
	w.harden(t)
	w.env["SSH_AUTH_SOCK"] = "/tmp/ssh-x/agent.1"
	w.ssh.agent = k
	cs := w.step().Verify(context.Background(), w.host, Defaults())
	if c := checkByID(cs, "step0.client.keylogin"); !c.OK || !strings.Contains(c.Got, "logged in at 127.0.0.1:22 with a key from this session's ssh-agent") {
		t.Errorf("keylogin with agent: %+v", c)
	}
	if c := checkByID(cs, "step0.client.root"); !c.OK || !strings.Contains(c.Got, "1 key(s) from this session's ssh-agent") {
		t.Errorf("root with agent keys: %+v", c)
	}
	if strings.Join(w.ssh.logins, ", ") != "root keys=2, admin keys=1" {
		t.Errorf("logins tried: %q", w.ssh.logins)
	}
	// The agent's key is refused: the check fails.
	w.ssh.loginOK = map[string]bool{}
	cs = w.step().Verify(context.Background(), w.host, Defaults())
	if c := checkByID(cs, "step0.client.keylogin"); c.OK || !strings.Contains(c.Got, "failed with the ssh-agent's keys") {
		t.Errorf("refused agent key: %+v", c)
	}
	// Root logs in with the operator's key (root's authorized_keys has it): the root check fails.
	w.ssh.loginOK = map[string]bool{"root": true, "admin": true}
	cs = w.step().Verify(context.Background(), w.host, Defaults())
	if c := checkByID(cs, "step0.client.root"); c.OK || !strings.Contains(c.Got, "logged in as root") {
		t.Errorf("root gets in: %+v", c)
	}
}

func TestStep0VerifyMatchBlocks(t *testing.T) {
	w := newStep0World(t)
	w.harden(t)
	w.write(t, "/etc/ssh/sshd_config", step0Data(t, "debian12-sshd_config")+"Match Address 192.168.1.0/24\n\tPasswordAuthentication yes\n")
	w.runner.Set("sshd -T -C user=admin,host=192.168.1.50,addr=192.168.1.50", system.FakeResponse{Stdout: step0Data(t, "sshd-T-C-match.txt")})
	w.runner.Set("sshd -T -C user=root,host=192.168.1.50,addr=192.168.1.50", system.FakeResponse{Stdout: step0Data(t, "sshd-T-C-match.txt")})
	cs := w.step().Verify(context.Background(), w.host, Defaults())
	c := checkByID(cs, "step0.effective.passwordauthentication")
	if c.OK || !strings.Contains(c.Reason, "user=admin,host=192.168.1.50,addr=192.168.1.50 it is yes") {
		t.Errorf("Match override not caught: %+v", c)
	}
}

func TestSSHDKeyValueAndTarget(t *testing.T) {
	for line, want := range map[string][2]string{
		"PasswordAuthentication yes":   {"passwordauthentication", "yes"},
		"  PermitRootLogin=no # c":     {"permitrootlogin", "no"},
		"\tAuthorizedKeysFile \"a b\"": {"authorizedkeysfile", "a b"},
		"# PasswordAuthentication no":  {"", ""},
		"":                             {"", ""},
	} {
		if k, v := sshdKeyValue(line); k != want[0] || v != want[1] {
			t.Errorf("sshdKeyValue(%q) = %q %q, want %q", line, k, v, want)
		}
	}
	if got := wantedSSHD(); len(got) != 4 || got[0] != (sshdSetting{"passwordauthentication", "no"}) || got[2] != (sshdSetting{"permitrootlogin", "no"}) {
		t.Errorf("wantedSSHD = %v", got)
	}
	h := &system.Host{Root: t.TempDir()}
	for las, want := range map[string]string{
		"listenaddress [::]:22\nlistenaddress 0.0.0.0:22\nport 22":  "127.0.0.1:22",
		"listenaddress [::]:2222\nport 2222":                        "[::1]:2222",
		"listenaddress 192.168.1.10:22\nport 22":                    "192.168.1.10:22",
		"listenaddress 192.168.1.10:22\nlistenaddress 127.0.0.1:22": "127.0.0.1:22",
		"port 2200": "127.0.0.1:2200",
	} {
		if got := sshTarget(h, parseSSHDEffective(las)).Addr; got != want {
			t.Errorf("sshTarget(%q) = %s, want %s", las, got, want)
		}
	}
	u := sshPasswd{Name: "admin", UID: 1000, Home: "/home/admin"}
	files := authorizedKeyFiles(parseSSHDEffective("authorizedkeysfile .ssh/authorized_keys /etc/ssh/keys/%u %h/k%%%U\n"), u)
	if strings.Join(files, " ") != "/home/admin/.ssh/authorized_keys /etc/ssh/keys/admin /home/admin/k%1000" {
		t.Errorf("authorizedKeyFiles = %q", files)
	}
}

// The registry holds the real Step 0.
func TestStep0Registered(t *testing.T) {
	s, ok := ByID(0)
	if !ok || !Available(s) || s.Title() != "Secure VM access (SSH keys only)" {
		t.Fatalf("ByID(0) = %#v", s)
	}
	if _, ok := s.(SSHStep); !ok {
		t.Errorf("step 0 is %T", s)
	}
}

// ---- a real sshd in a throwaway network namespace ----

// sshdWrapper runs a command the way this test's sshd sees the machine: in a private mount namespace with
// a tmpfs on /run (for /run/sshd) and the test root's etc/ssh, passwd, group, shadow, home and root
// bind-mounted over the real ones. The real /etc/ssh and users are never touched.
const sshdWrapper = `set -e
R=$1; shift
mount -t tmpfs -o mode=0755 tmpfs /run
mkdir -m 0755 /run/sshd
for d in etc/ssh etc/passwd etc/group etc/shadow home root; do mount --bind "$R/$d" "/$d"; done
exec "$@"`

// lockedBuffer collects sshd's log (-e) while it runs.
type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// realSSHDRunner runs the step's commands inside the namespace and the wrapper. `systemctl reload
// ssh.service` becomes SIGHUP to the test sshd (what ssh.service's ExecReload sends) and `journalctl -u
// ssh.service` reads the test sshd's own log, so Plan, Apply and Verify run unchanged against a real sshd.
type realSSHDRunner struct {
	ns, root string
	sshd     *exec.Cmd
	log      *lockedBuffer
	mu       sync.Mutex
	reloads  int
}

func (r *realSSHDRunner) Run(ctx context.Context, c system.Cmd) ([]byte, error) {
	key := strings.Join(c.Argv, " ")
	switch {
	case key == "systemctl reload ssh.service":
		r.mu.Lock()
		r.reloads++
		r.mu.Unlock()
		return nil, r.sshd.Process.Signal(syscall.SIGHUP)
	case strings.HasPrefix(key, "journalctl -u ssh.service"):
		return []byte(r.log.String()), nil
	case c.Argv[0] == "sudo":
		return nil, &system.CmdError{Argv: c.Argv, ExitCode: 127, Output: "not in this test", Err: errors.New("not run")}
	}
	orig := c.Argv
	c.Argv = append([]string{"ip", "netns", "exec", r.ns, "unshare", "-m", "--propagation", "private", "sh", "-c", sshdWrapper, "sh", r.root}, c.Argv...)
	out, err := system.ExecRunner{}.Run(ctx, c)
	var ce *system.CmdError
	if errors.As(err, &ce) {
		ce.Argv = orig
	}
	return out, err
}

// inNetns runs fn on a thread switched into the named network namespace, so the step's loopback dials
// reach the sshd there.
func inNetns(t *testing.T, name string, fn func()) {
	t.Helper()
	runtime.LockOSThread()
	orig, err := netns.Get()
	if err != nil {
		runtime.UnlockOSThread()
		t.Fatal(err)
	}
	defer orig.Close()
	target, err := netns.GetFromName(name)
	if err != nil {
		runtime.UnlockOSThread()
		t.Fatal(err)
	}
	defer target.Close()
	if err := netns.Set(target); err != nil {
		runtime.UnlockOSThread()
		t.Fatal(err)
	}
	defer func() {
		if err := netns.Set(orig); err != nil {
			t.Errorf("switching back to the original network namespace: %v (the thread stays locked and dies)", err)
			return
		}
		runtime.UnlockOSThread()
	}()
	fn()
}

func mustRun(t *testing.T, argv ...string) string {
	t.Helper()
	out, err := system.ExecRunner{}.Run(context.Background(), system.Cmd{Argv: argv, Timeout: 30 * time.Second})
	if err != nil {
		t.Fatalf("%v", err)
	}
	return string(out)
}

// TestNetnsStep0RealSSHD runs Step 0's Plan, Apply and Verify against a real OpenSSH sshd in a throwaway
// network namespace, configured like the lab image (Debian's sshd_config with PermitRootLogin yes, cloud-init's
// PasswordAuthentication yes), and proves with the SSH client that passwords and root logins work before and
// are refused after, that only publickey is offered, that the operator's open session survives the reload,
// and that a second plan says "No changes".
func TestNetnsStep0RealSSHD(t *testing.T) {
	switch {
	case testing.Short():
		t.Skip("-short")
	case runtime.GOOS != "linux" || os.Geteuid() != 0:
		t.Skip("needs root on Linux (network and mount namespaces)")
	}
	for _, tool := range []string{"/usr/sbin/sshd", "ip", "unshare", "ssh-keygen", "openssl", "getent"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s is not installed", tool)
		}
	}
	ctx := context.Background()
	root := t.TempDir()
	mk := func(p string, mode os.FileMode, content string) {
		t.Helper()
		full := filepath.Join(root, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(content), mode); err != nil {
			t.Fatal(err)
		}
	}
	// sshd configured like the lab image, on 127.0.0.1:2222, without PAM (passwords are checked in shadow).
	cfg := step0Data(t, "debian12-sshd_config")
	for old, repl := range map[string]string{"#Port 22\n": "Port 2222\n", "#ListenAddress 0.0.0.0\n": "ListenAddress 127.0.0.1\n",
		"#HostKey /etc/ssh/ssh_host_ed25519_key\n": "HostKey /etc/ssh/ssh_host_ed25519_key\n", "UsePAM yes\n": "UsePAM no\n"} {
		if !strings.Contains(cfg, old) {
			t.Fatalf("debian12-sshd_config has no %q", old)
		}
		cfg = strings.Replace(cfg, old, repl, 1)
	}
	mk("etc/ssh/sshd_config", 0o644, cfg)
	mk("etc/ssh/sshd_config.d/50-cloud-init.conf", 0o644, "PasswordAuthentication yes\n")
	mustRun(t, "ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "test host key", "-f", filepath.Join(root, "etc/ssh/ssh_host_ed25519_key"))

	// Users: the real ones plus ochadmin (in group sudo), with passwords the test knows.
	const user, uid, password = "ochadmin", 64242, "och-test-pass"
	hash := strings.TrimSpace(mustRun(t, "openssl", "passwd", "-6", password))
	passwd, _ := os.ReadFile("/etc/passwd")
	group, _ := os.ReadFile("/etc/group")
	shadow, _ := os.ReadFile("/etc/shadow")
	var sh []string
	for _, l := range strings.Split(strings.TrimSpace(string(shadow)), "\n") {
		if strings.HasPrefix(l, "root:") {
			f := strings.Split(l, ":")
			f[1] = hash // root's account must not look locked, or its key login would fail for that reason
			l = strings.Join(f, ":")
		}
		sh = append(sh, l)
	}
	var gr []string
	for _, l := range strings.Split(strings.TrimSpace(string(group)), "\n") {
		if strings.HasPrefix(l, "sudo:") {
			if strings.HasSuffix(l, ":") {
				l += user
			} else {
				l += "," + user
			}
		}
		gr = append(gr, l)
	}
	mk("etc/passwd", 0o644, strings.TrimSpace(string(passwd))+fmt.Sprintf("\n%s:x:%d:%d:och test admin:/home/%s:/bin/sh\n", user, uid, uid, user))
	mk("etc/group", 0o644, strings.Join(gr, "\n")+fmt.Sprintf("\n%s:x:%d:\n", user, uid))
	mk("etc/shadow", 0o640, strings.Join(sh, "\n")+fmt.Sprintf("\n%s:%s:19000:0:99999:7:::\n", user, hash))

	// The operator's key: authorized for ochadmin and, to prove the root check can fail, for root too.
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	authorized := string(ssh.MarshalAuthorizedKey(signer.PublicKey()))
	mk("home/"+user+"/.ssh/authorized_keys", 0o600, authorized)
	mk("root/.ssh/authorized_keys", 0o600, authorized)
	for _, p := range []string{"home/" + user, "home/" + user + "/.ssh", "home/" + user + "/.ssh/authorized_keys"} {
		if err := os.Chown(filepath.Join(root, p), uid, uid); err != nil {
			t.Fatal(err)
		}
	}
	os.Chmod(filepath.Join(root, "home/"+user+"/.ssh"), 0o700)
	os.Chmod(filepath.Join(root, "root"), 0o700)

	// Its ssh-agent, "forwarded" into the session: the step's Verify logs in with it.
	kr := agent.NewKeyring()
	if err := kr.Add(agent.AddedKey{PrivateKey: priv}); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(t.TempDir(), "agent.sock")
	aln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer aln.Close()
	go func() {
		for {
			c, err := aln.Accept()
			if err != nil {
				return
			}
			go func() { defer c.Close(); _ = agent.ServeAgent(kr, c) }()
		}
	}()

	// The namespace and the sshd in it.
	var rnd [4]byte
	rand.Read(rnd[:])
	ns := "ochtest-step0-" + hex.EncodeToString(rnd[:])
	mustRun(t, "ip", "netns", "add", ns)
	t.Cleanup(func() {
		_, _ = system.ExecRunner{}.Run(context.Background(), system.Cmd{Argv: []string{"ip", "netns", "del", ns}})
	})
	mustRun(t, "ip", "-n", ns, "link", "set", "lo", "up")
	log := &lockedBuffer{}
	sshd := exec.Command("ip", "netns", "exec", ns, "unshare", "-m", "--propagation", "private", "sh", "-c", sshdWrapper, "sh", root,
		"/usr/sbin/sshd", "-D", "-e")
	sshd.Stdout, sshd.Stderr = log, log
	sshd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := sshd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = sshd.Wait(); close(done) }()
	t.Cleanup(func() {
		_ = syscall.Kill(-sshd.Process.Pid, syscall.SIGKILL)
		<-done
		if t.Failed() {
			t.Logf("sshd log:\n%s", log.String())
		}
	})

	runner := &realSSHDRunner{ns: ns, root: root, sshd: sshd, log: log}
	env := map[string]string{"SSH_AUTH_SOCK": sock}
	h := &system.Host{Runner: runner, Root: root, StateDir: filepath.Join(root, "var/lib/openclaw-harden"),
		Env: func(k string) string { return env[k] }}
	step := SSHStep{} // the real SSH client
	answers := Defaults()
	answers.AdminUser = user
	target := system.SSHTarget{Addr: "127.0.0.1:2222", Timeout: 5 * time.Second}
	keys := system.SSHKeySetFromSigners(signer)

	// waitFor polls until cond holds (sshd starting, or re-executing after SIGHUP).
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(15 * time.Second)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s", what)
			}
			select {
			case <-done:
				t.Fatalf("sshd exited while waiting for %s", what)
			case <-time.After(100 * time.Millisecond):
			}
		}
	}
	offered := func() []string {
		var p system.SSHAuthProbe
		var err error
		inNetns(t, ns, func() { p, err = h.SSHProbeAuth(ctx, target, user) })
		if err != nil {
			return nil
		}
		return p.Methods
	}
	clientLogin := func(u string, auth ssh.AuthMethod) (*ssh.Client, error) {
		var c *ssh.Client
		var err error
		inNetns(t, ns, func() {
			c, err = ssh.Dial("tcp", target.Addr, &ssh.ClientConfig{User: u, Auth: []ssh.AuthMethod{auth},
				HostKeyCallback: ssh.InsecureIgnoreHostKey(), Timeout: 5 * time.Second})
		})
		return c, err
	}

	waitFor("sshd to listen", func() bool { return len(offered()) > 0 })
	if comm, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", sshd.Process.Pid)); strings.TrimSpace(string(comm)) != "sshd" {
		t.Fatalf("the started process is %q, not sshd: SIGHUP would miss it", comm)
	}

	// Before: passwords offered and working, root gets in with a key.
	if m := offered(); !slices.Contains(m, "password") || !slices.Contains(m, "publickey") {
		t.Fatalf("before: offered %v, want password and publickey", m)
	}
	pc, err := clientLogin(user, ssh.Password(password))
	if err != nil {
		t.Fatalf("before: password login as %s: %v", user, err)
	}
	pc.Close()
	inNetns(t, ns, func() { _, err = h.SSHLogin(ctx, target, "root", keys) })
	if err != nil {
		t.Fatalf("before: root key login: %v", err)
	}
	// The operator's own session, logged in with the key; the tool runs "in" it.
	operator, err := clientLogin(user, ssh.PublicKeys(signer))
	if err != nil {
		t.Fatalf("operator key login: %v", err)
	}
	defer operator.Close()
	la, ra := operator.LocalAddr().(*net.TCPAddr), operator.RemoteAddr().(*net.TCPAddr)
	env["SSH_CONNECTION"] = fmt.Sprintf("%s %d %s %d", la.IP, la.Port, ra.IP, ra.Port)
	waitFor("sshd to log the operator's key login", func() bool {
		return strings.Contains(log.String(), fmt.Sprintf("Accepted publickey for %s from 127.0.0.1 port %d", user, la.Port))
	})

	// Verify before Apply fails where it must.
	var cs []Check
	inNetns(t, ns, func() { cs = step.Verify(ctx, h, answers) })
	for _, id := range []string{"step0.dropin", "step0.effective.passwordauthentication", "step0.effective.permitrootlogin", "step0.client.methods", "step0.client.root"} {
		if c := checkByID(cs, id); c.OK {
			t.Errorf("before apply, %s passed: %+v", id, c)
		}
	}
	if c := checkByID(cs, "step0.client.root"); !strings.Contains(c.Got, "logged in as root") {
		t.Errorf("before apply, root check: %+v", c)
	}

	// Plan: the effective values from the real sshd -T, the guard satisfied by this session's key login.
	var p Plan
	inNetns(t, ns, func() { p, err = step.Plan(ctx, h, answers) })
	if err != nil {
		t.Fatal(err)
	}
	if p.Blocked != "" || p.Risk != "" {
		t.Fatalf("blocked %q risk %q; notes %q", p.Blocked, p.Risk, p.Notes)
	}
	if eff := p.Changes[1]; !strings.Contains(eff.Before, "passwordauthentication yes") || !strings.Contains(eff.Before, "permitrootlogin yes") {
		t.Errorf("effective before: %q", eff.Before)
	}
	if !noteWith(p, "this session logged in with a key") {
		t.Errorf("notes %q", p.Notes)
	}
	h.SetStep(0)
	if err := step.Apply(ctx, h, p); err != nil {
		t.Fatalf("Apply: %v", err)
	}
	if runner.reloads != 1 {
		t.Errorf("%d reloads, want 1", runner.reloads)
	}
	waitFor("the reloaded sshd to offer publickey only", func() bool { return slices.Equal(offered(), []string{"publickey"}) })

	// After: Verify green, the operator's session still alive, passwords and root refused.
	inNetns(t, ns, func() { cs = step.Verify(ctx, h, answers) })
	if !Passed(cs) {
		for _, c := range cs {
			t.Logf("%s ok=%v got=%q reason=%q", c.ID, c.OK, c.Got, c.Reason)
		}
		t.Fatal("verify failed after apply")
	}
	for _, c := range cs {
		t.Logf("verify after apply: %s: %s", c.Name, c.Got)
	}
	if c := checkByID(cs, "step0.client.keylogin"); !strings.Contains(c.Got, "ssh-agent") {
		t.Errorf("the key login was not tried with the agent: %+v", c)
	}
	if c := checkByID(cs, "step0.client.methods"); !strings.Contains(c.Got, "host key pinned") {
		t.Errorf("host key not pinned: %+v", c)
	}
	s, err := operator.NewSession()
	if err != nil {
		t.Fatalf("the operator's session did not survive the reload: %v", err)
	}
	out, err := s.Output("echo alive")
	s.Close()
	if err != nil || strings.TrimSpace(string(out)) != "alive" {
		t.Errorf("command on the open session after the reload: %q %v", out, err)
	}
	if c, err := clientLogin(user, ssh.Password(password)); err == nil {
		c.Close()
		t.Error("after: the password login still works")
	}
	inNetns(t, ns, func() { _, err = h.SSHLogin(ctx, target, "root", keys) })
	if !errors.Is(err, system.ErrSSHAuthRefused) {
		t.Errorf("after: root key login: %v, want refused", err)
	}
	c, err := clientLogin(user, ssh.PublicKeys(signer))
	if err != nil {
		t.Errorf("after: key login: %v", err)
	} else {
		c.Close()
	}

	// Second run: nothing to do.
	inNetns(t, ns, func() { p, err = step.Plan(ctx, h, answers) })
	if err != nil || !p.Empty() || p.Summary() != "No changes" {
		t.Errorf("second plan: %v, %q, pending %+v", err, p.Summary(), p.Pending())
	}

	// Rollback puts the machine back: the drop-in goes, and after a reload passwords are offered again.
	if paths, err := h.Rollback(0); err != nil || len(paths) != 1 || paths[0] != sshdDropinPath {
		t.Fatalf("rollback: %v %v", paths, err)
	}
	if _, err := runner.Run(ctx, system.Cmd{Argv: []string{"systemctl", "reload", "ssh.service"}}); err != nil {
		t.Fatal(err)
	}
	waitFor("passwords to be offered again after the rollback", func() bool { return slices.Contains(offered(), "password") })
	if testing.Verbose() {
		t.Logf("sshd log:\n%s", log.String())
	}
}

// sshd -T's two common failures say what they mean and what to do, in Step 0's plan error and Step 1's note.
func TestSSHDTFailuresAreExplained(t *testing.T) {
	for _, c := range []struct{ stderr, want string }{
		{"Missing privilege separation directory: /run/sshd", "sshd has not run since this boot (it creates /run/sshd when it starts): start it with `systemctl start ssh`"},
		{"/etc/ssh/sshd_config: Permission denied", "sshd -T needs root"},
		{"Bad configuration option: Foo", "Bad configuration option: Foo"},
	} {
		r := system.NewFakeRunner(nil)
		r.Set("sshd -T", system.FakeResponse{Exit: 255, Stderr: c.stderr})
		h := system.NewFakeHost(t.TempDir(), t.TempDir(), r, false)
		_, err := readEffective(context.Background(), h, "")
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), c.stderr) {
			t.Errorf("%s: %v; want it to say %q", c.stderr, err, c.want)
		}
		if c.want == c.stderr && strings.Contains(err.Error(), "needs root") {
			t.Errorf("%s: %v; an unrelated failure blamed on root", c.stderr, err)
		}
		snap, _ := TakeSnapshot(context.Background(), h)
		if notes := strings.Join(snap.Notes, "\n"); !strings.Contains(notes, c.want) {
			t.Errorf("%s: snapshot notes %q; want %q", c.stderr, notes, c.want)
		}
	}
}
