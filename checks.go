package main

import "openclaw-harden/pvefw"

func init() {
	// A warning in a firewall file is a rule that does something other than what it looks like: it fails
	// the check too, so CI gates on it.
	checkers["proxmox-fw"] = func(name string, data []byte) ([]string, bool) {
		fs := pvefw.Check(name, data)
		out := make([]string, len(fs))
		for i, f := range fs {
			out[i] = f.String()
		}
		return out, len(fs) > 0
	}
}
