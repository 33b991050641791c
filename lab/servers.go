package lab

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/crypto/ssh"
)

// services are the lab's listeners and daemons; closing them is part of tearing the lab down.
type services struct {
	mu        sync.Mutex
	listeners []net.Listener
	procs     []*exec.Cmd
	httpSrvs  []*http.Server
}

func (s *services) addListener(l net.Listener) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.listeners = append(s.listeners, l)
}

func (s *services) close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, h := range s.httpSrvs {
		_ = h.Close()
	}
	for _, l := range s.listeners {
		_ = l.Close()
	}
	for _, c := range s.procs {
		if c.Process != nil {
			_ = c.Process.Signal(syscall.SIGTERM)
		}
	}
	for _, c := range s.procs {
		if c.Process == nil {
			continue
		}
		done := make(chan struct{})
		go func() { _, _ = c.Process.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			_ = c.Process.Kill()
		}
	}
	s.listeners, s.procs, s.httpSrvs = nil, nil, nil
}

// hostHandler answers every request with a short text naming the lab host, so probes can tell who answered.
func hostHandler(name string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		fmt.Fprintf(w, "openclaw-harden lab: %s (host %s, path %s)\n", name, r.Host, r.URL.Path)
	})
}

// internetHandler serves the stand-in mirror under /debian and /debian-security and a greeting elsewhere.
func internetHandler(mirrorDir string) http.Handler {
	files := http.FileServer(http.Dir(mirrorDir))
	greet := hostHandler("internet host")
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/debian/") || strings.HasPrefix(r.URL.Path, "/debian-security/") {
			files.ServeHTTP(w, r)
			return
		}
		greet.ServeHTTP(w, r)
	})
}

// serveHTTP serves h on addr inside ns; with cert != nil it serves HTTPS.
func (s *services) serveHTTP(ns, addr string, h http.Handler, cert *tls.Certificate) error {
	l, err := listenIn(ns, "tcp", addr)
	if err != nil {
		return fmt.Errorf("listening on %s in %s: %w", addr, ns, err)
	}
	// probes that send plain HTTP to the HTTPS port are expected: keep their handshake errors quiet
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, ErrorLog: log.New(io.Discard, "", 0)}
	if cert != nil {
		srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{*cert}}
		l = tls.NewListener(l, srv.TLSConfig)
	}
	s.mu.Lock()
	s.httpSrvs = append(s.httpSrvs, srv)
	s.listeners = append(s.listeners, l)
	s.mu.Unlock()
	go func() { _ = srv.Serve(l) }()
	return nil
}

// startProc starts argv inside namespace ns (through `ip netns exec`), from a goroutine locked to its OS
// thread for the life of the process, so PR_SET_PDEATHSIG (tied to the forking thread) only fires when the
// harness itself dies.
func (s *services) startProc(ns string, logPath string, argv ...string) (*exec.Cmd, error) {
	full := append([]string{"ip", "netns", "exec", ns}, argv...)
	cmd := exec.Command(full[0], full[1:]...)
	cmd.Env = append(os.Environ(), "LC_ALL=C")
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
	if logPath != "" {
		f, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
		if err != nil {
			return nil, err
		}
		cmd.Stdout, cmd.Stderr = f, f
	}
	started := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		if err := cmd.Start(); err != nil {
			started <- err
			return
		}
		started <- nil
		_ = cmd.Wait()
	}()
	if err := <-started; err != nil {
		return nil, fmt.Errorf("starting %q: %w", full, err)
	}
	s.mu.Lock()
	s.procs = append(s.procs, cmd)
	s.mu.Unlock()
	return cmd, nil
}

// dnsmasq starts a DNS server inside ns listening on addr only.
func (s *services) dnsmasq(ns, addr, name string, extra ...string) error {
	pid := filepath.Join(runDir, "dnsmasq-"+name+".pid")
	argv := []string{"dnsmasq", "--keep-in-foreground", "--conf-file=/dev/null", "--no-hosts", "--bind-interfaces",
		"--listen-address=" + addr, "--except-interface=none", "--pid-file=" + pid, "--log-queries",
		"--log-facility=-", "--user=root", "--group=root"}
	argv = append(argv, extra...)
	if _, err := s.startProc(ns, filepath.Join(runDir, "dnsmasq-"+name+".log"), argv...); err != nil {
		return err
	}
	// wait until it answers
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := DialFrom(ns, net.JoinHostPort(addr, "53"), time.Second)
		if err == nil {
			_ = c.Close()
			return nil
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(filepath.Join(runDir, "dnsmasq-"+name+".log"))
			return fmt.Errorf("dnsmasq %s on %s does not answer: %v\n%s", name, addr, err, log)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// serveSSH runs a small SSH server on addr inside ns: it accepts the given public keys (and, if password
// is not empty, that password for any user), and runs "exec" requests as `ip netns exec NS sh -c CMD`, so
// whatever a client runs there runs from that lab host's network. It is the lab's "different LAN host".
func (s *services) serveSSH(ns, addr string, keys []ssh.PublicKey, password string) error {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return err
	}
	hostKey, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		return err
	}
	cfg := &ssh.ServerConfig{
		PublicKeyCallback: func(_ ssh.ConnMetadata, k ssh.PublicKey) (*ssh.Permissions, error) {
			for _, a := range keys {
				if string(a.Marshal()) == string(k.Marshal()) {
					return nil, nil
				}
			}
			return nil, errors.New("key not authorized")
		},
		ServerVersion: "SSH-2.0-OpenClawLab_1.0",
	}
	if password != "" {
		cfg.PasswordCallback = func(_ ssh.ConnMetadata, p []byte) (*ssh.Permissions, error) {
			if string(p) == password {
				return nil, nil
			}
			return nil, errors.New("wrong password")
		}
	}
	cfg.AddHostKey(hostKey)
	l, err := listenIn(ns, "tcp", addr)
	if err != nil {
		return fmt.Errorf("listening on %s in %s: %w", addr, ns, err)
	}
	s.addListener(l)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go handleSSH(ns, c, cfg)
		}
	}()
	return nil
}

func handleSSH(ns string, c net.Conn, cfg *ssh.ServerConfig) {
	_ = c.SetDeadline(time.Now().Add(30 * time.Second))
	sc, chans, reqs, err := ssh.NewServerConn(c, cfg)
	if err != nil {
		_ = c.Close()
		return
	}
	_ = c.SetDeadline(time.Time{})
	defer sc.Close()
	go ssh.DiscardRequests(reqs)
	for nc := range chans {
		if nc.ChannelType() != "session" {
			_ = nc.Reject(ssh.UnknownChannelType, "only sessions")
			continue
		}
		ch, creqs, err := nc.Accept()
		if err != nil {
			continue
		}
		go func() {
			defer ch.Close()
			for req := range creqs {
				if req.Type != "exec" || len(req.Payload) < 4 {
					_ = req.Reply(req.Type == "env" || req.Type == "pty-req", nil)
					continue
				}
				n := binary.BigEndian.Uint32(req.Payload)
				if int(n) > len(req.Payload)-4 {
					_ = req.Reply(false, nil)
					continue
				}
				command := string(req.Payload[4 : 4+n])
				_ = req.Reply(true, nil)
				cmd := exec.Command("ip", "netns", "exec", ns, "sh", "-c", command)
				cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL=C", "HOME=/root"}
				cmd.Stdin, cmd.Stdout, cmd.Stderr = ch, ch, ch.Stderr()
				cmd.WaitDelay = 2 * time.Second
				code := 0
				if err := cmd.Run(); err != nil {
					code = 255
					var ee *exec.ExitError
					if errors.As(err, &ee) {
						code = ee.ExitCode()
					}
				}
				status := make([]byte, 4)
				binary.BigEndian.PutUint32(status, uint32(code))
				_, _ = ch.SendRequest("exit-status", false, status)
				return
			}
		}()
	}
}
