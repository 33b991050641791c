package assets

import (
	_ "embed"
)

// SSHDDropinPath is where Step 0 installs its sshd drop-in.
const SSHDDropinPath = "/etc/ssh/sshd_config.d/00-openclaw-harden.conf"

//go:embed sshd/00-openclaw-harden.conf
var sshdDropin string

// SSHDDropin is the content of Step 0's sshd drop-in: passwords, keyboard-interactive and root logins off,
// public keys on, under a header that says who manages the file and why it sorts first.
func SSHDDropin() string { return sshdDropin }
