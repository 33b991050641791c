package steps

import (
	"flag"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"openclaw-harden/pvefw"
)

var updateStep3 = flag.Bool("update-step3", false, "rewrite steps/testdata/step3 goldens")

func step3LabAnswers(t testing.TB) Answers {
	t.Helper()
	data, err := os.ReadFile("../lab/testdata/lab.yaml")
	if err != nil {
		t.Fatal(err)
	}
	a, err := ParseAnswers("lab.yaml", data)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func defaultAnswers() Answers {
	a := Defaults()
	a.AdminSource = "192.168.1.50"
	return a
}

// checkGenerated asserts what every generated file must be: zero pvefw findings, the rules Parse reads
// back equal to the rule set, and every OUT DROP before the first OUT ACCEPT.
func checkGenerated(t testing.TB, a Answers) []byte {
	t.Helper()
	data, err := ProxmoxVMFirewall(a)
	if err != nil {
		t.Fatalf("ProxmoxVMFirewall: %v", err)
	}
	name := ProxmoxFileName(a.Proxmox.VMID)
	if fs := pvefw.Check(name, data); len(fs) > 0 {
		t.Fatalf("findings: %v\n%s", fs, data)
	}
	f, _ := pvefw.Parse(name, data)
	rs, _ := ProxmoxRules(a)
	if len(f.Rules) != len(rs.Rules) {
		t.Fatalf("parsed %d rules, generated %d\n%s", len(f.Rules), len(rs.Rules), data)
	}
	for i := range f.Rules {
		got := f.Rules[i]
		got.Line = 0
		if !reflect.DeepEqual(got, rs.Rules[i]) {
			t.Fatalf("rule %d reads back as %+v, generated %+v", i, got, rs.Rules[i])
		}
		if !strings.Contains(RuleLine(rs.Rules[i]), " # ") || strings.TrimSpace(rs.Rules[i].Comment) == "" {
			t.Fatalf("rule %d has no comment saying why: %s", i, RuleLine(rs.Rules[i]))
		}
	}
	for _, k := range []string{"enable:1", "policy_in:DROP", "policy_out:DROP"} {
		key, val, _ := strings.Cut(k, ":")
		if o, ok := f.Option(key); !ok || o.Value != val {
			t.Fatalf("option %s = %v, want %s", key, o, val)
		}
	}
	firstAccept := -1
	for i, r := range f.Rules {
		if r.Dir == "OUT" && r.Action == "ACCEPT" && firstAccept < 0 {
			firstAccept = i
		}
		if r.Dir == "OUT" && r.Action == "DROP" && firstAccept >= 0 {
			t.Fatalf("OUT DROP %q after the first OUT ACCEPT (line %d): first match wins, so the ACCEPT would let it through", r.Dest, r.Line)
		}
		if r.Dir == "IN" && (r.Action != "ACCEPT" || r.Proto != "tcp" || r.DPort != "22" || r.Source == "") {
			t.Fatalf("unexpected IN rule %+v", r)
		}
	}
	return data
}

func TestProxmoxVMFirewallDefaultAndLab(t *testing.T) {
	for name, a := range map[string]Answers{"default-100.fw": defaultAnswers(), "lab-100.fw": step3LabAnswers(t)} {
		t.Run(name, func(t *testing.T) {
			data := checkGenerated(t, a)
			golden := filepath.Join("testdata", "step3", name)
			if *updateStep3 {
				if err := os.MkdirAll(filepath.Dir(golden), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(golden, data, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test ./steps -run ProxmoxVMFirewall -update-step3)", err)
			}
			if string(want) != string(data) {
				t.Fatalf("%s differs from the golden:\n%s", name, data)
			}
		})
	}
}

func TestProxmoxRulesContent(t *testing.T) {
	a := defaultAnswers()
	a.AdminSource = "192.168.1.48/29"
	a.ExtraPrivateRanges = []string{"198.18.0.0/15", "10.0.0.0/8"} // the duplicate is written once
	a.NTP = []string{"162.159.200.1"}
	a.AllowHTTP = true
	data := checkGenerated(t, a)
	text := string(data)
	for _, want := range []string{
		"IN ACCEPT -i net0 -source 192.168.1.48/29 -p tcp -dport 22 # ",
		"OUT DROP -dest 192.168.1.0/24 # ", "OUT DROP -dest 10.0.0.0/8 # ", "OUT DROP -dest 172.16.0.0/12 # ",
		"OUT DROP -dest 192.168.0.0/16 # ", "OUT DROP -dest 100.64.0.0/10 # ", "OUT DROP -dest 169.254.0.0/16 # ",
		"OUT DROP -dest 198.18.0.0/15 # ", "OUT DROP -dest 224.0.0.0/4 # ", "OUT DROP -dest 255.255.255.255 # ",
		"OUT DROP -dest ::/0 # ",
		"OUT ACCEPT -i net0 -p tcp -dport 443 # ",
		"OUT ACCEPT -i net0 -p tcp -dport 80 # TEMPORARY",
		"OUT ACCEPT -i net0 -dest 1.1.1.1 -p udp -dport 53 # ", "OUT ACCEPT -i net0 -dest 1.1.1.1 -p tcp -dport 53 # ",
		"OUT ACCEPT -i net0 -dest 8.8.8.8 -p udp -dport 53 # ",
		"OUT ACCEPT -i net0 -dest 162.159.200.1 -p udp -dport 123 # ",
	} {
		if !strings.Contains(text, want+"") {
			t.Errorf("missing %q in\n%s", want, text)
		}
	}
	if strings.Count(text, "-dest 10.0.0.0/8") != 1 {
		t.Errorf("10.0.0.0/8 written more than once")
	}
	a.AllowHTTP, a.NTP = false, nil
	text = string(checkGenerated(t, a))
	if strings.Contains(text, "-dport 80") || !strings.Contains(text, "OUT ACCEPT -i net0 -p udp -dport 123 # ") {
		t.Errorf("without allow_http and ntp:\n%s", text)
	}

	a.AdminSource = ""
	if _, err := ProxmoxVMFirewall(a); err == nil || !strings.Contains(err.Error(), "admin_source") {
		t.Errorf("no admin_source: %v", err)
	}
}

func TestProxmoxClusterFragment(t *testing.T) {
	b := ProxmoxClusterFragment()
	if string(b) != "[OPTIONS]\nenable: 1\n" {
		t.Fatalf("fragment = %q", b)
	}
	if fs := pvefw.Check("cluster.fw.fragment", b); len(fs) > 0 {
		t.Fatalf("fragment findings: %v", fs)
	}
}

// FuzzProxmoxVMFirewall generates files for many valid answers: each passes pvefw.Check with no findings
// and keeps every DROP ahead of the ACCEPTs.
func FuzzProxmoxVMFirewall(f *testing.F) {
	f.Add(uint32(0xC0A80132), uint8(32), uint32(0xC0A80100), uint8(24), uint32(0x01010101), uint32(0), uint32(0), uint8(0), uint16(100), uint8(0), false)
	f.Add(uint32(0x0A000005), uint8(29), uint32(0x0A000000), uint8(8), uint32(0xCB00710A), uint32(0x08080808), uint32(0xC6120000), uint8(15), uint16(4242), uint8(3), true)
	f.Fuzz(func(t *testing.T, admin uint32, adminBits uint8, lan uint32, lanBits uint8, res1, res2, extra uint32, extraBits uint8, vmid uint16, nic uint8, http bool) {
		a := Defaults()
		ip4 := func(u uint32) netip.Addr {
			return netip.AddrFrom4([4]byte{byte(u >> 24), byte(u >> 16), byte(u >> 8), byte(u)})
		}
		a.AdminSource = netip.PrefixFrom(ip4(admin), 16+int(adminBits)%17).Masked().String()
		a.LANCIDR = netip.PrefixFrom(ip4(lan), 8+int(lanBits)%23).Masked().String()
		a.Resolvers = []string{ip4(res1).String()}
		if res2 != 0 {
			a.Resolvers = append(a.Resolvers, ip4(res2).String())
		}
		if extra != 0 {
			a.ExtraPrivateRanges = []string{netip.PrefixFrom(ip4(extra), 1+int(extraBits)%32).Masked().String()}
		}
		a.Proxmox.VMID = 100 + int(vmid)
		a.Proxmox.NIC = fmt.Sprintf("net%d", nic%32)
		a.AllowHTTP = http
		if a.Validate("fuzz") != nil {
			return // only valid answers are generated from
		}
		checkGenerated(t, a)
	})
}
