package pvefw

import (
	"net/netip"
	"strconv"
	"strings"
)

// ipRange is an inclusive range of addresses of one family.
type ipRange struct{ lo, hi netip.Addr }

func (r ipRange) family() int {
	if r.lo.Is4() {
		return 4
	}
	return 6
}

func (r ipRange) single() bool { return r.lo == r.hi }

func (r ipRange) overlaps(o ipRange) bool {
	return r.family() == o.family() && r.lo.Compare(o.hi) <= 0 && o.lo.Compare(r.hi) <= 0
}

// addrSet is what a -source or -dest matches: anything, or a union of
// ranges (none for an empty IP set).
type addrSet struct {
	any    bool
	ranges []ipRange
}

var anyAddr = addrSet{any: true}

func (a addrSet) intersects(b addrSet) bool {
	switch {
	case a.any:
		return b.any || len(b.ranges) > 0
	case b.any:
		return len(a.ranges) > 0
	}
	for _, x := range a.ranges {
		for _, y := range b.ranges {
			if x.overlaps(y) {
				return true
			}
		}
	}
	return false
}

// broad reports whether the set holds more than single hosts: an ACCEPT to
// a single host before a DROP of its network is a deliberate exception, an
// ACCEPT to a network or to anything is not.
func (a addrSet) broad() bool {
	if a.any {
		return true
	}
	for _, r := range a.ranges {
		if !r.single() {
			return true
		}
	}
	return false
}

// parseAddr accepts an IPv4 address in dotted-quad form or an IPv6
// address without a zone: the forms pve-firewall's $IPV4RE/$IPV6RE and the
// nftables backend both accept. Net::IP would also take "10" for 10.0.0.0.
func parseAddr(s string) (netip.Addr, bool) {
	a, err := netip.ParseAddr(s)
	if err != nil || a.Zone() != "" {
		return netip.Addr{}, false
	}
	return a, true
}

// lastAddr is the highest address of p.
func lastAddr(p netip.Prefix) netip.Addr {
	b := p.Addr().AsSlice()
	bits := p.Bits()
	for i := range b {
		for j := 0; j < 8; j++ {
			if i*8+j >= bits {
				b[i] |= 0x80 >> j
			}
		}
	}
	a, _ := netip.AddrFromSlice(b)
	return a
}

func familyName(f int) string {
	if f == 6 {
		return "IPv6"
	}
	return "IPv4"
}

func maxBits(a netip.Addr) int {
	if a.Is4() {
		return 32
	}
	return 128
}

// cidr is a parsed "addr" or "addr/len".
type cidr struct {
	r        ipRange
	hostBits bool // bits set beyond the prefix
	tooLong  bool // a prefix longer than the address
}

// parseCIDR parses "addr" or "addr/len" as parse_ip_or_cidr does for
// aliases and IP set entries: $IPV4RE or $IPV6RE and any digits after the
// slash. errMsg is set only when that regex fails; a prefix that is too
// long or has host bits set passes it and is flagged in the result.
func parseCIDR(s string) (c cidr, errMsg string) {
	addrPart, bitsPart, hasBits := strings.Cut(s, "/")
	a, ok := parseAddr(addrPart)
	if !ok || hasBits && !isDigits(bitsPart) {
		return c, notAnAddress(s)
	}
	if !hasBits {
		c.r = ipRange{a, a}
		return c, ""
	}
	if !digitsAtMost(bitsPart, maxBits(a)) {
		c.r, c.tooLong = ipRange{a, a}, true
		return c, ""
	}
	m := netip.PrefixFrom(a, atoiSmall(bitsPart)).Masked()
	c.r = ipRange{m.Addr(), lastAddr(m)}
	c.hostBits = m.Addr() != a
	return c, ""
}

func tooLongMsg(s string) string {
	a, bits, _ := strings.Cut(s, "/")
	addr, _ := parseAddr(a)
	return "prefix /" + bits + " is longer than an " + familyName(famOf(addr)) + " address (" + strconv.Itoa(maxBits(addr)) + " bits)"
}

func famOf(a netip.Addr) int {
	if a.Is4() {
		return 4
	}
	return 6
}

func notAnAddress(s string) string {
	if strings.ContainsRune(s, '.') && strings.IndexFunc(s, func(r rune) bool {
		return ('a' <= r && r <= 'z') || ('A' <= r && r <= 'Z')
	}) >= 0 && !strings.ContainsRune(s, ':') {
		return quote(s) + " is not an IP address: host names are not resolved (use an address, a CIDR, an alias or an +ipset)"
	}
	return quote(s) + " is not an IP address, CIDR or range"
}

// isAliasRef matches ^(dc/|guest/)?[A-Za-z][A-Za-z0-9\-\_]+$, the test
// pve-firewall uses to decide that an address is an alias name.
func isAliasRef(s string) (scope, name string, ok bool) {
	for _, sc := range []string{"dc/", "guest/"} {
		if rest, found := strings.CutPrefix(s, sc); found {
			return sc, rest, isName(rest)
		}
	}
	return "", s, isName(s)
}

// parseAddressList checks a literal -source/-dest value (not an alias or
// IP set) as parse_address_list does with Net::IP. errMsg is why
// pve-firewall refuses it. loose is set when only pve-firewall accepts it:
// Net::IP reads "10/8" as 10.0.0.0/8 and "010.0.0.1" as 10.0.0.1, the
// nftables backend refuses both.
func parseAddressList(s string) (fam int, set addrSet, errMsg, loose string) {
	elems := strings.Split(s, ",")
	isRange := false
	for _, e := range elems {
		if e == "" {
			return 0, set, "empty entry in the address list (a stray comma)", ""
		}
		r, msg := parseElem(e)
		if msg != "" {
			lo, hi, ok := netIP(e)
			if !ok {
				return 0, set, msg, ""
			}
			r = ipRange{lo, hi}
			if loose == "" {
				loose = quote(e) + " is not written in full: pve-firewall reads it as " + rangeString(r) + " and the nftables backend refuses it"
			}
		}
		if strings.Contains(e, "-") {
			isRange = true
		}
		f := r.family()
		if fam != 0 && f != fam {
			return 0, set, "the list mixes IPv4 and IPv6 addresses", ""
		}
		fam = f
		set.ranges = append(set.ranges, r)
	}
	if isRange && len(elems) > 1 {
		return 0, set, "a range cannot be part of a list", ""
	}
	return fam, set, "", loose
}

// parseElem parses one strict list element: an address, a CIDR without
// host bits, or a range first-last.
func parseElem(e string) (ipRange, string) {
	if lo, hi, ok := strings.Cut(e, "-"); ok {
		a, okA := parseAddr(lo)
		b, okB := parseAddr(hi)
		switch {
		case !okA || !okB:
			return ipRange{}, notAnAddress(e)
		case a.Is4() != b.Is4():
			return ipRange{}, "range " + quote(e) + " mixes IPv4 and IPv6"
		case a.Compare(b) > 0:
			return ipRange{}, "range " + quote(e) + " is backwards: its first address is greater than its last"
		}
		return ipRange{a, b}, ""
	}
	c, msg := parseCIDR(e)
	switch {
	case msg != "":
		return ipRange{}, msg
	case c.tooLong:
		return ipRange{}, tooLongMsg(e)
	case c.hostBits:
		_, bits, _ := strings.Cut(e, "/")
		return ipRange{}, quote(e) + " has host bits set: the network is " + c.r.lo.String() + "/" + bits
	}
	return c.r, ""
}

func rangeString(r ipRange) string {
	if r.single() {
		return r.lo.String()
	}
	for bits := 0; bits <= maxBits(r.lo); bits++ {
		if p := netip.PrefixFrom(r.lo, bits); p.Masked().Addr() == r.lo && lastAddr(p) == r.hi {
			return p.String()
		}
	}
	return r.lo.String() + "-" + r.hi.String()
}

// netIP accepts what Net::IP->new accepts beyond the strict forms, for the
// shapes that fit in a rule value: IPv4 with fewer than four quads or
// zero-padded quads, each with an optional /len, and ranges of those. IPv6
// is taken as netip reads it.
func netIP(s string) (lo, hi netip.Addr, ok bool) {
	if ip, bits, has := strings.Cut(s, "/"); has {
		a, ok := netIPAddr(ip)
		if !ok || !isDigits(bits) || !digitsAtMost(bits, maxBits(a)) {
			return lo, hi, false
		}
		p := netip.PrefixFrom(a, atoiSmall(bits))
		if p.Masked().Addr() != a {
			return lo, hi, false
		}
		return a, lastAddr(p), true
	}
	if first, last, has := strings.Cut(s, "-"); has {
		a, okA := netIPAddr(first)
		b, okB := netIPAddr(last)
		if !okA || !okB || a.Is4() != b.Is4() || a.Compare(b) > 0 {
			return lo, hi, false
		}
		return a, b, true
	}
	a, ok := netIPAddr(s)
	return a, a, ok
}

// netIPAddr is Net::IP's ip_is_ipv4 plus ip_expand_address: one to four
// dot-separated decimal quads of up to three digits, each below 256,
// missing quads filled with zeros at the end.
func netIPAddr(s string) (netip.Addr, bool) {
	if strings.Contains(s, ":") {
		return parseAddr(s)
	}
	quads := strings.Split(s, ".")
	if len(quads) > 4 {
		return netip.Addr{}, false
	}
	var b [4]byte
	for i, q := range quads {
		if len(q) == 0 || len(q) > 3 || !isDigits(q) || atoiSmall(q) > 255 {
			return netip.Addr{}, false
		}
		b[i] = byte(atoiSmall(q))
	}
	return netip.AddrFrom4(b), true
}
