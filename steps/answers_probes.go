package steps

import (
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// ContainerProbe is one more probe sent from inside the gateway container (answers probes.container),
// mapped onto the matrix's Probe: {target: "198.51.100.7:443", kind: tcp, expect: fail}.
type ContainerProbe struct {
	Target string `yaml:"target" json:"target"`                 // host:port (tcp, tls; dns: the resolver, port 53 when left out), or an http:// URL (http)
	Kind   string `yaml:"kind,omitempty" json:"kind,omitempty"` // tcp, http, tls, dns; empty: http for an http:// URL, tls for https://, else tcp
	Expect string `yaml:"expect" json:"expect"`                 // "work" or "fail"; no default: a probe's point is its expectation
	Name   string `yaml:"name,omitempty" json:"name,omitempty"` // tls: the certificate's name (default the target's host); dns: the name asked (default api.telegram.org)
}

// containerProbeKinds are the kinds an answers entry may use (the listeners and SSH checks are the matrix's own).
var containerProbeKinds = []ProbeKind{KindTCP, KindHTTP, KindTLS, KindDNS}

// validate returns the failing field (target, kind, expect, name) and one clause saying what is accepted.
func (c ContainerProbe) validate() (field string, err error) {
	switch c.Expect {
	case "work", "fail":
	case "":
		return "expect", fmt.Errorf("is missing; write expect: fail (must not answer) or expect: work (must answer)")
	default:
		return "expect", fmt.Errorf("%q is not an expectation; write fail (must not answer) or work (must answer)", c.Expect)
	}
	p, err := c.probe(0)
	if err != nil {
		return "kind", err
	}
	switch p.Kind {
	case KindHTTP:
		u, err := url.Parse(c.Target)
		if err != nil || u.Scheme != "http" || u.Hostname() == "" || !validPort(u.Port(), true) {
			return "target", fmt.Errorf("%q is not an http:// URL; an http probe takes one like http://192.168.1.1/ (use kind: tls for https)", c.Target)
		}
	default:
		host, port, err := net.SplitHostPort(p.Target)
		if err != nil || host == "" || strings.Contains(host, "/") || !validPort(port, false) {
			return "target", fmt.Errorf("%q is not host:port; a %s probe takes one like 198.51.100.7:443", c.Target, p.Kind)
		}
		if p.Kind == KindDNS {
			if _, err := netip.ParseAddr(host); err != nil {
				return "target", fmt.Errorf("%q is not a resolver address; a dns probe asks a server by its IP, like 1.1.1.1:53", c.Target)
			}
		}
	}
	if c.Name != "" && p.Kind != KindTLS && p.Kind != KindDNS {
		return "name", fmt.Errorf("%q is set, but only tls and dns probes use a name", c.Name)
	}
	if c.Name != "" && (strings.ContainsAny(c.Name, " /:") || len(c.Name) > 253) {
		return "name", fmt.Errorf("%q is not a host name; write one like api.telegram.org", c.Name)
	}
	return "", nil
}

func validPort(p string, optional bool) bool {
	if p == "" {
		return optional
	}
	n, err := strconv.Atoi(p)
	return err == nil && n >= 1 && n <= 65535
}

// probe maps the entry onto a container probe (the idx-th entry, 0-based, names its ID).
func (c ContainerProbe) probe(idx int) (Probe, error) {
	p := Probe{ID: fmt.Sprintf("step8.container.answers.container.%d", idx+1), Source: SourceContainer, Target: c.Target, Name: c.Name,
		MustWork: c.Expect == "work", Timeout: DefaultProbeTimeout, Why: "listed in answers probes.container"}
	switch kind := ProbeKind(c.Kind); {
	case kind == "" && strings.HasPrefix(c.Target, "http://"):
		p.Kind = KindHTTP
	case kind == "" && strings.HasPrefix(c.Target, "https://"):
		p.Kind = KindTLS
		if u, err := url.Parse(c.Target); err == nil {
			port := u.Port()
			if port == "" {
				port = "443"
			}
			p.Target = net.JoinHostPort(u.Hostname(), port)
		}
	case kind == "":
		p.Kind = KindTCP
	default:
		for _, k := range containerProbeKinds {
			if k == kind {
				p.Kind = k
			}
		}
		if p.Kind == "" {
			return p, fmt.Errorf("%q is not a probe kind; write tcp, http, tls or dns (or leave it out: http:// URLs are http, https:// tls, host:port tcp)", c.Kind)
		}
	}
	switch p.Kind {
	case KindHTTP:
		p.Target = normalizeHTTP(p.Target)
	case KindTLS:
		if host, _, err := net.SplitHostPort(p.Target); err == nil && p.Name == "" {
			p.Name = host
		}
	case KindDNS:
		if _, _, err := net.SplitHostPort(p.Target); err != nil && !strings.Contains(p.Target, ":") {
			p.Target = net.JoinHostPort(p.Target, "53")
		}
		if p.Name == "" {
			p.Name = TelegramAPI
		}
	}
	return p, nil
}

// lineOf finds the line of a dotted key path in a parsed YAML document ("proxmox.vmid",
// "probes.container.2.expect": numbers index lists, from 0). When the last parts are absent it returns the
// line of the deepest part present; 0 when not even the first one is in the file.
func lineOf(root *yaml.Node, path string) int {
	n := root
	if n == nil {
		return 0
	}
	if n.Kind == yaml.DocumentNode {
		if len(n.Content) == 0 {
			return 0
		}
		n = n.Content[0]
	}
	line := 0
	for _, part := range strings.Split(path, ".") {
		switch n.Kind {
		case yaml.MappingNode:
			var next *yaml.Node
			for i := 0; i+1 < len(n.Content); i += 2 {
				if n.Content[i].Value == part {
					line, next = n.Content[i].Line, n.Content[i+1]
				}
			}
			if next == nil {
				return line
			}
			n = next
		case yaml.SequenceNode:
			i, err := strconv.Atoi(part)
			if err != nil || i < 0 || i >= len(n.Content) {
				return line
			}
			n = n.Content[i]
			line = n.Line
		default:
			return line
		}
	}
	return line
}
