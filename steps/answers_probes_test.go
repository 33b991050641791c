package steps

import (
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// probes.container entries map onto container probes of the matrix.
func TestContainerProbesFromAnswers(t *testing.T) {
	in := `admin_source: 192.168.1.50
probes:
  container:
    - {target: "198.51.100.7:443", kind: tcp, expect: fail}
    - {target: "http://192.168.1.20", expect: fail}
    - {target: "https://api.github.com", expect: work}
    - {target: "192.168.1.1", kind: dns, expect: fail}
    - {target: "9.9.9.9:53", kind: dns, expect: work, name: example.org}
    - {target: "203.0.113.10:8443", kind: tls, expect: work, name: api.example.net}
`
	a, err := ParseAnswers("a.yaml", []byte(in))
	if err != nil {
		t.Fatal(err)
	}
	byID := map[string]Probe{}
	for _, p := range DefaultProbes(a) {
		byID[p.ID] = p
	}
	want := []Probe{
		{Kind: KindTCP, Target: "198.51.100.7:443"},
		{Kind: KindHTTP, Target: "http://192.168.1.20:80/"},
		{Kind: KindTLS, Target: "api.github.com:443", Name: "api.github.com", MustWork: true},
		{Kind: KindDNS, Target: "192.168.1.1:53", Name: TelegramAPI},
		{Kind: KindDNS, Target: "9.9.9.9:53", Name: "example.org", MustWork: true},
		{Kind: KindTLS, Target: "203.0.113.10:8443", Name: "api.example.net", MustWork: true},
	}
	for i, w := range want {
		id := "step8.container.answers.container." + string(rune('1'+i))
		p, ok := byID[id]
		if !ok {
			t.Fatalf("no probe %s in the matrix", id)
		}
		if p.Source != SourceContainer || p.Kind != w.Kind || p.Target != w.Target || p.Name != w.Name || p.MustWork != w.MustWork ||
			p.Timeout != DefaultProbeTimeout || p.Why != "listed in answers probes.container" {
			t.Errorf("%s: got %+v, want %+v", id, p, w)
		}
	}
	if p := byID["step8.container.answers.container.1"]; p.Expect() != ExpectMustFail {
		t.Errorf("a must-fail entry expects %q", p.Expect())
	}
	// The answers round-trip through the file the wizard saves.
	back, err := ParseAnswers("b.yaml", a.Marshal())
	if err != nil || len(back.Probes.Container) != 6 || back.Probes.Container[0] != a.Probes.Container[0] {
		t.Fatalf("round trip: %v %+v", err, back.Probes.Container)
	}
}

// A bad entry is refused with one sentence naming the file, the line and the field.
func TestBadContainerProbesNameFileLineAndField(t *testing.T) {
	cases := []struct{ in, want string }{
		{"probes:\n  container:\n    - {target: \"198.51.100.7:443\", kind: tcp, expect: maybe}",
			`a.yaml:3: probes.container entry 1, expect: "maybe" is not an expectation; write fail (must not answer) or work (must answer)`},
		{"probes:\n  container:\n    - target: 198.51.100.7:443\n      kind: tcp",
			"a.yaml:3: probes.container entry 1, expect: is missing; write expect: fail"},
		{"probes:\n  container:\n    - {target: \"1.2.3.4:1\", expect: fail}\n    - target: 198.51.100.7:443\n      kind: udp\n      expect: fail",
			`a.yaml:5: probes.container entry 2, kind: "udp" is not a probe kind; write tcp, http, tls or dns`},
		{"probes:\n  container:\n    - {target: \"198.51.100.7\", kind: tcp, expect: fail}",
			`a.yaml:3: probes.container entry 1, target: "198.51.100.7" is not host:port; a tcp probe takes one like 198.51.100.7:443`},
		{"probes:\n  container:\n    - {target: \"198.51.100.7:70000\", expect: fail}",
			`probes.container entry 1, target: "198.51.100.7:70000" is not host:port`},
		{"probes:\n  container:\n    - {target: \"https://x.example\", kind: http, expect: fail}",
			`probes.container entry 1, target: "https://x.example" is not an http:// URL; an http probe takes one like http://192.168.1.1/ (use kind: tls for https)`},
		{"probes:\n  container:\n    - {target: \"dns.google:53\", kind: dns, expect: work}",
			`probes.container entry 1, target: "dns.google:53" is not a resolver address`},
		{"probes:\n  container:\n    - {target: \"1.2.3.4:80\", kind: tcp, expect: fail, name: x.example}",
			`probes.container entry 1, name: "x.example" is set, but only tls and dns probes use a name`},
		{"probes:\n  container:\n    - {target: \"1.2.3.4:443\", kind: tls, expect: work, name: \"a b\"}",
			`probes.container entry 1, name: "a b" is not a host name`},
		{"probes:\n  container:\n    - {target: \"1.2.3.4:443\", kidn: tcp, expect: fail}",
			`a.yaml:3: unknown key "kidn"; accepted keys are target, kind, expect, name (in each entry of probes.container)`},
		{"probes:\n  container: {target: \"1.2.3.4:443\"}",
			"a.yaml:2: probes.container: is a mapping (key: value), but it must be a list (write it as [a, b] or one \"- item\" per line)"},
		{"probes:\n  contianer: []", `a.yaml:2: unknown key "contianer"; accepted keys are must_fail, must_work, lan_host, container (under probes)`},
	}
	for _, c := range cases {
		_, err := ParseAnswers("a.yaml", []byte(c.in))
		if err == nil {
			t.Errorf("%q: accepted", c.in)
			continue
		}
		if !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q:\n got  %s\n want %s", c.in, err, c.want)
		}
		if strings.Contains(strings.TrimSpace(err.Error()), "\n") {
			t.Errorf("%q: more than one line: %q", c.in, err)
		}
	}
}

func TestLineOf(t *testing.T) {
	in := "lan_cidr: 192.168.1.0/24\nprobes:\n  container:\n    - target: a\n      kind: tcp\n    - {target: b}\n"
	root := parseNode(t, in)
	for path, want := range map[string]int{
		"lan_cidr": 1, "probes": 2, "probes.container": 3, "probes.container.0.kind": 5, "probes.container.0": 4,
		"probes.container.1.expect": 6, "probes.container.7.kind": 3, "nothing": 0, "proxmox.vmid": 0,
	} {
		if got := lineOf(root, path); got != want {
			t.Errorf("%s: line %d, want %d", path, got, want)
		}
	}
}

func parseNode(t *testing.T, in string) *yaml.Node {
	t.Helper()
	var n yaml.Node
	if err := yaml.Unmarshal([]byte(in), &n); err != nil {
		t.Fatal(err)
	}
	return &n
}
