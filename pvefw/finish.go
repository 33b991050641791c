package pvefw

import (
	"strconv"
	"strings"
)

// finish runs the checks that need the whole file: options that are
// missing, rules that compile to nothing, and rule order.
func (p *parser) finish() {
	p.checkMissingOptions()
	env := map[Kind]string{VM: "vm", Cluster: "cluster", Host: "host"}[p.kind]
	p.checkCompiled(p.file.Rules, env)
	p.checkOrder(p.file.Rules, env)
	for _, g := range p.file.Groups {
		p.checkCompiled(g.Rules, "group")
		p.checkOrder(g.Rules, "group")
	}
}

func (p *parser) checkMissingOptions() {
	at := p.optionsLine
	if at == 0 {
		at = 1
	}
	_, hasEnable := p.file.Option("enable")
	switch p.kind {
	case VM:
		if !hasEnable {
			p.add(at, Warning, "enable is not set: this VM's firewall is off (the default is 0)")
		}
		if _, ok := p.file.Option("policy_out"); !ok {
			p.add(at, Warning, "policy_out is not set: outgoing traffic no rule matches is accepted (the default is ACCEPT); set it explicitly")
		}
		if o, ok := p.file.Option("ipfilter"); ok && o.Value == "1" {
			has := false
			for _, s := range p.file.IPSets {
				has = has || strings.HasPrefix(s.Name, "ipfilter-net")
			}
			if !has {
				p.add(o.Line, Warning, "ipfilter: 1 without an [IPSET ipfilter-net0] section: a VM's implicit set holds only its IPv6 link-local address, so all its IPv4 traffic except DHCP is dropped")
			}
		}
	case Cluster:
		if !hasEnable {
			p.add(at, Warning, "enable is not set: the datacenter firewall is off (the default is 0), so no VM or host rule applies")
		}
	}
}

// checkCompiled reports rules pve-firewall accepts and compiles into
// nothing that can match.
func (p *parser) checkCompiled(rules []Rule, env string) {
	for _, r := range rules {
		if !r.Enabled || r.Invalid != "" {
			continue
		}
		if r.Dir == "GROUP" {
			p.checkGroupRef(r)
			continue
		}
		for _, v := range []struct{ opt, val string }{{"-source", r.Source}, {"-dest", r.Dest}} {
			ref := classifyAddr(v.val)
			if perlFalse(v.val) || ref.kind != '+' {
				continue
			}
			s, found, _ := p.resolveSet(ref, env)
			if !found {
				continue
			}
			usable := 0
			for _, e := range s.Entries {
				if e.Invalid == "" {
					usable++
				}
			}
			if usable == 0 {
				p.add(r.Line, Error, v.opt+": IP set "+quote(s.Name)+" has no usable entries, so this rule never matches")
			}
		}
	}
}

func (p *parser) checkGroupRef(r Rule) {
	groups := p.cfg.Cluster
	if p.kind == Cluster {
		groups = &p.file
	}
	if groups == nil {
		return
	}
	if _, ok := groups.Group(r.Action); ok {
		return
	}
	msg := "no such security group " + quote(r.Action)
	if _, ok := groups.Group(asciiLower(r.Action)); ok {
		msg += ": pve-firewall stores group names in lowercase, so write GROUP " + asciiLower(r.Action)
	}
	// generate_group_rules warns and jumps to an empty chain.
	p.add(r.Line, Error, msg+": the rule does nothing")
}

// checkOrder warns when an ACCEPT whose remote side is a network or
// anything comes before a DROP or REJECT it overlaps: pve-firewall stops
// at the first matching rule, so the overlapping traffic is accepted and
// the DROP below never sees it. Two shapes are deliberate and left alone:
// an ACCEPT to a single host (the exception above the DROP of its
// network), and an ACCEPT that lies entirely inside the DROP (allow this,
// drop the rest).
func (p *parser) checkOrder(rules []Rule, env string) {
	var ms []matcher
	for _, r := range rules {
		if !r.Enabled || r.Invalid != "" || r.Dir == "GROUP" {
			continue
		}
		if m, ok := p.matcherOf(r, env); ok {
			ms = append(ms, m)
		}
	}
	for i, a := range ms {
		if a.rule.Action != "ACCEPT" || !a.remote().broad() {
			continue
		}
		var hits []matcher
		for _, b := range ms[i+1:] {
			if b.rule.Dir == a.rule.Dir && (b.rule.Action == "DROP" || b.rule.Action == "REJECT") && a.overlaps(b) && !a.within(b) {
				hits = append(hits, b)
			}
		}
		if len(hits) == 0 {
			continue
		}
		dir := a.rule.Dir
		var msg string
		if len(hits) == 1 {
			msg = "this " + dir + " ACCEPT comes before " + quote(ruleText(hits[0].rule)) + " on line " + strconv.Itoa(hits[0].rule.Line) +
				" and matches some of the same traffic: the first matching rule wins, so that traffic is accepted; put the " + hits[0].rule.Action + " above this rule"
		} else {
			lines := make([]string, len(hits))
			for j, h := range hits {
				lines[j] = strconv.Itoa(h.rule.Line)
			}
			msg = "this " + dir + " ACCEPT comes before the " + dir + " DROP/REJECT rules on lines " + joinAnd(lines) +
				" (the first is " + quote(ruleText(hits[0].rule)) + ") and matches some of the same traffic: the first matching rule wins, so that traffic is accepted; put them above this rule"
		}
		p.add(a.rule.Line, Warning, msg)
	}
}

func joinAnd(s []string) string {
	if len(s) < 2 {
		return strings.Join(s, "")
	}
	return strings.Join(s[:len(s)-1], ", ") + " and " + s[len(s)-1]
}
