package assets

import (
	"embed"
	"fmt"
)

// Steps 6 and 7: the compose file (a text/template taking .Image, .Port, .Resolvers, .Subnet, .ConfigDir and
// .AuthDir) and the OpenClaw config patches: gateway.json is what Step 6 needs for the gateway to start in its
// container (bind lan, token from the environment, rate limit), hardened.json is Step 7's whole policy.
//
//go:embed compose/compose.yaml.tmpl openclaw/gateway.json openclaw/hardened.json
var openclaw embed.FS

// ComposeTemplate is the text/template of Step 6's compose.yaml.
func ComposeTemplate() string { return string(openclawFile("compose/compose.yaml.tmpl")) }

// OpenClawGatewayPatch is the part of openclaw.json Step 6 writes before the first start.
func OpenClawGatewayPatch() []byte { return openclawFile("openclaw/gateway.json") }

// OpenClawHardenedPatch is the hardened openclaw.json shape Step 7 merges into the operator's config.
func OpenClawHardenedPatch() []byte { return openclawFile("openclaw/hardened.json") }

func openclawFile(name string) []byte {
	b, err := openclaw.ReadFile(name)
	if err != nil { // the names are fixed at build time: a miss is a programming error
		panic(fmt.Sprintf("assets: %s is not embedded: %v", name, err))
	}
	return b
}
