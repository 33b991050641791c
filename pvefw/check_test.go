package pvefw

import (
	"os"
	"strings"
	"testing"
)

func readTestdata(tb testing.TB, name string) []byte {
	tb.Helper()
	data, err := os.ReadFile("testdata/" + name)
	if err != nil {
		tb.Fatal(err)
	}
	return data
}

// vmFile builds a VM file whose [OPTIONS] are complete, so a case only
// sees the findings of its own lines. Rules start on line 5.
func vmFile(lines ...string) []byte {
	head := "[OPTIONS]\nenable: 1\npolicy_out: DROP\n[RULES]\n"
	return []byte(head + strings.Join(lines, "\n") + "\n")
}

func TestResearchExampleIsClean(t *testing.T) {
	data := readTestdata(t, "100.fw")
	f, fs := Parse("100.fw", data)
	if len(fs) != 0 {
		t.Fatalf("findings on the research example:\n%s", dump(fs))
	}
	if len(f.Options) != 9 || len(f.Rules) != 14 {
		t.Fatalf("got %d options and %d rules, want 9 and 14", len(f.Options), len(f.Rules))
	}
	if o, _ := f.Option("policy_out"); o.Value != "DROP" || o.Line != 8 {
		t.Errorf("policy_out = %+v", o)
	}
	first := f.Rules[0]
	want := Rule{Line: 21, Dir: "IN", Action: "ACCEPT", Iface: "net0", Source: "192.168.1.50", Proto: "tcp", DPort: "22",
		Enabled: true, Comment: "admin SSH into the VM (replies pass via conntrack)"}
	if first != want {
		t.Errorf("first rule\n got %+v\nwant %+v", first, want)
	}
	var disabled []int
	for _, r := range f.Rules {
		if !r.Enabled {
			disabled = append(disabled, r.Line)
		}
	}
	if len(disabled) != 2 || disabled[0] != 24 || disabled[1] != 34 {
		t.Errorf("disabled rules on lines %v, want [24 34]", disabled)
	}
	if r := f.Rules[3]; r.Dest != "192.168.1.0/24" || r.Log != "info" || r.Comment != "LAN" {
		t.Errorf("LAN rule = %+v", r)
	}
}

func TestClusterFragmentIsClean(t *testing.T) {
	data := readTestdata(t, "cluster.fw.fragment")
	f, fs := Parse("cluster.fw.fragment", data)
	if len(fs) != 0 {
		t.Fatalf("findings:\n%s", dump(fs))
	}
	s, ok := f.IPSet("management")
	if f.Kind != Cluster || !ok || len(s.Entries) != 1 || s.Entries[0].CIDR != "192.168.1.50" {
		t.Errorf("got %+v", f)
	}
}

type checkCase struct {
	name  string
	data  []byte
	wants []want
}

func runCases(t *testing.T, cases []checkCase) {
	t.Helper()
	runCasesIn(t, "100.fw", cases)
}

func runCasesIn(t *testing.T, file string, cases []checkCase) {
	t.Helper()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := Check(file, c.data)
			checkFindings(t, got, c.wants)
			checkOnePerLine(t, got)
		})
	}
}

func checkOnePerLine(t *testing.T, fs []Finding) {
	t.Helper()
	for i := 1; i < len(fs); i++ {
		if fs[i].Line <= fs[i-1].Line {
			t.Errorf("findings not one per line in line order:\n%s", dump(fs))
		}
	}
}

// The traps from field-notes Step 3: pve-firewall reads these lines
// without a warning, but not as they look.
func TestTraps(t *testing.T) {
	runCases(t, []checkCase{
		{"hash glued to a value hides options", vmFile("OUT DROP -dest 10.0.0.0/8#lan -p tcp"),
			[]want{{5, Error, "including the rule options in 'lan -p tcp'"}}},
		{"hash glued to a value hides only -log", vmFile("OUT DROP -dest 10.0.0.0/8#lan -log info"),
			[]want{{5, Warning, "'lan -log info' is ignored"}}},
		{"hash glued to a value", vmFile("OUT DROP -dest 10.0.0.0/8#lan"),
			[]want{{5, Warning, "'#' glued"}}},
		{"hash glued to the action hides the destination", vmFile("OUT ACCEPT#web -dest 1.2.3.4"),
			[]want{{5, Error, "-dest 1.2.3.4"}}},
		{"spaced comment is just a comment", vmFile("OUT DROP -dest 10.0.0.0/8 # lan -p tcp"), nil},
		{"dport 0 means any port", vmFile("OUT ACCEPT -p tcp -dport 0"),
			[]want{{5, Warning, "'-dport 0' is read as no -dport at all"}}},
		{"source 0 means any source", vmFile("IN ACCEPT -source 0 -p tcp -dport 22"),
			[]want{{5, Warning, "every source address"}}},
		{"dest 0 means any destination", vmFile("OUT DROP -dest 0"),
			[]want{{5, Warning, "every destination address"}}},
		{"p 0 leaves dport without a protocol", vmFile("OUT ACCEPT -p 0 -dport 443"),
			[]want{{5, Error, "-dport needs -p"}}},
		{"comment after [RULES] drops every rule", []byte("[OPTIONS]\nenable: 1\npolicy_out: DROP\n[RULES] # mine\nOUT DROP -dest 10.0.0.0/8\n\nOUT ACCEPT -p tcp -dport 443\n"),
			[]want{
				{4, Error, "a comment after [RULES]"},
				{5, Error, "a rule in [OPTIONS]"},
				{7, Error, "line 4 '[RULES] # mine' is not a section header"},
			}},
		{"comment after [RULES] as the first header", []byte("[RULES] # x\nOUT DROP\n"),
			[]want{{1, Error, "a comment after [RULES]"}, {2, Error, "line outside any section"}}},
		{"crlf", []byte("[OPTIONS]\r\nenable: 1\r\npolicy_out: DROP\r\n[RULES]\r\nOUT DROP -dest 10.0.0.0/8\r\n"),
			[]want{
				{1, Error, "carriage return"},
				{2, Error, "line outside any section"},
				{3, Error, "line outside any section"},
				{4, Error, "carriage return"},
				{5, Error, "line 4 '[RULES]\\x0d' is not a section header"},
			}},
		{"crlf on one rule line", []byte("[OPTIONS]\nenable: 1\npolicy_out: DROP\n[RULES]\nOUT DROP -dest 10.0.0.0/8\r\n"),
			[]want{{5, Error, "carriage return"}}},
		{"bom", append([]byte(bom), vmFile("OUT DROP")...),
			[]want{{1, Error, "byte order mark"}, {2, Error, "outside any section"}, {3, Error, "outside any section"}}},
		{"bom before a comment", append([]byte(bom+"# generated\n"), vmFile("OUT DROP")...),
			[]want{{1, Error, "byte order mark"}}},
		{"duplicate option, last wins", vmFile("OUT ACCEPT -p tcp -dport 443 --dport 8443"),
			[]want{{5, Error, "'-dport 8443'"}}},
		{"group in a VM file makes rules of its rules", vmFile("OUT DROP", "[group web]", "IN ACCEPT -p tcp -dport 80"),
			[]want{
				{6, Error, "security groups can only be defined in cluster.fw"},
				{7, Warning, "read as part of [RULES] because line 6"},
			}},
	})
}

func TestOrder(t *testing.T) {
	runCases(t, []checkCase{
		{"accept before the LAN drop", vmFile("OUT ACCEPT -p tcp -dport 443", "OUT DROP -dest 192.168.1.0/24"),
			[]want{{5, Warning, "comes before 'OUT DROP -dest 192.168.1.0/24' on line 6"}}},
		{"drops first", vmFile("OUT DROP -dest 192.168.1.0/24", "OUT ACCEPT -p tcp -dport 443"), nil},
		{"single-host exception above the LAN drop", vmFile("OUT ACCEPT -dest 192.168.1.1 -p udp -dport 53", "OUT DROP -dest 192.168.1.0/24"), nil},
		{"accept then drop the rest", vmFile("OUT ACCEPT -p tcp -dport 443", "OUT DROP"), nil},
		{"accept inside a drop", vmFile("OUT ACCEPT -dest 10.1.0.0/16 -p tcp", "OUT DROP -dest 10.0.0.0/8"), nil},
		{"accept a network before the drop of a host in it", vmFile("OUT ACCEPT -dest 10.0.0.0/8", "OUT DROP -dest 10.1.2.3"),
			[]want{{5, Warning, "on line 6"}}},
		{"different protocols", vmFile("OUT ACCEPT -p tcp -dport 443", "OUT DROP -p udp -dest 192.168.1.0/24"), nil},
		{"different ports", vmFile("OUT ACCEPT -p tcp -dport 443", "OUT DROP -p tcp -dport 22 -dest 192.168.1.0/24"), nil},
		{"different directions", vmFile("IN ACCEPT -p tcp -dport 22", "OUT DROP -dest 192.168.1.0/24"), nil},
		{"different interfaces", vmFile("OUT ACCEPT -i net1 -p tcp -dport 443", "OUT DROP -i net0 -dest 192.168.1.0/24"), nil},
		{"disabled accept", vmFile("|OUT ACCEPT -p tcp -dport 443", "OUT DROP -dest 192.168.1.0/24"), nil},
		{"different IP versions", vmFile("OUT ACCEPT -dest 0.0.0.0/0 -p tcp -dport 443", "OUT DROP -dest ::/0"), nil},
		{"port-only accept before the IPv6 drop", vmFile("OUT ACCEPT -p tcp -dport 443", "OUT REJECT -dest ::/0"),
			[]want{{5, Warning, "'OUT REJECT -dest ::/0' on line 6"}}},
		{"macro", vmFile("OUT HTTPS(ACCEPT)", "OUT DROP -dest 10.0.0.0/8"), []want{{5, Warning, "on line 6"}}},
		{"macro of another protocol", vmFile("OUT DNS(ACCEPT)", "OUT DROP -p icmp -dest 10.0.0.0/8"), nil},
		{"inbound", vmFile("IN ACCEPT -p tcp -dport 22", "IN DROP -source 192.168.1.0/24"), []want{{5, Warning, "IN ACCEPT"}}},
		{"through an alias", []byte("[OPTIONS]\nenable: 1\npolicy_out: DROP\n[ALIASES]\nlan 192.168.1.0/24\n[RULES]\nOUT ACCEPT -p udp -dport 53\nOUT DROP -dest lan\n"),
			[]want{{7, Warning, "'OUT DROP -dest lan' on line 8"}}},
		{"ipset with nomatch is not guessed", []byte("[OPTIONS]\nenable: 1\npolicy_out: DROP\n[IPSET public]\n0.0.0.0/1\n128.0.0.0/1\n!192.168.1.0/24\n[RULES]\nOUT ACCEPT -dest +public -p tcp -dport 443\nOUT DROP -dest 192.168.1.0/24\n"), nil},
		{"several drops", vmFile("OUT ACCEPT -p tcp -dport 443", "OUT DROP -dest 192.168.1.0/24", "OUT DROP -dest 10.0.0.0/8", "OUT DROP -dest 172.16.0.0/12"),
			[]want{{5, Warning, "rules on lines 6, 7 and 8"}}},
	})
}

func TestOptions(t *testing.T) {
	opts := func(lines ...string) []byte {
		return []byte("[OPTIONS]\n" + strings.Join(lines, "\n") + "\n")
	}
	runCases(t, []checkCase{
		{name: "complete", data: opts("enable: 1", "policy_in: DROP", "policy_out: DROP", "dhcp: 0", "log_level_in: info")},
		{name: "no space after the colon", data: opts("enable:1", "policy_out:DROP")},
		{name: "typo in a key", data: opts("enable: 1", "polciy_out: DROP"),
			wants: []want{{1, Warning, "policy_out is not set"}, {3, Error, "did you mean policy_out?"}}},
		{name: "cluster key in a VM file", data: opts("enable: 1", "policy_out: DROP", "ebtables: 1"),
			wants: []want{{4, Error, "it is a cluster option"}}},
		{name: "bad policy", data: opts("enable: 1", "policy_out: DENY"),
			wants: []want{{1, Warning, "policy_out is not set"}, {3, Error, "'DENY' is not ACCEPT, DROP or REJECT"}}},
		{name: "bad log level", data: opts("enable: 1", "policy_out: DROP", "log_level_out: warn"),
			wants: []want{{4, Error, "'warn' is not a log level"}}},
		{name: "policy_out missing", data: opts("enable: 1"), wants: []want{{1, Warning, "the default is ACCEPT"}}},
		{name: "no options at all", data: []byte("[RULES]\nOUT DROP\n"),
			wants: []want{{1, Warning, "enable is not set: this VM's firewall is off"}}},
		{name: "set twice", data: opts("enable: 1", "policy_out: DROP", "enable: 0"),
			wants: []want{{4, Error, "enable is already set on line 2"}}},
		{name: "uppercase key", data: opts("ENABLE: 1", "policy_out: DROP"), wants: []want{{2, Warning, "lowercase"}}},
		{name: "ipfilter without its set", data: opts("enable: 1", "policy_out: DROP", "ipfilter: 1"),
			wants: []want{{4, Warning, "all its IPv4 traffic except DHCP is dropped"}}},
		{name: "ipfilter with its set", data: []byte("[OPTIONS]\nenable: 1\npolicy_out: DROP\nipfilter: 1\n[IPSET ipfilter-net0]\n192.168.1.60\n")},
		{name: "unknown ethertype", data: opts("enable: 1", "policy_out: DROP", "layer2_protocols: ARP,IPv6"),
			wants: []want{{4, Error, "unknown ethertype 'IPv6'"}}},
	})
	runCasesIn(t, "cluster.fw", []checkCase{
		{name: "cluster", data: opts("enable: 1", "policy_in: DROP", "policy_out: ACCEPT", "ebtables: 1", "log_ratelimit: enable=1,rate=1/second,burst=5")},
		{name: "enable timestamp", data: opts("enable: 2"), wants: []want{{2, Error, "anti-lockout timestamp"}}},
		{name: "disabled", data: opts("policy_in: DROP"), wants: []want{{1, Warning, "the datacenter firewall is off"}}},
		{name: "log_ratelimit", data: opts("enable: 1", "log_ratelimit: rate=0/second"), wants: []want{{3, Error, "fails to load cluster.fw"}}},
	})
	runCasesIn(t, "host.fw", []checkCase{
		{name: "host", data: opts("enable: 1", "nf_conntrack_helpers: ftp,tftp", "nf_conntrack_max: 262144")},
		{name: "helper", data: opts("nf_conntrack_helpers: ftp,foo"), wants: []want{{2, Error, "unknown conntrack helper 'foo'"}}},
	})
}

// Plain valid lines of every kind give no finding at all.
func TestValidLines(t *testing.T) {
	vm := `# a VM file
[OPTIONS]
enable: 1
policy_in: DROP
policy_out: DROP
log_level_in: nolog

[ALIASES]
resolver 192.168.1.1 # the router
v6net fd00::/64

[IPSET public4] # order-independent accepts
0.0.0.0/1
128.0.0.0/1
!10.0.0.0/8
resolver

[RULES]
IN SSH(ACCEPT) -i net0 -source 192.168.1.50
IN ACCEPT -p icmp -icmp-type echo-request
IN ACCEPT -p icmpv6 -icmp-type neighbor-solicitation
OUT ACCEPT -dest resolver -p udp -dport 53
OUT DROP -dest 10.0.0.0/8,172.16.0.0/12,192.168.0.0/16
OUT DROP -dest 10.0.0.1-10.0.0.20 -log info
OUT REJECT -dest v6net
OUT DROP -dest fc00::/7
OUT ACCEPT -dest +public4 -p tcp -dport 443,8443,8000:8100
OUT ACCEPT -p udp -sport 1024:65535 -dport 123
OUT Ping(ACCEPT)
|OUT ACCEPT -p tcp -dport 80 # temporary
GROUP webserver -i net0
OUT DROP
`
	if fs := Check("100.fw", []byte(vm)); len(fs) != 0 {
		t.Errorf("VM file:\n%s", dump(fs))
	}
	cluster := `[OPTIONS]
enable: 1
policy_in: DROP

[ALIASES]
admin 192.168.1.50

[IPSET management]
admin

[RULES]
IN ACCEPT -source +management -p tcp -dport 8006
FORWARD DROP -dest 10.0.0.0/8
GROUP webserver

[group webserver] # web
IN HTTPS(ACCEPT)
IN ACCEPT -p tcp -dport 80
OUT ACCEPT -p udp -dport 53
`
	if fs := Check("cluster.fw", []byte(cluster)); len(fs) != 0 {
		t.Errorf("cluster file:\n%s", dump(fs))
	}
}

func TestSectionsAndReferences(t *testing.T) {
	runCases(t, []checkCase{
		{"ipset name in uppercase", []byte("[OPTIONS]\nenable: 1\npolicy_out: DROP\n[IPSET Web]\n1.1.1.1\n[RULES]\nOUT ACCEPT -dest +web -p tcp\n"),
			[]want{{4, Warning, "stores this IP set as 'web'"}}},
		{"invalid ipset name loses the section", []byte("[OPTIONS]\nenable: 1\npolicy_out: DROP\n[IPSET x]\n1.1.1.1\n[RULES]\nOUT DROP\n"),
			[]want{{4, Error, "invalid IP set name 'x'"}, {5, Error, "line outside any section"}}},
		{"ipset defined twice", []byte("[OPTIONS]\nenable: 1\npolicy_out: DROP\n[IPSET a1]\n1.1.1.1\n[IPSET a1]\n2.2.2.2\n"),
			[]want{{6, Error, "already defined on line 4"}}},
		{"ipset entry with host bits", []byte("[OPTIONS]\nenable: 1\npolicy_out: DROP\n[IPSET a1]\n1.2.3.4/24\n"),
			[]want{{5, Warning, "the set holds the network 1.2.3.0/24"}}},
		{"ipset duplicate entry", []byte("[OPTIONS]\nenable: 1\npolicy_out: DROP\n[IPSET a1]\n1.1.1.1\n1.1.1.1/32\n"),
			[]want{{6, Error, "duplicate entry (line 5)"}}},
		{"alias too long a prefix", []byte("[OPTIONS]\nenable: 1\npolicy_out: DROP\n[ALIASES]\nlan 10.0.0.0/33\n"),
			[]want{{5, Error, "prefix /33 is longer"}}},
		{"alias used before it is defined", []byte("[OPTIONS]\nenable: 1\npolicy_out: DROP\n[RULES]\nOUT DROP -dest lan\n[ALIASES]\nlan 10.0.0.0/8\n"),
			[]want{{5, Error, "defined further down, on line 7"}}},
		{"cluster alias in a VM file", vmFile("OUT DROP -dest dc/lan", "OUT DROP -dest +dc/blocked"), nil},
		{"abbreviated address", vmFile("OUT DROP -dest 10/8"), []want{{5, Error, "pve-firewall reads it as 10.0.0.0/8"}}},
		{"zero-padded address", vmFile("OUT DROP -dest 010.0.0.1"), []want{{5, Error, "reads it as 10.0.0.1"}}},
		{"group rule takes -i only", vmFile("GROUP web -i net0 -p tcp"), []want{{5, Error, "a single -i and nothing else"}}},
		{"lowercase group", vmFile("group web"), []want{{5, Error, "write GROUP in uppercase"}}},
		{"nic that cannot exist", vmFile("OUT DROP -i net32"), []want{{5, Error, "no NIC is called 'net32'"}}},
		{"double-dash option", vmFile("OUT DROP --dest 10.0.0.0/8"), []want{{5, Warning, "write -dest with one dash"}}},
		{"port name", vmFile("OUT ACCEPT -p tcp -dport https"), []want{{5, Warning, "write 443"}}},
		{"icmp type as dport", vmFile("OUT ACCEPT -p icmp -dport echo-request"), []want{{5, Warning, "write -icmp-type echo-request"}}},
		{"macro case", vmFile("OUT ssh(ACCEPT)"), []want{{5, Warning, "write the macro as SSH"}}},
		{"macro conflict", vmFile("OUT SSH(ACCEPT) -p udp"), []want{{5, Error, "conflicts with macro SSH"}}},
		{"IPv6-only macro on an IPv4 rule", vmFile("OUT DHCPv6(ACCEPT) -dest 10.0.0.1"), []want{{5, Error, "compiles to nothing"}}},
		{"alias of the other IP version loses the line", []byte("[OPTIONS]\nenable: 1\npolicy_out: DROP\n[ALIASES]\nv6 fd00::1\n[RULES]\nOUT DROP -p icmp -dest v6\n"),
			[]want{{7, Error, "pve-firewall skips the line"}}},
		{"empty file", []byte(""), []want{{1, Error, "empty"}}},
		{"unknown section", vmFile("[FOO]", "OUT DROP"), []want{{5, Error, "unknown section '[FOO]'"}, {6, Warning, "read as part of [RULES]"}}},
	})
	runCasesIn(t, "cluster.fw", []checkCase{
		{"forward in a security group", []byte("[OPTIONS]\nenable: 1\n[group g1]\nFORWARD REJECT\nIN ACCEPT -i vmbr0\n"),
			[]want{{4, Error, "REJECT is not possible in a FORWARD rule"}, {5, Error, "-i is not allowed in a security group rule"}}},
		{"group name case", []byte("[OPTIONS]\nenable: 1\n[RULES]\nGROUP Web\n[group web]\nIN DROP\n"),
			[]want{{4, Error, "write GROUP web"}}},
	})
	runCasesIn(t, "host.fw", []checkCase{
		{"no ipset sections in host.fw", []byte("[OPTIONS]\nenable: 1\n[RULES]\nIN DROP\n[IPSET foo]\n1.2.3.4\n"),
			[]want{{5, Error, "host.fw has no [IPSET] sections, so the lines after it are still read as part of [RULES]"}, {6, Error, "a rule needs a direction"}}},
		// Perl autovivification: the lookup of +mgmt creates the table
		// that makes the later [IPSET] header valid in host.fw.
		{"ipset header after an ipset reference", []byte("[OPTIONS]\nenable: 1\n[RULES]\nIN ACCEPT -source +mgmt\n[IPSET foo]\n1.2.3.4\n"),
			[]want{{5, Error, "only because a rule above looked up an IP set"}}},
	})
}

func TestClusterContext(t *testing.T) {
	cluster, fs := Parse("cluster.fw", []byte("[OPTIONS]\nenable: 1\n[ALIASES]\nlan 192.168.1.0/24\n[IPSET blocked]\n10.0.0.0/8\n[group web]\nIN ACCEPT -p tcp -dport 80\n"))
	if len(fs) != 0 {
		t.Fatalf("cluster findings:\n%s", dump(fs))
	}
	c := Config{Cluster: &cluster}
	vm := vmFile("OUT DROP -dest dc/lan", "OUT DROP -dest +blocked", "GROUP web", "OUT DROP -dest dc/nas", "GROUP db", "OUT DROP -dest lan")
	got := c.Check("100.fw", vm)
	checkFindings(t, got, []want{
		{8, Error, "no such alias 'dc/nas'"},
		{9, Error, "no such security group 'db'"},
	})
	if got := Check("100.fw", vm); len(got) != 2 || got[0].Line != 6 || got[1].Line != 10 {
		t.Errorf("without cluster.fw only the unscoped names are errors:\n%s", dump(got))
	}
}

func TestFindingString(t *testing.T) {
	f := Finding{File: "100.fw", Line: 5, Severity: Error, Message: "m"}
	if got := f.String(); got != "100.fw:5: error: m" {
		t.Errorf("got %q", got)
	}
	f.Severity = Warning
	if got := f.String(); got != "100.fw:5: warning: m" {
		t.Errorf("got %q", got)
	}
	if !HasErrors([]Finding{{Severity: Warning}, {Severity: Error}}) || HasErrors([]Finding{{Severity: Warning}}) {
		t.Error("HasErrors")
	}
}

func TestKindOf(t *testing.T) {
	for name, want := range map[string]Kind{
		"100.fw": VM, "/etc/pve/firewall/100.fw": VM, "cluster.fw": Cluster, "/etc/pve/firewall/cluster.fw": Cluster,
		"proxmox-cluster.fw.fragment": Cluster, "host.fw": Host, "/etc/pve/nodes/pve/host.fw": Host, "generated.fw": VM,
	} {
		if got := KindOf(name); got != want {
			t.Errorf("KindOf(%q) = %v, want %v", name, got, want)
		}
	}
}

func TestFormatRoundTrip(t *testing.T) {
	for _, name := range []string{"100.fw", "cluster.fw.fragment"} {
		f, _ := Parse(name, readTestdata(t, name))
		out := Format(f)
		g, fs := Parse(name, out)
		if len(fs) != 0 {
			t.Errorf("%s: findings on Format's output:\n%s\n%s", name, dump(fs), out)
		}
		if len(g.Rules) != len(f.Rules) || len(g.Options) != len(f.Options) || len(g.IPSets) != len(f.IPSets) {
			t.Fatalf("%s: round trip changed the file:\n%s", name, out)
		}
		for i := range f.Rules {
			a, b := f.Rules[i], g.Rules[i]
			a.Line, b.Line = 0, 0
			if a != b {
				t.Errorf("%s: rule %d\n got %+v\nwant %+v", name, i, b, a)
			}
		}
		if again := Format(g); string(again) != string(out) {
			t.Errorf("%s: Format is not stable", name)
		}
	}
}
