package assets

import (
	"embed"
	"fmt"
)

// Step 2's templates: the UFW script (a text/template) and the files it writes verbatim.
//
//go:embed ufw/ufw-script.sh.tmpl step2/99-openclaw-disable-ipv6.conf step2/20auto-upgrades
var step2 embed.FS

// UFWScriptTemplate is the text/template behind `openclaw-harden render ufw-script`.
func UFWScriptTemplate() string { return string(step2File("ufw/ufw-script.sh.tmpl")) }

// IPv6SysctlDropIn is /etc/sysctl.d/99-openclaw-disable-ipv6.conf.
func IPv6SysctlDropIn() []byte { return step2File("step2/99-openclaw-disable-ipv6.conf") }

// AutoUpgrades is /etc/apt/apt.conf.d/20auto-upgrades: daily list updates and unattended upgrades.
func AutoUpgrades() []byte { return step2File("step2/20auto-upgrades") }

func step2File(name string) []byte {
	b, err := step2.ReadFile(name)
	if err != nil { // the names are fixed at build time: a miss is a programming error
		panic(fmt.Sprintf("assets: %s is not embedded: %v", name, err))
	}
	return b
}
