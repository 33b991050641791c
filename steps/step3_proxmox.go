package steps

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"openclaw-harden/pvefw"
	"openclaw-harden/system"
)

// ProxmoxStep is Step 3: the hypervisor's firewall for this VM.
//
// The tool runs inside the VM and has no Proxmox. Its plan saves the generated <vmid>.fw and the cluster.fw
// fragment under the state dir (proxmox/), for the operator to copy to the node, and lists the commands that
// install it and prove each of the three switches (datacenter, VM, NIC). When the answers give
// proxmox.api_url and proxmox.token_file, the plan also applies the same rule set through the Proxmox API.
//
// Through the API the VM's rule list is replaced as a whole, as copying the file replaces it: the file is the
// whole policy, and a rule the tool did not write would sit among rules whose order is the policy.
//
// Verify checks the saved file (it is what the answers generate now, and it passes pvefw.Check). With the
// API it reads back every switch and the rule list in order. Without it (or when the node cannot be reached
// from inside the VM, which is normal once the policy drops the LAN), the switches can only be confirmed by
// the operator: each is a failing check until ConfirmProxmox has recorded, for this very file, that the
// operator ran the commands on the node. A headless verify without the API therefore fails Step 3 with that
// reason.
type ProxmoxStep struct{}

func (ProxmoxStep) ID() int       { return 3 }
func (ProxmoxStep) Title() string { return "Proxmox VM firewall" }

const (
	proxmoxStateDir  = "proxmox"
	proxmoxConfirmed = "proxmox/confirmed.json"
	proxmoxFragment  = "proxmox/cluster.fw.fragment"
)

func proxmoxSaved(vmid int) string { return filepath.Join(proxmoxStateDir, ProxmoxFileName(vmid)) }

// ProxmoxSwitch is one thing the operator turns on at the node, with the commands that prove it.
type ProxmoxSwitch struct {
	ID       string   // "datacenter", "vm", "nic", "rules"
	Name     string   // "datacenter firewall (cluster.fw enable: 1)"
	Commands []string // run as root on the node
	Expect   string   // what the commands show when it is on
}

// ProxmoxSwitches lists what must be on at the node, in the order to check it.
func ProxmoxSwitches(a Answers) []ProxmoxSwitch {
	id, nic := a.Proxmox.VMID, a.Proxmox.NIC
	fw := "/etc/pve/firewall/" + ProxmoxFileName(id)
	sum := "as the saved file's"
	if data, err := ProxmoxVMFirewall(a); err == nil {
		sum = fileSum(data)
	}
	return []ProxmoxSwitch{
		{ID: "rules", Name: fmt.Sprintf("VM %d's rules installed as generated", id),
			Commands: []string{"pve-firewall compile 2>&1 | grep -E '" + strconv.Itoa(id) + `\.fw|tap` + strconv.Itoa(id) + "i'",
				fmt.Sprintf("sha256sum %s", fw)},
			Expect: "no warning naming " + ProxmoxFileName(id) + ", the tap" + strconv.Itoa(id) + "i*-OUT chain lists the DROPs before the ACCEPTs, and sha256 " + sum},
		{ID: "datacenter", Name: "datacenter firewall on (cluster.fw [OPTIONS] enable: 1)",
			Commands: []string{"pve-firewall status", "pvesh get /cluster/firewall/options --output-format json"},
			Expect:   `"Status: enabled/running" and "enable": 1`},
		{ID: "vm", Name: fmt.Sprintf("VM %d firewall on with both policies DROP", id),
			Commands: []string{"grep -E '^(enable|policy_in|policy_out):' " + fw},
			Expect:   "enable: 1, policy_in: DROP, policy_out: DROP"},
		{ID: "nic", Name: fmt.Sprintf("firewall flag on the VM's %s", nic),
			Commands: []string{fmt.Sprintf("qm config %d | grep ^%s:", id, nic), fmt.Sprintf("qm pending %d | grep %s", id, nic)},
			Expect:   "firewall=1 in the current (not only the pending) value"},
	}
}

// proxmoxPlan is what Plan hands to Apply.
type proxmoxPlan struct {
	Rules    ProxmoxRuleSet
	File     []byte
	API      bool // apply through the API as well
	EnableDC bool // the API path switches the datacenter firewall on
	// APIURL and TokenFile come from the answers; the token itself is read again by Apply, never carried.
	APIURL, TokenFile string
}

func proxmoxCommands(a Answers, saved string) []string {
	id, nic, node := a.Proxmox.VMID, a.Proxmox.NIC, a.Proxmox.Node
	name := ProxmoxFileName(id)
	fw := "/etc/pve/firewall/" + name
	return []string{
		"# from the admin machine, which reaches both this VM and the node (the state dir is root-only):",
		fmt.Sprintf("ssh <admin>@<this VM> sudo cat %s > %s", saved, name),
		fmt.Sprintf("scp %s root@%s:%s", name, node, fw),
		"# then on the node " + node + ", as root:",
		"pve-firewall compile 2>&1 | grep -E '" + strconv.Itoa(id) + `\.fw'` + "   # must print nothing: each line is a rule pve-firewall skipped",
		"pve-firewall localnet                # before the datacenter switch: who keeps GUI/SSH access to the node",
		"pvesh set /cluster/firewall/options --enable 1   # datacenter switch; merges, never overwrite cluster.fw",
		fmt.Sprintf("qm config %d | grep ^%s:              # note the NIC's model=MAC and bridge", id, nic),
		fmt.Sprintf("qm set %d --%s <that same value>,firewall=1   # NIC switch; keep the MAC or it changes", id, nic),
		"pve-firewall status                  # Status: enabled/running, no warnings",
		fmt.Sprintf("grep -E '^(enable|policy_in|policy_out):' %s", fw),
		fmt.Sprintf("sha256sum %s                  # the same sum as the saved file's", fw),
		fmt.Sprintf("iptables-save | grep -E '^-A tap%di[0-9]+-(IN|OUT) '   # the rules, DROPs before ACCEPTs", id),
	}
}

// Plan is read-only: it generates the file and compares it (and, with the API, the node's state) with what
// is there.
func (ProxmoxStep) Plan(ctx context.Context, h *system.Host, a Answers) (Plan, error) {
	p := Plan{Step: 3, Title: "Proxmox VM firewall"}
	rs, err := ProxmoxRules(a)
	if err != nil {
		if strings.TrimSpace(a.AdminSource) == "" {
			p.Blocked = err.Error()
			return p, nil
		}
		return p, err
	}
	data, err := ProxmoxVMFirewall(a)
	if err != nil {
		return p, err
	}
	savedRel := proxmoxSaved(a.Proxmox.VMID)
	saved := filepath.Join(h.StateDir, savedRel)
	before, _ := h.LoadState(savedRel)
	fragBefore, _ := h.LoadState(proxmoxFragment)
	p.Changes = []Change{
		{Target: saved, Kind: "file", Before: string(before), After: string(data), Mode: 0o600},
		{Target: filepath.Join(h.StateDir, proxmoxFragment), Kind: "file", Before: string(fragBefore),
			After: string(ProxmoxClusterFragment()), Mode: 0o600},
	}
	p.Commands = proxmoxCommands(a, saved)
	p.Notes = []string{
		fmt.Sprintf("The tool runs inside the VM and cannot reach Proxmox itself: it saves %s for you to install on node %s at /etc/pve/firewall/%s (the commands below).",
			saved, a.Proxmox.Node, ProxmoxFileName(a.Proxmox.VMID)),
		"Rules are evaluated top-down, first match wins: every DROP (LAN, private ranges, multicast, broadcast, IPv6) comes before the 443/53/123 ACCEPTs, and policy_in and policy_out are both DROP, written out (policy_out defaults to ACCEPT).",
		"The firewall filters only when all three switches are on: datacenter (cluster.fw enable: 1), the VM (enable: 1, in this file) and the NIC (firewall=1 on " + a.Proxmox.NIC + ").",
		"Merge the cluster.fw fragment; never copy it over cluster.fw, which every node and VM shares. Switching the datacenter firewall on also turns on every node's host firewall (inbound DROP except 8006 and 22 from the management ipset / local_network): run pve-firewall localnet first and keep an SSH session to the node open.",
	}
	if a.AllowHTTP {
		p.Notes = append(p.Notes, "allow_http is set: the file has a TEMPORARY 80/tcp ACCEPT. Set allow_http: false and run Step 3 again once apt uses https.")
	}
	pp := proxmoxPlan{Rules: rs, File: data}
	if a.Proxmox.APIURL != "" && a.Proxmox.TokenFile != "" {
		if err := planProxmoxAPI(ctx, h, a, &p, &pp); err != nil {
			return p, err
		}
	} else {
		p.Notes = append(p.Notes, "No proxmox.api_url and token_file in the answers: Verify cannot see the hypervisor, so after installing you confirm each switch in the wizard (a headless verify fails Step 3 until then).")
	}
	p.Data = pp
	return p, nil
}

// apiTarget names the API change in the plan.
func apiTarget(a Answers) string {
	return fmt.Sprintf("Proxmox API %s: node %s, VM %d firewall", a.Proxmox.APIURL, a.Proxmox.Node, a.Proxmox.VMID)
}

// proxmoxClient reads the token and builds the client; the token is registered as a secret first.
func proxmoxClient(h *system.Host, a Answers) (*system.PVEClient, error) {
	tok, err := h.ReadPVEToken(a.Proxmox.TokenFile)
	if err != nil {
		return nil, err
	}
	return h.NewPVEClient(a.Proxmox.APIURL, tok, pveClientOptions)
}

// pveClientOptions is what the client is built with; tests point it at their server's certificate.
var pveClientOptions system.PVEOptions

// proxmoxLive is the node's state as the API shows it.
type proxmoxLive struct {
	Cluster system.PVEOptionsMap
	VM      system.PVEOptionsMap
	Config  system.PVEOptionsMap
	Rules   []system.PVERule
}

func readProxmoxLive(ctx context.Context, c *system.PVEClient, a Answers) (proxmoxLive, error) {
	var l proxmoxLive
	var err error
	if l.Cluster, err = c.ClusterFirewallOptions(ctx); err != nil {
		return l, err
	}
	if l.VM, err = c.VMFirewallOptions(ctx, a.Proxmox.Node, a.Proxmox.VMID); err != nil {
		return l, err
	}
	if l.Config, err = c.VMConfig(ctx, a.Proxmox.Node, a.Proxmox.VMID); err != nil {
		return l, err
	}
	l.Rules, err = c.VMRules(ctx, a.Proxmox.Node, a.Proxmox.VMID)
	return l, err
}

// apiText renders node state as the plan's diff shows it: the switches, the VM options, then the rules.
func apiText(clusterEnable string, vm map[string]string, nicKey, nicFW string, rules []string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "datacenter firewall enable: %s\n", clusterEnable)
	for _, o := range pveOptions {
		v := vm[o.Key]
		if v == "" {
			v = "(unset)"
		}
		fmt.Fprintf(&b, "vm option %s: %s\n", o.Key, v)
	}
	fmt.Fprintf(&b, "%s firewall: %s\n", nicKey, nicFW)
	for _, r := range rules {
		b.WriteString(r + "\n")
	}
	return b.String()
}

func wantAPIText(rs ProxmoxRuleSet) string {
	vm := map[string]string{}
	for _, o := range rs.Options {
		vm[o.Key] = o.Value
	}
	var lines []string
	for _, r := range rs.Rules {
		lines = append(lines, RuleLine(r))
	}
	return apiText("1", vm, rs.NIC, "1", lines)
}

func liveAPIText(l proxmoxLive, nic string) string {
	enable := l.Cluster["enable"]
	if enable == "" {
		enable = "(unset, off)"
	}
	fw := "0"
	if system.NetFirewall(l.Config[nic]) {
		fw = "1"
	}
	if l.Config[nic] == "" {
		fw = "(no such NIC)"
	}
	var lines []string
	for _, r := range l.Rules {
		lines = append(lines, RuleLine(pveToRule(r)))
	}
	return apiText(enable, l.VM, nic, fw, lines)
}

// pveToRule is an API rule as a file rule (the API writes types lowercase).
func pveToRule(r system.PVERule) pvefw.Rule {
	return pvefw.Rule{Dir: strings.ToUpper(r.Type), Action: r.Action, Macro: r.Macro, Iface: r.Iface, Source: r.Source,
		Dest: r.Dest, Proto: r.Proto, DPort: r.DPort, SPort: r.SPort, Log: r.Log, ICMPType: r.ICMPType,
		Enabled: r.Enable == 1, Comment: r.Comment}
}

func ruleToPVE(r pvefw.Rule) system.PVERule {
	en := 0
	if r.Enabled {
		en = 1
	}
	return system.PVERule{Type: strings.ToLower(r.Dir), Action: r.Action, Macro: r.Macro, Iface: r.Iface, Source: r.Source,
		Dest: r.Dest, Proto: r.Proto, DPort: r.DPort, SPort: r.SPort, Log: r.Log, ICMPType: r.ICMPType, Enable: en,
		Comment: r.Comment}
}

// nodeInDroppedRange says which dropped range holds the API host (only for an address written as such).
func nodeInDroppedRange(a Answers, rs ProxmoxRuleSet) string {
	u, err := url.Parse(a.Proxmox.APIURL)
	if err != nil {
		return ""
	}
	ip, err := netip.ParseAddr(u.Hostname())
	if err != nil {
		return ""
	}
	for _, r := range rs.Rules {
		if r.Dir != "OUT" || r.Action != "DROP" {
			continue
		}
		if p, err := netip.ParsePrefix(r.Dest); err == nil && p.Contains(ip) {
			return r.Dest
		}
		if d, err := netip.ParseAddr(r.Dest); err == nil && d == ip {
			return r.Dest
		}
	}
	return ""
}

func planProxmoxAPI(ctx context.Context, h *system.Host, a Answers, p *Plan, pp *proxmoxPlan) error {
	c, err := proxmoxClient(h, a)
	if err != nil {
		p.Blocked = err.Error()
		return nil
	}
	ch := Change{Target: apiTarget(a), Kind: "rules", After: wantAPIText(pp.Rules)}
	live, err := readProxmoxLive(ctx, c, a)
	switch {
	case errors.Is(err, system.ErrDryRun):
		p.Notes = append(p.Notes, "Dry run: the Proxmox API was not contacted, so its current state is unknown.")
		pp.EnableDC = true
	case err != nil:
		return fmt.Errorf("reading the VM's firewall through the Proxmox API: %w", err)
	default:
		ch.Before = liveAPIText(live, a.Proxmox.NIC)
		if live.Config[a.Proxmox.NIC] == "" {
			p.Blocked = fmt.Sprintf("VM %d on node %s has no %s; set proxmox.nic to the VM's network device", a.Proxmox.VMID, a.Proxmox.Node, a.Proxmox.NIC)
			return nil
		}
		pp.EnableDC = live.Cluster["enable"] != "1"
		on := live.Cluster["enable"] == "1" && live.VM["enable"] == "1" && system.NetFirewall(live.Config[a.Proxmox.NIC])
		if rng := nodeInDroppedRange(a, pp.Rules); rng != "" {
			note := fmt.Sprintf("The node's API address is inside %s, which this firewall drops: once it is in force the VM cannot reach the API, so Verify falls back to your confirmation.", rng)
			if on && ch.Before != ch.After {
				p.Blocked = fmt.Sprintf("the VM firewall is already on and the node's API address is inside %s, which the new rules drop: the API calls would cut themselves off half-way; install the file on the node instead (the commands below) and remove proxmox.api_url from the answers", rng)
			}
			p.Notes = append(p.Notes, note)
		}
	}
	pp.API, pp.APIURL, pp.TokenFile = true, a.Proxmox.APIURL, a.Proxmox.TokenFile
	if pp.EnableDC {
		ch.Warning = "switches the datacenter firewall on, which also turns on every node's host firewall"
		p.Risk = "This switches the Proxmox datacenter firewall on (PUT /cluster/firewall/options enable=1). That also turns on the host firewall of every node: inbound DROP except 8006 and 22 from the management ipset and local_network. Check `pve-firewall localnet` on the node first and keep a session to it open."
	}
	p.Notes = append(p.Notes, "Through the API the VM's rule list is replaced as a whole, as copying the file would: the new rules are posted in reverse (each POST lands at the top) with enable=1, then the old ones are deleted; the VM's enable switch is set last.")
	p.Changes = append(p.Changes, ch)
	return nil
}

// Apply saves the files for the operator and, when planned, applies the rule set through the API.
func (ProxmoxStep) Apply(ctx context.Context, h *system.Host, p Plan) error {
	pp, ok := p.Data.(proxmoxPlan)
	if !ok {
		if p.Empty() {
			return nil
		}
		return errors.New("the Step 3 plan carries no rule set; plan the step again")
	}
	for _, c := range p.Pending() {
		if c.Kind != "file" {
			continue
		}
		rel, err := filepath.Rel(h.StateDir, c.Target)
		if err != nil || strings.HasPrefix(rel, "..") {
			return fmt.Errorf("%s is not under the state dir %s", c.Target, h.StateDir)
		}
		if err := h.SaveState(rel, []byte(c.After)); err != nil {
			return fmt.Errorf("saving %s: %w", c.Target, err)
		}
	}
	if !pp.API {
		return nil
	}
	for _, c := range p.Pending() {
		if c.Kind == "rules" {
			return applyProxmoxAPI(ctx, h, pp)
		}
	}
	return nil
}

func applyProxmoxAPI(ctx context.Context, h *system.Host, pp proxmoxPlan) error {
	a := Answers{Proxmox: Proxmox{VMID: pp.Rules.VMID, Node: pp.Rules.Node, NIC: pp.Rules.NIC, APIURL: pp.APIURL, TokenFile: pp.TokenFile}}
	c, err := proxmoxClient(h, a)
	if err != nil {
		return err
	}
	node, id, nic := pp.Rules.Node, pp.Rules.VMID, pp.Rules.NIC
	rules := make([]system.PVERule, len(pp.Rules.Rules))
	for i, r := range pp.Rules.Rules {
		rules[i] = ruleToPVE(r)
	}
	// 1. the rules (they take effect only once every switch is on); left alone when already as generated
	cur, err := c.VMRules(ctx, node, id)
	if same, _ := compareRules(pp.Rules.Rules, cur); err != nil || !same {
		if err := c.ReplaceVMRules(ctx, node, id, rules); err != nil {
			return fmt.Errorf("replacing VM %d's firewall rules: %w", id, err)
		}
	}
	// 2. the VM options but enable
	opts := url.Values{}
	for _, o := range pp.Rules.Options {
		if o.Key != "enable" {
			opts.Set(o.Key, o.Value)
		}
	}
	if err := c.SetVMFirewallOptions(ctx, node, id, opts); err != nil {
		return fmt.Errorf("setting VM %d's firewall options: %w", id, err)
	}
	// 3. the NIC flag, keeping the rest of the NIC's value (its MAC above all)
	cfg, err := c.VMConfig(ctx, node, id)
	if err != nil && !(h.DryRun && errors.Is(err, system.ErrDryRun)) {
		return fmt.Errorf("reading VM %d's configuration: %w", id, err)
	}
	if err == nil {
		net := cfg[nic]
		if net == "" {
			return fmt.Errorf("VM %d has no %s; set proxmox.nic to its network device", id, nic)
		}
		if !system.NetFirewall(net) {
			v := url.Values{nic: {system.WithNetFirewall(net)}}
			if d := cfg["digest"]; d != "" {
				v.Set("digest", d)
			}
			if err := c.SetVMConfig(ctx, node, id, v); err != nil {
				return fmt.Errorf("setting firewall=1 on VM %d's %s: %w", id, nic, err)
			}
		}
	}
	// 4. the datacenter switch (only the enable key: the rest of cluster.fw stays as it is)
	if pp.EnableDC {
		if err := c.SetClusterFirewallOptions(ctx, url.Values{"enable": {"1"}}); err != nil {
			var pe *system.PVEError
			if errors.As(err, &pe) && pe.Status == 403 {
				return fmt.Errorf("the token may not switch the datacenter firewall on (it needs Sys.Modify on /, which this tool should not hold): run `pvesh set /cluster/firewall/options --enable 1` on the node and apply again: %w", err)
			}
			return fmt.Errorf("switching the datacenter firewall on: %w", err)
		}
	}
	// 5. last, the VM's own switch
	if err := c.SetVMFirewallOptions(ctx, node, id, url.Values{"enable": {"1"}}); err != nil {
		return fmt.Errorf("switching VM %d's firewall on: %w", id, err)
	}
	return nil
}

// proxmoxConfirmation is proxmox/confirmed.json: the operator's word that the switches are on at the node,
// for one generated file (its sha256), so a changed file needs a new confirmation.
type proxmoxConfirmation struct {
	VMID      int       `json:"vmid"`
	Node      string    `json:"node"`
	SHA256    string    `json:"sha256"`
	Switches  []string  `json:"switches"`
	Confirmed time.Time `json:"confirmed"`
}

func fileSum(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// ConfirmProxmox records that the operator ran the commands of ProxmoxSwitches on the node and saw each
// switch on, for the file Step 3 saved. The wizard calls it from its confirmation screen; it refuses when
// the saved file is missing or no longer what the answers generate.
func ConfirmProxmox(h *system.Host, a Answers, switches []string) error {
	data, err := ProxmoxVMFirewall(a)
	if err != nil {
		return err
	}
	saved, err := h.LoadState(proxmoxSaved(a.Proxmox.VMID))
	if err != nil || string(saved) != string(data) {
		return errors.New("Step 3's file is not saved as the answers generate it; apply Step 3 first, install that file, then confirm")
	}
	c := proxmoxConfirmation{VMID: a.Proxmox.VMID, Node: a.Proxmox.Node, SHA256: fileSum(data), Switches: switches, Confirmed: h.Now().UTC()}
	js, _ := json.MarshalIndent(c, "", "  ")
	return h.SaveState(proxmoxConfirmed, append(js, '\n'))
}

// Verify: the saved file, then the node through the API, or the operator's confirmation.
func (ProxmoxStep) Verify(ctx context.Context, h *system.Host, a Answers) []Check {
	var cs []Check
	savedRel := proxmoxSaved(a.Proxmox.VMID)
	savedPath := filepath.Join(h.StateDir, savedRel)
	want, genErr := ProxmoxVMFirewall(a)
	saved, err := h.LoadState(savedRel)
	c := Check{ID: "step3.file.saved", Name: "generated firewall file saved for the node", Expect: savedPath + " as the answers generate it"}
	switch {
	case genErr != nil:
		c.Got, c.Reason = "cannot generate", genErr.Error()
	case errors.Is(err, fs.ErrNotExist):
		c.Got, c.Reason = "absent", "Step 3 has not saved the file yet; apply it"
	case err != nil:
		c.Got, c.Reason = "unreadable", err.Error()
	case string(saved) != string(want):
		c.Got, c.Reason = "differs", "the answers changed since the file was saved (or it was edited); apply Step 3 again and reinstall it on the node"
	default:
		c.Got, c.OK = fmt.Sprintf("%d bytes, sha256 %s", len(saved), fileSum(saved)[:12]), true
	}
	cs = append(cs, c)
	v := Check{ID: "step3.file.valid", Name: "saved file passes the pve-firewall-strict check", Expect: "no findings"}
	if saved == nil {
		v.Got, v.Reason = "no file", "nothing to check"
	} else if fs := pvefw.Check(ProxmoxFileName(a.Proxmox.VMID), saved); len(fs) > 0 {
		v.Got, v.Reason = fmt.Sprintf("%d findings", len(fs)), fs[0].String()
	} else {
		v.Got, v.OK = "no findings", true
	}
	cs = append(cs, v)
	if genErr != nil {
		return cs
	}
	rs, _ := ProxmoxRules(a)
	apiReason := ""
	if a.Proxmox.APIURL != "" && a.Proxmox.TokenFile != "" {
		cl, err := proxmoxClient(h, a)
		if err == nil {
			var live proxmoxLive
			live, err = readProxmoxLive(ctx, cl, a)
			if err == nil {
				return append(cs, verifyProxmoxAPI(a, rs, want, live)...)
			}
		}
		apiReason = "the Proxmox API could not be read (" + firstLine(err.Error()) + ")"
		if rng := nodeInDroppedRange(a, rs); rng != "" {
			apiReason += fmt.Sprintf("; the node is inside %s, which this firewall drops, so from inside the VM that is expected once it is on", rng)
		}
	}
	return append(cs, verifyProxmoxConfirmed(h, a, want, apiReason)...)
}

func verifyProxmoxAPI(a Answers, rs ProxmoxRuleSet, file []byte, l proxmoxLive) []Check {
	id := a.Proxmox.VMID
	opt := func(key, want, name string, m system.PVEOptionsMap, cid string) Check {
		got := m[key]
		c := Check{ID: cid, Name: name, Expect: key + " = " + want, Got: key + " = " + got, OK: got == want}
		if got == "" {
			c.Got = key + " unset"
		}
		if !c.OK {
			c.Reason = fmt.Sprintf("the API shows %s; set %s: %s", c.Got, key, want)
		}
		return c
	}
	cs := []Check{
		opt("enable", "1", "datacenter firewall on (API)", l.Cluster, "step3.api.datacenter"),
		opt("enable", "1", fmt.Sprintf("VM %d firewall on (API)", id), l.VM, "step3.api.vm.enable"),
		opt("policy_in", "DROP", fmt.Sprintf("VM %d policy_in (API)", id), l.VM, "step3.api.vm.policy_in"),
		opt("policy_out", "DROP", fmt.Sprintf("VM %d policy_out (API)", id), l.VM, "step3.api.vm.policy_out"),
	}
	net := l.Config[a.Proxmox.NIC]
	nc := Check{ID: "step3.api.nic", Name: fmt.Sprintf("firewall flag on %s (API)", a.Proxmox.NIC), Expect: "firewall=1", Got: net,
		OK: system.NetFirewall(net)}
	if !nc.OK {
		nc.Reason = fmt.Sprintf("%s has no firewall=1: `qm set %d --%s %s`", a.Proxmox.NIC, id, a.Proxmox.NIC, system.WithNetFirewall(net))
		if net == "" {
			nc.Got, nc.Reason = "no such NIC", fmt.Sprintf("VM %d has no %s", id, a.Proxmox.NIC)
		}
	}
	cs = append(cs, nc)
	f, _ := pvefw.Parse(ProxmoxFileName(id), file)
	rc := Check{ID: "step3.api.rules", Name: fmt.Sprintf("VM %d rules in order, as generated (API)", id),
		Expect: fmt.Sprintf("%d rules as in %s", len(f.Rules), ProxmoxFileName(id)), Got: fmt.Sprintf("%d rules", len(l.Rules))}
	rc.OK, rc.Reason = compareRules(f.Rules, l.Rules)
	return append(cs, rc)
}

// compareRules compares the file's rules with the API's list, order included.
func compareRules(want []pvefw.Rule, got []system.PVERule) (bool, string) {
	for i := 0; i < len(want) || i < len(got); i++ {
		switch {
		case i >= len(got):
			return false, fmt.Sprintf("rule %d is missing: %s", i+1, RuleLine(want[i]))
		case i >= len(want):
			return false, fmt.Sprintf("rule %d is extra: %s", i+1, RuleLine(pveToRule(got[i])))
		}
		if len(got[i].Errors) > 0 {
			return false, fmt.Sprintf("rule %d has errors on the node, so pve-firewall does not compile it: %s", i+1, RuleLine(pveToRule(got[i])))
		}
		w := want[i]
		w.Line = 0
		if g := pveToRule(got[i]); RuleLine(g) != RuleLine(w) {
			return false, fmt.Sprintf("rule %d differs: the node has %q, the file %q", i+1, RuleLine(g), RuleLine(w))
		}
	}
	return true, ""
}

func verifyProxmoxConfirmed(h *system.Host, a Answers, file []byte, apiReason string) []Check {
	var conf proxmoxConfirmation
	confirmed := map[string]bool{}
	stale := ""
	if b, err := h.LoadState(proxmoxConfirmed); err == nil {
		if json.Unmarshal(b, &conf) == nil && conf.VMID == a.Proxmox.VMID {
			if conf.SHA256 == fileSum(file) {
				for _, s := range conf.Switches {
					confirmed[s] = true
				}
			} else {
				stale = fmt.Sprintf("the confirmation of %s was for another version of the file; ", conf.Confirmed.Format(time.RFC3339))
			}
		}
	}
	var cs []Check
	for _, sw := range ProxmoxSwitches(a) {
		c := Check{ID: "step3.confirm." + sw.ID, Name: sw.Name + " (operator-confirmed)", Expect: "confirmed on node " + a.Proxmox.Node + ": " + sw.Expect}
		if confirmed[sw.ID] {
			c.Got, c.OK = "confirmed "+conf.Confirmed.Format(time.RFC3339), true
		} else {
			c.Got = "not confirmed"
			c.Reason = fmt.Sprintf("%snot confirmed: run `%s` on node %s and confirm in the wizard", stale, strings.Join(sw.Commands, "` and `"), a.Proxmox.Node)
			if apiReason != "" {
				c.Reason = apiReason + "; " + c.Reason
			} else if a.Proxmox.APIURL == "" {
				c.Reason += " (a headless verify cannot see the hypervisor from inside the VM; set proxmox.api_url and token_file to check through the API)"
			}
		}
		cs = append(cs, c)
	}
	return cs
}
