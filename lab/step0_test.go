package lab

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"
)

// step0Exec runs cmd on an SSH client of the test's own (not the harness's), optionally forwarding an
// ssh-agent holding keys into the session. A non-zero exit is reported in code, not in err.
func step0Exec(c *ssh.Client, cmd string, keys agent.Agent) (stdout, stderr string, code int, err error) {
	s, err := c.NewSession()
	if err != nil {
		return "", "", -1, err
	}
	defer s.Close()
	if keys != nil {
		if err := agent.ForwardToAgent(c, keys); err != nil {
			return "", "", -1, err
		}
		if err := agent.RequestAgentForwarding(s); err != nil {
			return "", "", -1, err
		}
	}
	var o, e bytes.Buffer
	s.Stdout, s.Stderr = &o, &e
	done := make(chan error, 1)
	go func() { done <- s.Run(cmd) }()
	select {
	case err = <-done:
	case <-time.After(runTimeout):
		return o.String(), e.String(), -1, fmt.Errorf("%q timed out", cmd)
	}
	var ee *ssh.ExitError
	switch {
	case err == nil:
		return o.String(), e.String(), 0, nil
	case errors.As(err, &ee):
		return o.String(), e.String(), ee.ExitStatus(), nil
	}
	return o.String(), e.String(), -1, err
}

// step0Login logs in from the admin host (192.168.1.50) and says whether the VM let user in. It retries
// while sshd does not answer (a reload briefly refuses new connections), so "refused" always means the
// server refused the credentials, never that nothing answered.
func step0Login(l *Lab, user string, auth ...ssh.AuthMethod) (bool, error) {
	deadline := time.Now().Add(30 * time.Second)
	for {
		c, err := l.SSHFrom(NSAdmin, user, auth...)
		if err == nil {
			c.Close()
			return true, nil
		}
		if strings.Contains(err.Error(), "unable to authenticate") {
			return false, nil
		}
		if time.Now().After(deadline) {
			return false, fmt.Errorf("no answer from the VM's sshd: %w", err)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// step0Passwords are both ways a password can be sent: the password method and keyboard-interactive.
func step0Passwords(pw string) []ssh.AuthMethod {
	return []ssh.AuthMethod{ssh.Password(pw), ssh.KeyboardInteractive(func(_, _ string, qs []string, _ []bool) ([]string, error) {
		ans := make([]string, len(qs))
		for i := range ans {
			ans[i] = pw
		}
		return ans, nil
	})}
}

// step0SSHSums is a checksum of every file under /etc/ssh (with its mode and owner) and the listing of
// sshd_config.d: "changed nothing" is proven by comparing two of these.
const step0SSHSums = "cd /etc/ssh && find . -type f -printf '%p %m %u:%g ' -exec sha256sum {} \\; | sort && ls -la sshd_config.d"

func step0Effective(t *testing.T, out string) map[string]string {
	t.Helper()
	m := map[string]string{}
	for _, line := range strings.Split(out, "\n") {
		if f := strings.Fields(line); len(f) == 2 {
			m[f[0]] = f[1]
		}
	}
	return m
}

// TestLabStep0SSH boots one fresh VM (cloud-init's 50-cloud-init.conf says PasswordAuthentication yes, root
// may log in) and proves Step 0 on it, headless, as an operator would run it:
//
//   - before: password logins for admin and root work from the admin host;
//   - with admin's key removed, Step 0 refuses (exit 1, the Blocked sentence, the key commands) and
//     nothing under /etc/ssh changes;
//   - with the key back, Step 0 applies from the harness's key session (the guard sees that session's
//     key login): the key works, passwords (both methods) and root fail, the open session survives the
//     reload, and a second run says "No changes" and verifies green, once with the key tried through a
//     forwarded ssh-agent.
func TestLabStep0SSH(t *testing.T) {
	l := Start(t)
	if err := l.InstallBinary(); err != nil {
		t.Fatalf("the project binary could not be built or installed: %v", err)
	}
	answers, err := os.ReadFile(filepath.Join(srcDir(), "testdata", "lab.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := l.WriteFile("/root/lab.yaml", answers, 0o600); err != nil {
		t.Fatal(err)
	}
	const apply = "openclaw-harden apply --answers /root/lab.yaml --yes --step 0"
	key := ssh.PublicKeys(l.Signer())

	t.Run("before", func(t *testing.T) {
		done := l.Phase("step 0: logins before")
		defer done()
		for _, c := range []struct {
			user, pw string
		}{{AdminUser, AdminPassword}, {"root", RootPassword}} {
			ok, err := step0Login(l, c.user, step0Passwords(c.pw)...)
			if err != nil || !ok {
				t.Errorf("before Step 0, the password login as %s from %s: ok=%v %v (the fresh image allows it)", c.user, AdminAddr, ok, err)
			}
		}
		eff := step0Effective(t, l.MustRun(t, "sshd -T"))
		if eff["passwordauthentication"] != "yes" || eff["permitrootlogin"] != "yes" {
			t.Errorf("fresh VM: sshd -T passwordauthentication %q, permitrootlogin %q; want yes, yes", eff["passwordauthentication"], eff["permitrootlogin"])
		}
		if o := l.MustRun(t, "cat /etc/ssh/sshd_config.d/50-cloud-init.conf"); !strings.Contains(o, "PasswordAuthentication yes") {
			t.Errorf("50-cloud-init.conf: %q", o)
		}
	})
	if t.Failed() {
		t.FailNow()
	}

	t.Run("no-key-refuses", func(t *testing.T) {
		done := l.Phase("step 0: refuse without a key")
		defer done()
		// admin logs in with the password (its key is about to go), as a user without a key would.
		pc, err := l.SSHFrom(NSAdmin, AdminUser, ssh.Password(AdminPassword))
		if err != nil {
			t.Fatalf("password login as admin: %v", err)
		}
		defer pc.Close()
		run := func(cmd string) (string, string, int) {
			t.Helper()
			o, e, code, err := step0Exec(pc, "sudo -n LC_ALL=C /bin/sh -c "+shellQuote(cmd), nil)
			if err != nil {
				t.Fatalf("%q: %v", cmd, err)
			}
			return o, e, code
		}
		if _, e, code := run("mv /home/admin/.ssh/authorized_keys /root/admin-authorized_keys.saved"); code != 0 {
			t.Fatalf("removing admin's key: exit %d %s", code, e)
		}
		defer func() {
			if _, e, code := run("mv /root/admin-authorized_keys.saved /home/admin/.ssh/authorized_keys && " +
				"chown admin:admin /home/admin/.ssh/authorized_keys && chmod 0600 /home/admin/.ssh/authorized_keys"); code != 0 {
				t.Fatalf("putting admin's key back: exit %d %s", code, e)
			}
		}()
		before, _, _ := run(step0SSHSums)
		o, e, code := run(apply)
		t.Logf("apply --step 0 without a key: exit %d\nstdout:\n%s\nstderr:\n%s", code, o, e)
		const sentence = "admin has no SSH key in /home/admin/.ssh/authorized_keys or /home/admin/.ssh/authorized_keys2, " +
			"so switching passwords off would lock everyone out; add a key with the commands below, log in with it, and plan again"
		if code != 1 {
			t.Errorf("exit %d, want 1", code)
		}
		if !strings.Contains(o, "BLOCKED: "+sentence) || !strings.Contains(e, "step 0: blocked: "+sentence) {
			t.Errorf("the Blocked sentence is missing from the output")
		}
		for _, c := range []string{`ssh-keygen -t ed25519 -C "openclaw-vm" -f ~/.ssh/openclaw_vm`,
			"ssh-copy-id -i ~/.ssh/openclaw_vm.pub admin@" + VMAddr, "ssh -i ~/.ssh/openclaw_vm admin@" + VMAddr} {
			if !strings.Contains(o, c) {
				t.Errorf("the output lacks the command %q", c)
			}
		}
		after, _, _ := run(step0SSHSums)
		if before != after || strings.Contains(after, "00-openclaw-harden.conf") {
			t.Errorf("/etc/ssh changed although Step 0 refused:\nbefore:\n%s\nafter:\n%s", before, after)
		}
		// The tool journals every command it runs and every file it writes: none for Step 0.
		if j, _, _ := run("cat /var/lib/openclaw-harden/journal.log 2>/dev/null || true"); strings.Contains(j, "step=0 run:") || strings.Contains(j, "step=0 write:") {
			t.Errorf("the tool ran or wrote something for Step 0 although it refused:\n%s", j)
		}
		if o, _, _ := run("ls /var/lib/openclaw-harden/backups 2>/dev/null | wc -l"); strings.TrimSpace(o) != "0" {
			t.Errorf("backups were made although Step 0 refused: %s", o)
		}
		if ok, err := step0Login(l, AdminUser, ssh.Password(AdminPassword)); !ok || err != nil {
			t.Errorf("after the refusal the password login no longer works: %v %v", ok, err)
		}
	})
	if t.Failed() {
		t.FailNow()
	}

	// The operator's own key session, open across the reload.
	operator, err := l.SSHFrom(NSAdmin, AdminUser, key)
	if err != nil {
		t.Fatalf("admin key login: %v", err)
	}
	defer operator.Close()

	t.Run("apply", func(t *testing.T) {
		done := l.Phase("step 0: apply headless")
		o, e, code, err := l.Run(apply)
		done()
		t.Logf("apply --step 0: exit %d\nstdout:\n%s\nstderr:\n%s", code, o, e)
		if err != nil || code != 0 {
			t.Fatalf("apply --step 0: exit %d, %v", code, err)
		}
		// The guard was satisfied by the harness's own key session (SSH_CONNECTION of sudo's parent).
		if !strings.Contains(o, "Key login proven: this session logged in with a key") || !strings.Contains(o, "Accepted publickey for admin from "+AdminAddr) {
			t.Errorf("the guard did not see this session's key login")
		}
		for _, want := range []string{"validate: sshd -t -f", "run: sshd -t -> exit 0", "run: systemctl reload ssh.service -> exit 0",
			"✓ step 0 logins offered to admin at 127.0.0.1:22: expected publickey only, got publickey (host key pinned)",
			"✓ step 0 root login over SSH refused", "✓ step 0 admin key login"} {
			if !strings.Contains(o, want) {
				t.Errorf("apply output lacks %q", want)
			}
		}
		if strings.Contains(o, "restart") {
			t.Error("apply restarted something; Step 0 reloads")
		}
	})
	if t.Failed() {
		t.FailNow()
	}

	t.Run("after", func(t *testing.T) {
		done := l.Phase("step 0: logins after")
		defer done()
		if ok, err := step0Login(l, AdminUser, key); !ok || err != nil {
			t.Errorf("after Step 0, admin's key login: ok=%v %v", ok, err)
		}
		for _, c := range []struct {
			user string
			auth []ssh.AuthMethod
		}{
			{AdminUser, step0Passwords(AdminPassword)},
			{"root", step0Passwords(RootPassword)},
			{"root", []ssh.AuthMethod{key}},
		} {
			ok, err := step0Login(l, c.user, c.auth...)
			if err != nil || ok {
				t.Errorf("after Step 0, %s with %d method(s) got in (ok=%v, %v)", c.user, len(c.auth), ok, err)
			}
		}
		// What the server offers a client that sends nothing.
		var offered []string
		cfg := l.clientConfig(AdminUser)
		cfg.AuthCallback = func(c *ssh.ClientAuthContext) (ssh.AuthMethod, error) {
			offered = c.AllowedMethods
			return nil, errors.New("probe only")
		}
		if c, err := l.sshTo(NSAdmin, VMAddr+":22", cfg); err == nil {
			c.Close()
		}
		if strings.Join(offered, ",") != "publickey" {
			t.Errorf("after Step 0 the VM offers %v from %s, want publickey only", offered, AdminAddr)
		}
		eff := step0Effective(t, l.MustRun(t, "sshd -T"))
		for k, v := range map[string]string{"passwordauthentication": "no", "kbdinteractiveauthentication": "no", "permitrootlogin": "no", "pubkeyauthentication": "yes"} {
			if eff[k] != v {
				t.Errorf("sshd -T %s = %q, want %q", k, eff[k], v)
			}
		}
		// The guide's sed would have left this on; it is still there, and loses to the drop-in.
		if o := l.MustRun(t, "cat /etc/ssh/sshd_config.d/50-cloud-init.conf"); !strings.Contains(o, "PasswordAuthentication yes") {
			t.Errorf("50-cloud-init.conf was changed: %q", o)
		}
		// The session opened before the reload is still alive.
		o, e, code, err := step0Exec(operator, "echo alive", nil)
		if err != nil || code != 0 || strings.TrimSpace(o) != "alive" {
			t.Errorf("the key session opened before the reload: %q %q exit %d %v", o, e, code, err)
		}
	})

	t.Run("second-run", func(t *testing.T) {
		done := l.Phase("step 0: second run")
		o, e, code, err := l.Run(apply)
		done()
		t.Logf("second apply --step 0: exit %d\nstdout:\n%s\nstderr:\n%s", code, o, e)
		if err != nil || code != 0 || !strings.Contains(o, "No changes") || strings.Contains(o, "applying") {
			t.Errorf("second run: exit %d %v; want exit 0 and \"No changes\"", code, err)
		}
		// verify, with admin's key offered through a forwarded agent: the key login is really tried.
		keyring := agent.NewKeyring()
		priv, err := os.ReadFile(l.Image.Key)
		if err != nil {
			t.Fatal(err)
		}
		raw, err := ssh.ParseRawPrivateKey(priv)
		if err != nil {
			t.Fatal(err)
		}
		if err := keyring.Add(agent.AddedKey{PrivateKey: raw}); err != nil {
			t.Fatal(err)
		}
		o, e, code, err = step0Exec(operator, "sudo -n LC_ALL=C openclaw-harden verify --answers /root/lab.yaml --step 0", keyring)
		t.Logf("verify --step 0 with a forwarded agent: exit %d\n%s%s", code, o, e)
		if err != nil || code != 0 {
			t.Errorf("verify: exit %d %v", code, err)
		}
		if !strings.Contains(o, "✓ step 0 admin key login: expected a key login succeeds, got logged in at 127.0.0.1:22 with a key from this session's ssh-agent") {
			t.Error("verify did not log in with the forwarded agent's key")
		}
		if !strings.Contains(o, "a throwaway key and 1 key(s) from this session's ssh-agent") {
			t.Error("verify did not try root with the agent's key")
		}
	})

	var b strings.Builder
	for _, tm := range l.Timings() {
		fmt.Fprintf(&b, "  %-50s %6.1fs\n", tm.Phase, tm.Took.Seconds())
	}
	t.Logf("lab figures:\n%s", b.String())
}
