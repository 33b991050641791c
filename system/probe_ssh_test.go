package system

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/binary"
	"encoding/pem"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
)

// execSSHD accepts one key and answers every exec request with "ran: CMD" and exit status 3.
func execSSHD(t *testing.T, authorized ssh.PublicKey) string {
	t.Helper()
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	hostSigner, _ := ssh.NewSignerFromKey(priv)
	cfg := &ssh.ServerConfig{PublicKeyCallback: func(_ ssh.ConnMetadata, k ssh.PublicKey) (*ssh.Permissions, error) {
		if string(k.Marshal()) == string(authorized.Marshal()) {
			return &ssh.Permissions{}, nil
		}
		return nil, errors.New("not authorized")
	}}
	cfg.AddHostKey(hostSigner)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				sc, chans, reqs, err := ssh.NewServerConn(c, cfg)
				if err != nil {
					return
				}
				defer sc.Close()
				go ssh.DiscardRequests(reqs)
				for nc := range chans {
					ch, creqs, err := nc.Accept()
					if err != nil {
						continue
					}
					for req := range creqs {
						if req.Type != "exec" {
							_ = req.Reply(false, nil)
							continue
						}
						n := binary.BigEndian.Uint32(req.Payload)
						_ = req.Reply(true, nil)
						_, _ = ch.Write([]byte("ran: " + string(req.Payload[4:4+n])))
						_, _ = ch.SendRequest("exit-status", false, []byte{0, 0, 0, 3})
						ch.Close()
						break
					}
				}
			}()
		}
	}()
	return ln.Addr().String()
}

func TestSSHRun(t *testing.T) {
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	block, err := ssh.MarshalPrivateKey(priv, "")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "key")
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(block), 0o600); err != nil {
		t.Fatal(err)
	}
	sshPub, _ := ssh.NewPublicKey(pub)
	addr := execSSHD(t, sshPub)
	h := NewHost(t.TempDir(), false)
	res, err := h.SSHRun(context.Background(), addr, "probe", keyFile, "echo hi", time.Second, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if res.Stdout != "ran: echo hi" || res.Exit != 3 || !strings.HasPrefix(res.HostKey, "ED25519 SHA256:") {
		t.Errorf("SSHRun: %+v", res)
	}
	// A key the server does not accept: an error, not a result.
	_, other, _ := ed25519.GenerateKey(rand.Reader)
	b2, _ := ssh.MarshalPrivateKey(other, "")
	_ = os.WriteFile(keyFile, pem.EncodeToMemory(b2), 0o600)
	if _, err := h.SSHRun(context.Background(), addr, "probe", keyFile, "echo hi", time.Second, 5*time.Second); err == nil {
		t.Errorf("a refused key gave no error")
	}
	// Dry run: another host is never contacted.
	dry := NewHost(t.TempDir(), true)
	if _, err := dry.SSHRun(context.Background(), "192.0.2.1:22", "probe", keyFile, "echo hi", time.Second, 5*time.Second); !errors.Is(err, ErrDryRun) {
		t.Errorf("dry run: %v", err)
	}
	if w := dry.Would(); len(w) != 1 || !strings.Contains(w[0], "would probe: tcp 192.0.2.1:22") {
		t.Errorf("dry run record: %v", w)
	}
}
