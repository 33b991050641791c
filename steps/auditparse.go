package steps

// Pure parsers for Step 1's read-only commands. Each takes a command's output (or a file's content) and
// returns items without a section; TakeSnapshot assigns sections. None of them touches the system, so each
// is unit-tested on real outputs under testdata/audit/.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// kv is one key/value pair before it is placed in a section.
type kv struct{ Key, Value string }

// parseOSRelease reads /etc/os-release (shell-style KEY=value, optionally quoted) and returns ID,
// VERSION_ID, PRETTY_NAME and VERSION_CODENAME, lower-cased, in that order, when present.
func parseOSRelease(data string) []kv {
	vals := map[string]string{}
	for _, line := range strings.Split(data, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			continue
		}
		vals[strings.TrimSpace(k)] = unquoteShell(strings.TrimSpace(v))
	}
	var out []kv
	for _, k := range []string{"ID", "VERSION_ID", "PRETTY_NAME", "VERSION_CODENAME"} {
		if v, ok := vals[k]; ok {
			out = append(out, kv{strings.ToLower(k), v})
		}
	}
	return out
}

// unquoteShell undoes the quoting os-release allows: "…" with backslash escapes, or '…'.
func unquoteShell(v string) string {
	if len(v) >= 2 && v[0] == '\'' && v[len(v)-1] == '\'' {
		return v[1 : len(v)-1]
	}
	if len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"' {
		v = v[1 : len(v)-1]
		var b strings.Builder
		for i := 0; i < len(v); i++ {
			if v[i] == '\\' && i+1 < len(v) {
				i++
			}
			b.WriteByte(v[i])
		}
		return b.String()
	}
	return v
}

// dockerVersion is the part of `docker version --format '{{json .}}'` Step 1 reads. Server is nil when the
// daemon is not running (the command then also exits 1, but still prints the client half).
type dockerVersion struct {
	Client *struct {
		Version    string `json:"Version"`
		APIVersion string `json:"ApiVersion"`
	} `json:"Client"`
	Server *struct {
		Version    string `json:"Version"`
		APIVersion string `json:"ApiVersion"`
	} `json:"Server"`
}

// parseDockerVersion reads `docker version --format '{{json .}}'`. The JSON object is the first line that
// starts with "{", because error lines about the daemon may come before or after it.
func parseDockerVersion(out []byte) (dockerVersion, error) {
	var v dockerVersion
	obj := firstJSONObject(out)
	if obj == nil {
		return v, fmt.Errorf("no JSON object in the output of docker version")
	}
	if err := json.Unmarshal(obj, &v); err != nil {
		return v, fmt.Errorf("reading docker version JSON: %w", err)
	}
	if v.Client == nil && v.Server == nil {
		return v, fmt.Errorf("docker version JSON has neither Client nor Server")
	}
	return v, nil
}

func firstJSONObject(out []byte) []byte {
	for _, line := range bytes.Split(out, []byte("\n")) {
		line = bytes.TrimSpace(line)
		if len(line) > 0 && line[0] == '{' {
			return line
		}
	}
	return nil
}

// parseDockerInfo reads `docker info --format '{{json .}}'` from a running daemon: the facts that matter to
// the hardening (cgroup driver, security options, firewall backend, bridge netfilter, logging, root dir).
// Docker before 28 does not report a firewall backend; it always drives iptables.
func parseDockerInfo(out []byte) ([]kv, error) {
	obj := firstJSONObject(out)
	if obj == nil {
		return nil, fmt.Errorf("no JSON object in the output of docker info")
	}
	var info struct {
		ServerVersion      string   `json:"ServerVersion"`
		ServerErrors       []string `json:"ServerErrors"`
		CgroupDriver       string   `json:"CgroupDriver"`
		CgroupVersion      string   `json:"CgroupVersion"`
		SecurityOptions    []string `json:"SecurityOptions"`
		Driver             string   `json:"Driver"`
		LoggingDriver      string   `json:"LoggingDriver"`
		DockerRootDir      string   `json:"DockerRootDir"`
		DefaultRuntime     string   `json:"DefaultRuntime"`
		LiveRestoreEnabled bool     `json:"LiveRestoreEnabled"`
		IPv4Forwarding     bool     `json:"IPv4Forwarding"`
		BridgeNfIptables   *bool    `json:"BridgeNfIptables"`
		Warnings           []string `json:"Warnings"`
		FirewallBackend    *struct {
			Driver string `json:"Driver"`
		} `json:"FirewallBackend"`
		Swarm struct {
			LocalNodeState string `json:"LocalNodeState"`
		} `json:"Swarm"`
	}
	if err := json.Unmarshal(obj, &info); err != nil {
		return nil, fmt.Errorf("reading docker info JSON: %w", err)
	}
	if info.ServerVersion == "" {
		msg := "no server version"
		if len(info.ServerErrors) > 0 {
			msg = info.ServerErrors[0]
		}
		return nil, fmt.Errorf("docker info: %s", msg)
	}
	fw := "iptables (not reported by Docker before 28)"
	if info.FirewallBackend != nil && info.FirewallBackend.Driver != "" {
		fw = info.FirewallBackend.Driver
	}
	out2 := []kv{
		{"cgroup driver", strings.TrimSpace(info.CgroupDriver + " " + cgroupV(info.CgroupVersion))},
		{"security options", joinOr(info.SecurityOptions, ", ", "none")},
		{"firewall backend", fw},
		{"storage driver", info.Driver},
		{"logging driver", info.LoggingDriver},
		{"root dir", info.DockerRootDir},
		{"default runtime", info.DefaultRuntime},
		{"live restore", strconv.FormatBool(info.LiveRestoreEnabled)},
		{"ipv4 forwarding", strconv.FormatBool(info.IPv4Forwarding)},
		{"swarm", orDash(info.Swarm.LocalNodeState)},
	}
	if info.BridgeNfIptables != nil {
		out2 = append(out2, kv{"bridge-nf-call-iptables", strconv.FormatBool(*info.BridgeNfIptables)})
	}
	if len(info.Warnings) > 0 {
		ws := make([]string, len(info.Warnings))
		for i, w := range info.Warnings {
			ws[i] = strings.TrimPrefix(strings.TrimSpace(w), "WARNING: ")
		}
		out2 = append(out2, kv{"warnings", strings.Join(ws, "; ")})
	}
	return out2, nil
}

func cgroupV(v string) string {
	if v == "" {
		return ""
	}
	return "(cgroup v" + v + ")"
}

func joinOr(ss []string, sep, empty string) string {
	if len(ss) == 0 {
		return empty
	}
	return strings.Join(ss, sep)
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// parseDockerPS reads `docker ps --no-trunc --format '{{json .}}'` (one JSON object per line): one item
// per running container, keyed by name, valued by image, published ports and networks. Uptime and IDs are
// left out: they change on every restart and would make every diff noisy.
func parseDockerPS(out []byte) ([]kv, error) {
	var items []kv
	for _, line := range bytes.Split(out, []byte("\n")) {
		line = bytes.TrimSpace(line)
		if len(line) == 0 {
			continue
		}
		var c struct {
			Names, Image, Ports, Networks string
		}
		if err := json.Unmarshal(line, &c); err != nil {
			return items, fmt.Errorf("reading docker ps JSON line %q: %w", truncate(string(line), 80), err)
		}
		v := "image " + c.Image
		if c.Ports != "" {
			v += "; ports " + c.Ports
		}
		if c.Networks != "" {
			v += "; networks " + c.Networks
		}
		items = append(items, kv{c.Names, v})
	}
	return items, nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// ipAddr is one interface in `ip -j addr`.
type ipAddr struct {
	IfName   string `json:"ifname"`
	AddrInfo []struct {
		Family     string `json:"family"`
		Local      string `json:"local"`
		PrefixLen  *int   `json:"prefixlen"`
		Scope      string `json:"scope"`
		Dynamic    bool   `json:"dynamic"`
		Tentative  bool   `json:"tentative"`
		Deprecated bool   `json:"deprecated"`
	} `json:"addr_info"`
}

// parseIPAddr reads `ip -j addr`: one item per address, key "IFACE FAMILY ADDR/PREFIX", value the scope
// (plus "dynamic" for DHCP/SLAAC leases). Interfaces without addresses give no item. It also returns the
// global IPv6 addresses, for the IPv6 section.
func parseIPAddr(out []byte) (items []kv, globalV6 []string, err error) {
	var ifs []ipAddr
	if err := json.Unmarshal(bytes.TrimSpace(out), &ifs); err != nil {
		return nil, nil, fmt.Errorf("reading ip -j addr: %w", err)
	}
	for _, i := range ifs {
		for _, a := range i.AddrInfo {
			if a.Local == "" || a.Family == "" {
				continue
			}
			addr := a.Local
			if a.PrefixLen != nil {
				addr += "/" + strconv.Itoa(*a.PrefixLen)
			}
			v := orDash(a.Scope)
			if a.Dynamic {
				v += " dynamic"
			}
			items = append(items, kv{i.IfName + " " + a.Family + " " + addr, v})
			if a.Family == "inet6" && a.Scope == "global" {
				globalV6 = append(globalV6, addr+" ("+i.IfName+")")
			}
		}
	}
	return items, globalV6, nil
}

// parseIPRoute reads `ip -j route` or `ip -j -6 route`: key "DST dev DEV" (with the route type when it is not
// unicast, and the metric when set, since two routes may differ only there), value the gateway, protocol,
// scope and source.
func parseIPRoute(out []byte) ([]kv, error) {
	var routes []struct {
		Type     string `json:"type"`
		Dst      string `json:"dst"`
		Gateway  string `json:"gateway"`
		Dev      string `json:"dev"`
		Protocol string `json:"protocol"`
		Scope    string `json:"scope"`
		PrefSrc  string `json:"prefsrc"`
		Metric   *int   `json:"metric"`
		Table    string `json:"table"`
		Nexthops []struct {
			Gateway string `json:"gateway"`
			Dev     string `json:"dev"`
		} `json:"nexthops"`
	}
	trimmed := bytes.TrimSpace(out)
	if len(trimmed) == 0 {
		return nil, nil
	}
	if err := json.Unmarshal(trimmed, &routes); err != nil {
		return nil, fmt.Errorf("reading ip -j route: %w", err)
	}
	var items []kv
	for _, r := range routes {
		key := r.Dst
		if r.Type != "" && r.Type != "unicast" {
			key = r.Type + " " + key
		}
		if r.Dev != "" {
			key += " dev " + r.Dev
		}
		if r.Table != "" && r.Table != "main" {
			key += " table " + r.Table
		}
		if r.Metric != nil {
			key += " metric " + strconv.Itoa(*r.Metric)
		}
		var v []string
		if r.Gateway != "" {
			v = append(v, "via "+r.Gateway)
		}
		for _, nh := range r.Nexthops {
			v = append(v, strings.TrimSpace("nexthop via "+nh.Gateway+" dev "+nh.Dev))
		}
		if r.Protocol != "" {
			v = append(v, "proto "+r.Protocol)
		}
		if r.Scope != "" {
			v = append(v, "scope "+r.Scope)
		}
		if r.PrefSrc != "" {
			v = append(v, "src "+r.PrefSrc)
		}
		items = append(items, kv{key, joinOr(v, " ", "-")})
	}
	return uniqueKeys(items), nil
}

var ssUserRE = regexp.MustCompile(`\("((?:[^"\\]|\\.)*)",pid=`)

// parseSS reads `ss -H -tulpn`: one item per listening socket, key "PROTO LOCAL-ADDRESS" ("tcp 0.0.0.0:22"),
// value the names of the processes that hold it ("sshd"), or "unknown" when ss could not see them (not
// root, or a process in another PID namespace). PIDs are left out: they change on every restart.
func parseSS(out string) []kv {
	procs := map[string]map[string]bool{}
	var order []string
	for _, line := range strings.Split(out, "\n") {
		f, rest := fieldsN(line, 6)
		if len(f) < 5 {
			continue
		}
		proto := f[0]
		if proto == "Netid" { // a header, when -H was not honoured
			continue
		}
		key := proto + " " + f[4]
		if procs[key] == nil {
			procs[key] = map[string]bool{}
			order = append(order, key)
		}
		for _, m := range ssUserRE.FindAllStringSubmatch(rest, -1) {
			procs[key][m[1]] = true
		}
	}
	items := make([]kv, 0, len(order))
	for _, k := range order {
		names := make([]string, 0, len(procs[k]))
		for n := range procs[k] {
			names = append(names, n)
		}
		sort.Strings(names)
		items = append(items, kv{k, joinOr(names, ", ", "unknown")})
	}
	return items
}

// fieldsN splits the first n whitespace-separated fields off line and returns them with the rest
// (which may itself contain spaces, like ss's process column).
func fieldsN(line string, n int) ([]string, string) {
	var f []string
	s := line
	for len(f) < n {
		s = strings.TrimLeft(s, " \t")
		if s == "" {
			break
		}
		i := strings.IndexAny(s, " \t")
		if i < 0 {
			f = append(f, s)
			s = ""
			break
		}
		f = append(f, s[:i])
		s = s[i:]
	}
	return f, strings.TrimSpace(s)
}

var ufwRuleRE = regexp.MustCompile(`^(.*?)\s+((?:ALLOW|DENY|REJECT|LIMIT)(?:\s+(?:IN|OUT|FWD))?)\s+(.*)$`)

// parseUFWStatus reads `ufw status verbose`. Settings go to the first list ("status", "logging",
// "default incoming", "default outgoing", "default routed", "new profiles"); each rule goes to the second,
// keyed by its text ("22/tcp ALLOW IN 192.168.1.50") with its position ("#1") as value, so a rule that moves
// shows as a changed position and a new rule as an addition (UFW is first match: positions matter).
func parseUFWStatus(out string) (settings, rules []kv) {
	inRules := false
	n := 0
	for _, raw := range strings.Split(out, "\n") {
		line := strings.TrimRight(raw, " \t\r")
		if strings.TrimSpace(line) == "" {
			continue
		}
		if inRules {
			if strings.HasPrefix(line, "--") {
				continue
			}
			m := ufwRuleRE.FindStringSubmatch(line)
			if m == nil {
				continue
			}
			n++
			text := collapseSpaces(m[1]) + " " + collapseSpaces(m[2]) + " " + collapseSpaces(m[3])
			rules = append(rules, kv{text, "#" + strconv.Itoa(n)})
			continue
		}
		if strings.HasPrefix(line, "To ") && strings.Contains(line, "Action") {
			inRules = true
			continue
		}
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		k, v = strings.ToLower(strings.TrimSpace(k)), strings.TrimSpace(v)
		if k == "default" {
			// "deny (incoming), deny (outgoing), disabled (routed)"
			for _, part := range strings.Split(v, ",") {
				part = strings.TrimSpace(part)
				pol, dir, ok := strings.Cut(part, " (")
				if !ok {
					settings = append(settings, kv{"default", part})
					continue
				}
				settings = append(settings, kv{"default " + strings.TrimSuffix(dir, ")"), pol})
			}
			continue
		}
		settings = append(settings, kv{k, v})
	}
	return uniqueKeys(settings), uniqueKeys(rules)
}

func collapseSpaces(s string) string { return strings.Join(strings.Fields(s), " ") }

// iptChain is one chain as read from `iptables -S` or `iptables-save`.
type iptChain struct {
	Table, Name, Policy string // Policy "" for a user-defined chain
	Rules               []string
}

// parseIPTables reads `iptables -t TABLE -S` (table given) or `iptables-save` (tables from "*name" lines).
// Counters ("[0:0]", "-c") are dropped: they change every second. Chains come back in the order they were
// first seen.
func parseIPTables(table, out string) []iptChain {
	var chains []*iptChain
	idx := map[string]*iptChain{}
	get := func(name string) *iptChain {
		k := table + "\x00" + name
		if c, ok := idx[k]; ok {
			return c
		}
		c := &iptChain{Table: table, Name: name}
		idx[k] = c
		chains = append(chains, c)
		return c
	}
	for _, raw := range strings.Split(out, "\n") {
		line := strings.TrimSpace(iptLeadCounterRE.ReplaceAllString(strings.TrimSpace(raw), ""))
		switch {
		case line == "" || strings.HasPrefix(line, "#") || line == "COMMIT":
		case strings.HasPrefix(line, "*"):
			table = strings.TrimSpace(line[1:])
		case strings.HasPrefix(line, ":"): // ":INPUT ACCEPT [0:0]" or ":DOCKER - [0:0]"
			f := strings.Fields(line[1:])
			if len(f) == 0 {
				continue
			}
			c := get(f[0])
			if len(f) > 1 && f[1] != "-" {
				c.Policy = f[1]
			}
		case strings.HasPrefix(line, "-P "):
			f := strings.Fields(line)
			if len(f) >= 3 {
				get(f[1]).Policy = f[2]
			}
		case strings.HasPrefix(line, "-N "):
			f := strings.Fields(line)
			if len(f) >= 2 {
				get(f[1])
			}
		case strings.HasPrefix(line, "-A "):
			f := strings.Fields(line)
			if len(f) < 2 {
				continue
			}
			c := get(f[1])
			c.Rules = append(c.Rules, stripCounters(strings.Join(f, " ")))
		}
	}
	out2 := make([]iptChain, len(chains))
	for i, c := range chains {
		out2[i] = *c
	}
	return out2
}

var (
	iptLeadCounterRE = regexp.MustCompile(`^\[\d+:\d+\]\s+`)    // iptables-save -c
	iptCounterRE     = regexp.MustCompile(`\s-c\s+\d+\s+\d+\b`) // iptables -S -v
)

func stripCounters(rule string) string { return iptCounterRE.ReplaceAllString(rule, "") }

// iptablesItems turns chains into items: section "iptables TABLE CHAIN", key "policy" (the built-in
// chain's policy, or "none (user-defined chain)"), and one item per rule keyed by the rule as
// `iptables -S` prints it with its position as value ("#1"). Keying by the rule text makes an inserted rule
// show as one addition plus moved positions, instead of every later rule appearing "changed".
// A rule that appears twice in a chain gets " [2]" after its key the second time.
func iptablesItems(chains []iptChain) []Item {
	var items []Item
	for _, c := range chains {
		sec := "iptables " + c.Table + " " + c.Name
		pol := c.Policy
		if pol == "" {
			pol = "none (user-defined chain)"
		}
		items = append(items, Item{Section: sec, Key: "policy", Value: pol})
		seen := map[string]int{}
		for i, r := range c.Rules {
			seen[r]++
			key := r
			if seen[r] > 1 {
				key = fmt.Sprintf("%s [%d]", r, seen[r])
			}
			items = append(items, Item{Section: sec, Key: key, Value: "#" + strconv.Itoa(i+1)})
		}
	}
	return items
}

// parseSystemctlUnits reads `systemctl list-units --type=service --state=running --no-legend --plain`:
// key the unit, value its description.
func parseSystemctlUnits(out string) []kv {
	var items []kv
	for _, line := range strings.Split(out, "\n") {
		line = strings.TrimSpace(strings.TrimLeft(strings.TrimSpace(line), "●*"))
		f, rest := fieldsN(line, 4)
		if len(f) < 4 || !strings.Contains(f[0], ".") {
			continue
		}
		items = append(items, kv{f[0], orDash(rest)})
	}
	return uniqueKeys(items)
}

// sshdKeys are the sshd settings the hardening cares most about; Step 1 records every key sshd -T prints,
// but these must be present (as "-" when sshd did not print them) so their absence is visible.
var sshdKeys = []string{"passwordauthentication", "kbdinteractiveauthentication", "permitrootlogin",
	"pubkeyauthentication", "port", "listenaddress"}

// parseSSHDT reads `sshd -T`: every "key value" line, lower-case keys. Keys sshd prints more than once
// (listenaddress, hostkey, acceptenv) are joined with ", " in the order printed.
func parseSSHDT(out string) []kv {
	vals := map[string][]string{}
	var order []string
	for _, line := range strings.Split(out, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, _ := strings.Cut(line, " ")
		k = strings.ToLower(k)
		if _, ok := vals[k]; !ok {
			order = append(order, k)
		}
		vals[k] = append(vals[k], strings.TrimSpace(v))
	}
	if len(order) == 0 {
		return nil
	}
	for _, k := range sshdKeys {
		if _, ok := vals[k]; !ok {
			order = append(order, k)
			vals[k] = []string{"-"}
		}
	}
	items := make([]kv, 0, len(order))
	for _, k := range order {
		items = append(items, kv{k, strings.Join(vals[k], ", ")})
	}
	return items
}

// parseDaemonJSON reads /etc/docker/daemon.json: one item per top-level key, valued by its compact JSON
// (object keys sorted, so formatting changes do not show as differences).
func parseDaemonJSON(data []byte) ([]kv, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, fmt.Errorf("not valid JSON: %w", err)
	}
	items := make([]kv, 0, len(m))
	for k, raw := range m {
		var v any
		if err := json.Unmarshal(raw, &v); err != nil {
			return nil, err
		}
		b, err := json.Marshal(v)
		if err != nil {
			return nil, err
		}
		items = append(items, kv{k, string(b)})
	}
	return items, nil
}

// uniqueKeys keeps keys distinct: a repeated key gets " [2]", " [3]"… in order of appearance.
func uniqueKeys(items []kv) []kv {
	seen := map[string]int{}
	for i := range items {
		seen[items[i].Key]++
		if n := seen[items[i].Key]; n > 1 {
			items[i].Key = fmt.Sprintf("%s [%d]", items[i].Key, n)
		}
	}
	return items
}
