package steps

import (
	"bytes"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"text/template"

	"openclaw-harden/assets"
	"openclaw-harden/pvefw"
)

// The Proxmox VM firewall (Step 3) as data: the options and rules the generated <vmid>.fw holds, in the
// order pve-firewall evaluates them. The API path posts exactly these rules; Verify compares with them.

// pveOptions are the VM [OPTIONS], in the order they are written. enable and both policies are the point;
// the rest are written out because their effective defaults are not what the docs say (dhcp) or because a
// GUI save would otherwise add them in random order.
var pveOptions = []pvefw.Option{
	{Key: "enable", Value: "1"},
	{Key: "policy_in", Value: "DROP"},
	{Key: "policy_out", Value: "DROP"},
	{Key: "dhcp", Value: "1"},
	{Key: "ndp", Value: "1"},
	{Key: "radv", Value: "0"},
	{Key: "macfilter", Value: "1"},
	{Key: "log_level_in", Value: "nolog"},
	{Key: "log_level_out", Value: "nolog"},
}

// privateReason says why each of PrivateRanges is dropped.
var privateReason = map[string]string{
	"10.0.0.0/8":     "RFC1918 private range",
	"172.16.0.0/12":  "RFC1918 private range (also Docker's default networks)",
	"192.168.0.0/16": "RFC1918 private range",
	"100.64.0.0/10":  "RFC6598 carrier-grade NAT range",
	"169.254.0.0/16": "link-local range, includes the cloud metadata address 169.254.169.254",
}

// TemporaryHTTPMarker starts the comment of the optional 80/tcp rule, so an operator (and the API path)
// can find and remove it.
const TemporaryHTTPMarker = "TEMPORARY"

// ProxmoxRuleSet is the generated firewall for one VM.
type ProxmoxRuleSet struct {
	VMID    int
	Node    string
	NIC     string
	Options []pvefw.Option
	Rules   []pvefw.Rule // IN rules first, then OUT; within a direction in evaluation order
}

// ProxmoxRules builds the rule set from the answers. It needs admin_source: without it there would be no
// way in once policy_in is DROP.
func ProxmoxRules(a Answers) (ProxmoxRuleSet, error) {
	rs := ProxmoxRuleSet{VMID: a.Proxmox.VMID, Node: a.Proxmox.Node, NIC: a.Proxmox.NIC,
		Options: append([]pvefw.Option(nil), pveOptions...)}
	if strings.TrimSpace(a.AdminSource) == "" {
		return rs, errors.New("admin_source is empty: the Proxmox firewall drops all inbound traffic, so it needs the admin machine's address to keep SSH open; set admin_source in the answers")
	}
	admin, ok := parseSource(a.AdminSource)
	if !ok {
		return rs, fmt.Errorf("admin_source %q is not an IPv4 address or network", a.AdminSource)
	}
	lan, ok := parsePrefix(a.LANCIDR)
	if !ok {
		return rs, fmt.Errorf("lan_cidr %q is not an IPv4 network", a.LANCIDR)
	}
	if !nicRE.MatchString(a.Proxmox.NIC) {
		return rs, fmt.Errorf("proxmox.nic %q is not a VM network device like net0", a.Proxmox.NIC)
	}
	nic := a.Proxmox.NIC
	rule := func(dir, action, comment string) pvefw.Rule {
		return pvefw.Rule{Dir: dir, Action: action, Enabled: true, Comment: comment}
	}

	in := rule("IN", "ACCEPT", "SSH from the admin source only; everything else inbound hits policy_in DROP")
	in.Iface, in.Source, in.Proto, in.DPort = nic, addrString(admin), "tcp", "22"
	rs.Rules = append(rs.Rules, in)

	drop := func(dest, why string) {
		r := rule("OUT", "DROP", why)
		r.Dest = dest
		rs.Rules = append(rs.Rules, r)
	}
	drop("::/0", "no IPv6 egress: the port-only ACCEPTs below would otherwise reach IPv6 LAN hosts")
	seen := map[netip.Prefix]bool{}
	lan = lan.Masked()
	seen[lan] = true
	drop(lan.String(), "LAN "+lan.String()+": the agent must not reach other machines on the LAN")
	for _, p := range PrivateRanges {
		pp := netip.MustParsePrefix(p)
		if seen[pp] {
			continue
		}
		seen[pp] = true
		drop(p, privateReason[p])
	}
	for _, e := range a.ExtraPrivateRanges {
		pp, ok := parsePrefix(e)
		if !ok {
			return rs, fmt.Errorf("extra_private_ranges entry %q is not an IPv4 network", e)
		}
		pp = pp.Masked()
		if seen[pp] {
			continue
		}
		seen[pp] = true
		drop(pp.String(), "extra private range from the answers (extra_private_ranges)")
	}
	drop("224.0.0.0/4", "multicast (mDNS, SSDP): nothing the agent needs")
	drop("255.255.255.255", "limited broadcast")

	accept := func(proto, port, dest, why string) {
		r := rule("OUT", "ACCEPT", why)
		r.Iface, r.Dest, r.Proto, r.DPort = nic, dest, proto, port
		rs.Rules = append(rs.Rules, r)
	}
	accept("tcp", "443", "", "HTTPS for the agent's APIs; private and LAN addresses are dropped above")
	if a.AllowHTTP {
		accept("tcp", "80", "", TemporaryHTTPMarker+": plain HTTP for package updates only; remove it (allow_http: false) once apt uses https")
	}
	for _, r := range a.Resolvers {
		ip, err := netip.ParseAddr(strings.TrimSpace(r))
		if err != nil || !ip.Is4() {
			return rs, fmt.Errorf("resolvers entry %q is not an IPv4 address", r)
		}
		accept("udp", "53", ip.String(), "DNS to the resolver "+ip.String()+" from the answers")
		accept("tcp", "53", ip.String(), "DNS over TCP to "+ip.String()+" for truncated answers")
	}
	if len(a.NTP) == 0 {
		accept("udp", "123", "", "NTP time sync to public servers (private ones are dropped above)")
	}
	for _, n := range a.NTP {
		ip, err := netip.ParseAddr(strings.TrimSpace(n))
		if err != nil || !ip.Is4() {
			return rs, fmt.Errorf("ntp entry %q is not an IPv4 address", n)
		}
		accept("udp", "123", ip.String(), "NTP time sync to "+ip.String()+" from the answers")
	}
	return rs, nil
}

// addrString writes a /32 as the bare address, as the Proxmox GUI does.
func addrString(p netip.Prefix) string {
	p = p.Masked()
	if p.Bits() == p.Addr().BitLen() {
		return p.Addr().String()
	}
	return p.String()
}

// RuleLine writes one rule the way pve-firewall writes it back (options in its canonical order), with its
// trailing comment after " # ": a '#' glued to a value would start the comment early and swallow options.
func RuleLine(r pvefw.Rule) string { return pvefw.RuleLine(r) }

var vmTemplate = template.Must(template.New("vm.fw").Parse(assets.ProxmoxVMTemplate()))

// File renders the rule set as /etc/pve/firewall/<vmid>.fw.
func (rs ProxmoxRuleSet) File() []byte {
	var in, out []string
	for _, r := range rs.Rules {
		if r.Dir == "IN" {
			in = append(in, RuleLine(r))
		} else {
			out = append(out, RuleLine(r))
		}
	}
	var b bytes.Buffer
	err := vmTemplate.Execute(&b, map[string]any{"VMID": rs.VMID, "Node": rs.Node, "NIC": rs.NIC,
		"Options": rs.Options, "In": in, "Out": out})
	if err != nil { // the template and its data are fixed: a failure is a programming error
		panic(fmt.Sprintf("rendering vm.fw: %v", err))
	}
	return b.Bytes()
}

// ProxmoxFileName is the file's name on the node, which is also what pvefw uses to tell a VM file.
func ProxmoxFileName(vmid int) string { return fmt.Sprintf("%d.fw", vmid) }

// ProxmoxVMFirewall generates /etc/pve/firewall/<vmid>.fw from the answers. The result always passes
// pvefw.Check with no findings; if it ever did not, that is a bug and it is returned as an error rather
// than handed to an operator.
func ProxmoxVMFirewall(a Answers) ([]byte, error) {
	rs, err := ProxmoxRules(a)
	if err != nil {
		return nil, err
	}
	data := rs.File()
	if fs := pvefw.Check(ProxmoxFileName(rs.VMID), data); len(fs) > 0 {
		msgs := make([]string, len(fs))
		for i, f := range fs {
			msgs[i] = f.String()
		}
		return nil, fmt.Errorf("internal error: the generated firewall file fails its own check:\n%s", strings.Join(msgs, "\n"))
	}
	return data, nil
}

// ProxmoxClusterFragment is the part of /etc/pve/firewall/cluster.fw that switches the datacenter firewall
// on. It is merged into the node's file, never copied over it.
func ProxmoxClusterFragment() []byte { return assets.ProxmoxClusterFragment() }
