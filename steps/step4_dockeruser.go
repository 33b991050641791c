package steps

// Step 4: the DOCKER-USER block in /etc/ufw/after.rules. UFW loads after.rules with `iptables-restore -n`
// on every start and reload; the block is a second `*filter … COMMIT` section after the stock one, and it
// declares the chain (":DOCKER-USER - [0:0]"), which makes iptables-restore --noflush flush it first, so a
// reload replaces the rules instead of appending another copy. Docker (iptables backend) jumps to the chain
// from the top of FORWARD; this step checks that on the live kernel and puts the jump first when it is not.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"strings"
	"text/template"
	"time"

	"openclaw-harden/assets"
	"openclaw-harden/system"
)

// The marker lines around Step 4's block. Step 2 finds the block by the same lines to keep it across a reset.
const (
	DockerUserBegin = "# ---BEGIN DOCKER-USER LAN ISOLATION---"
	DockerUserEnd   = "# ---END DOCKER-USER LAN ISOLATION---"
)

const (
	afterRulesPath  = "/etc/ufw/after.rules"
	daemonJSONPath  = "/etc/docker/daemon.json"
	forwardJumpRule = "-A FORWARD -j DOCKER-USER"
	step4Timeout    = 2 * time.Minute
)

// multicastBroadcast are dropped by the block too: the guide forgets them (field notes).
var multicastBroadcast = []string{"224.0.0.0/4", "255.255.255.255/32"}

// DockerUserStep is Step 4.
type DockerUserStep struct{}

func (DockerUserStep) ID() int       { return 4 }
func (DockerUserStep) Title() string { return "Docker-aware LAN isolation (DOCKER-USER)" }

// dockerUserDrops are the destinations the block drops, in order: the LAN, the private ranges, the operator's
// extra ranges, multicast and broadcast. Exact duplicates are written once.
func dockerUserDrops(a Answers) ([]string, error) {
	var out []string
	seen := map[string]bool{}
	add := func(field, s string) error {
		p, err := parseV4Prefix(s)
		if err != nil {
			return fmt.Errorf("%s: %q is not an IPv4 address or CIDR: %w", field, s, err)
		}
		if !seen[p] {
			seen[p] = true
			out = append(out, p)
		}
		return nil
	}
	if err := add("lan_cidr", a.LANCIDR); err != nil {
		return nil, err
	}
	for _, r := range []string{"10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "169.254.0.0/16", "100.64.0.0/10"} {
		_ = add("private range", r)
	}
	for _, r := range a.ExtraPrivateRanges {
		if err := add("extra_private_ranges", r); err != nil {
			return nil, err
		}
	}
	for _, r := range multicastBroadcast {
		_ = add("multicast/broadcast", r)
	}
	return out, nil
}

// parseV4Prefix reads an IPv4 address or CIDR and writes it the way `iptables -S` prints it (masked, with /32).
func parseV4Prefix(s string) (string, error) {
	s = strings.TrimSpace(s)
	var p netip.Prefix
	var err error
	if strings.Contains(s, "/") {
		p, err = netip.ParsePrefix(s)
	} else {
		var a netip.Addr
		a, err = netip.ParseAddr(s)
		if err == nil {
			p = netip.PrefixFrom(a, a.BitLen())
		}
	}
	if err != nil {
		return "", err
	}
	if !p.Addr().Is4() {
		return "", errors.New("not IPv4 (the block is IPv4 only; IPv6 is off in this profile)")
	}
	return p.Masked().String(), nil
}

// RenderDockerUserBlock is Step 4's marker block for the answers (`openclaw-harden render after-rules`).
func RenderDockerUserBlock(a Answers) (string, error) {
	subnet, err := parseV4Prefix(a.DockerSubnet)
	if err != nil {
		return "", fmt.Errorf("docker_subnet: %q is not an IPv4 CIDR: %w", a.DockerSubnet, err)
	}
	drops, err := dockerUserDrops(a)
	if err != nil {
		return "", err
	}
	tmpl, err := template.New("docker-user").Parse(assets.DockerUserBlockTemplate())
	if err != nil {
		return "", err
	}
	var b bytes.Buffer
	if err := tmpl.Execute(&b, struct {
		Subnet string
		Drops  []string
	}{subnet, drops}); err != nil {
		return "", err
	}
	return strings.TrimRight(b.String(), "\n"), nil
}

// expectedDockerUser is the chain as `iptables -S DOCKER-USER` prints it once the block is loaded (without the
// "-N DOCKER-USER" line). iptables prints the conntrack states in its own order.
func expectedDockerUser(a Answers) ([]string, error) {
	subnet, err := parseV4Prefix(a.DockerSubnet)
	if err != nil {
		return nil, fmt.Errorf("docker_subnet: %q is not an IPv4 CIDR: %w", a.DockerSubnet, err)
	}
	drops, err := dockerUserDrops(a)
	if err != nil {
		return nil, err
	}
	out := []string{
		"-A DOCKER-USER -m conntrack --ctstate RELATED,ESTABLISHED -j RETURN",
		"-A DOCKER-USER -s " + subnet + " -d " + subnet + " -j RETURN",
	}
	for _, d := range drops {
		out = append(out, "-A DOCKER-USER -d "+d+" -j DROP")
	}
	return append(out, "-A DOCKER-USER -j RETURN"), nil
}

// markerLines returns the 0-based indexes of the lines that are exactly a BEGIN or END marker.
func markerLines(lines []string) (begins, ends []int) {
	for i, l := range lines {
		switch strings.TrimSpace(l) {
		case DockerUserBegin:
			begins = append(begins, i)
		case DockerUserEnd:
			ends = append(ends, i)
		}
	}
	return begins, ends
}

// SpliceDockerUserBlock puts block into after.rules: in place of the existing block (and removes any further
// copies), or after the end of the file when there is none, the way Step 2 writes it back after a reset.
// Every other byte of the file is kept. Unpaired markers are an error: the tool will not guess where a block ends.
func SpliceDockerUserBlock(after, block string) (string, error) {
	lines := strings.SplitAfter(after, "\n")
	begins, ends := markerLines(lines)
	if len(begins) == 0 && len(ends) == 0 {
		if after != "" && !strings.HasSuffix(after, "\n") {
			after += "\n"
		}
		return after + "\n" + block + "\n", nil
	}
	if len(begins) != len(ends) {
		return "", fmt.Errorf("%s has %d BEGIN and %d END DOCKER-USER markers; pair them by hand (the tool will not guess where a block ends)", afterRulesPath, len(begins), len(ends))
	}
	for i := range begins {
		if ends[i] < begins[i] || (i+1 < len(begins) && begins[i+1] < ends[i]) {
			return "", fmt.Errorf("%s line %d: the DOCKER-USER markers are out of order (BEGIN at %d, END at %d); fix them by hand", afterRulesPath, begins[i]+1, begins[i]+1, ends[i]+1)
		}
	}
	var b strings.Builder
	next := 0
	for i := range begins {
		b.WriteString(strings.Join(lines[next:begins[i]], ""))
		if i == 0 {
			b.WriteString(block)
			if strings.HasSuffix(lines[ends[i]], "\n") {
				b.WriteString("\n")
			}
		}
		next = ends[i] + 1
	}
	b.WriteString(strings.Join(lines[next:], ""))
	return b.String(), nil
}

// ExtractDockerUserBlock is the first block, marker lines included, without a trailing newline; "" when none.
func ExtractDockerUserBlock(after string) string {
	lines := strings.Split(after, "\n")
	begins, ends := markerLines(lines)
	if len(begins) == 0 {
		return ""
	}
	for _, e := range ends {
		if e > begins[0] {
			return strings.Join(lines[begins[0]:e+1], "\n")
		}
	}
	return ""
}

// Finding is one problem in a file, at a 1-based line.
type Finding struct {
	Line    int
	Message string
}

func (f Finding) format(name string) string { return fmt.Sprintf("%s:%d: %s", name, f.Line, f.Message) }

// FormatFindings renders findings as FILE:LINE: message, the form editors and CI annotate.
func FormatFindings(name string, fs []Finding) []string {
	out := make([]string, len(fs))
	for i, f := range fs {
		out[i] = f.format(name)
	}
	return out
}

// duRule is one "-A DOCKER-USER …" line of the block.
type duRule struct {
	line      int
	src, dst  netip.Prefix
	target    string
	conntrack bool
	other     bool // a match this parser does not model (-p, -i, -m …): the rule is conditional
}

func parseDURule(fields []string, line int) (duRule, error) {
	r := duRule{line: line}
	for i := 2; i < len(fields); i++ {
		arg := fields[i]
		val := ""
		if i+1 < len(fields) {
			val = fields[i+1]
		}
		switch arg {
		case "-s", "--source", "-d", "--destination":
			if val == "" {
				return r, fmt.Errorf("%s needs an address", arg)
			}
			p, err := parseV4Prefix(val)
			if err != nil {
				return r, fmt.Errorf("%s %q: %v", arg, val, err)
			}
			pp := netip.MustParsePrefix(p)
			if arg == "-s" || arg == "--source" {
				r.src = pp
			} else {
				r.dst = pp
			}
			i++
		case "-j", "--jump":
			r.target = val
			i++
		case "-m":
			if val != "conntrack" && val != "state" {
				r.other = true
			}
			i++
		case "--ctstate", "--state":
			states := strings.Split(val, ",")
			est, rel := false, false
			for _, s := range states {
				est = est || s == "ESTABLISHED"
				rel = rel || s == "RELATED"
			}
			if est && rel && len(states) == 2 {
				r.conntrack = true
			} else {
				r.other = true
			}
			i++
		default:
			r.other = true
		}
	}
	if r.target == "" {
		return r, errors.New("no -j target")
	}
	return r, nil
}

func (r duRule) unconditional() bool {
	return !r.src.IsValid() && !r.dst.IsValid() && !r.conntrack && !r.other
}

// CheckAfterRules reads an after.rules file the way `ufw reload` will load it and reports what makes the
// DOCKER-USER block missing, ambiguous, unloadable or leaky. subnet, when valid, is the Docker subnet the
// RETURN must name; otherwise the subnet is read from the block's own "-s X -d X -j RETURN" rule.
func CheckAfterRules(data string, subnet netip.Prefix) []Finding {
	var fs []Finding
	add := func(line int, format string, args ...any) {
		fs = append(fs, Finding{Line: line, Message: fmt.Sprintf(format, args...)})
	}
	lines := strings.Split(data, "\n")
	begins, ends := markerLines(lines)
	if len(begins) == 0 && len(ends) == 0 {
		add(1, "no DOCKER-USER block (%q … %q): nothing stops containers from reaching the LAN", DockerUserBegin, DockerUserEnd)
		return fs
	}
	for _, b := range begins[min(1, len(begins)):] {
		add(b+1, "a second BEGIN DOCKER-USER marker (the first is at line %d): keep one block, or a re-run cannot tell which one to replace", begins[0]+1)
	}
	for _, e := range ends[min(1, len(ends)):] {
		add(e+1, "a second END DOCKER-USER marker (the first is at line %d): keep one block", ends[0]+1)
	}
	if len(begins) == 0 {
		add(ends[0]+1, "an END DOCKER-USER marker without a BEGIN marker before it")
		return fs
	}
	begin, end := begins[0], -1
	for _, e := range ends {
		if e > begin {
			end = e
			break
		}
	}
	if end < 0 {
		add(begin+1, "a BEGIN DOCKER-USER marker without an END marker after it")
		return fs
	}
	// The table state just before the block: a block inside an open *filter section is a table in a table.
	open := -1
	for i := 0; i < begin; i++ {
		t := strings.TrimSpace(lines[i])
		switch {
		case strings.HasPrefix(t, "*"):
			open = i
		case t == "COMMIT":
			open = -1
		}
	}
	if open >= 0 {
		add(begin+1, "the block starts inside the table section opened at line %d, before its COMMIT: iptables-restore rejects the file; move the block after that COMMIT", open+1)
	}

	var rules []duRule
	sawTable, sawChain, commit := false, false, -1
	for i := begin + 1; i < end; i++ {
		t := strings.TrimSpace(lines[i])
		n := i + 1
		if t == "" || strings.HasPrefix(t, "#") {
			continue
		}
		if commit >= 0 {
			add(n, "a line after the block's COMMIT (line %d): iptables-restore reads it outside any table and fails", commit+1)
			continue
		}
		f := strings.Fields(t)
		switch {
		case t == "*filter":
			if sawTable {
				add(n, "a second *filter line in the block")
			}
			sawTable = true
		case strings.HasPrefix(t, "*"):
			add(n, "table %q in the DOCKER-USER block: DOCKER-USER is in the filter table", t)
		case t == "COMMIT":
			commit = i
		case strings.HasPrefix(t, ":"):
			if f[0] == ":DOCKER-USER" {
				sawChain = true
			} else {
				add(n, "chain declaration %q in the DOCKER-USER block: declaring a chain flushes it on every ufw reload", f[0])
			}
		case !sawTable:
			add(n, "a rule before *filter: iptables-restore rejects the file")
		case (f[0] == "-A" || f[0] == "--append") && len(f) > 1 && f[1] == "DOCKER-USER":
			r, err := parseDURule(f, n)
			if err != nil {
				add(n, "cannot read the rule: %v", err)
				continue
			}
			rules = append(rules, r)
		case (f[0] == "-I" || f[0] == "--insert") && len(f) > 1 && f[1] == "DOCKER-USER":
			add(n, "-I in the block: use -A so the rules load in the order written")
		case len(f) > 1 && strings.HasPrefix(f[0], "-"):
			add(n, "a rule for chain %s in the DOCKER-USER block: only DOCKER-USER belongs here", f[1])
		default:
			add(n, "cannot read %q", t)
		}
	}
	if !sawTable {
		add(begin+1, "no *filter line in the block: iptables-restore does not know the table")
	}
	if !sawChain {
		add(begin+1, "no ':DOCKER-USER - [0:0]' line: without it the chain is not flushed on reload, so every ufw reload appends another copy of the rules")
	}
	if commit < 0 {
		add(end+1, "no COMMIT before the END marker: iptables-restore never applies the block")
	}
	if len(rules) == 0 {
		add(begin+1, "the block has no DOCKER-USER rules")
		return fs
	}
	if !rules[0].conntrack || rules[0].target != "RETURN" {
		found := false
		for _, r := range rules {
			if r.conntrack && r.target == "RETURN" {
				add(r.line, "the conntrack ESTABLISHED,RELATED RETURN is not the first rule: replies to allowed connections can hit a DROP above it")
				found = true
				break
			}
		}
		if !found {
			add(begin+1, "no '-m conntrack --ctstate ESTABLISHED,RELATED -j RETURN' rule: replies to published ports and allowed connections are dropped")
		}
	}
	// The subnet RETURN: "-s X -d X -j RETURN".
	ret := -1
	for i, r := range rules {
		if r.target == "RETURN" && r.src.IsValid() && r.src == r.dst && !r.other && (!subnet.IsValid() || r.src == subnet) {
			ret = i
			break
		}
	}
	if ret < 0 {
		if subnet.IsValid() {
			add(begin+1, "no '-s %s -d %s -j RETURN' rule: the 172.16.0.0/12 DROP also drops traffic between containers on the Docker subnet", subnet, subnet)
		} else {
			add(begin+1, "no '-s SUBNET -d SUBNET -j RETURN' rule for the Docker subnet: the 172.16.0.0/12 DROP also drops traffic between containers")
		}
	} else {
		sub := rules[ret].src
		for _, r := range rules[:ret] {
			if r.target == "DROP" && r.dst.IsValid() && r.dst.Overlaps(sub) {
				add(r.line, "the DROP for %s comes before the Docker subnet RETURN at line %d: traffic between containers on %s is dropped", r.dst, rules[ret].line, sub)
			}
		}
	}
	// Unreachable rules after an unconditional RETURN/DROP/ACCEPT.
	stop := -1
	for i, r := range rules {
		if stop >= 0 {
			add(r.line, "never reached: the unconditional -j %s at line %d ends the chain first", rules[stop].target, rules[stop].line)
			continue
		}
		if r.unconditional() {
			stop = i
		}
	}
	reach := rules
	if stop >= 0 {
		reach = rules[:stop+1]
	}
	dropped := map[netip.Prefix]bool{}
	for _, r := range reach {
		if r.target == "DROP" && r.dst.IsValid() && !r.src.IsValid() && !r.other && !r.conntrack {
			dropped[r.dst] = true
		}
	}
	covered := func(p netip.Prefix) bool {
		for d := range dropped {
			if d.Bits() <= p.Bits() && d.Contains(p.Addr()) {
				return true
			}
		}
		return false
	}
	for _, want := range []struct{ cidr, why string }{
		{"10.0.0.0/8", "private range"},
		{"172.16.0.0/12", "private range"},
		{"192.168.0.0/16", "private range"},
		{"169.254.0.0/16", "link-local and cloud metadata"},
		{"100.64.0.0/10", "carrier-grade NAT"},
		{"224.0.0.0/4", "multicast: mDNS and other LAN noise"},
		{"255.255.255.255/32", "broadcast"},
	} {
		if !covered(netip.MustParsePrefix(want.cidr)) {
			add(end+1, "no DROP for %s (%s) in the block", want.cidr, want.why)
		}
	}
	return fs
}

// dockerFirewall says which firewall Docker drives, from daemon.json and `docker info`.
type dockerFirewall struct {
	Running bool   // docker info answered
	Version string // server version when running
	Backend string // "iptables", "nftables", "iptables+firewalld", or "" when not reported
	Source  string // where Backend was read
}

func readDockerFirewall(ctx context.Context, h *system.Host) dockerFirewall {
	var fw dockerFirewall
	if b, err := h.ReadFile(daemonJSONPath); err == nil {
		var m map[string]any
		if json.Unmarshal(b, &m) == nil {
			if s, ok := m["firewall-backend"].(string); ok && s != "" {
				fw.Backend, fw.Source = s, daemonJSONPath+" firewall-backend"
			}
		}
	}
	out, err := h.Read(ctx, "docker", "info", "--format", "{{json .}}")
	if err != nil {
		return fw
	}
	var info struct {
		ServerVersion   string `json:"ServerVersion"`
		FirewallBackend *struct {
			Driver string `json:"Driver"`
		} `json:"FirewallBackend"`
	}
	if obj := firstJSONObject(out); obj == nil || json.Unmarshal(obj, &info) != nil || info.ServerVersion == "" {
		return fw
	}
	fw.Running, fw.Version = true, info.ServerVersion
	if info.FirewallBackend != nil && info.FirewallBackend.Driver != "" {
		fw.Backend, fw.Source = info.FirewallBackend.Driver, "docker info"
	}
	return fw
}

// liveDockerUser is what the kernel has now.
type liveDockerUser struct {
	ChainExists bool
	Chain       []string // "-A DOCKER-USER …" lines in order
	Forward     []string // "-A FORWARD …" lines in order
}

func readLiveDockerUser(ctx context.Context, h *system.Host) (liveDockerUser, error) {
	var l liveDockerUser
	out, err := h.Read(ctx, "iptables", "-S", "DOCKER-USER")
	switch {
	case err == nil:
		l.ChainExists = true
		l.Chain = ruleLines(string(out), "-A DOCKER-USER")
	case system.ExitCode(err) == 1: // "No chain/target/match by that name."
	default:
		return l, fmt.Errorf("reading the live DOCKER-USER chain: %w", err)
	}
	out, err = h.Read(ctx, "iptables", "-S", "FORWARD")
	if err != nil {
		return l, fmt.Errorf("reading the live FORWARD chain: %w", err)
	}
	l.Forward = ruleLines(string(out), "-A FORWARD")
	return l, nil
}

func ruleLines(out, prefix string) []string {
	var rs []string
	for _, line := range strings.Split(out, "\n") {
		line = stripCounters(collapseSpaces(line))
		if strings.HasPrefix(line, prefix+" ") {
			rs = append(rs, line)
		}
	}
	return rs
}

// text is the live state as the "rules" change shows it: the chain, then FORWARD's first rule.
func (l liveDockerUser) text() string {
	if !l.ChainExists && len(l.Forward) == 0 {
		return ""
	}
	var b strings.Builder
	if !l.ChainExists {
		b.WriteString("# no DOCKER-USER chain\n")
	}
	for _, r := range l.Chain {
		b.WriteString(r + "\n")
	}
	first := "(FORWARD has no rules)"
	if len(l.Forward) > 0 {
		first = l.Forward[0]
	}
	b.WriteString("# FORWARD rule 1: " + first + "\n")
	return b.String()
}

func wantLiveText(want []string) string {
	return strings.Join(want, "\n") + "\n# FORWARD rule 1: " + forwardJumpRule + "\n"
}

// step4Plan is what Apply carries out.
type step4Plan struct {
	Before, After string // /etc/ufw/after.rules
	Block         string
	UFWActive     bool
	Expected      []string
}

func (DockerUserStep) Plan(ctx context.Context, h *system.Host, a Answers) (Plan, error) {
	p := Plan{Step: 4, Commands: []string{
		"sudoedit " + afterRulesPath + "   # the block after the last COMMIT, replacing an old block",
		"sudo ufw reload",
		"sudo iptables -S DOCKER-USER",
		"sudo iptables -C FORWARD -j DOCKER-USER",
		"sudo iptables -S FORWARD | sed -n 2p   # must be -A FORWARD -j DOCKER-USER",
	}}
	block, err := RenderDockerUserBlock(a)
	if err != nil {
		return p, err
	}
	want, err := expectedDockerUser(a)
	if err != nil {
		return p, err
	}
	out, err := h.Read(ctx, "iptables", "--version")
	if err != nil {
		p.Blocked = "iptables is not installed (iptables --version failed), so the DOCKER-USER chain can be neither loaded nor checked; install the iptables package and plan again."
		return p, nil
	}
	be, err := system.ParseIPTablesVersion(string(out))
	if err != nil {
		return p, err
	}
	p.Notes = append(p.Notes, fmt.Sprintf("iptables %s drives the %s backend; UFW, Docker and this step all go through it, so they see the same rules.", be.Version, be.Mode))
	fw := readDockerFirewall(ctx, h)
	if strings.Contains(fw.Backend, "nftables") {
		p.Blocked = fmt.Sprintf("Docker uses its nftables firewall backend (%s: %s), which has no DOCKER-USER chain, so this block would filter nothing; remove \"firewall-backend\" from %s (Docker then uses iptables), restart Docker and plan again.", fw.Source, fw.Backend, daemonJSONPath)
		return p, nil
	}
	switch {
	case !fw.Running:
		p.Notes = append(p.Notes, "Docker is not running: the chain is loaded now anyway, and Docker puts its FORWARD jump to DOCKER-USER first when it starts.")
	case fw.Backend == "":
		p.Notes = append(p.Notes, fmt.Sprintf("Docker %s drives iptables (it reports no firewall backend before 28), so DOCKER-USER exists.", fw.Version))
	default:
		p.Notes = append(p.Notes, fmt.Sprintf("Docker %s uses the %s firewall backend.", fw.Version, fw.Backend))
	}

	cur, err := h.ReadFile(afterRulesPath)
	if errors.Is(err, fs.ErrNotExist) {
		p.Blocked = afterRulesPath + " does not exist, so UFW is not installed; Step 2 installs and enables UFW, then plan Step 4 again."
		return p, nil
	}
	if err != nil {
		return p, fmt.Errorf("reading %s: %w", afterRulesPath, err)
	}
	newAfter, err := SpliceDockerUserBlock(string(cur), block)
	if err != nil {
		p.Blocked = err.Error()
		return p, nil
	}
	if begins, _ := markerLines(strings.Split(string(cur), "\n")); len(begins) > 1 {
		p.Notes = append(p.Notes, fmt.Sprintf("%s has %d DOCKER-USER blocks: the first is replaced and the others are removed.", afterRulesPath, len(begins)))
	}
	subnet := netip.MustParsePrefix(want[1][len("-A DOCKER-USER -s "):strings.Index(want[1], " -d ")])
	if fs := CheckAfterRules(newAfter, subnet); len(fs) > 0 {
		p.Blocked = fmt.Sprintf("%s would still be wrong after the block is written (line %d: %s); fix that part of the file by hand and plan again.", afterRulesPath, fs[0].Line, fs[0].Message)
		return p, nil
	}
	p.Changes = append(p.Changes, Change{Target: afterRulesPath, Kind: "file", Before: string(cur), After: newAfter, Mode: 0o640})

	live, err := readLiveDockerUser(ctx, h)
	if err != nil {
		return p, err
	}
	p.Changes = append(p.Changes, Change{Target: "iptables filter DOCKER-USER (live kernel)", Kind: "rules", Before: live.text(), After: wantLiveText(want)})

	ufwOut, err := h.Read(ctx, "ufw", "status")
	active := err == nil && strings.Contains(string(ufwOut), "Status: active")
	if active {
		p.Notes = append(p.Notes, "UFW is active: `ufw reload` loads the block now, and UFW loads it again at every boot.")
	} else {
		p.Notes = append(p.Notes, "UFW is not active: the block is loaded now with iptables-restore --noflush, but only UFW loads it at boot; Step 2 enables UFW.")
	}
	p.Notes = append(p.Notes, "Pin the compose network to "+subnet.String()+" (docker_subnet) with enable_icc \"false\": the RETURN above matches only that subnet.")
	p.Data = step4Plan{Before: string(cur), After: newAfter, Block: block, UFWActive: active, Expected: want}
	return p, nil
}

// validateBlock runs the block through iptables-restore --test (nothing is committed) when it is installed.
func validateBlock(ctx context.Context, h *system.Host, block string) error {
	_, err := h.ReadCmd(ctx, system.Cmd{Argv: []string{"iptables-restore", "--test", "--noflush"}, Stdin: []byte(block + "\n")})
	if err != nil && system.ExitCode(err) != 127 {
		return fmt.Errorf("iptables-restore --test rejects the DOCKER-USER block: %w", err)
	}
	return nil
}

func (DockerUserStep) Apply(ctx context.Context, h *system.Host, p Plan) error {
	sp, ok := p.Data.(step4Plan)
	if !ok {
		return errors.New("step 4: the plan carries no DOCKER-USER data; plan again")
	}
	cur, err := h.ReadFile(afterRulesPath)
	if err != nil {
		return fmt.Errorf("reading %s: %w", afterRulesPath, err)
	}
	if string(cur) != sp.Before {
		return fmt.Errorf("%s changed since this plan was made; plan Step 4 again", afterRulesPath)
	}
	if sp.After != sp.Before {
		if fs := CheckAfterRules(sp.After, netip.Prefix{}); len(fs) > 0 {
			return fmt.Errorf("the new %s fails its own check, so it was not written: line %d: %s", afterRulesPath, fs[0].Line, fs[0].Message)
		}
		if err := validateBlock(ctx, h, sp.Block); err != nil {
			return err
		}
		if err := h.WriteFile(ctx, afterRulesPath, []byte(sp.After), system.WriteOpts{Perm: 0o640}); err != nil {
			return fmt.Errorf("writing %s: %w", afterRulesPath, err)
		}
	}
	if sp.UFWActive {
		if _, err := h.ExecCmd(ctx, system.Cmd{Argv: []string{"ufw", "reload"}, Timeout: step4Timeout}); err != nil {
			return fmt.Errorf("ufw reload (to load the DOCKER-USER block): %w", err)
		}
	} else {
		if _, err := h.ExecCmd(ctx, system.Cmd{Argv: []string{"iptables-restore", "--noflush"}, Stdin: []byte(sp.Block + "\n")}); err != nil {
			return fmt.Errorf("loading the DOCKER-USER block with iptables-restore --noflush: %w", err)
		}
	}
	if err := ensureForwardJumpFirst(ctx, h); err != nil {
		return err
	}
	if h.DryRun {
		return nil
	}
	live, err := readLiveDockerUser(ctx, h)
	if err != nil {
		return err
	}
	if got := live.text(); got != wantLiveText(sp.Expected) {
		return fmt.Errorf("after loading the block the live DOCKER-USER chain is not as planned:\n%s", Change{Target: "iptables filter DOCKER-USER", Before: wantLiveText(sp.Expected), After: got}.Diff())
	}
	return nil
}

// ensureForwardJumpFirst makes "-j DOCKER-USER" FORWARD's first rule, as Docker itself does when it starts.
func ensureForwardJumpFirst(ctx context.Context, h *system.Host) error {
	out, err := h.Read(ctx, "iptables", "-S", "FORWARD")
	if err != nil {
		return fmt.Errorf("reading the FORWARD chain: %w", err)
	}
	fwd := ruleLines(string(out), "-A FORWARD")
	if len(fwd) > 0 && fwd[0] == forwardJumpRule {
		return nil
	}
	for _, r := range fwd {
		if r != forwardJumpRule {
			continue
		}
		if _, err := h.Exec(ctx, "iptables", "-w", "-D", "FORWARD", "-j", "DOCKER-USER"); err != nil {
			return fmt.Errorf("moving FORWARD's jump to DOCKER-USER to the top: %w", err)
		}
	}
	if _, err := h.Exec(ctx, "iptables", "-w", "-I", "FORWARD", "1", "-j", "DOCKER-USER"); err != nil {
		return fmt.Errorf("putting FORWARD's jump to DOCKER-USER first: %w", err)
	}
	return nil
}

// dockerDown says why, when docker.service is not running (yet): dockerd adds FORWARD's jump to DOCKER-USER
// when it starts. "" when it runs or its state cannot be read.
func dockerDown(ctx context.Context, h *system.Host) string {
	out, err := h.Read(ctx, "systemctl", "is-active", "docker.service")
	state := strings.TrimSpace(string(out))
	if err == nil || state == "" || state == "active" || isNotFound(err) {
		return ""
	}
	return fmt.Sprintf("Docker is not running (systemctl is-active docker: %s): dockerd adds this jump when it starts, and no container forwards traffic before that; verify again once `docker info` answers", state)
}

func (DockerUserStep) Verify(ctx context.Context, h *system.Host, a Answers) []Check {
	want, err := expectedDockerUser(a)
	if err != nil {
		return []Check{{ID: "step4.answers", Name: "answers give a DOCKER-USER rule set", Expect: "valid docker_subnet, lan_cidr, extra_private_ranges", Got: err.Error(), Reason: err.Error()}}
	}
	var cs []Check
	live, lerr := readLiveDockerUser(ctx, h)

	c := Check{ID: "step4.chain", Name: "iptables -S DOCKER-USER: the rules in order", Expect: fmt.Sprintf("%d rules, conntrack RETURN first, subnet RETURN, drops, RETURN", len(want))}
	switch {
	case lerr != nil:
		c.Got, c.Reason = "unreadable", lerr.Error()
	case !live.ChainExists:
		c.Got, c.Reason = "no DOCKER-USER chain", "the chain does not exist on the live kernel: the block was never loaded (ufw reload) and Docker is not running"
	default:
		c.Got = fmt.Sprintf("%d rules", len(live.Chain))
		c.OK = strings.Join(live.Chain, "\n") == strings.Join(want, "\n")
		if !c.OK {
			c.Reason = firstDifference(want, live.Chain)
		}
	}
	cs = append(cs, c)

	c = Check{ID: "step4.forward-jump", Name: "iptables -C FORWARD -j DOCKER-USER", Expect: "exit 0"}
	if _, err := h.Read(ctx, "iptables", "-C", "FORWARD", "-j", "DOCKER-USER"); err != nil {
		c.Got, c.Reason = fmt.Sprintf("exit %d", system.ExitCode(err)), "FORWARD does not jump to DOCKER-USER: forwarded container traffic skips the block"
		if why := dockerDown(ctx, h); why != "" {
			// Right after a boot or during a restart: the check still fails (nothing is proven), but the
			// operator learns it is a matter of waiting, not a broken rule set.
			c.Reason += "; " + why
		}
	} else {
		c.Got, c.OK = "exit 0", true
	}
	cs = append(cs, c)

	c = Check{ID: "step4.forward-first", Name: "FORWARD's first rule jumps to DOCKER-USER", Expect: forwardJumpRule}
	switch {
	case lerr != nil:
		c.Got, c.Reason = "unreadable", lerr.Error()
	case len(live.Forward) == 0:
		c.Got, c.Reason = "FORWARD has no rules", "nothing sends forwarded traffic to DOCKER-USER"
	default:
		c.Got = live.Forward[0]
		c.OK = c.Got == forwardJumpRule
		if !c.OK {
			c.Reason = "a FORWARD rule before the jump decides first: it can accept container traffic before DOCKER-USER drops it"
		}
	}
	cs = append(cs, c)

	c = Check{ID: "step4.subnet-order", Name: "the Docker subnet RETURN comes before the 172.16.0.0/12 DROP", Expect: want[1] + " before -d 172.16.0.0/12 -j DROP"}
	ret, drop := indexOf(live.Chain, want[1]), indexOf(live.Chain, "-A DOCKER-USER -d 172.16.0.0/12 -j DROP")
	switch {
	case ret < 0:
		c.Got, c.Reason = "no subnet RETURN", "the live chain has no RETURN for docker_subnet"
	case drop < 0:
		c.Got, c.Reason = fmt.Sprintf("RETURN at rule %d, no 172.16.0.0/12 DROP", ret+1), "the live chain does not drop 172.16.0.0/12"
	default:
		c.Got = fmt.Sprintf("RETURN at rule %d, DROP at rule %d", ret+1, drop+1)
		c.OK = ret < drop
		if !c.OK {
			c.Reason = "the DROP matches first: containers on the subnet cannot reach each other"
		}
	}
	cs = append(cs, c)

	c = Check{ID: "step4.file", Name: afterRulesPath + ": one DOCKER-USER block, as generated", Expect: "exactly one block, no findings"}
	block, berr := RenderDockerUserBlock(a)
	data, err := h.ReadFile(afterRulesPath)
	switch {
	case err != nil:
		c.Got, c.Reason = "unreadable", err.Error()
	case berr != nil:
		c.Got, c.Reason = "no block to compare", berr.Error()
	default:
		fs := CheckAfterRules(string(data), netip.Prefix{})
		got := ExtractDockerUserBlock(string(data))
		switch {
		case len(fs) > 0:
			c.Got, c.Reason = fmt.Sprintf("%d finding(s)", len(fs)), fmt.Sprintf("line %d: %s", fs[0].Line, fs[0].Message)
		case got != block:
			c.Got, c.Reason = "a different block", "the block in the file is not the one these answers generate: plan Step 4 again"
		default:
			c.Got, c.OK = "one block, as generated", true
		}
	}
	cs = append(cs, c)

	c = Check{ID: "step4.ufw-active", Name: "UFW is active, so it loads the block at every boot", Expect: "Status: active"}
	if out, err := h.Read(ctx, "ufw", "status"); err != nil {
		c.Got, c.Reason = "ufw status failed", err.Error()
	} else if strings.Contains(string(out), "Status: active") {
		c.Got, c.OK = "Status: active", true
	} else {
		c.Got, c.Reason = strings.TrimSpace(firstLine(string(out))), "UFW is inactive: nothing loads the block after a reboot; apply Step 2"
	}
	return append(cs, c)
}

func indexOf(ss []string, s string) int {
	for i, x := range ss {
		if x == s {
			return i
		}
	}
	return -1
}

// firstDifference says where two rule lists first part, in one sentence.
func firstDifference(want, got []string) string {
	for i := 0; i < len(want) || i < len(got); i++ {
		switch {
		case i >= len(got):
			return fmt.Sprintf("rule %d is missing: want %q", i+1, want[i])
		case i >= len(want):
			return fmt.Sprintf("rule %d is extra: %q", i+1, got[i])
		case want[i] != got[i]:
			return fmt.Sprintf("rule %d is %q, want %q", i+1, got[i], want[i])
		}
	}
	return ""
}

// ResetDockerUserWithoutBlock is for after a rollback: when the restored after.rules has no block, the live
// chain goes back to what Docker makes (a lone RETURN). A ufw reload alone leaves the old rules loaded until
// the next boot, since nothing declares the chain any more. It does nothing when the file still has a block
// (the reload loads that one) or when there is no DOCKER-USER chain.
func ResetDockerUserWithoutBlock(ctx context.Context, h *system.Host) error {
	data, err := h.ReadFile(afterRulesPath)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("reading %s: %w", afterRulesPath, err)
	}
	if ExtractDockerUserBlock(string(data)) != "" {
		return nil
	}
	if _, err := h.Read(ctx, "iptables", "-S", "DOCKER-USER"); err != nil {
		return nil
	}
	if _, err := h.Exec(ctx, "iptables", "-w", "-F", "DOCKER-USER"); err != nil {
		return fmt.Errorf("emptying DOCKER-USER after the rollback: %w", err)
	}
	if _, err := h.Exec(ctx, "iptables", "-w", "-A", "DOCKER-USER", "-j", "RETURN"); err != nil {
		return fmt.Errorf("putting Docker's RETURN back in DOCKER-USER after the rollback: %w", err)
	}
	return nil
}
