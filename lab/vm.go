package lab

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
)

// Generous waits: boot to SSH takes 16-20 s under TCG here, a reboot 18-48 s.
const (
	bootTimeout   = 5 * time.Minute
	runTimeout    = 10 * time.Minute
	KernelCmdline = "root=/dev/vda rw console=ttyS0 net.ifnames=0 mitigations=off"
)

// Boot creates a fresh copy-on-write overlay of the image, starts qemu in the router namespace and waits
// until SSH answers as admin from the admin host. Start calls it.
func (l *Lab) Boot() error {
	done := l.Phase("boot the VM to SSH")
	overlay := filepath.Join(l.Dir, "overlay.qcow2")
	if _, err := run(context.Background(), "qemu-img", "create", "-q", "-f", "qcow2", "-F", "raw", "-b", l.Image.Base, overlay); err != nil {
		return err
	}
	console := filepath.Join(l.Dir, "console.log")
	argv := []string{"ip", "netns", "exec", NSRouter,
		"qemu-system-x86_64", "-name", "ochlab-vm,process=ochlab-vm", "-accel", "tcg,thread=multi",
		"-machine", "pc", "-m", "2048", "-smp", "2", "-nodefaults", "-no-user-config", "-display", "none",
		"-kernel", l.Image.Kernel, "-initrd", l.Image.Initrd, "-append", KernelCmdline,
		"-drive", "file=" + overlay + ",if=virtio,format=qcow2,cache=unsafe,discard=unmap",
		"-netdev", "tap,id=n0,ifname=" + TapName + ",script=no,downscript=no",
		"-device", "virtio-net-pci,netdev=n0,mac=" + VMMAC,
		"-device", "virtio-rng-pci",
		"-serial", "file:" + console, "-monitor", "none",
		"-pidfile", filepath.Join(runDir, "qemu.pid"),
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), "LC_ALL=C")
	var qout bytes.Buffer
	cmd.Stdout, cmd.Stderr = &qout, &qout
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
	qdone := make(chan struct{})
	started := make(chan error, 1)
	go func() {
		// PR_SET_PDEATHSIG belongs to the forking thread: keep this thread for qemu's whole life.
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		if err := cmd.Start(); err != nil {
			started <- err
			close(qdone)
			return
		}
		started <- nil
		_ = cmd.Wait()
		close(qdone)
	}()
	if err := <-started; err != nil {
		return fmt.Errorf("starting qemu: %w", err)
	}
	l.mu.Lock()
	l.qemu, l.qemuDone = cmd, qdone
	l.mu.Unlock()
	l.Logf("qemu pid %d: %s", cmd.Process.Pid, strings.Join(argv[4:], " "))
	if err := l.waitSSH(bootTimeout, ""); err != nil {
		if qout.Len() > 0 {
			err = fmt.Errorf("%w\nqemu said: %s", err, qout.String())
		}
		return err
	}
	done()
	if o, _, code, err := l.Run("systemd-analyze time 2>&1 | head -n 1"); err == nil && code == 0 {
		l.Logf("VM: %s", strings.TrimSpace(o))
	}
	return nil
}

// qemuExited reports whether qemu has exited.
func (l *Lab) qemuExited() bool {
	l.mu.Lock()
	qd := l.qemuDone
	l.mu.Unlock()
	if qd == nil {
		return true
	}
	select {
	case <-qd:
		return true
	default:
		return false
	}
}

func (l *Lab) clientConfig(user string, auth ...ssh.AuthMethod) *ssh.ClientConfig {
	return &ssh.ClientConfig{
		User:              user,
		Auth:              auth,
		HostKeyCallback:   ssh.FixedHostKey(l.hostKey),
		HostKeyAlgorithms: []string{l.hostKey.Type()},
		Timeout:           15 * time.Second,
	}
}

// SSHFrom opens an SSH connection to the VM (192.168.1.10:22) from lab namespace ns as user with the given
// authentication (e.g. ssh.Password(lab.AdminPassword), ssh.PublicKeys(l.Signer())). The host key is pinned.
// The caller closes the client. An error means the login (or the connection) was refused.
func (l *Lab) SSHFrom(ns, user string, auth ...ssh.AuthMethod) (*ssh.Client, error) {
	return l.sshTo(ns, net.JoinHostPort(VMAddr, "22"), l.clientConfig(user, auth...))
}

func (l *Lab) sshTo(ns, addr string, cfg *ssh.ClientConfig) (*ssh.Client, error) {
	c, err := DialFrom(ns, addr, 5*time.Second)
	if err != nil {
		return nil, err
	}
	_ = c.SetDeadline(time.Now().Add(cfg.Timeout))
	sc, chans, reqs, err := ssh.NewClientConn(c, addr, cfg)
	if err != nil {
		_ = c.Close()
		return nil, err
	}
	_ = c.SetDeadline(time.Time{})
	return ssh.NewClient(sc, chans, reqs), nil
}

// waitSSH polls until admin can log in with the harness key from the admin host (and, if notBoot is set,
// the VM's boot id differs from it).
func (l *Lab) waitSSH(timeout time.Duration, notBoot string) error {
	deadline := time.Now().Add(timeout)
	var last error
	for {
		if l.qemuExited() {
			return fmt.Errorf("qemu exited while waiting for SSH (serial console: %s)", filepath.Join(l.Dir, "console.log"))
		}
		c, err := l.SSHFrom(NSAdmin, AdminUser, ssh.PublicKeys(l.signer))
		if err == nil {
			if notBoot == "" {
				l.setClient(c)
				return nil
			}
			id, err2 := bootIDOf(c)
			if err2 == nil && id != notBoot {
				l.setClient(c)
				return nil
			}
			_ = c.Close()
			err = fmt.Errorf("still the old boot (%s)", id)
			if err2 != nil {
				err = err2
			}
		}
		last = err
		if err != nil && strings.Contains(err.Error(), "host key mismatch") {
			return fmt.Errorf("the VM's SSH host key is not the image's (%s): %w", l.Image.HostKey, err)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("VM SSH did not answer within %s: %v (serial console: %s)", timeout, last, filepath.Join(l.Dir, "console.log"))
		}
		time.Sleep(500 * time.Millisecond)
	}
}

func (l *Lab) setClient(c *ssh.Client) {
	l.mu.Lock()
	old := l.client
	l.client = c
	l.mu.Unlock()
	if old != nil {
		_ = old.Close()
	}
}

func bootIDOf(c *ssh.Client) (string, error) {
	s, err := c.NewSession()
	if err != nil {
		return "", err
	}
	defer s.Close()
	out, err := s.Output("cat /proc/sys/kernel/random/boot_id")
	return strings.TrimSpace(string(out)), err
}

// session opens a session on the admin connection, reconnecting once if it was lost (sshd reload, reboot).
func (l *Lab) session() (*ssh.Session, error) {
	l.mu.Lock()
	c := l.client
	l.mu.Unlock()
	if c != nil {
		if s, err := c.NewSession(); err == nil {
			return s, nil
		}
	}
	var err error
	for i := 0; i < 5; i++ { // reloading sshd briefly refuses new connections
		var nc *ssh.Client
		nc, err = l.SSHFrom(NSAdmin, AdminUser, ssh.PublicKeys(l.signer))
		if err == nil {
			l.setClient(nc)
			return nc.NewSession()
		}
		time.Sleep(time.Second)
	}
	return nil, fmt.Errorf("SSH to the VM as admin from %s: %w", AdminAddr, err)
}

// shellQuote quotes s for a POSIX shell.
func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// Run runs cmd (a shell command line) on the VM as root (admin via sudo). err is set only when the command
// could not be run or timed out; a non-zero exit is reported in exit.
func (l *Lab) Run(cmd string) (stdout, stderr string, exit int, err error) {
	return l.RunInput(cmd, nil)
}

// RunInput is Run with stdin.
func (l *Lab) RunInput(cmd string, stdin io.Reader) (stdout, stderr string, exit int, err error) {
	return l.RunTimeout(cmd, stdin, runTimeout)
}

// RunTimeout is Run with stdin and a deadline.
func (l *Lab) RunTimeout(cmd string, stdin io.Reader, timeout time.Duration) (stdout, stderr string, exit int, err error) {
	s, err := l.session()
	if err != nil {
		return "", "", -1, err
	}
	defer s.Close()
	var o, e bytes.Buffer
	s.Stdout, s.Stderr = &o, &e
	if stdin != nil {
		s.Stdin = stdin
	}
	full := "sudo -n LC_ALL=C /bin/sh -c " + shellQuote(cmd)
	errc := make(chan error, 1)
	go func() { errc <- s.Run(full) }()
	select {
	case err = <-errc:
	case <-time.After(timeout):
		_ = s.Close()
		return o.String(), e.String(), -1, fmt.Errorf("VM command %q timed out after %s", cmd, timeout)
	}
	var ee *ssh.ExitError
	switch {
	case err == nil:
		return o.String(), e.String(), 0, nil
	case errors.As(err, &ee):
		return o.String(), e.String(), ee.ExitStatus(), nil
	default:
		return o.String(), e.String(), -1, fmt.Errorf("VM command %q: %w", cmd, err)
	}
}

// MustRun runs cmd on the VM and fails t (the calling test or subtest) unless it exits 0; it returns stdout.
func (l *Lab) MustRun(t testing.TB, cmd string) string {
	t.Helper()
	o, e, code, err := l.Run(cmd)
	if err != nil || code != 0 {
		t.Fatalf("VM: %q: exit %d, err %v\nstdout: %s\nstderr: %s", cmd, code, err, o, e)
	}
	return o
}

// WriteFile writes data to path on the VM (as root, atomically via a temporary file) with mode.
func (l *Lab) WriteFile(path string, data []byte, mode os.FileMode) error {
	tmp := path + ".lab-tmp"
	cmd := fmt.Sprintf("cat > %s && chmod %o %s && mv -f %s %s", shellQuote(tmp), mode.Perm(), shellQuote(tmp), shellQuote(tmp), shellQuote(path))
	_, e, code, err := l.RunInput(cmd, bytes.NewReader(data))
	if err != nil {
		return err
	}
	if code != 0 {
		return fmt.Errorf("writing %s on the VM: exit %d: %s", path, code, e)
	}
	return nil
}

// Copy copies the local file to remote on the VM, keeping its mode.
func (l *Lab) Copy(local, remote string) error {
	data, err := os.ReadFile(local)
	if err != nil {
		return err
	}
	st, err := os.Stat(local)
	if err != nil {
		return err
	}
	return l.WriteFile(remote, data, st.Mode())
}

// ReadFile reads a file on the VM (as root).
func (l *Lab) ReadFile(remote string) ([]byte, error) {
	o, e, code, err := l.Run("cat " + shellQuote(remote))
	if err != nil {
		return nil, err
	}
	if code != 0 {
		return nil, fmt.Errorf("reading %s on the VM: exit %d: %s", remote, code, e)
	}
	return []byte(o), nil
}

// BootID is the VM's current boot id.
func (l *Lab) BootID() (string, error) {
	o, _, code, err := l.Run("cat /proc/sys/kernel/random/boot_id")
	if err == nil && code != 0 {
		err = fmt.Errorf("reading boot_id: exit %d", code)
	}
	return strings.TrimSpace(o), err
}

// Reboot reboots the VM and waits until SSH answers from a new boot; it returns how long that took.
func (l *Lab) Reboot() (time.Duration, error) {
	done := l.Phase("reboot the VM to SSH")
	id, err := l.BootID()
	if err != nil {
		return 0, err
	}
	t0 := time.Now()
	// detached, so the SSH command returns before the connection drops
	if _, e, code, err := l.Run("systemd-run --no-block --on-active=1 systemctl reboot"); err != nil || code != 0 {
		return 0, fmt.Errorf("asking the VM to reboot: exit %d, %v: %s", code, err, e)
	}
	l.setClient(nil)
	if err := l.waitSSH(bootTimeout, id); err != nil {
		return 0, fmt.Errorf("after reboot: %w", err)
	}
	d := time.Since(t0)
	done()
	return d, nil
}

// Shutdown powers the VM off cleanly and waits for qemu to exit (it kills qemu after 3 minutes).
func (l *Lab) Shutdown() error {
	done := l.Phase("shut the VM down")
	if l.qemuExited() {
		return errors.New("the VM is not running")
	}
	_, _, _, _ = l.Run("systemd-run --no-block --on-active=1 systemctl poweroff")
	l.setClient(nil)
	l.mu.Lock()
	q, qd := l.qemu, l.qemuDone
	l.mu.Unlock()
	select {
	case <-qd:
		done()
		return nil
	case <-time.After(3 * time.Minute):
		_ = q.Process.Kill()
		<-qd
		return errors.New("the VM did not power off within 3 minutes; qemu killed")
	}
}

// ExecIn runs argv on this machine inside lab namespace ns (`ip netns exec`), e.g. a probe from the LAN
// host: l.ExecIn(lab.NSLAN, "nmap", "-Pn", "-p", "22", lab.VMAddr). err is set only when it could not run.
func (l *Lab) ExecIn(ns string, argv ...string) (stdout, stderr string, exit int, err error) {
	if !strings.HasPrefix(ns, Prefix) {
		return "", "", -1, fmt.Errorf("ExecIn: %q is not a lab namespace", ns)
	}
	ctx, cancel := context.WithTimeout(context.Background(), runTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", ns}, argv...)...)
	cmd.Env = append(os.Environ(), "LC_ALL=C")
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err = cmd.Run()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return o.String(), e.String(), ee.ExitCode(), nil
	}
	if err != nil {
		return o.String(), e.String(), -1, err
	}
	return o.String(), e.String(), 0, nil
}
