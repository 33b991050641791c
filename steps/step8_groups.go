package steps

import (
	"net"
	"strings"
)

// SourceGroup is one vantage point's checks, as the plain output and the wizard show Step 8's results:
// read by where each probe was sent from.
type SourceGroup struct {
	Source  string  // "container", "vm", "lan"; "" for checks that were not sent from anywhere in particular
	Heading string  // "From the VM"; "" when Source is ""
	NotRun  string  // set when this source's probes were not run: what that leaves unproven
	Hint    string  // with NotRun: how to run them by hand, when the step said so
	Checks  []Check // in the order Verify returned them
}

// LANUnproven is what the matrix cannot show without probes from another LAN host.
const LANUnproven = lanUnproven

// GroupBySource groups checks by Source: the container, the VM, the LAN host, then any other source, then
// checks without one. It returns nil when no check has a source (steps other than 8 show a plain list).
func GroupBySource(cs []Check) []SourceGroup {
	idx := map[string]int{}
	var gs []SourceGroup
	for _, src := range []string{string(SourceContainer), string(SourceVM), string(SourceLAN)} {
		idx[src] = len(gs)
		gs = append(gs, SourceGroup{Source: src})
	}
	sourced := false
	for _, c := range cs {
		sourced = sourced || c.Source != ""
		i, ok := idx[c.Source]
		if !ok {
			idx[c.Source] = len(gs)
			i = len(gs)
			gs = append(gs, SourceGroup{Source: c.Source})
		}
		gs[i].Checks = append(gs[i].Checks, c)
	}
	if !sourced {
		return nil
	}
	var out []SourceGroup
	var none *SourceGroup
	for _, g := range gs {
		if len(g.Checks) == 0 {
			continue
		}
		g.Heading = sourceHeading(&g)
		if g.Source == "" {
			none = &g
			continue
		}
		out = append(out, g)
	}
	if none != nil {
		out = append(out, *none)
	}
	return out
}

func sourceHeading(g *SourceGroup) string {
	switch ProbeSource(g.Source) {
	case SourceContainer:
		return "From the container (gateway's network namespace)"
	case SourceVM:
		return "From the VM"
	case SourceLAN:
		h := "From the LAN host"
		for _, c := range g.Checks {
			if c.ID == "step8.lan.ssh-login" {
				if host, _, err := net.SplitHostPort(c.Target); err == nil {
					h += " " + host
				}
			}
			if c.ID == "step8.lan.not-run" || (c.ID == "step8.lan.ssh-login" && strings.HasPrefix(c.Got, "not run")) {
				g.NotRun = LANUnproven
				hint := strings.Replace(c.Reason, LANUnproven, "", 1)
				g.Hint = strings.Trim(hint, "; ")
			}
		}
		if g.NotRun != "" {
			h += ": not run"
		}
		return h
	case "":
		return ""
	}
	return "From " + g.Source
}
