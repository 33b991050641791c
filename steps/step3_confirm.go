package steps

import "openclaw-harden/system"

var _ Confirmer = ProxmoxStep{}

// Confirmations are the three switches plus the installed rules, each with the node commands that prove it.
func (ProxmoxStep) Confirmations(a Answers) []Confirmation {
	var out []Confirmation
	for _, s := range ProxmoxSwitches(a) {
		out = append(out, Confirmation(s))
	}
	return out
}

// Confirm records the operator's word for the switches, bound to the generated file's checksum.
func (ProxmoxStep) Confirm(h *system.Host, a Answers, ids []string) error {
	return ConfirmProxmox(h, a, ids)
}
