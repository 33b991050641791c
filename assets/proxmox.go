package assets

import (
	"embed"
	"fmt"
)

// Step 3's templates: the VM firewall file (a text/template) and the datacenter fragment.
//
//go:embed proxmox/vm.fw.tmpl proxmox/cluster.fw.fragment
var proxmox embed.FS

// ProxmoxVMTemplate is the text/template behind `openclaw-harden render proxmox-fw` (/etc/pve/firewall/<vmid>.fw).
func ProxmoxVMTemplate() string { return string(proxmoxFile("proxmox/vm.fw.tmpl")) }

// ProxmoxClusterFragment is the [OPTIONS] enable: 1 fragment of /etc/pve/firewall/cluster.fw.
func ProxmoxClusterFragment() []byte { return proxmoxFile("proxmox/cluster.fw.fragment") }

func proxmoxFile(name string) []byte {
	b, err := proxmox.ReadFile(name)
	if err != nil { // the names are fixed at build time: a miss is a programming error
		panic(fmt.Sprintf("assets: %s is not embedded: %v", name, err))
	}
	return b
}
