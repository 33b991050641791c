package main

import "openclaw-harden/steps"

func init() {
	// Step 3's artifacts: the VM's /etc/pve/firewall/<vmid>.fw and the cluster.fw fragment to merge.
	artifacts["proxmox-fw"] = steps.ProxmoxVMFirewall
	artifacts["proxmox-cluster-fw"] = func(steps.Answers) ([]byte, error) { return steps.ProxmoxClusterFragment(), nil }
}
