package assets

import (
	"embed"
	"fmt"
)

// Steps 4 and 5: the DOCKER-USER block for /etc/ufw/after.rules (a text/template) and the profile's
// daemon.json keys, which Step 5 merges into the operator's file.
//
//go:embed afterrules/docker-user.rules.tmpl daemon/daemon.json
var docker embed.FS

// DockerUserBlockTemplate is the text/template of Step 4's marker block; it takes .Subnet and .Drops.
func DockerUserBlockTemplate() string { return string(dockerFile("afterrules/docker-user.rules.tmpl")) }

// DaemonJSONProfile is the profile's daemon.json: the keys Step 5 sets when the installed Docker honours them.
func DaemonJSONProfile() []byte { return dockerFile("daemon/daemon.json") }

func dockerFile(name string) []byte {
	b, err := docker.ReadFile(name)
	if err != nil { // the names are fixed at build time: a miss is a programming error
		panic(fmt.Sprintf("assets: %s is not embedded: %v", name, err))
	}
	return b
}
