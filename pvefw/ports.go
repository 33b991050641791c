package pvefw

import (
	"strconv"
	"strings"
)

type portRange struct{ lo, hi int }

// portSet is what -dport/-sport matches; nil means any port.
type portSet []portRange

func (a portSet) intersects(b portSet) bool {
	if a == nil || b == nil {
		return true
	}
	for _, x := range a {
		for _, y := range b {
			if x.lo <= y.hi && y.lo <= x.hi {
				return true
			}
		}
	}
	return false
}

// portSpec is a parsed -dport/-sport value.
type portSpec struct {
	set      portSet
	icmp     string   // a legacy ICMP type written as -dport (only with an ICMP -p)
	names    []string // service names, resolved through the node's /etc/services
	namesNum []string // their numbers, where this package knows them
}

// parsePorts follows parse_port_name_number_or_range: a comma list of N or
// N:M (each range counts twice against iptables multiport's limit of 15),
// service names, and, for -dport with an ICMP protocol, ICMP type names.
func parsePorts(s string, icmpOK bool) (portSpec, string) {
	var ps portSpec
	count := 0
	for _, item := range strings.Split(s, ",") {
		if item == "" {
			return ps, "empty entry in the port list (a stray comma)"
		}
		if lo, hi, ok := strings.Cut(item, ":"); ok && isDigits(lo) && isDigits(hi) {
			count += 2
			for _, p := range []string{lo, hi} {
				if !digitsAtMost(p, 65535) {
					return ps, "invalid port " + quote(p) + " (0-65535)"
				}
			}
			a, b := atoiSmall(lo), atoiSmall(hi)
			if a > b {
				return ps, "backwards range " + quote(item) + ": write " + hi + ":" + lo
			}
			ps.set = append(ps.set, portRange{a, b})
			continue
		}
		if isDigits(item) {
			count++
			if !digitsAtMost(item, 65535) {
				return ps, "invalid port " + quote(item) + " (0-65535)"
			}
			n := atoiSmall(item)
			ps.set = append(ps.set, portRange{n, n})
			continue
		}
		if icmpOK && (icmpTypes[item] || icmpv6Types[item]) {
			ps.icmp = item
			continue
		}
		if num, ok := serviceByName[item]; ok {
			ps.names = append(ps.names, item)
			ps.namesNum = append(ps.namesNum, num)
			n, _ := strconv.Atoi(num)
			ps.set = append(ps.set, portRange{n, n})
			continue
		}
		if lo, hi, ok := strings.Cut(item, "-"); ok && isDigits(lo) && isDigits(hi) {
			return ps, "invalid port " + quote(item) + ": port ranges are written " + lo + ":" + hi
		}
		return ps, "invalid port " + quote(item) + " (a number 0-65535, a range N:M, or a name from /etc/services)"
	}
	if ps.icmp != "" && count > 0 {
		return ps, "an ICMP type cannot be mixed with port numbers"
	}
	if count > 15 {
		return ps, "too many ports: more than 15 (a range counts as 2), the iptables multiport limit"
	}
	if ps.icmp != "" {
		ps.set = nil
	}
	return ps, ""
}
