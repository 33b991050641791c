package steps

// Step 2's UFW layer: the desired rule list, the live one read from /etc/ufw/user*.rules, and the smallest
// list of ufw commands that turns one into the other. UFW is first match, so the order is part of the rule
// set: the deny-out rules for the LAN and the private ranges must come before the allows.

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"strconv"
	"strings"
	"text/template"
	"time"

	"openclaw-harden/assets"
	"openclaw-harden/system"
)

// Step 4's block in /etc/ufw/after.rules. `ufw --force reset` restores the stock after.rules, so Step 2 keeps
// this block's text across a reset and writes it back in the same run.
const (
	step2BlockBegin = "# ---BEGIN DOCKER-USER LAN ISOLATION---"
	step2BlockEnd   = "# ---END DOCKER-USER LAN ISOLATION---"
)

const (
	ufwUserRules  = "/etc/ufw/user.rules"
	ufwUser6Rules = "/etc/ufw/user6.rules"
	ufwAfterRules = "/etc/ufw/after.rules"
	ufwConf       = "/etc/ufw/ufw.conf"
	ufwDefaults   = "/etc/default/ufw"
	// ufwStockAfter is what `ufw --force reset` copies to /etc/ufw/after.rules.
	ufwStockAfter = "/usr/share/ufw/iptables/after.rules"
	ufwTimeout    = 2 * time.Minute
)

// ufwRule is one UFW rule as /etc/ufw/user.rules stores it:
//
//	### tuple ### allow tcp 22 0.0.0.0/0 any 192.168.1.50 in
//	### tuple ### ACTION PROTO DPORT DST SPORT SRC [DAPP SAPP] DIRECTION [comment=HEX]
type ufwRule struct {
	Action     string // allow, deny, reject, limit; a "_log" or "_log-all" suffix is kept
	Proto      string // any, tcp, udp, …
	DPort      string // any, 22, 60000:61000, 80,443
	Dst        string // 0.0.0.0/0 (any), 192.168.1.0/24, 1.1.1.1
	SPort      string
	Src        string
	DApp, SApp string // application profiles, "" when none
	Dir        string // in, out, in_eth0, out_eth0, in_eth0!out_eth1
	Route      bool   // a "route" (FORWARD) rule
	V6         bool   // from user6.rules
	Comment    string // as stored (hex), "" when none
}

// key identifies a rule for comparison: everything but the comment, with host addresses written without /32.
func (r ufwRule) key() string {
	return strings.Join([]string{r.Action, r.Proto, r.DPort, normUFWAddr(r.Dst), r.SPort, normUFWAddr(r.Src),
		r.DApp, r.SApp, r.Dir, strconv.FormatBool(r.Route), strconv.FormatBool(r.V6)}, " ")
}

// normUFWAddr writes a single address without its /32 (/128), as UFW stores it.
func normUFWAddr(s string) string {
	if p, err := netip.ParsePrefix(s); err == nil {
		if p.IsSingleIP() {
			return p.Addr().String()
		}
		return p.Masked().String()
	}
	return s
}

func ufwAnyAddr(s string) bool { return s == "0.0.0.0/0" || s == "::/0" || s == "any" || s == "" }

// args are the ufw arguments that add this rule ("allow", "out", "proto", "tcp", "to", "any", "port", "443").
func (r ufwRule) args() []string {
	var a []string
	if r.Route {
		a = append(a, "route")
	}
	action, logType, _ := strings.Cut(r.Action, "_")
	a = append(a, action)
	dir, iface, _ := strings.Cut(r.Dir, "_")
	switch {
	case strings.Contains(r.Dir, "!"): // in_eth0!out_eth1 (route rules)
		in, out, _ := strings.Cut(r.Dir, "!")
		a = append(a, "in", "on", strings.TrimPrefix(in, "in_"), "out", "on", strings.TrimPrefix(out, "out_"))
	case iface != "":
		a = append(a, dir, "on", iface)
	default:
		a = append(a, dir)
	}
	if logType != "" {
		a = append(a, logType)
	}
	if r.Proto != "" && r.Proto != "any" && r.DApp == "" && r.SApp == "" {
		a = append(a, "proto", r.Proto)
	}
	if !ufwAnyAddr(r.Src) || (r.SPort != "any" && r.SPort != "") || r.SApp != "" {
		a = append(a, "from", ufwAnyOr(r.Src))
		if r.SApp != "" {
			a = append(a, "app", r.SApp)
		} else if r.SPort != "any" && r.SPort != "" {
			a = append(a, "port", r.SPort)
		}
	}
	a = append(a, "to", ufwAnyOr(r.Dst))
	if r.DApp != "" {
		a = append(a, "app", r.DApp)
	} else if r.DPort != "any" && r.DPort != "" {
		a = append(a, "port", r.DPort)
	}
	if r.Comment != "" {
		if c, err := hex.DecodeString(r.Comment); err == nil {
			a = append(a, "comment", string(c))
		}
	}
	return a
}

func ufwAnyOr(addr string) string {
	if ufwAnyAddr(addr) {
		return "any"
	}
	return normUFWAddr(addr)
}

// String is the rule as an operator would type it after "ufw", with " (v6)" for an IPv6 rule.
func (r ufwRule) String() string {
	s := system.ShellQuote(r.args())
	if r.V6 {
		s += " (v6)"
	}
	return s
}

// twin is the IPv6 rule UFW adds next to an IPv4 rule whose addresses are both "any" (when IPV6=yes).
func (r ufwRule) twin() (ufwRule, bool) {
	if r.V6 || !ufwAnyAddr(r.Src) || !ufwAnyAddr(r.Dst) {
		return ufwRule{}, false
	}
	t := r
	t.V6, t.Src, t.Dst = true, "::/0", "::/0"
	return t, true
}

// parseUserRules reads the "### tuple ###" lines of /etc/ufw/user.rules (or user6.rules, v6 set), in order.
// A tuple UFW itself would skip as malformed is an error: the file cannot be trusted and needs a reset.
func parseUserRules(data string, v6 bool) ([]ufwRule, error) {
	var rules []ufwRule
	for n, line := range strings.Split(data, "\n") {
		if !strings.HasPrefix(line, "### tuple ###") {
			continue
		}
		body := strings.TrimSpace(strings.TrimPrefix(line, "### tuple ###"))
		comment := ""
		if b, c, ok := strings.Cut(body, " comment="); ok {
			body, comment = b, strings.TrimSpace(c)
		}
		f := strings.Fields(body)
		if len(f) < 6 || len(f) > 9 {
			return rules, fmt.Errorf("line %d: malformed rule %q (%d fields)", n+1, body, len(f))
		}
		r := ufwRule{Action: f[0], Proto: f[1], DPort: f[2], Dst: f[3], SPort: f[4], Src: f[5], Dir: "in", V6: v6, Comment: comment}
		if len(f) == 7 || len(f) == 9 {
			r.Dir = f[len(f)-1]
		}
		if len(f) >= 8 {
			if f[6] != "-" {
				r.DApp = strings.ReplaceAll(f[6], "%20", " ")
			}
			if f[7] != "-" {
				r.SApp = strings.ReplaceAll(f[7], "%20", " ")
			}
		}
		if rest, ok := strings.CutPrefix(r.Action, "route:"); ok {
			r.Route, r.Action = true, rest
		}
		rules = append(rules, r)
	}
	return rules, nil
}

// ufwGroup is a run of desired rules with the reason they are there (the script's comments).
type ufwGroup struct {
	Comment string
	Rules   []ufwRule
}

// desiredUFW is Step 2's rule set, in order, grouped by why each rule is there: SSH in from the admin source;
// allows that must win over a deny (a resolver inside a denied range, which validation forbids today);
// the deny-out rules for the LAN, every private range, multicast and broadcast; then what the VM needs
// outside: HTTPS, DNS to each resolver, NTP, and HTTP only with allow_http.
func desiredUFW(a Answers) ([]ufwGroup, error) {
	src, ok := parseSource(a.AdminSource)
	if !ok {
		if a.AdminSource == "" {
			return nil, errors.New("admin_source is not set: give the admin machine's address, like 192.168.1.50")
		}
		return nil, fmt.Errorf("admin_source %q is not an IPv4 address or network", a.AdminSource)
	}
	in := func(proto, from, port string) ufwRule {
		return ufwRule{Action: "allow", Proto: proto, DPort: port, Dst: "0.0.0.0/0", SPort: "any", Src: from, Dir: "in"}
	}
	out := func(action, proto, to, port string) ufwRule {
		return ufwRule{Action: action, Proto: proto, DPort: port, Dst: to, SPort: "any", Src: "0.0.0.0/0", Dir: "out"}
	}
	ssh := ufwGroup{Comment: "SSH in from the admin source only", Rules: []ufwRule{in("tcp", normUFWAddr(src.Masked().String()), "22")}}

	var denied []netip.Prefix
	deny := ufwGroup{Comment: "Nothing out to the LAN, the private ranges, multicast or broadcast; before the allows, because UFW is first match"}
	seen := map[string]bool{}
	ranges := append(append(append([]string{a.LANCIDR}, PrivateRanges...), a.ExtraPrivateRanges...), "224.0.0.0/4", "255.255.255.255/32")
	for _, r := range ranges {
		p, ok := parsePrefix(r)
		if !ok {
			return nil, fmt.Errorf("%q is not an IPv4 network", r)
		}
		k := normUFWAddr(p.Masked().String())
		if seen[k] {
			continue
		}
		seen[k] = true
		denied = append(denied, p.Masked())
		deny.Rules = append(deny.Rules, out("deny", "any", k, "any"))
	}

	early := ufwGroup{Comment: "DNS to resolvers inside a denied range: these must come before the denies"}
	allow := ufwGroup{Comment: "What the VM needs outside: HTTPS, DNS to the chosen resolvers only, NTP"}
	allow.Rules = append(allow.Rules, out("allow", "tcp", "0.0.0.0/0", "443"))
	for _, r := range a.Resolvers {
		ip, err := netip.ParseAddr(strings.TrimSpace(r))
		if err != nil || !ip.Is4() {
			return nil, fmt.Errorf("resolver %q is not an IPv4 address", r)
		}
		g := &allow
		if containsAny(denied, ip) {
			g = &early
		}
		g.Rules = append(g.Rules, out("allow", "udp", ip.String(), "53"), out("allow", "tcp", ip.String(), "53"))
	}
	if len(a.NTP) == 0 {
		allow.Rules = append(allow.Rules, out("allow", "udp", "0.0.0.0/0", "123"))
	}
	for _, n := range a.NTP {
		ip, err := netip.ParseAddr(strings.TrimSpace(n))
		if err != nil || !ip.Is4() {
			return nil, fmt.Errorf("NTP server %q is not an IPv4 address", n)
		}
		allow.Rules = append(allow.Rules, out("allow", "udp", ip.String(), "123"))
	}
	groups := []ufwGroup{ssh}
	if len(early.Rules) > 0 {
		groups = append(groups, early)
	}
	groups = append(groups, deny, allow)
	if a.AllowHTTP {
		groups = append(groups, ufwGroup{Comment: "HTTP for apt's http:// sources (allow_http: true); remove it once apt uses https://",
			Rules: []ufwRule{out("allow", "tcp", "0.0.0.0/0", "80")}})
	}
	return groups, nil
}

func ufwFlatten(gs []ufwGroup) []ufwRule {
	var rs []ufwRule
	for _, g := range gs {
		rs = append(rs, g.Rules...)
	}
	return rs
}

// UFWScript renders Step 2's UFW rules as a shell script (`openclaw-harden render ufw-script`): the default
// policies, the rules in the order UFW needs them, and `ufw --force enable`.
func UFWScript(a Answers) ([]byte, error) {
	groups, err := desiredUFW(a)
	if err != nil {
		return nil, err
	}
	type group struct {
		Comment  string
		Commands []string
	}
	data := struct {
		AdminSource string
		Groups      []group
	}{AdminSource: a.AdminSource}
	for _, g := range groups {
		gr := group{Comment: g.Comment}
		for _, r := range g.Rules {
			gr.Commands = append(gr.Commands, system.ShellQuote(r.args()))
		}
		data.Groups = append(data.Groups, gr)
	}
	t, err := template.New("ufw-script").Parse(assets.UFWScriptTemplate())
	if err != nil {
		return nil, err
	}
	var b bytes.Buffer
	if err := t.Execute(&b, data); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// ufwLive is what UFW looks like now.
type ufwLive struct {
	Installed     bool
	Active        bool
	EnabledOnBoot bool   // ENABLED=yes in /etc/ufw/ufw.conf
	DefaultIn     string // DEFAULT_INPUT_POLICY in /etc/default/ufw: DROP, ACCEPT, REJECT
	DefaultOut    string
	IPv6          bool // IPV6=yes: UFW keeps IPv6 twins of rules with "any" addresses
	V4, V6        []ufwRule
	Broken        string // why the rules cannot be read; "" when they can. A broken rule set needs a reset.
	After         string // /etc/ufw/after.rules
	Block         string // Step 4's block in after.rules, markers included; "" when absent
	Fingerprint   string // of the files and status above, to refuse a plan that went stale
}

// readUFW reads UFW's state: `ufw status verbose` for whether it is active, the files for everything else.
func readUFW(ctx context.Context, h *system.Host) (ufwLive, error) {
	out, err := ufwStatusVerbose(ctx, h)
	return readUFWWith(h, out, err)
}

// ufwStatusVerbose runs `ufw status verbose`: a Python start, about a second on a small VM, so a verification
// runs it once and hands its output on.
func ufwStatusVerbose(ctx context.Context, h *system.Host) ([]byte, error) {
	return h.ReadCmd(ctx, system.Cmd{Argv: []string{"ufw", "status", "verbose"}, Timeout: ufwTimeout})
}

// readUFWWith is readUFW with the output (and error) of `ufw status verbose` already at hand.
func readUFWWith(h *system.Host, out []byte, err error) (ufwLive, error) {
	var l ufwLive
	sum := sha256.New()
	switch {
	case err != nil && isNotFound(err):
		return l, nil
	case err != nil:
		l.Installed = true
		l.Broken = "ufw status failed: " + cmdOutput(err)
	default:
		l.Installed = true
		settings, _ := parseUFWStatus(string(out))
		for _, s := range settings {
			if s.Key == "status" {
				l.Active = s.Value == "active"
			}
		}
	}
	fmt.Fprintf(sum, "active=%v\n", l.Active)
	read := func(p string) (string, error) {
		b, err := h.ReadFile(p)
		fmt.Fprintf(sum, "%s %d\n%s\n", p, len(b), b)
		return string(b), err
	}
	conf, err := read(ufwConf)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return l, fmt.Errorf("reading %s: %w", ufwConf, err)
	}
	l.EnabledOnBoot = parseShellVars(conf)["ENABLED"] == "yes"
	defs, err := read(ufwDefaults)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return l, fmt.Errorf("reading %s: %w", ufwDefaults, err)
	}
	dv := parseShellVars(defs)
	l.DefaultIn, l.DefaultOut = ufwSettingOr(dv["DEFAULT_INPUT_POLICY"], "DROP"), ufwSettingOr(dv["DEFAULT_OUTPUT_POLICY"], "ACCEPT")
	l.IPv6 = dv["IPV6"] != "no"
	for _, f := range []struct {
		path string
		v6   bool
		dst  *[]ufwRule
	}{{ufwUserRules, false, &l.V4}, {ufwUser6Rules, true, &l.V6}} {
		data, err := read(f.path)
		if errors.Is(err, fs.ErrNotExist) {
			if l.Broken == "" && (!f.v6 || l.IPv6) {
				l.Broken = f.path + " is missing"
			}
			continue
		}
		if err != nil {
			return l, fmt.Errorf("reading %s: %w", f.path, err)
		}
		rs, err := parseUserRules(data, f.v6)
		if err != nil && l.Broken == "" {
			l.Broken = f.path + ": " + err.Error()
		}
		*f.dst = rs
	}
	if !l.IPv6 {
		l.V6 = nil // UFW neither loads nor numbers them
	}
	after, err := read(ufwAfterRules)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return l, fmt.Errorf("reading %s: %w", ufwAfterRules, err)
	}
	l.After = after
	l.Block = ufwStep4Block(after)
	l.Fingerprint = hex.EncodeToString(sum.Sum(nil))
	return l, nil
}

// ufwStep4Block is Step 4's block in after.rules, from its BEGIN marker line to its END marker line.
func ufwStep4Block(after string) string {
	i := strings.Index(after, step2BlockBegin)
	if i < 0 {
		return ""
	}
	j := strings.Index(after[i:], step2BlockEnd)
	if j < 0 {
		return ""
	}
	return after[i : i+j+len(step2BlockEnd)]
}

// afterRulesWithBlock is after.rules with the block appended (unchanged when it is there already).
func afterRulesWithBlock(after, block string) string {
	if block == "" || strings.Contains(after, block) {
		return after
	}
	if after != "" && !strings.HasSuffix(after, "\n") {
		after += "\n"
	}
	return after + "\n" + block + "\n"
}

// parseShellVars reads KEY=value lines (values optionally quoted), as /etc/default/ufw and ufw.conf are written.
func parseShellVars(s string) map[string]string {
	m := map[string]string{}
	for _, line := range strings.Split(s, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if ok {
			m[strings.TrimSpace(k)] = unquoteShell(strings.TrimSpace(v))
		}
	}
	return m
}

func ufwSettingOr(s, d string) string {
	if s == "" {
		return d
	}
	return s
}

// ufwPlan is what Step 2 will do to UFW, in the order Apply does it.
type ufwPlan struct {
	Install     bool       // apt-get install ufw first
	Reset       bool       // the rules cannot be read: ufw --force reset (keeping Step 4's block)
	ResetWhy    string     //
	Block       string     // Step 4's block to write back after a reset
	Deletes     [][]string // ufw arguments, highest rule number first
	Adds        [][]string // inserts and appends, in order
	Policies    [][]string // ufw default deny incoming|outgoing
	Enable      bool       // ufw --force enable
	Desired     []ufwRule  // the v4 rules as they must end up, in order
	Fingerprint string     // of the live state this plan was made from
}

// commands is every ufw command line of the plan, in order, as an operator would type them.
func (u ufwPlan) commands() []string {
	var c []string
	add := func(args ...string) { c = append(c, "ufw "+system.ShellQuote(args)) }
	if u.Reset {
		add("--force", "reset")
	}
	for _, a := range u.Deletes {
		add(a...)
	}
	for _, a := range u.Adds {
		add(a...)
	}
	for _, a := range u.Policies {
		add(a...)
	}
	if u.Enable {
		add("--force", "enable")
	}
	return c
}

func (u ufwPlan) empty() bool {
	return !u.Install && !u.Reset && len(u.Deletes)+len(u.Adds)+len(u.Policies) == 0 && !u.Enable
}

// planUFW compares the live rules with the desired ones and returns the ufw commands that make them equal,
// touching only what differs: rules that are extra or out of order are deleted, missing ones are inserted
// at their place. It resets UFW only when its rule files cannot be read. It also returns the plan's changes.
func planUFW(live ufwLive, desired []ufwRule) (ufwPlan, []Change) {
	u := ufwPlan{Install: !live.Installed, Desired: desired, Fingerprint: live.Fingerprint}
	want6 := ufwWantedTwins(desired, live.IPv6 || !live.Installed)
	var after4, after6 []ufwRule
	if live.Broken != "" {
		u.Reset, u.ResetWhy, u.Block = true, live.Broken, live.Block
		for _, r := range desired {
			u.Adds = append(u.Adds, r.args())
		}
		after4, after6 = desired, want6
	} else {
		u.Deletes, u.Adds, after4, after6 = diffUFW(live.V4, live.V6, desired, want6)
	}
	if live.DefaultIn != "DROP" || !live.Installed {
		u.Policies = append(u.Policies, []string{"default", "deny", "incoming"})
	}
	if live.DefaultOut != "DROP" || !live.Installed {
		u.Policies = append(u.Policies, []string{"default", "deny", "outgoing"})
	}
	u.Enable = !live.Active || !live.EnabledOnBoot || u.Reset
	var changes []Change
	if u.Install {
		changes = append(changes, Change{Target: "package ufw", Kind: "packages", Before: "ufw: not installed", After: "ufw: installed"})
	}
	rules := Change{Target: "ufw rules (" + ufwUserRules + ")", Kind: "rules",
		Before: renderUFWRules(live.V4, live.V6), After: renderUFWRules(after4, after6)}
	if u.Reset {
		rules.Before = "(cannot be read: " + live.Broken + ")"
		rules.Warning = "UFW's rules cannot be read, so UFW is reset (ufw --force reset), which also restores the stock " +
			ufwAfterRules + "; Step 4's DOCKER-USER block is kept and written back in the same run"
		if live.Block == "" {
			rules.Warning = "UFW's rules cannot be read, so UFW is reset (ufw --force reset), which also restores the stock " + ufwAfterRules
		}
	}
	changes = append(changes, rules)
	changes = append(changes, Change{Target: "ufw default policy", Kind: "setting",
		Before: ufwPolicyText(live.DefaultIn, live.DefaultOut, live.Installed), After: ufwPolicyText("DROP", "DROP", true)})
	changes = append(changes, Change{Target: "ufw status", Kind: "state", Before: ufwStatusText(live), After: "active, enabled at boot"})
	return u, changes
}

func ufwPolicyText(in, out string, installed bool) string {
	if !installed {
		return ""
	}
	word := map[string]string{"DROP": "deny", "ACCEPT": "allow", "REJECT": "reject"}
	w := func(p string) string {
		if s, ok := word[p]; ok {
			return s
		}
		return strings.ToLower(p)
	}
	return "incoming: " + w(in) + "\noutgoing: " + w(out) + "\n"
}

func ufwStatusText(l ufwLive) string {
	switch {
	case !l.Installed:
		return ""
	case l.Active && l.EnabledOnBoot:
		return "active, enabled at boot"
	case l.Active:
		return "active, not enabled at boot"
	case l.EnabledOnBoot:
		return "inactive (enabled at boot, not loaded)"
	}
	return "inactive"
}

// renderUFWRules lists rules one per line as an operator would type them after "ufw".
func renderUFWRules(v4, v6 []ufwRule) string {
	var b strings.Builder
	for _, r := range append(append([]ufwRule(nil), v4...), v6...) {
		b.WriteString(r.String())
		b.WriteByte('\n')
	}
	if b.Len() == 0 {
		return "(no rules)\n"
	}
	return b.String()
}

// ufwWantedTwins are the IPv6 rules UFW keeps next to the desired IPv4 ones (none when IPV6=no).
func ufwWantedTwins(desired []ufwRule, ipv6 bool) []ufwRule {
	if !ipv6 {
		return nil
	}
	var out []ufwRule
	for _, r := range desired {
		if t, ok := r.twin(); ok {
			out = append(out, t)
		}
	}
	return out
}

// diffUFW computes the edits. IPv4 rules: the longest run of live rules that already appear in the desired
// order is kept, every other live rule is deleted (by number, highest first, so the numbers stay right), and
// each missing rule is inserted at its place (appended when it goes last). IPv6 rules are compared as a set:
// the IPv6 twins are all allows of "any" addresses, so their order changes nothing. UFW numbers IPv4 rules
// first, then IPv6 ones. It returns the rule lists as they will be afterwards, too.
func diffUFW(live4, live6, desired, want6 []ufwRule) (deletes, adds [][]string, after4, after6 []ufwRule) {
	keep := ufwLCSKeep(live4, desired)
	var dels []int
	var kept []ufwRule
	for i, r := range live4 {
		if keep[i] {
			kept = append(kept, r)
		} else {
			dels = append(dels, i+1)
		}
	}
	wanted6 := map[string]bool{}
	for _, r := range want6 {
		wanted6[r.key()] = true
	}
	have6 := map[string]bool{}
	for j, r := range live6 {
		if wanted6[r.key()] && !have6[r.key()] {
			have6[r.key()] = true
			after6 = append(after6, r)
			continue
		}
		dels = append(dels, len(live4)+j+1)
	}
	for i := len(dels) - 1; i >= 0; i-- { // highest number first
		deletes = append(deletes, []string{"--force", "delete", strconv.Itoa(dels[i])})
	}
	present := map[string]bool{}
	for _, r := range kept {
		present[r.key()] = true
	}
	cur := kept
	for i, d := range desired {
		if present[d.key()] {
			if t, ok := d.twin(); ok && wanted6[t.key()] && !have6[t.key()] {
				// the IPv4 rule is there but its IPv6 twin is not: adding the rule again adds only the twin
				adds = append(adds, d.args())
				have6[t.key()] = true
				after6 = append(after6, t)
			}
			continue
		}
		if i < len(cur) {
			adds = append(adds, append([]string{"insert", strconv.Itoa(i + 1)}, d.args()...))
		} else {
			adds = append(adds, d.args())
		}
		cur = append(cur[:i:i], append([]ufwRule{d}, cur[i:]...)...)
		present[d.key()] = true
		if t, ok := d.twin(); ok && wanted6[t.key()] && !have6[t.key()] {
			have6[t.key()] = true
			after6 = append(after6, t)
		}
	}
	return deletes, adds, cur, after6
}

// ufwLCSKeep marks the live rules that form the longest common subsequence with the desired list: those can
// stay where they are. The desired rules are distinct, so a duplicated live rule is kept at most once.
func ufwLCSKeep(live, desired []ufwRule) []bool {
	n, m := len(live), len(desired)
	dp := make([][]int, n+1)
	for i := range dp {
		dp[i] = make([]int, m+1)
	}
	for i := n - 1; i >= 0; i-- {
		for j := m - 1; j >= 0; j-- {
			switch {
			case live[i].key() == desired[j].key():
				dp[i][j] = dp[i+1][j+1] + 1
			case dp[i+1][j] >= dp[i][j+1]:
				dp[i][j] = dp[i+1][j]
			default:
				dp[i][j] = dp[i][j+1]
			}
		}
	}
	keep := make([]bool, n)
	for i, j := 0, 0; i < n && j < m; {
		switch {
		case live[i].key() == desired[j].key():
			keep[i] = true
			i++
			j++
		case dp[i+1][j] >= dp[i][j+1]:
			i++
		default:
			j++
		}
	}
	return keep
}

// applyUFW carries out a UFW plan. It refuses when UFW changed since the plan was made (the operator
// confirmed edits to the rules as they were), and checks the rule files afterwards.
func applyUFW(ctx context.Context, h *system.Host, u ufwPlan) error {
	if u.empty() {
		return nil
	}
	if !u.Install {
		live, err := readUFW(ctx, h)
		if err != nil {
			return err
		}
		if live.Fingerprint != u.Fingerprint {
			return errors.New("UFW's rules or settings changed since this plan was made; plan Step 2 again")
		}
	}
	run := func(args ...string) error {
		_, err := h.ExecCmd(ctx, system.Cmd{Argv: append([]string{"ufw"}, args...), Timeout: ufwTimeout})
		if err != nil {
			return fmt.Errorf("ufw %s: %w", system.ShellQuote(args), err)
		}
		return nil
	}
	if u.Reset {
		if err := run("--force", "reset"); err != nil {
			return err
		}
		if u.Block != "" {
			after, err := h.ReadFile(ufwAfterRules)
			if err != nil && !h.DryRun {
				return fmt.Errorf("reading %s after the reset, to put Step 4's block back: %w", ufwAfterRules, err)
			}
			if err := h.WriteFile(ctx, ufwAfterRules, []byte(afterRulesWithBlock(string(after), u.Block)), system.WriteOpts{Perm: 0o640}); err != nil {
				return fmt.Errorf("writing Step 4's DOCKER-USER block back into %s after the reset: %w", ufwAfterRules, err)
			}
		}
	}
	for _, group := range [][][]string{u.Deletes, u.Adds, u.Policies} {
		for _, args := range group {
			if err := run(args...); err != nil {
				return err
			}
		}
	}
	if u.Enable {
		if err := run("--force", "enable"); err != nil {
			return err
		}
	}
	if h.DryRun {
		return nil
	}
	live, err := readUFW(ctx, h)
	if err != nil {
		return err
	}
	if got, want := renderUFWRules(live.V4, nil), renderUFWRules(u.Desired, nil); got != want {
		return fmt.Errorf("after the ufw commands, the rules are not as planned:\n%s\nwanted:\n%s", got, want)
	}
	if !live.Active {
		return errors.New("UFW is not active after ufw --force enable")
	}
	return nil
}

// ufwIPTKey is the part of an iptables rule UFW's user chains are compared by.
func ufwIPTKey(spec string) string {
	f := strings.Fields(spec)
	vals := map[string]string{}
	for i := 0; i < len(f); i++ {
		switch f[i] {
		case "-s", "-d", "-p", "--dport", "--sport", "-j", "-i", "-o":
			if i+1 < len(f) {
				vals[f[i]] = f[i+1]
				i++
			}
		}
	}
	var parts []string
	for _, k := range []string{"-i", "-o", "-s", "-d", "-p", "--sport", "--dport", "-j"} {
		if v, ok := vals[k]; ok {
			parts = append(parts, k+" "+v)
		}
	}
	return strings.Join(parts, " ")
}

// ufwExpectedIPT is how a desired rule shows in `iptables -S ufw-user-input|output` (reduced by ufwIPTKey).
func ufwExpectedIPT(r ufwRule) string {
	var parts []string
	host := func(a string) string {
		if p, err := netip.ParseAddr(a); err == nil {
			return netip.PrefixFrom(p, p.BitLen()).String()
		}
		return a
	}
	if !ufwAnyAddr(r.Src) {
		parts = append(parts, "-s "+host(r.Src))
	}
	if !ufwAnyAddr(r.Dst) {
		parts = append(parts, "-d "+host(r.Dst))
	}
	if r.Proto != "any" {
		parts = append(parts, "-p "+r.Proto)
	}
	if r.SPort != "any" {
		parts = append(parts, "--sport "+r.SPort)
	}
	if r.DPort != "any" {
		parts = append(parts, "--dport "+r.DPort)
	}
	target := map[string]string{"allow": "ACCEPT", "deny": "DROP", "reject": "REJECT", "limit": "ufw-user-limit"}[r.Action]
	return strings.Join(append(parts, "-j "+target), " ")
}

// kernelUFW reads UFW's user chains from the live kernel, reduced by ufwIPTKey.
func kernelUFW(ctx context.Context, h *system.Host, chain string) ([]string, error) {
	out, err := h.ReadCmd(ctx, system.Cmd{Argv: []string{"iptables", "-S", chain}, Timeout: ufwTimeout})
	if err != nil {
		return nil, err
	}
	var rules []string
	for _, line := range strings.Split(string(out), "\n") {
		if strings.HasPrefix(line, "-A "+chain+" ") {
			rules = append(rules, ufwIPTKey(strings.TrimPrefix(line, "-A "+chain+" ")))
		}
	}
	return rules, nil
}

// verifyUFW checks the live UFW against the desired rules: active, enabled at boot, both defaults deny, exactly
// the desired rules in order (each extra or missing rule is its own failed check), and the kernel's user
// chains in that order.
func verifyUFW(ctx context.Context, h *system.Host, desired []ufwRule) []Check {
	var cs []Check
	out, err := ufwStatusVerbose(ctx, h)
	active := Check{ID: "step2.ufw.active", Name: "UFW active", Expect: "Status: active"}
	settings := map[string]string{}
	if err != nil {
		active.Got, active.Reason = "unknown", "ufw status verbose: "+cmdOutput(err)
		if isNotFound(err) {
			active.Got, active.Reason = "ufw not installed", "apply Step 2"
		}
	} else {
		ss, _ := parseUFWStatus(string(out))
		for _, s := range ss {
			settings[s.Key] = s.Value
		}
		active.Got = "Status: " + ufwSettingOr(settings["status"], "unknown")
		active.OK = settings["status"] == "active"
	}
	cs = append(cs, active)
	for _, dir := range []string{"incoming", "outgoing"} {
		got := ufwSettingOr(settings["default "+dir], "unknown")
		cs = append(cs, Check{ID: "step2.ufw.default-" + dir, Name: "UFW default " + dir, Expect: "deny", Got: got, OK: got == "deny"})
	}
	live, err := readUFWWith(h, out, err) // err is still the status's
	boot := Check{ID: "step2.ufw.boot", Name: "UFW enabled at boot", Expect: "ENABLED=yes in " + ufwConf}
	if err == nil && live.EnabledOnBoot {
		boot.Got, boot.OK = "ENABLED=yes", true
	} else {
		boot.Got = "not enabled"
	}
	cs = append(cs, boot)
	rules := Check{ID: "step2.ufw.rules", Name: "UFW rules in the planned order", Expect: "LAN and private denies before the allows"}
	switch {
	case err != nil:
		rules.Got, rules.Reason = "unreadable", err.Error()
		return append(cs, rules)
	case live.Broken != "":
		rules.Got, rules.Reason = "unreadable", live.Broken
		return append(cs, rules)
	}
	want6 := ufwWantedTwins(desired, live.IPv6)
	deletes, adds, _, _ := diffUFW(live.V4, live.V6, desired, want6)
	rules.Expect = fmt.Sprintf("%d IPv4 + %d IPv6 rules, ", len(desired), len(want6)) + rules.Expect
	rules.Got = fmt.Sprintf("%d IPv4 + %d IPv6 rules", len(live.V4), len(live.V6))
	rules.OK = len(deletes) == 0 && len(adds) == 0
	if !rules.OK {
		rules.Reason = fmt.Sprintf("%d to delete, %d to add or move: apply Step 2 again", len(deletes), len(adds))
	}
	cs = append(cs, rules)
	// each extra rule and each missing rule is a finding of its own
	want := map[string]bool{}
	for _, r := range append(append([]ufwRule(nil), desired...), want6...) {
		want[r.key()] = true
	}
	have := map[string]bool{}
	for _, r := range append(append([]ufwRule(nil), live.V4...), live.V6...) {
		if !want[r.key()] || have[r.key()] {
			cs = append(cs, Check{ID: "step2.ufw.extra", Name: "extra UFW rule", Expect: "only the planned rules",
				Got: r.String(), Reason: "not part of the profile: remove it (apply Step 2 again) or explain it"})
		}
		have[r.key()] = true
	}
	for _, r := range append(append([]ufwRule(nil), desired...), want6...) {
		if !have[r.key()] {
			cs = append(cs, Check{ID: "step2.ufw.missing", Name: "missing UFW rule", Expect: r.String(), Got: "absent",
				Reason: "apply Step 2 again"})
		}
	}
	if !active.OK {
		return cs
	}
	for _, chain := range []struct{ name, dir string }{{"ufw-user-input", "in"}, {"ufw-user-output", "out"}} {
		c := Check{ID: "step2.ufw.kernel-" + chain.dir, Name: "kernel chain " + chain.name + " in order"}
		var exp []string
		for _, r := range desired {
			if r.Dir == chain.dir && !r.Route {
				exp = append(exp, ufwExpectedIPT(r))
			}
		}
		c.Expect = fmt.Sprintf("%d rules", len(exp))
		got, err := kernelUFW(ctx, h, chain.name)
		switch {
		case err != nil:
			c.Got, c.Reason = "unreadable", "iptables -S "+chain.name+": "+cmdOutput(err)
		case strings.Join(got, "\n") == strings.Join(exp, "\n"):
			c.Got, c.OK = fmt.Sprintf("%d rules in the planned order", len(got)), true
		default:
			c.Got = fmt.Sprintf("%d rules", len(got))
			c.Reason = "the loaded rules differ from the planned ones; first difference: " + ufwFirstDiff(got, exp) + " (ufw reload, or apply Step 2 again)"
		}
		cs = append(cs, c)
	}
	return cs
}

func ufwFirstDiff(got, want []string) string {
	for i := 0; i < len(got) || i < len(want); i++ {
		g, w := "(none)", "(none)"
		if i < len(got) {
			g = got[i]
		}
		if i < len(want) {
			w = want[i]
		}
		if g != w {
			return fmt.Sprintf("rule %d is %q, want %q", i+1, g, w)
		}
	}
	return "none"
}
