package system

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"time"

	"golang.org/x/crypto/ssh"
)

// SSHRunResult is what a command run on another machine over SSH printed.
type SSHRunResult struct {
	Stdout, Stderr string
	Exit           int    // the remote exit status; -1 when the command did not finish
	HostKey        string // "ED25519 SHA256:…" of the server, for the record (the key is not pinned)
}

// SSHRun logs in to addr (host:port) as user with the private key in keyFile and runs cmd there: the TCP
// connect is bounded by connectTimeout, the whole run by timeout. The TCP connection goes through Host.Dial, so in dry-run nothing is sent and the run is only
// recorded. The server's host key is not pinned (the answers carry none): it is returned for the record.
func (h *Host) SSHRun(ctx context.Context, addr, user, keyFile, cmd string, connectTimeout, timeout time.Duration) (SSHRunResult, error) {
	res := SSHRunResult{Exit: -1}
	pem, err := h.ReadFile(keyFile)
	if err != nil {
		return res, fmt.Errorf("reading the SSH key %s: %w", keyFile, err)
	}
	signer, err := ssh.ParsePrivateKey(pem)
	if err != nil {
		return res, fmt.Errorf("the SSH key %s cannot be used (it must be an unencrypted private key): %w", keyFile, err)
	}
	cfg := &ssh.ClientConfig{
		User:    user,
		Auth:    []ssh.AuthMethod{ssh.PublicKeys(signer)},
		Timeout: timeout,
		HostKeyCallback: func(_ string, _ net.Addr, k ssh.PublicKey) error {
			res.HostKey = keyLabel(k)
			return nil
		},
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	conn, err := h.Dial(ctx, "tcp", addr, connectTimeout)
	if err != nil {
		return res, err
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	if d, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(d)
	}
	sc, chans, reqs, err := ssh.NewClientConn(conn, addr, cfg)
	if err != nil {
		return res, fmt.Errorf("SSH to %s as %s: %w", addr, user, err)
	}
	client := ssh.NewClient(sc, chans, reqs)
	defer client.Close()
	sess, err := client.NewSession()
	if err != nil {
		return res, fmt.Errorf("SSH to %s: opening a session: %w", addr, err)
	}
	defer sess.Close()
	var out, errb bytes.Buffer
	sess.Stdout, sess.Stderr = &out, &errb
	err = sess.Run(cmd)
	res.Stdout, res.Stderr = out.String(), errb.String()
	if ee, ok := err.(*ssh.ExitError); ok {
		res.Exit = ee.ExitStatus()
		return res, nil
	}
	if err != nil {
		return res, fmt.Errorf("SSH to %s: running the probes: %w", addr, err)
	}
	res.Exit = 0
	return res, nil
}
