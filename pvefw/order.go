package pvefw

// A matcher is the traffic one compiled rule matches, as far as the order
// check needs it. Macros expand into several variants, like the iptables
// rules pve-firewall generates for them.
type matcher struct {
	rule     Rule
	iface    string
	fam      int
	src, dst addrSet
	variants []variant
}

type variant struct {
	fam    int
	proto  string  // "" is any
	dports portSet // nil is any
	sports portSet
	icmp   string // "" is any
}

// remote is the other end of the traffic: where OUT (and FORWARD) rules
// send it, where IN rules receive it from.
func (m matcher) remote() addrSet {
	if m.rule.Dir == "IN" {
		return m.src
	}
	return m.dst
}

func normProto(p string) string {
	if name, ok := protoByNumber[p]; ok {
		p = name
	}
	if p == "ipv6-icmp" {
		return "icmpv6"
	}
	return p
}

// matcherOf builds r's matcher; ok is false when part of the match lies
// outside this file (an unresolved name, an IP set with nomatch entries)
// and the order check must not guess.
func (p *parser) matcherOf(r Rule, env string) (matcher, bool) {
	m := matcher{rule: r, src: anyAddr, dst: anyAddr}
	if !perlFalse(r.Iface) {
		m.iface = r.Iface
	}
	proto := ""
	if !perlFalse(r.Proto) {
		proto = normProto(r.Proto)
		switch proto {
		case "icmp":
			m.fam = 4
		case "icmpv6":
			m.fam = 6
		}
	}
	for _, f := range []struct {
		val string
		set *addrSet
	}{{r.Source, &m.src}, {r.Dest, &m.dst}} {
		if perlFalse(f.val) {
			continue
		}
		s, fam, ok := p.addrSetOf(f.val, env)
		if !ok {
			return m, false
		}
		*f.set = s
		if fam != 0 {
			m.fam = fam
		}
	}

	base := variant{proto: proto}
	isICMP := proto == "icmp" || proto == "icmpv6"
	if !perlFalse(r.DPort) {
		ps, _ := parsePorts(r.DPort, isICMP)
		base.dports, base.icmp = ps.set, ps.icmp
	}
	if !perlFalse(r.SPort) {
		ps, _ := parsePorts(r.SPort, false)
		base.sports = ps.set
	}
	if !perlFalse(r.ICMPType) {
		base.icmp = r.ICMPType
	}
	mac := macros[asciiLower(r.Macro)]
	if mac == nil {
		m.variants = []variant{base}
		return m, true
	}
	add := func(fam int, rules []macroRule) {
		for _, mr := range rules {
			v := base
			v.fam = fam
			if mr.proto != "" {
				v.proto = normProto(mr.proto)
			}
			if mr.dport != "" {
				ps, _ := parsePorts(mr.dport, v.proto == "icmp" || v.proto == "icmpv6")
				v.dports, v.icmp = ps.set, ps.icmp
			}
			if mr.sport != "" {
				ps, _ := parsePorts(mr.sport, false)
				v.sports = ps.set
			}
			m.variants = append(m.variants, v)
		}
	}
	switch {
	case mac.family != 0:
		add(mac.family, mac.rules)
	case mac.v6 != nil:
		add(4, mac.rules)
		add(6, mac.v6)
	default:
		add(0, mac.rules)
	}
	return m, true
}

// addrSetOf resolves a -source/-dest value to addresses.
func (p *parser) addrSetOf(v, env string) (addrSet, int, bool) {
	ref := classifyAddr(v)
	switch ref.kind {
	case 'a':
		a, found, _ := p.resolveAlias(ref.scope, ref.name, env)
		if !found {
			return addrSet{}, 0, false
		}
		c, msg := parseCIDR(a.CIDR)
		if msg != "" || c.tooLong {
			return addrSet{}, 0, false
		}
		return addrSet{ranges: []ipRange{c.r}}, c.r.family(), true
	case '+':
		s, found, _ := p.resolveSet(ref, env)
		if !found {
			return addrSet{}, 0, false
		}
		var out addrSet
		for _, e := range s.Entries {
			if e.Invalid != "" {
				continue
			}
			if e.NoMatch {
				// ipset nomatch carves holes whose effect depends on
				// prefix lengths; do not guess.
				return addrSet{}, 0, false
			}
			cidr := e.CIDR
			if scope, name, ok := isAliasRef(cidr); ok {
				a, found, _ := p.resolveAlias(scope, name, "ipset")
				if !found {
					return addrSet{}, 0, false
				}
				cidr = a.CIDR
			}
			c, msg := parseCIDR(cidr)
			if msg != "" || c.tooLong {
				return addrSet{}, 0, false
			}
			out.ranges = append(out.ranges, c.r)
		}
		return out, 0, true
	}
	fam, s, msg, _ := parseAddressList(v)
	return s, fam, msg == ""
}

func combineFam(a, b int) (int, bool) {
	switch {
	case a == 0:
		return b, true
	case b == 0 || a == b:
		return a, true
	}
	return 0, false
}

func (a addrSet) only(fam int) addrSet {
	if fam == 0 || a.any {
		return a
	}
	out := addrSet{}
	for _, r := range a.ranges {
		if r.family() == fam {
			out.ranges = append(out.ranges, r)
		}
	}
	return out
}

// overlaps reports whether some packet matches both a and b.
func (a matcher) overlaps(b matcher) bool {
	if a.iface != "" && b.iface != "" && a.iface != b.iface {
		return false
	}
	for _, va := range a.variants {
		fa, ok := combineFam(a.fam, va.fam)
		if !ok {
			continue
		}
		for _, vb := range b.variants {
			fb, ok := combineFam(b.fam, vb.fam)
			if !ok {
				continue
			}
			f, ok := combineFam(fa, fb)
			if !ok {
				continue
			}
			if va.proto != "" && vb.proto != "" && va.proto != vb.proto {
				continue
			}
			if !va.dports.intersects(vb.dports) || !va.sports.intersects(vb.sports) {
				continue
			}
			if va.icmp != "" && vb.icmp != "" && va.icmp != vb.icmp && va.icmp != "any" && vb.icmp != "any" {
				continue
			}
			if a.src.only(f).intersects(b.src.only(f)) && a.dst.only(f).intersects(b.dst.only(f)) {
				return true
			}
		}
	}
	return false
}

// within reports whether every address of a (of family f) is in b.
func (a addrSet) within(b addrSet, f int) bool {
	if b.only(f).any {
		return true
	}
	if a.only(f).any {
		return false
	}
	for _, x := range a.only(f).ranges {
		in := false
		for _, y := range b.ranges {
			if x.family() == y.family() && y.lo.Compare(x.lo) <= 0 && x.hi.Compare(y.hi) <= 0 {
				in = true
				break
			}
		}
		if !in {
			return false
		}
	}
	return true
}

func (a portSet) within(b portSet) bool {
	if b == nil {
		return true
	}
	if a == nil {
		return false
	}
	for _, x := range a {
		in := false
		for _, y := range b {
			if y.lo <= x.lo && x.hi <= y.hi {
				in = true
				break
			}
		}
		if !in {
			return false
		}
	}
	return true
}

// within reports whether everything a matches, b matches too. It may
// answer false for a union of b's variants that happens to cover a; the
// order check then reports a pair it could have left alone.
func (a matcher) within(b matcher) bool {
	if b.iface != "" && b.iface != a.iface {
		return false
	}
	for _, va := range a.variants {
		fa, ok := combineFam(a.fam, va.fam)
		if !ok {
			continue
		}
		covered := false
		for _, vb := range b.variants {
			fb, ok := combineFam(b.fam, vb.fam)
			if !ok || (fb != 0 && fb != fa) {
				continue
			}
			if vb.proto != "" && vb.proto != va.proto {
				continue
			}
			if !va.dports.within(vb.dports) || !va.sports.within(vb.sports) {
				continue
			}
			if vb.icmp != "" && vb.icmp != "any" && vb.icmp != va.icmp {
				continue
			}
			if a.src.within(b.src, fa) && a.dst.within(b.dst, fa) {
				covered = true
				break
			}
		}
		if !covered {
			return false
		}
	}
	return true
}
