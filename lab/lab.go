// Package lab is the real-VM end-to-end harness: a sealed Debian 12 VM under qemu (TCG) on a network of
// namespaces the harness creates, so every firewall, Docker and SSH claim of openclaw-harden is proven on a
// real system that is not the machine running the tests.
//
// A test calls Start, which gets the cached image (lab/image.sh), builds the network, starts the lab's
// servers, proves the network is sealed, boots the VM from a fresh copy-on-write overlay and waits until
// SSH answers from the admin host (192.168.1.50). Everything is removed again by t.Cleanup, by a signal
// handler, and at the next Start for what a crashed run left behind.
//
// Lab tests run only as root on Linux with /dev/net/tun, qemu, and OPENCLAW_HARDEN_LAB=1 (lab/run.sh sets it);
// otherwise they skip and say why.
package lab

import (
	"crypto/tls"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
)

// EnvVar must be "1" for lab tests to run.
const EnvVar = "OPENCLAW_HARDEN_LAB"

// Skipped returns why lab tests cannot run here, or "" when they can.
func Skipped() string {
	switch {
	case os.Getenv(EnvVar) != "1":
		return EnvVar + "=1 is not set (lab/run.sh sets it)"
	case testing.Short():
		return "-short"
	case runtime.GOOS != "linux":
		return "not Linux"
	case os.Geteuid() != 0:
		return "not root (the lab creates network namespaces and a tap device)"
	}
	if _, err := os.Stat("/dev/net/tun"); err != nil {
		return "/dev/net/tun is missing"
	}
	for _, tool := range []string{"qemu-system-x86_64", "qemu-img"} {
		if _, err := exec.LookPath(tool); err != nil {
			return tool + " is not installed (lab/run.sh installs it)"
		}
	}
	return ""
}

// Gate skips t unless the lab can run here; it fails t when the lab was asked for but a tool is missing.
func Gate(t testing.TB) {
	t.Helper()
	if why := Skipped(); why != "" {
		t.Skip("lab test skipped: " + why)
	}
	for _, tool := range []string{"ip", "dnsmasq", "debootstrap", "mkfs.ext4", "openssl", "gpg", "dpkg-scanpackages"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("lab asked for (%s=1) but %s is not installed: run lab/run.sh, which installs the lab's packages", EnvVar, tool)
		}
	}
}

// Timing is one measured phase.
type Timing struct {
	Phase string
	Took  time.Duration
}

// Lab is a running lab: the network, its servers and the booted VM.
type Lab struct {
	T     testing.TB
	Image *Image
	Dir   string // per-run directory: overlay.qcow2, console.log
	Seal  *SealReport

	start   time.Time
	signer  ssh.Signer
	hostKey ssh.PublicKey
	svc     *services
	lock    *os.File

	mu       sync.Mutex
	timings  []Timing
	client   *ssh.Client
	qemu     *exec.Cmd
	qemuDone chan struct{}
	closed   bool
}

var (
	current   *Lab
	currentMu sync.Mutex
	sigOnce   sync.Once
)

// installSignalHandler tears the lab down on SIGINT/SIGTERM, so an interrupted run leaves nothing behind.
func installSignalHandler() {
	sigOnce.Do(func() {
		c := make(chan os.Signal, 1)
		signal.Notify(c, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
		go func() {
			s := <-c
			fmt.Fprintf(os.Stderr, "[lab] %v: tearing the lab down\n", s)
			currentMu.Lock()
			l := current
			currentMu.Unlock()
			// Only a run that holds the lab lock tears down: the lab of another process waiting on or
			// holding the lock is not ours to remove.
			if l != nil {
				l.teardown()
			}
			os.Exit(2)
		}()
	})
}

// Logf logs to the test and to stderr with the time since Start, so a slow run shows where time goes.
func (l *Lab) Logf(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	if !testing.Verbose() { // with -v the test log streams already
		fmt.Fprintf(os.Stderr, "[lab +%6.1fs] %s\n", time.Since(l.start).Seconds(), msg)
	}
	l.T.Logf("[lab +%.1fs] %s", time.Since(l.start).Seconds(), msg)
}

// Phase starts a measured phase; call the returned function when it is done.
func (l *Lab) Phase(name string) func() time.Duration {
	t0 := time.Now()
	l.Logf("start: %s", name)
	return func() time.Duration {
		d := time.Since(t0)
		l.mu.Lock()
		l.timings = append(l.timings, Timing{name, d})
		l.mu.Unlock()
		l.Logf("done: %s (%.1fs)", name, d.Seconds())
		return d
	}
}

// Timings returns every measured phase so far.
func (l *Lab) Timings() []Timing {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]Timing(nil), l.timings...)
}

// lockLab serializes lab runs on this machine (the names are fixed).
func lockLab(t testing.TB) (*os.File, error) {
	if err := os.MkdirAll(runDir, 0o755); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(filepath.Join(runDir, "lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, err
	}
	deadline := time.Now().Add(30 * time.Minute)
	logged := false
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return f, nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) || time.Now().After(deadline) {
			f.Close()
			return nil, fmt.Errorf("locking %s: %w", f.Name(), err)
		}
		if !logged {
			t.Logf("another lab run holds %s; waiting", f.Name())
			logged = true
		}
		time.Sleep(time.Second)
	}
}

// Options change what Start does.
type Options struct {
	// NoVM builds the network and its servers but boots no VM (for tests of the lab itself).
	NoVM bool
}

// Start brings the whole lab up for t: image, sealed network, servers, VM, SSH. Everything is torn down by
// t.Cleanup. It fails t when any part does not come up.
func Start(t testing.TB) *Lab { return StartWith(t, Options{}) }

// StartWith is Start with options.
func StartWith(t testing.TB, opt Options) *Lab {
	t.Helper()
	Gate(t)
	l := &Lab{T: t, start: time.Now(), svc: &services{}, Dir: t.TempDir()}
	lock, err := lockLab(t)
	if err != nil {
		t.Fatal(err)
	}
	l.lock = lock
	installSignalHandler()
	currentMu.Lock()
	current = l
	currentMu.Unlock()
	t.Cleanup(l.Close)

	done := l.Phase("remove leftovers of earlier runs")
	if err := Teardown(); err != nil {
		t.Fatalf("removing leftovers of an earlier lab run: %v", err)
	}
	done()

	done = l.Phase("image (build or cache)")
	img, err := GetImage(t)
	if err != nil {
		t.Fatal(err)
	}
	l.Image = img
	done()
	if err := l.loadKeys(); err != nil {
		t.Fatal(err)
	}

	done = l.Phase("network namespaces")
	rootBefore, err := rootLinkNames()
	if err != nil {
		t.Fatal(err)
	}
	if err := buildNetwork(); err != nil {
		t.Fatalf("building the lab network: %v", err)
	}
	done()

	done = l.Phase("lab servers (HTTP, HTTPS, mirror, DNS, LAN sshd)")
	if err := l.startServices(); err != nil {
		t.Fatalf("starting the lab servers: %v", err)
	}
	done()

	done = l.Phase("prove the lab is sealed")
	rep, err := CheckSealed(rootBefore)
	if err != nil {
		t.Fatal(err)
	}
	l.Seal = rep
	for _, ns := range Namespaces {
		l.Logf("sealed: %s interfaces %v", ns, rep.Interfaces[ns])
	}
	if len(rep.RootNew) > 0 {
		l.Logf("note: this machine gained interfaces meanwhile, none linked to the lab: %v", rep.RootNew)
	}
	done()

	if opt.NoVM {
		return l
	}
	if err := l.Boot(); err != nil {
		t.Fatal(err)
	}
	return l
}

func (l *Lab) loadKeys() error {
	b, err := os.ReadFile(l.Image.Key)
	if err != nil {
		return err
	}
	if l.signer, err = ssh.ParsePrivateKey(b); err != nil {
		return fmt.Errorf("parsing %s: %w", l.Image.Key, err)
	}
	b, err = os.ReadFile(l.Image.HostKey)
	if err != nil {
		return err
	}
	if l.hostKey, _, _, _, err = ssh.ParseAuthorizedKey(b); err != nil {
		return fmt.Errorf("parsing %s: %w", l.Image.HostKey, err)
	}
	return nil
}

// Signer is the harness key (authorized for admin in the image).
func (l *Lab) Signer() ssh.Signer { return l.signer }

// HostKey is the VM's SSH host key.
func (l *Lab) HostKey() ssh.PublicKey { return l.hostKey }

func (l *Lab) startServices() error {
	s := l.svc
	cert, err := tls.LoadX509KeyPair(l.Image.ServerCert, l.Image.ServerKey)
	if err != nil {
		return err
	}
	type httpSrv struct {
		ns, addr, name string
	}
	for _, h := range []httpSrv{
		{NSRouter, RouterLAN + ":80", "router " + RouterLAN},
		{NSLAN, LANHostAddr + ":80", "LAN host " + LANHostAddr},
		{NSLAN, LANHostAddr + ":18789", "LAN host " + LANHostAddr + " gateway port"},
		{NSPriv, PrivAddr + ":80", "private host " + PrivAddr},
		{NSPriv, MetadataAddr + ":80", "metadata " + MetadataAddr},
	} {
		if err := s.serveHTTP(h.ns, h.addr, hostHandler(h.name), nil); err != nil {
			return err
		}
	}
	for _, addr := range []string{InetAddr, MirrorAddr} {
		if err := s.serveHTTP(NSInet, addr+":80", internetHandler(l.Image.Mirror), nil); err != nil {
			return err
		}
		if err := s.serveHTTP(NSInet, addr+":443", internetHandler(l.Image.Mirror), &cert); err != nil {
			return err
		}
	}
	if err := s.serveSSH(NSLAN, LANHostAddr+":22", []ssh.PublicKey{l.signer.PublicKey()}, AdminPassword); err != nil {
		return err
	}
	if err := s.dnsmasq(NSDNS, DNSAddr, "dns", "--no-resolv",
		"--address=/api.telegram.org/"+InetAddr, "--address=/lab.test/"+InetAddr,
		"--address=/deb.debian.org/"+MirrorAddr, "--address=/security.debian.org/"+MirrorAddr); err != nil {
		return err
	}
	// The LAN router also resolves (forwarding to the lab DNS): "a VM whose resolver is the LAN router".
	return s.dnsmasq(NSRouter, RouterLAN, "router", "--no-resolv", "--server="+DNSAddr)
}

// Close tears the lab down: VM, servers, namespaces, lock. t.Cleanup calls it; calling it twice is fine.
func (l *Lab) Close() {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return
	}
	l.mu.Unlock()
	l.dumpConsole(l.T.Failed())
	l.teardown()
	currentMu.Lock()
	if current == l {
		current = nil
	}
	currentMu.Unlock()
	if l.lock != nil {
		_ = l.lock.Close()
	}
	l.Logf("lab torn down; total %.1fs", time.Since(l.start).Seconds())
}

func (l *Lab) teardown() {
	l.mu.Lock()
	l.closed = true
	client, q, qd := l.client, l.qemu, l.qemuDone
	l.client = nil
	l.mu.Unlock()
	if client != nil {
		_ = client.Close()
	}
	if q != nil && q.Process != nil {
		_ = q.Process.Kill()
		select {
		case <-qd:
		case <-time.After(10 * time.Second):
		}
	}
	l.svc.close()
	if err := Teardown(); err != nil {
		fmt.Fprintf(os.Stderr, "[lab] teardown: %v\n", err)
	}
}

// dumpConsole keeps a copy of the VM's serial console for a person to read (the run's directory goes away)
// and, when the test failed, logs its tail.
func (l *Lab) dumpConsole(failed bool) {
	b, err := os.ReadFile(filepath.Join(l.Dir, "console.log"))
	if err != nil {
		return
	}
	keep := filepath.Join(os.TempDir(), "ochlab-console-last.log")
	_ = os.WriteFile(keep, b, 0o644)
	if !failed {
		l.Logf("VM serial console kept in %s", keep)
		return
	}
	lines := strings.Split(string(b), "\n")
	if len(lines) > 60 {
		lines = lines[len(lines)-60:]
	}
	l.T.Logf("VM serial console (last lines; whole log in %s):\n%s", keep, strings.Join(lines, "\n"))
}
