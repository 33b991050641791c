package pvefw

import "strings"

// Format writes f in the layout pve-firewall itself writes when the GUI or
// API saves a file ([OPTIONS], [ALIASES], [IPSET …], [RULES], then security
// groups; rule options in its canonical order), so that a save through the
// API changes nothing but full-line comments. Options keep f's order.
// Format does not validate: run Check on its output.
func Format(f File) []byte {
	var b strings.Builder
	if len(f.Options) > 0 {
		b.WriteString("[OPTIONS]\n\n")
		for _, o := range f.Options {
			b.WriteString(o.Key + ": " + o.Value + "\n")
		}
		b.WriteString("\n")
	}
	if len(f.Aliases) > 0 {
		b.WriteString("[ALIASES]\n\n")
		for _, a := range f.Aliases {
			b.WriteString(a.Name + " " + a.CIDR + comment(a.Comment) + "\n")
		}
		b.WriteString("\n")
	}
	for _, s := range f.IPSets {
		b.WriteString("[IPSET " + s.Name + "]" + comment(s.Comment) + "\n\n")
		for _, e := range s.Entries {
			if e.NoMatch {
				b.WriteString("!")
			}
			b.WriteString(e.CIDR + comment(e.Comment) + "\n")
		}
		b.WriteString("\n")
	}
	if len(f.Rules) > 0 {
		b.WriteString("[RULES]\n\n")
		for _, r := range f.Rules {
			b.WriteString(ruleText(r) + comment(r.Comment) + "\n")
		}
		b.WriteString("\n")
	}
	for _, g := range f.Groups {
		b.WriteString("[group " + g.Name + "]" + comment(g.Comment) + "\n\n")
		for _, r := range g.Rules {
			b.WriteString(ruleText(r) + comment(r.Comment) + "\n")
		}
		b.WriteString("\n")
	}
	return []byte(b.String())
}

func comment(c string) string {
	if strings.TrimSpace(c) == "" {
		return ""
	}
	return " # " + c
}

// ruleText is a rule without its comment, options in the order
// pve-firewall's $format_rules writes them.
func ruleText(r Rule) string {
	var b strings.Builder
	if !r.Enabled {
		b.WriteString("|")
	}
	b.WriteString(r.Dir)
	if r.Macro != "" {
		b.WriteString(" " + r.Macro + "(" + r.Action + ")")
	} else {
		b.WriteString(" " + r.Action)
	}
	for _, o := range []struct{ opt, val string }{
		{"-i", r.Iface}, {"-source", r.Source}, {"-dest", r.Dest}, {"-p", r.Proto},
		{"-dport", r.DPort}, {"-sport", r.SPort}, {"-log", r.Log}, {"-icmp-type", r.ICMPType},
	} {
		if o.val != "" {
			b.WriteString(" " + o.opt + " " + o.val)
		}
	}
	return b.String()
}

// RuleLine is one rule as pve-firewall writes it back: options in its canonical order, then " # comment"
// (a '#' glued to a value would start the comment early and swallow options).
func RuleLine(r Rule) string { return ruleText(r) + comment(strings.TrimSpace(r.Comment)) }
