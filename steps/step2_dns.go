package steps

// Step 2's resolver layer: with outbound DNS allowed only to the chosen resolvers, a system resolver on the
// LAN (the router, set by DHCP) stops working. Find what manages the resolver and point it at the chosen
// ones: a static /etc/resolv.conf, dhclient's `supersede domain-name-servers`, or a systemd-resolved drop-in.

import (
	"errors"
	"fmt"
	"io/fs"
	"regexp"
	"strings"

	"openclaw-harden/system"
)

const (
	resolvConf       = "/etc/resolv.conf"
	resolvedUpstream = "/run/systemd/resolve/resolv.conf"
	resolvedDropIn   = "/etc/systemd/resolved.conf.d/99-openclaw-harden.conf"
	dhclientConf     = "/etc/dhcp/dhclient.conf"
)

// Resolver managers.
const (
	resolverStatic   = "static /etc/resolv.conf"
	resolverDHClient = "dhclient"
	resolverResolved = "systemd-resolved"
)

// resolverState is how the system resolves names now and what Step 2 would write to fix it.
type resolverState struct {
	Manager string   // resolverStatic, resolverDHClient or resolverResolved
	Servers []string // the name servers the system uses now
	Outside []string // those outside answers.resolvers (a loopback one counts, except systemd-resolved's stub)
	Writes  []step2Write
	Restart []string // argv run after the writes ("systemctl restart systemd-resolved")
	Warning string
	Notes   []string
}

// step2Write is one file a step writes.
type step2Write struct {
	Path   string
	Before string
	Data   string
	Perm   fs.FileMode
}

// resolvNameservers are the "nameserver" lines of a resolv.conf, in order.
func resolvNameservers(conf string) []string {
	var ns []string
	for _, line := range strings.Split(conf, "\n") {
		f := strings.Fields(line)
		if len(f) >= 2 && f[0] == "nameserver" {
			ns = append(ns, f[1])
		}
	}
	return ns
}

func resolversOutside(servers, allowed []string) []string {
	ok := map[string]bool{}
	for _, a := range allowed {
		ok[strings.TrimSpace(a)] = true
	}
	var out []string
	for _, s := range servers {
		if !ok[s] {
			out = append(out, s)
		}
	}
	return out
}

// staticResolvConf is resolv.conf listing only the chosen resolvers; search, domain and options lines stay.
func staticResolvConf(old string, resolvers []string) string {
	var b strings.Builder
	b.WriteString("# Written by openclaw-harden (Step 2): only the resolvers UFW allows out to (answers: resolvers).\n")
	for _, r := range resolvers {
		fmt.Fprintf(&b, "nameserver %s\n", strings.TrimSpace(r))
	}
	for _, line := range strings.Split(old, "\n") {
		f := strings.Fields(line)
		if len(f) > 0 && (f[0] == "search" || f[0] == "domain" || f[0] == "options") {
			b.WriteString(strings.TrimSpace(line) + "\n")
		}
	}
	return b.String()
}

var dhclientDNSRE = regexp.MustCompile(`(?m)^([ \t]*(supersede|prepend|append|default)[ \t]+domain-name-servers[^;]*;|` +
	regexp.QuoteMeta(dhclientComment) + `)[ \t]*(\n|$)`)

const dhclientComment = "# openclaw-harden (Step 2): DNS only to the resolvers UFW allows out to."

// dhclientSupersede is dhclient.conf with one `supersede domain-name-servers` line for the chosen resolvers
// (any earlier supersede/prepend/append/default of domain-name-servers is removed).
func dhclientSupersede(old string, resolvers []string) string {
	s := dhclientDNSRE.ReplaceAllString(old, "")
	if s != "" && !strings.HasSuffix(s, "\n") {
		s += "\n"
	}
	rs := make([]string, len(resolvers))
	for i, r := range resolvers {
		rs[i] = strings.TrimSpace(r)
	}
	return s + dhclientComment + "\nsupersede domain-name-servers " + strings.Join(rs, ", ") + ";\n"
}

// resolvedDropInText makes systemd-resolved use only the chosen resolvers for every domain.
func resolvedDropInText(resolvers []string) string {
	rs := make([]string, len(resolvers))
	for i, r := range resolvers {
		rs[i] = strings.TrimSpace(r)
	}
	return "# Written by openclaw-harden (Step 2): DNS only to the resolvers UFW allows out to (answers: resolvers).\n" +
		"[Resolve]\nDNS=\nDNS=" + strings.Join(rs, " ") + "\nDomains=~.\n"
}

// step2ReadOptional returns the file's content, "" when it does not exist.
func step2ReadOptional(h *system.Host, p string) (string, error) {
	b, err := h.ReadFile(p)
	if errors.Is(err, fs.ErrNotExist) {
		return "", nil
	}
	return string(b), err
}

// planResolver finds the resolver's manager, the servers in use, and what to write when one of them is not
// a chosen resolver. Nothing is written here.
func planResolver(h *system.Host, resolvers []string) (resolverState, error) {
	var rs resolverState
	conf, err := step2ReadOptional(h, resolvConf)
	if err != nil {
		return rs, fmt.Errorf("reading %s: %w", resolvConf, err)
	}
	if strings.Contains(conf, "managed by man:systemd-resolved") || resolvHas(resolvNameservers(conf), "127.0.0.53") {
		rs.Manager = resolverResolved
		up, err := step2ReadOptional(h, resolvedUpstream)
		if err != nil {
			return rs, fmt.Errorf("reading %s: %w", resolvedUpstream, err)
		}
		rs.Servers = resolvNameservers(up)
		rs.Outside = resolversOutside(rs.Servers, resolvers)
		cur, err := step2ReadOptional(h, resolvedDropIn)
		if err != nil {
			return rs, err
		}
		want := resolvedDropInText(resolvers)
		if cur != want {
			rs.Writes = append(rs.Writes, step2Write{Path: resolvedDropIn, Before: cur, Data: want, Perm: 0o644})
			rs.Restart = []string{"systemctl", "restart", "systemd-resolved"}
		}
		if len(rs.Outside) > 0 && cur == want {
			rs.Notes = append(rs.Notes, fmt.Sprintf("systemd-resolved still knows the per-link DNS servers %s (from DHCP); "+
				"UFW blocks them and %s sends every query to the chosen resolvers first.", strings.Join(rs.Outside, ", "), resolvedDropIn))
		}
		return rs, nil
	}
	rs.Servers = resolvNameservers(conf)
	rs.Outside = resolversOutside(rs.Servers, resolvers)
	rs.Manager = resolverStatic
	dh, err := step2ReadOptional(h, dhclientConf)
	if err != nil {
		return rs, fmt.Errorf("reading %s: %w", dhclientConf, err)
	}
	leases, _ := h.Glob("/var/lib/dhcp/dhclient*.leases")
	pids, _ := h.Glob("/run/dhclient*.pid")
	if dh != "" && (len(leases) > 0 || len(pids) > 0) {
		rs.Manager = resolverDHClient
	}
	if rs.Manager == resolverDHClient {
		// dhclient rewrites resolv.conf at every lease renewal: make it write the chosen resolvers
		if want := dhclientSupersede(dh, resolvers); want != dh {
			rs.Writes = append(rs.Writes, step2Write{Path: dhclientConf, Before: dh, Data: want, Perm: 0o644})
		}
	}
	if len(rs.Outside) == 0 && len(rs.Servers) > 0 {
		return rs, nil
	}
	rs.Writes = append([]step2Write{{Path: resolvConf, Before: conf, Data: staticResolvConf(conf, resolvers), Perm: 0o644}}, rs.Writes...)
	switch {
	case strings.Contains(conf, "Generated by NetworkManager"):
		rs.Warning = "NetworkManager wrote " + resolvConf + " and may write it again: also set the connection's " +
			"ipv4.dns to the chosen resolvers and ipv4.ignore-auto-dns to yes"
	case strings.Contains(conf, "generated by resolvconf"):
		rs.Warning = resolvConf + " is managed by resolvconf; it becomes a plain file with the chosen resolvers"
	}
	return rs, nil
}

func resolvHas(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}
