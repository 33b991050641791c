package pvefw

import (
	"slices"
	"strings"
)

type optType int

const (
	optBool     optType = iota + 1 // 0|1
	optPolicy                      // ACCEPT|DROP|REJECT, any case
	optLogLevel                    // a log level, any case, or empty
	optUint                        // \d+
	optQueues                      // \d+(:\d+)?
	optEthertypes
	optHelpers
	optRateLimit
)

// optionTypes mirror parse_vmfw_option, parse_clusterfw_option and
// parse_hostfw_option: a key missing here is "can't parse option".
var optionTypes = map[Kind]map[string]optType{
	VM: {
		"enable": optBool, "dhcp": optBool, "ndp": optBool, "radv": optBool, "macfilter": optBool,
		"ipfilter": optBool, "ips": optBool,
		"log_level_in": optLogLevel, "log_level_out": optLogLevel,
		"policy_in": optPolicy, "policy_out": optPolicy,
		"ips_queues": optQueues, "layer2_protocols": optEthertypes,
	},
	Cluster: {
		"enable": optUint, "ebtables": optBool,
		"policy_in": optPolicy, "policy_out": optPolicy, "policy_forward": optPolicy,
		"log_ratelimit": optRateLimit,
	},
	Host: {
		"enable":                               optBool,
		"nosmurfs":                             optBool,
		"tcpflags":                             optBool,
		"ndp":                                  optBool,
		"log_nf_conntrack":                     optBool,
		"nf_conntrack_allow_invalid":           optBool,
		"protection_synflood":                  optBool,
		"nftables":                             optBool,
		"log_level_in":                         optLogLevel,
		"log_level_out":                        optLogLevel,
		"log_level_forward":                    optLogLevel,
		"tcp_flags_log_level":                  optLogLevel,
		"smurf_log_level":                      optLogLevel,
		"nf_conntrack_helpers":                 optHelpers,
		"nf_conntrack_max":                     optUint,
		"nf_conntrack_tcp_timeout_established": optUint,
		"nf_conntrack_tcp_timeout_syn_recv":    optUint,
		"protection_synflood_rate":             optUint,
		"protection_synflood_burst":            optUint,
		"protection_limit":                     optUint,
	},
}

// optionDefaults says what a skipped option falls back to, for the keys
// where that decides whether the firewall is on or open.
var optionDefaults = map[Kind]map[string]string{
	VM:      {"enable": "0, so this VM's firewall is off", "policy_in": "DROP", "policy_out": "ACCEPT"},
	Cluster: {"enable": "0, so no firewall runs anywhere in the cluster", "policy_in": "DROP", "policy_out": "ACCEPT"},
	Host:    {"enable": "1"},
}

type optResult struct {
	key, value string
	err        string   // why pve-firewall skips the line
	warns      []string // accepted, but not in the form both backends read alike
	errs       []string // accepted by pve-firewall, yet wrong enough to be an Error
}

func parseOption(kind Kind, line string) optResult {
	rawKey, rest, ok := strings.Cut(line, ":")
	if !ok {
		if looksLikeRule(line) {
			return optResult{err: "a rule in [OPTIONS] (rules go under [RULES])"}
		}
		return optResult{err: "not an option: options are written 'key: value'"}
	}
	types := optionTypes[kind]
	key := asciiLower(rawKey)
	typ, known := types[key]
	// log_ratelimit is the one key pve-firewall matches case-sensitively.
	if key == "log_ratelimit" && rawKey != key {
		known = false
	}
	if !known {
		msg := "unknown option " + quote(rawKey)
		if s := suggestKey(kind, rawKey); s != "" {
			msg += " (did you mean " + s + "?)"
		} else if k := otherKind(kind, key); k != 0 {
			msg += " (it is a " + k.String() + " option, not a " + kind.String() + " one)"
		}
		return optResult{key: key, err: msg}
	}
	value := trimS(rest)
	r := optResult{key: key, value: value}
	if strings.ContainsRune(value, '#') {
		r.err = "a comment is not allowed on an option line (the value would be " + quote(value) + ")"
		return r
	}
	if rawKey != key {
		r.warns = append(r.warns, "write the option name in lowercase ("+key+"): the nftables backend does not know "+quote(rawKey))
	}
	switch typ {
	case optBool:
		if value != "0" && value != "1" {
			r.err = quote(value) + " is not 0 or 1"
		}
	case optPolicy:
		up := asciiUpper(value)
		switch {
		case up != "ACCEPT" && up != "DROP" && up != "REJECT":
			r.err = quote(value) + " is not ACCEPT, DROP or REJECT"
		case up != value:
			r.value = up
			r.warns = append(r.warns, "write "+up+" in uppercase: pve-firewall reads "+quote(value)+" as "+up+", but the same word in a rule is case-sensitive and makes the rule invalid")
		case key == "policy_forward" && up == "REJECT":
			r.warns = append(r.warns, "policy_forward takes ACCEPT or DROP: REJECT is not possible on forwarded traffic")
		}
	case optLogLevel:
		lo := asciiLower(value)
		switch {
		case value != "" && !slices.Contains(logLevels, lo):
			r.err = quote(value) + " is not a log level (" + strings.Join(logLevels, ", ") + ")"
		case lo != value:
			r.value = lo
			r.warns = append(r.warns, "write the log level in lowercase ("+lo+")")
		case value == "":
			r.warns = append(r.warns, "empty log level: write nolog")
		}
	case optUint:
		if !isDigits(value) {
			r.err = quote(value) + " is not a number"
			break
		}
		if kind == Cluster && key == "enable" && !digitsAtMost(value, 1) {
			// pve-firewall reads a value above 1 as the time the
			// anti-lockout "enable=2" API call was made, and the firewall
			// switches itself off 60 s after that time: every rule is lost.
			r.errs = append(r.errs, "enable: "+value+" is read as an anti-lockout timestamp, so the datacenter firewall turns itself off 60 s after it: write enable: 1")
		}
	case optQueues:
		lo, hi, has := strings.Cut(value, ":")
		if !isDigits(lo) || (has && !isDigits(hi)) {
			r.err = quote(value) + " is not a queue number N or range N:M"
		}
	case optEthertypes:
		if value == "" || strings.ContainsAny(value, " \t") {
			r.err = quote(value) + " is not a comma-separated list of ethertypes"
			break
		}
		for _, t := range strings.Split(strings.TrimRight(value, ","), ",") {
			if !etcEthertypes[trimS(t)] {
				r.err = "unknown ethertype " + quote(t) + " (see /etc/ethertypes on the node)"
				break
			}
		}
	case optHelpers:
		r.value = asciiLower(value)
		if value == "" || strings.ContainsAny(value, " \t") {
			r.err = quote(value) + " is not a comma-separated list of conntrack helpers"
			break
		}
		for _, h := range strings.Split(r.value, ",") {
			if !conntrackHelpers[h] {
				r.err = "unknown conntrack helper " + quote(h) + " (amanda, ftp, irc, netbios-ns, pptp, sane, sip, snmp, tftp)"
				break
			}
		}
	case optRateLimit:
		if msg := checkRateLimit(value); msg != "" {
			// A log_ratelimit the property-string parser refuses makes
			// loading cluster.fw die, not just this line.
			r.errs = append(r.errs, msg+": pve-firewall fails to load cluster.fw with it")
		}
	}
	if r.err != "" {
		r.warns = nil
		r.errs = nil
	}
	return r
}

// checkRateLimit checks "[enable=]0|1[,rate=N/unit][,burst=N]".
func checkRateLimit(v string) string {
	if v == "" {
		return "empty log_ratelimit"
	}
	seen := map[string]bool{}
	for i, part := range strings.Split(v, ",") {
		k, val, ok := strings.Cut(part, "=")
		if !ok {
			if i != 0 {
				return "log_ratelimit: " + quote(part) + " needs a key (enable=, rate= or burst=)"
			}
			k, val = "enable", part
		}
		if seen[k] {
			return "log_ratelimit sets " + quote(k) + " twice"
		}
		seen[k] = true
		switch k {
		case "enable":
			switch asciiLower(val) {
			case "0", "1", "yes", "no", "on", "off", "true", "false":
			default:
				return "log_ratelimit: enable=" + quote(val) + " is not 0 or 1"
			}
		case "rate":
			n, unit, _ := strings.Cut(val, "/")
			if !isDigits(n) || n[0] == '0' || !slices.Contains([]string{"second", "minute", "hour", "day"}, unit) {
				return "log_ratelimit: rate=" + quote(val) + " is not N/second, N/minute, N/hour or N/day"
			}
		case "burst":
			if !isDigits(val) {
				return "log_ratelimit: burst=" + quote(val) + " is not a number"
			}
		default:
			return "log_ratelimit: unknown key " + quote(k)
		}
	}
	return ""
}

func looksLikeRule(line string) bool {
	tok, _ := leadingNonSpace(strings.TrimPrefix(line, "|"))
	switch asciiLower(tok) {
	case "in", "out", "group", "forward":
		return true
	}
	return false
}

// suggestKey finds the option the author probably meant: same letters
// with '-' for '_' or a different case, or one or two typos away.
func suggestKey(kind Kind, key string) string {
	norm := strings.ReplaceAll(asciiLower(trimS(key)), "-", "_")
	best, bestD := "", 3
	for k := range optionTypes[kind] {
		if k == norm {
			return k
		}
		if d := editDistance(norm, k); d < bestD || (d == bestD && k < best) {
			best, bestD = k, d
		}
	}
	return best
}

func otherKind(kind Kind, key string) Kind {
	for _, k := range []Kind{VM, Cluster, Host} {
		if k != kind {
			if _, ok := optionTypes[k][key]; ok {
				return k
			}
		}
	}
	return 0
}

func editDistance(a, b string) int {
	if len(a) > 64 || len(b) > 64 {
		return 99
	}
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
