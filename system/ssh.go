package system

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"
)

// SSHTarget is an sshd to probe as a client would: this machine's own, on loopback, for Step 0's checks.
type SSHTarget struct {
	Addr string // host:port
	// HostKeys pins the server's host key: the contents of its .pub files ("ssh-ed25519 AAAA… comment").
	// Empty accepts any key (callers say so where it matters); lines that do not parse are ignored.
	HostKeys []string
	Timeout  time.Duration // per connection; 0 means 10 s
}

// SSHAuthProbe is what an sshd offered a client that has not sent any credential.
type SSHAuthProbe struct {
	// Methods are the authentication methods the server listed after the client's "none" request, in its
	// order ("publickey", "password", "keyboard-interactive", …).
	Methods []string
	// NoneAccepted: the server let the user in without any credential (empty password allowed).
	NoneAccepted bool
}

// ErrSSHAuthRefused marks a login the server refused after a complete handshake, as opposed to a
// connection that could not be made (closed port, reload in progress, wrong host key).
var ErrSSHAuthRefused = errors.New("the server refused the login")

// errStopAuth ends a probe after the server listed its methods, before anything else is sent.
var errStopAuth = errors.New("probe: stop after listing methods")

func (t SSHTarget) config(user string) *ssh.ClientConfig {
	timeout := t.Timeout
	if timeout == 0 {
		timeout = 10 * time.Second
	}
	cfg := &ssh.ClientConfig{User: user, Timeout: timeout}
	var keys []ssh.PublicKey
	for _, line := range t.HostKeys {
		if k, _, _, _, err := ssh.ParseAuthorizedKey([]byte(line)); err == nil {
			keys = append(keys, k)
		}
	}
	if len(keys) == 0 {
		cfg.HostKeyCallback = ssh.InsecureIgnoreHostKey() // loopback probe of our own sshd; the caller says so
		return cfg
	}
	cfg.HostKeyCallback = func(_ string, _ net.Addr, k ssh.PublicKey) error {
		for _, p := range keys {
			if p.Type() == k.Type() && string(p.Marshal()) == string(k.Marshal()) {
				return nil
			}
		}
		return fmt.Errorf("host key %s %s is not one of this machine's sshd host keys", k.Type(), ssh.FingerprintSHA256(k))
	}
	for _, k := range keys {
		switch k.Type() {
		case ssh.KeyAlgoRSA:
			cfg.HostKeyAlgorithms = append(cfg.HostKeyAlgorithms, ssh.KeyAlgoRSASHA512, ssh.KeyAlgoRSASHA256)
		default:
			cfg.HostKeyAlgorithms = append(cfg.HostKeyAlgorithms, k.Type())
		}
	}
	return cfg
}

// dialSSH opens the TCP connection through Host.Dial (so dry-run's probe guard applies) and runs the SSH
// handshake and authentication with cfg. The connection is closed before it returns.
func (h *Host) dialSSH(ctx context.Context, t SSHTarget, cfg *ssh.ClientConfig) error {
	conn, err := h.Dial(ctx, "tcp", t.Addr, cfg.Timeout)
	if err != nil {
		return err
	}
	defer conn.Close()
	deadline := time.Now().Add(cfg.Timeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	_ = conn.SetDeadline(deadline)
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	sc, chans, reqs, err := ssh.NewClientConn(conn, t.Addr, cfg)
	if err != nil {
		return err
	}
	ssh.NewClient(sc, chans, reqs).Close()
	return nil
}

// SSHProbeAuth connects to the sshd at t as user and sends only the "none" authentication request, which
// makes the server list the methods it would accept. No password, key or answer is ever sent: the probe
// stops as soon as the list is known. An error means the server could not be reached or the handshake failed.
func (h *Host) SSHProbeAuth(ctx context.Context, t SSHTarget, user string) (SSHAuthProbe, error) {
	var p SSHAuthProbe
	listed := false
	cfg := t.config(user)
	cfg.AuthCallback = func(c *ssh.ClientAuthContext) (ssh.AuthMethod, error) {
		p.Methods, listed = slices.Clone(c.AllowedMethods), true
		return nil, errStopAuth
	}
	err := h.dialSSH(ctx, t, cfg)
	switch {
	case err == nil:
		p.NoneAccepted = true // authenticated by "none": the callback never ran
		return p, nil
	case listed:
		return p, nil
	}
	return p, fmt.Errorf("SSH to %s as %s: %w", t.Addr, user, err)
}

// SSHLogin tries to log in as user with the keys in keys only (never a password) and closes the connection
// at once. nil means the server let the user in; an error wrapping ErrSSHAuthRefused means it completed the
// handshake and refused; any other error means no answer (closed port, reload in progress, host key).
// offered is the method list the server gave after "none" (nil when it accepted "none" or did not answer).
func (h *Host) SSHLogin(ctx context.Context, t SSHTarget, user string, keys SSHKeySet) (offered []string, err error) {
	signers := keys.signers
	cfg := t.config(user)
	asked := false
	cfg.AuthCallback = func(c *ssh.ClientAuthContext) (ssh.AuthMethod, error) {
		if !asked {
			offered, asked = slices.Clone(c.AllowedMethods), true
		}
		return nil, nil // the next untried method of cfg.Auth
	}
	if len(signers) > 0 {
		cfg.Auth = []ssh.AuthMethod{ssh.PublicKeys(signers...)}
	}
	err = h.dialSSH(ctx, t, cfg)
	switch {
	case err == nil:
		return offered, nil
	case asked:
		return offered, fmt.Errorf("SSH to %s as %s: %w: %v", t.Addr, user, ErrSSHAuthRefused, err)
	}
	return nil, fmt.Errorf("SSH to %s as %s: %w", t.Addr, user, err)
}

// SSHKeySet is a set of keys a login can use (in memory or held by an ssh-agent). It is described by
// fingerprints only; the private halves never leave it.
type SSHKeySet struct{ signers []ssh.Signer }

// Len is the number of keys.
func (k SSHKeySet) Len() int { return len(k.signers) }

// Fingerprints lists "TYPE SHA256:…" for each key, as sshd logs them.
func (k SSHKeySet) Fingerprints() []string {
	out := make([]string, len(k.signers))
	for i, s := range k.signers {
		out[i] = keyLabel(s.PublicKey())
	}
	return out
}

// Union is k followed by o.
func (k SSHKeySet) Union(o SSHKeySet) SSHKeySet {
	return SSHKeySet{signers: append(slices.Clone(k.signers), o.signers...)}
}

// SSHKeySetFromSigners wraps signers (tests, and callers that hold keys of their own).
func SSHKeySetFromSigners(s ...ssh.Signer) SSHKeySet { return SSHKeySet{signers: slices.Clone(s)} }

// ThrowawayKey is a fresh ed25519 key nobody has authorized: a login with it must be refused.
func ThrowawayKey() (SSHKeySet, error) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return SSHKeySet{}, err
	}
	s, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		return SSHKeySet{}, err
	}
	return SSHKeySet{signers: []ssh.Signer{s}}, nil
}

// AgentKeys returns the keys offered by the ssh-agent at sock (SSH_AUTH_SOCK, e.g. forwarded by the
// operator's client with ssh -A) and a function that closes the agent connection. The private keys never
// leave the agent; it signs the login challenge.
func AgentKeys(sock string) (SSHKeySet, func(), error) {
	if sock == "" {
		return SSHKeySet{}, func() {}, errors.New("no ssh-agent: SSH_AUTH_SOCK is not set")
	}
	conn, err := net.DialTimeout("unix", sock, 5*time.Second)
	if err != nil {
		return SSHKeySet{}, func() {}, fmt.Errorf("ssh-agent at %s: %w", sock, err)
	}
	_ = conn.SetDeadline(time.Now().Add(time.Minute))
	signers, err := agent.NewClient(conn).Signers()
	if err != nil {
		conn.Close()
		return SSHKeySet{}, func() {}, fmt.Errorf("ssh-agent at %s: %w", sock, err)
	}
	return SSHKeySet{signers: signers}, func() { conn.Close() }, nil
}

// AuthorizedKey is one usable line of an authorized_keys file.
type AuthorizedKey struct {
	Line        int    // 1-based line number in its file
	Type        string // "ssh-ed25519"
	Fingerprint string // "SHA256:…", as sshd logs it
	Comment     string
}

// Label is "TYPE SHA256:…" the way sshd's "Accepted publickey" line names a key ("ED25519 SHA256:…").
func (k AuthorizedKey) Label() string { return keyTypeLabel(k.Type) + " " + k.Fingerprint }

// ParseAuthorizedKeys reads an authorized_keys file: the keys sshd would accept (options such as from= or
// command= are allowed and not judged), and how many non-comment lines are not keys.
func ParseAuthorizedKeys(data []byte) (keys []AuthorizedKey, bad int) {
	for i, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, comment, _, _, err := ssh.ParseAuthorizedKey([]byte(line))
		if err != nil {
			bad++
			continue
		}
		keys = append(keys, AuthorizedKey{Line: i + 1, Type: k.Type(), Fingerprint: ssh.FingerprintSHA256(k), Comment: comment})
	}
	return keys, bad
}

func keyLabel(k ssh.PublicKey) string { return keyTypeLabel(k.Type()) + " " + ssh.FingerprintSHA256(k) }

// keyTypeLabel is OpenSSH's short name of a key type, as in its log lines ("ED25519", "RSA", "ECDSA").
func keyTypeLabel(t string) string {
	switch {
	case strings.HasPrefix(t, "ssh-ed25519-cert"):
		return "ED25519-CERT"
	case strings.HasPrefix(t, "ssh-ed25519"):
		return "ED25519"
	case strings.HasPrefix(t, "sk-ssh-ed25519"):
		return "ED25519-SK"
	case strings.HasPrefix(t, "ssh-rsa-cert"):
		return "RSA-CERT"
	case strings.HasPrefix(t, "ssh-rsa"):
		return "RSA"
	case strings.HasPrefix(t, "ecdsa-sha2-") && strings.Contains(t, "-cert"):
		return "ECDSA-CERT"
	case strings.HasPrefix(t, "ecdsa-sha2-"):
		return "ECDSA"
	case strings.HasPrefix(t, "sk-ecdsa-"):
		return "ECDSA-SK"
	}
	return strings.ToUpper(t)
}
