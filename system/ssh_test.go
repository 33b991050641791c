package system

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"net"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"
)

// testSSHD is an in-process SSH server on 127.0.0.1 that records every credential it is sent.
type testSSHD struct {
	addr        string
	hostKey     string       // authorized_keys format
	passwords   atomic.Int32 // password requests received
	kbdAnswers  atomic.Int32 // keyboard-interactive answers received
	keysOffered atomic.Int32
}

// startSSHD serves cfg's methods: password and keyboard-interactive when withPasswords, publickey for
// authorized, and "none" when noAuth. The listener is closed when the test ends.
func startSSHD(t *testing.T, authorized ssh.PublicKey, withPasswords, noAuth bool) *testSSHD {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	hostSigner, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	s := &testSSHD{hostKey: string(ssh.MarshalAuthorizedKey(hostSigner.PublicKey()))}
	cfg := &ssh.ServerConfig{NoClientAuth: noAuth}
	cfg.AddHostKey(hostSigner)
	cfg.PublicKeyCallback = func(_ ssh.ConnMetadata, k ssh.PublicKey) (*ssh.Permissions, error) {
		s.keysOffered.Add(1)
		if authorized != nil && string(k.Marshal()) == string(authorized.Marshal()) {
			return &ssh.Permissions{}, nil
		}
		return nil, errors.New("not authorized")
	}
	if withPasswords {
		cfg.PasswordCallback = func(ssh.ConnMetadata, []byte) (*ssh.Permissions, error) {
			s.passwords.Add(1)
			return nil, errors.New("wrong")
		}
		cfg.KeyboardInteractiveCallback = func(_ ssh.ConnMetadata, ch ssh.KeyboardInteractiveChallenge) (*ssh.Permissions, error) {
			ans, err := ch("", "", []string{"Password: "}, []bool{false})
			if err == nil && len(ans) > 0 {
				s.kbdAnswers.Add(1)
			}
			return nil, errors.New("wrong")
		}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	s.addr = ln.Addr().String()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				_ = c.SetDeadline(time.Now().Add(10 * time.Second))
				sc, chans, reqs, err := ssh.NewServerConn(c, cfg)
				if err != nil {
					return
				}
				go ssh.DiscardRequests(reqs)
				for ch := range chans {
					ch.Reject(ssh.Prohibited, "no")
				}
				sc.Close()
			}()
		}
	}()
	return s
}

func TestSSHProbeAuthListsMethodsAndSendsNoSecret(t *testing.T) {
	s := startSSHD(t, nil, true, false)
	h := &Host{Runner: NewFakeRunner(nil), DryRun: true} // loopback probes run in dry-run too
	p, err := h.SSHProbeAuth(context.Background(), SSHTarget{Addr: s.addr, HostKeys: []string{s.hostKey}}, "admin")
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"keyboard-interactive", "password", "publickey"}; !reflect.DeepEqual(sorted(p.Methods), want) || p.NoneAccepted {
		t.Errorf("probe = %+v, want methods %v", p, want)
	}
	if n, k, o := s.passwords.Load(), s.kbdAnswers.Load(), s.keysOffered.Load(); n+k+o != 0 {
		t.Errorf("the probe sent credentials: %d passwords, %d keyboard-interactive answers, %d keys", n, k, o)
	}

	keysOnly := startSSHD(t, nil, false, false)
	p, err = h.SSHProbeAuth(context.Background(), SSHTarget{Addr: keysOnly.addr}, "admin")
	if err != nil || !reflect.DeepEqual(p.Methods, []string{"publickey"}) {
		t.Errorf("keys-only server: %+v, %v", p, err)
	}

	open := startSSHD(t, nil, false, true)
	p, err = h.SSHProbeAuth(context.Background(), SSHTarget{Addr: open.addr}, "root")
	if err != nil || !p.NoneAccepted {
		t.Errorf("server without authentication: %+v, %v; want NoneAccepted", p, err)
	}
}

func TestSSHProbeAuthHostKeyPinned(t *testing.T) {
	s := startSSHD(t, nil, true, false)
	other := startSSHD(t, nil, true, false)
	h := &Host{Runner: NewFakeRunner(nil)}
	_, err := h.SSHProbeAuth(context.Background(), SSHTarget{Addr: s.addr, HostKeys: []string{other.hostKey}}, "admin")
	if err == nil {
		t.Fatal("a server with another host key was accepted")
	}
}

func TestSSHLogin(t *testing.T) {
	key, _ := ThrowawayKey()
	s := startSSHD(t, key.signers[0].PublicKey(), true, false)
	h := &Host{Runner: NewFakeRunner(nil)}
	tgt := SSHTarget{Addr: s.addr, HostKeys: []string{s.hostKey}}
	offered, err := h.SSHLogin(context.Background(), tgt, "admin", key)
	if err != nil {
		t.Fatalf("authorized key refused: %v", err)
	}
	if !reflect.DeepEqual(sorted(offered), []string{"keyboard-interactive", "password", "publickey"}) {
		t.Errorf("offered = %v", offered)
	}
	stranger, _ := ThrowawayKey()
	_, err = h.SSHLogin(context.Background(), tgt, "root", stranger)
	if !errors.Is(err, ErrSSHAuthRefused) {
		t.Errorf("throwaway key: %v, want ErrSSHAuthRefused", err)
	}
	if s.passwords.Load()+s.kbdAnswers.Load() != 0 {
		t.Error("SSHLogin sent a password or keyboard-interactive answer")
	}
	// A closed port is not a refusal: the check must not pass because nothing answered.
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	closed := ln.Addr().String()
	ln.Close()
	_, err = h.SSHLogin(context.Background(), SSHTarget{Addr: closed, Timeout: 2 * time.Second}, "root", stranger)
	if err == nil || errors.Is(err, ErrSSHAuthRefused) {
		t.Errorf("closed port: %v, want a connection error that is not ErrSSHAuthRefused", err)
	}
	// Dry-run never dials another host.
	dry := &Host{Runner: NewFakeRunner(nil), DryRun: true}
	if _, err := dry.SSHLogin(context.Background(), SSHTarget{Addr: "192.0.2.1:22"}, "root", SSHKeySet{}); !errors.Is(err, ErrDryRun) {
		t.Errorf("dry-run probe of another host: %v, want ErrDryRun", err)
	}
}

func TestAgentSigners(t *testing.T) {
	if _, _, err := AgentKeys(""); err == nil {
		t.Error("no socket: want an error")
	}
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	kr := agent.NewKeyring()
	if err := kr.Add(agent.AddedKey{PrivateKey: priv}); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(t.TempDir(), "agent.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { defer c.Close(); _ = agent.ServeAgent(kr, c) }()
		}
	}()
	keys, done, err := AgentKeys(sock)
	if err != nil {
		t.Fatal(err)
	}
	defer done()
	if keys.Len() != 1 {
		t.Fatalf("%d keys, want 1", keys.Len())
	}
	pub, _ := ssh.NewPublicKey(priv.Public())
	if want := "ED25519 " + ssh.FingerprintSHA256(pub); keys.Fingerprints()[0] != want {
		t.Errorf("fingerprint %q, want %q", keys.Fingerprints()[0], want)
	}
	// The agent's key logs in where it is authorized.
	s := startSSHD(t, pub, false, false)
	h := &Host{Runner: NewFakeRunner(nil)}
	if _, err := h.SSHLogin(context.Background(), SSHTarget{Addr: s.addr}, "admin", keys); err != nil {
		t.Errorf("agent key login: %v", err)
	}
}

func sorted(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}

func TestParseAuthorizedKeys(t *testing.T) {
	k, _ := ThrowawayKey()
	pub := k.signers[0].PublicKey()
	line := strings.TrimSpace(string(ssh.MarshalAuthorizedKey(pub)))
	data := "# admin's keys\n\n" + line + " me@laptop\n" + `from="192.168.1.0/24",no-pty ` + line + "\nnot a key\n"
	keys, bad := ParseAuthorizedKeys([]byte(data))
	if len(keys) != 2 || bad != 1 {
		t.Fatalf("keys %+v bad %d, want 2 keys and 1 bad line", keys, bad)
	}
	if keys[0].Line != 3 || keys[0].Comment != "me@laptop" || keys[0].Label() != "ED25519 "+ssh.FingerprintSHA256(pub) {
		t.Errorf("first key %+v (label %q)", keys[0], keys[0].Label())
	}
	if keys, bad := ParseAuthorizedKeys(nil); len(keys) != 0 || bad != 0 {
		t.Errorf("empty file: %v %d", keys, bad)
	}
}
