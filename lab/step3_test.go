package lab

import (
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"openclaw-harden/pvefw"
	"openclaw-harden/steps"
)

// The hypervisor stand-in: the router namespace enforces a parsed, validated <vmid>.fw on the VM's tap, the
// way pve-firewall's iptables backend does on tap<vmid>i<n> (Firewall.pm generate_tap_rules_direction):
// INVALID dropped and ESTABLISHED,RELATED accepted before any VM rule, then the VM's rules in file order
// (first match wins), then the policy. OUT is what enters the bridge from the tap (bridged to LAN hosts, or
// routed by the router to the other lab networks, or addressed to the router itself), IN what the bridge
// sends out of the tap.
const (
	pveChainOut = "och-pve-OUT"
	pveChainIn  = "och-pve-IN"
)

// pveToIPTables turns the VM file's rules into iptables rule specs per chain, for the VM's NIC nic. Only
// IPv4 is enforced (the lab bridges IPv4); IPv6 rules are returned in skipped with the reason, as is any
// rule that cannot match this NIC.
func pveToIPTables(f pvefw.File, nic string) (rules map[string][][]string, skipped []string, err error) {
	rules = map[string][][]string{}
	for _, ch := range []string{pveChainOut, pveChainIn} {
		rules[ch] = [][]string{
			{"-m", "conntrack", "--ctstate", "INVALID", "-j", "DROP"},
			{"-m", "conntrack", "--ctstate", "RELATED,ESTABLISHED", "-j", "ACCEPT"},
		}
	}
	for _, r := range f.Rules {
		line := steps.RuleLine(r)
		switch {
		case !r.Enabled:
			skipped = append(skipped, line+" (disabled)")
			continue
		case r.Invalid != "":
			skipped = append(skipped, line+" (pve-firewall does not compile it: "+r.Invalid+")")
			continue
		case r.Macro != "" || r.Dir == "GROUP":
			return nil, nil, fmt.Errorf("%s: macros and groups are not translated by the lab", line)
		case r.Iface != "" && r.Iface != nic:
			skipped = append(skipped, line+" (another NIC)")
			continue
		}
		v6 := false
		var spec []string
		for _, a := range []struct{ flag, val string }{{"-s", r.Source}, {"-d", r.Dest}} {
			if a.val == "" {
				continue
			}
			for _, e := range strings.Split(a.val, ",") {
				if strings.HasPrefix(e, "+") || strings.Contains(e, "-") {
					return nil, nil, fmt.Errorf("%s: ipsets, aliases and ranges are not translated by the lab", line)
				}
				ip := e
				if p, err := netip.ParsePrefix(e); err == nil {
					ip = p.Addr().String()
				}
				addr, err := netip.ParseAddr(ip)
				if err != nil {
					return nil, nil, fmt.Errorf("%s: %q is not an address", line, e)
				}
				v6 = v6 || addr.Is6()
			}
			spec = append(spec, a.flag, a.val)
		}
		if v6 {
			skipped = append(skipped, line+" (IPv6; the stand-in enforces IPv4)")
			continue
		}
		if r.Proto != "" {
			spec = append(spec, "-p", r.Proto)
		}
		if r.DPort != "" {
			if strings.Contains(r.DPort, ",") {
				spec = append(spec, "-m", "multiport", "--dports", r.DPort)
			} else {
				spec = append(spec, "--dport", r.DPort)
			}
		}
		if r.SPort != "" {
			if strings.Contains(r.SPort, ",") {
				spec = append(spec, "-m", "multiport", "--sports", r.SPort)
			} else {
				spec = append(spec, "--sport", r.SPort)
			}
		}
		if r.ICMPType != "" {
			spec = append(spec, "--icmp-type", r.ICMPType)
		}
		comment := fmt.Sprintf("%s line %d", f.Name, r.Line) // iptables comments are at most 256 bytes
		spec = append(spec, "-m", "comment", "--comment", comment)
		spec = append(spec, "-j", r.Action)
		ch := pveChainOut
		if r.Dir == "IN" {
			ch = pveChainIn
		}
		rules[ch] = append(rules[ch], spec)
	}
	for ch, key := range map[string]string{pveChainOut: "policy_out", pveChainIn: "policy_in"} {
		pol := "ACCEPT" // pve-firewall's default for policy_out; the generated file always sets both
		if key == "policy_in" {
			pol = "DROP"
		}
		if o, ok := f.Option(key); ok {
			pol = o.Value
		}
		rules[ch] = append(rules[ch], []string{"-m", "comment", "--comment", key, "-j", pol})
	}
	return rules, skipped, nil
}

// TestPVEToIPTables runs everywhere: the translation of the generated lab file, rule for rule.
func TestPVEToIPTables(t *testing.T) {
	f := labPVEFile(t)
	rules, skipped, err := pveToIPTables(f, "net0")
	if err != nil {
		t.Fatal(err)
	}
	out := rules[pveChainOut]
	// conntrack first, then the DROPs in file order, then the ACCEPTs, then the policy
	if len(out) < 5 || out[1][3] != "RELATED,ESTABLISHED" || out[2][1] != "192.168.1.0/24" || out[2][len(out[2])-1] != "DROP" {
		t.Fatalf("OUT chain: %q", out)
	}
	if last := out[len(out)-1]; last[len(last)-1] != "DROP" {
		t.Fatalf("policy_out: %q", last)
	}
	in := rules[pveChainIn]
	if len(in) != 4 || in[2][1] != "192.168.1.50" || in[3][len(in[3])-1] != "DROP" {
		t.Fatalf("IN chain: %q", in)
	}
	if len(skipped) != 1 || !strings.Contains(skipped[0], "::/0") {
		t.Fatalf("skipped: %q", skipped)
	}
}

func labPVEFile(t testing.TB) pvefw.File {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(srcDir(), "testdata", "lab.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	a, err := steps.ParseAnswers("lab.yaml", raw)
	if err != nil {
		t.Fatal(err)
	}
	data, err := steps.ProxmoxVMFirewall(a)
	if err != nil {
		t.Fatal(err)
	}
	name := steps.ProxmoxFileName(a.Proxmox.VMID)
	if fs := pvefw.Check(name, data); len(fs) > 0 {
		t.Fatalf("the generated lab file has findings: %v", fs)
	}
	f, _ := pvefw.Parse(name, data)
	return f
}

// TestLabStep3ProxmoxLayer shows the hypervisor layer blocking on its own: with neither UFW nor DOCKER-USER
// applied in the VM, the router namespace enforces the generated file on the VM's tap, and the VM cannot
// reach the LAN or private targets while 443 and DNS to the lab's public side pass, and SSH in works from the
// admin source only. Removing the layer again makes the blocked targets answer: it was this layer.
func TestLabStep3ProxmoxLayer(t *testing.T) {
	f := labPVEFile(t)
	rules, skipped, err := pveToIPTables(f, "net0")
	if err != nil {
		t.Fatal(err)
	}
	l := Start(t)

	router := func(argv ...string) string {
		t.Helper()
		o, e, code, err := l.ExecIn(NSRouter, argv...)
		if err != nil || code != 0 {
			t.Fatalf("router: %q: exit %d, %v: %s", argv, code, err, e)
		}
		return o
	}
	// br_netfilter: bridged frames pass iptables only if bridge-nf-call-iptables is 1. It is per namespace on
	// this kernel: switch it in the router namespace and read the harness's own namespace, which must not move.
	rootBefore, err := os.ReadFile("/proc/sys/net/bridge/bridge-nf-call-iptables")
	if err != nil {
		t.Fatalf("br_netfilter is not available here, so -m physdev cannot see bridged frames: %v", err)
	}
	router("sysctl", "-q", "-w", "net.bridge.bridge-nf-call-iptables=0")
	rootMid, _ := os.ReadFile("/proc/sys/net/bridge/bridge-nf-call-iptables")
	router("sysctl", "-q", "-w", "net.bridge.bridge-nf-call-iptables=1")
	if string(rootMid) != string(rootBefore) {
		t.Fatalf("bridge-nf-call-iptables is not per namespace on this kernel (the harness's value followed the router's): refusing to go on")
	}
	if v := strings.TrimSpace(router("sysctl", "-n", "net.bridge.bridge-nf-call-iptables")); v != "1" {
		t.Fatalf("router namespace bridge-nf-call-iptables = %s", v)
	}
	l.Logf("bridge-nf-call-iptables: router namespace 1, this machine's namespace %s (untouched; per-namespace confirmed)", strings.TrimSpace(string(rootBefore)))

	// The VM has none of the in-VM layers: this test must not lean on them.
	if o := l.MustRun(t, "ufw status"); !strings.Contains(o, "inactive") {
		t.Fatalf("UFW is active on the fresh VM:\n%s", o)
	}
	if o, _, code, _ := l.Run("iptables -S DOCKER-USER"); code == 0 && strings.Contains(o, "-A DOCKER-USER") && strings.Contains(o, "DROP") {
		t.Fatalf("DOCKER-USER already has drops:\n%s", o)
	}

	type probe struct {
		name, cmd, want string // want: the output when it answers
	}
	curl := func(u string, extra string) string {
		return "curl -sS -m 5 -o /dev/null -w '%{http_code}' " + extra + " " + u
	}
	blocked := []probe{
		{"LAN host http://192.168.1.2/", curl("http://"+LANHostAddr+"/", ""), "200"},
		{"LAN router http://192.168.1.1/", curl("http://"+RouterLAN+"/", ""), "200"},
		{"private http://10.0.0.1/", curl("http://"+PrivAddr+"/", ""), "200"},
		{"metadata http://169.254.169.254/", curl("http://"+MetadataAddr+"/", ""), "200"},
		{"internet http://203.0.113.10/ (80 not allowed)", curl("http://"+InetAddr+"/", ""), "200"},
	}
	allowed := []probe{
		{"https://api.telegram.org/ (203.0.113.10:443)", curl("https://api.telegram.org/", "--resolve api.telegram.org:443:"+InetAddr), "200"},
		{"DNS udp @203.0.113.53", "dig +short +time=3 +tries=1 @" + DNSAddr + " api.telegram.org", InetAddr},
		{"DNS tcp @203.0.113.53", "dig +tcp +short +time=3 +tries=1 @" + DNSAddr + " api.telegram.org", InetAddr},
	}
	answers := func(p probe) (bool, string, time.Duration) {
		t0 := time.Now()
		o, e, code, err := l.RunTimeout(p.cmd, nil, time.Minute)
		return err == nil && code == 0 && strings.TrimSpace(o) == p.want, oneLine(fmt.Sprintf("exit %d %s %s", code, o, e), 80), time.Since(t0)
	}
	sshBanner := func(ns string) (bool, string) {
		c, err := DialFrom(ns, net.JoinHostPort(VMAddr, "22"), 5*time.Second)
		if err != nil {
			return false, err.Error()
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(5 * time.Second))
		b := make([]byte, 64)
		n, _ := io.ReadAtLeast(c, b, 8)
		return strings.HasPrefix(string(b[:n]), "SSH-2.0"), oneLine(string(b[:n]), 40)
	}
	adminLogin := func() error {
		c, err := l.SSHFrom(NSAdmin, AdminUser, ssh.PublicKeys(l.Signer()))
		if err == nil {
			c.Close()
		}
		return err
	}

	// Before: every target answers, so a failure afterwards is the firewall's doing.
	done := l.Phase("step 3 liveness before the hypervisor layer")
	for _, p := range append(append([]probe{}, blocked...), allowed...) {
		if ok, got, _ := answers(p); !ok {
			t.Fatalf("before the layer, %s does not answer (%s): the test would prove nothing", p.name, got)
		}
	}
	if ok, got := sshBanner(NSLAN); !ok {
		t.Fatalf("before the layer, SSH from %s does not answer: %s", LANHostAddr, got)
	}
	done()

	// Enforce the file on the tap.
	done = l.Phase("enforce the generated " + f.Name + " on " + TapName)
	for _, ch := range []string{pveChainOut, pveChainIn} {
		router("iptables", "-w", "-N", ch)
		for _, spec := range rules[ch] {
			router(append([]string{"iptables", "-w", "-A", ch}, spec...)...)
		}
	}
	hooks := [][]string{
		{"FORWARD", "-m", "physdev", "--physdev-in", TapName, "-j", pveChainOut},                         // bridged or routed from the VM
		{"INPUT", "-m", "physdev", "--physdev-in", TapName, "-j", pveChainOut},                           // to the router itself
		{"FORWARD", "-m", "physdev", "--physdev-is-bridged", "--physdev-out", TapName, "-j", pveChainIn}, // LAN hosts to the VM
	}
	for _, hk := range hooks {
		router(append([]string{"iptables", "-w", "-I", hk[0], "1"}, hk[1:]...)...)
	}
	t.Cleanup(func() { removePVELayer(l, hooks) })
	for _, s := range skipped {
		l.Logf("not enforced: %s", s)
	}
	l.Logf("router chains:\n%s", router("iptables", "-w", "-S", pveChainOut)+router("iptables", "-w", "-S", pveChainIn))
	done()

	done = l.Phase("probe through the hypervisor layer")
	for _, p := range blocked {
		ok, got, took := answers(p)
		l.Logf("blocked? %-48s answered=%v %5.1fs %s", p.name, ok, took.Seconds(), got)
		if ok {
			t.Errorf("%s answers through the hypervisor layer", p.name)
		}
	}
	for _, p := range allowed {
		ok, got, took := answers(p)
		l.Logf("allowed? %-48s answered=%v %5.1fs %s", p.name, ok, took.Seconds(), got)
		if !ok {
			t.Errorf("%s is blocked by the hypervisor layer: %s", p.name, got)
		}
	}
	if ok, got := sshBanner(NSLAN); ok {
		t.Errorf("SSH from %s (not the admin source) reaches the VM: %s", LANHostAddr, got)
	} else {
		l.Logf("SSH from %s: blocked (%s)", LANHostAddr, got)
	}
	if err := adminLogin(); err != nil {
		t.Errorf("a new SSH login from the admin source %s fails: %v", AdminAddr, err)
	} else {
		l.Logf("SSH from %s: new login works", AdminAddr)
	}
	l.Logf("router counters:\n%s", router("iptables", "-w", "-L", pveChainOut, "-v", "-n", "--line-numbers")+
		router("iptables", "-w", "-L", pveChainIn, "-v", "-n", "--line-numbers"))
	done()

	// Without the layer the blocked targets answer again: it was this layer, and nothing else, that blocked.
	done = l.Phase("remove the layer and re-probe")
	removePVELayer(l, hooks)
	for _, p := range blocked[:3] {
		if ok, got, _ := answers(p); !ok {
			t.Errorf("after removing the layer, %s still does not answer (%s)", p.name, got)
		}
	}
	if ok, got := sshBanner(NSLAN); !ok {
		t.Errorf("after removing the layer, SSH from %s still fails: %s", LANHostAddr, got)
	}
	done()
}

func removePVELayer(l *Lab, hooks [][]string) {
	for _, hk := range hooks {
		_, _, _, _ = l.ExecIn(NSRouter, append([]string{"iptables", "-w", "-D", hk[0]}, hk[1:]...)...)
	}
	for _, ch := range []string{pveChainOut, pveChainIn} {
		_, _, _, _ = l.ExecIn(NSRouter, "iptables", "-w", "-F", ch)
		_, _, _, _ = l.ExecIn(NSRouter, "iptables", "-w", "-X", ch)
	}
}
