package pvefw

import (
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// lexedRule is a rule line split the way parse_fw_rule splits it, with
// what the split loses on the way.
type lexedRule struct {
	Rule
	typ      string   // the direction as written
	dups     []string // options given more than once (the last one wins)
	dashdash []string // options written --opt
	glued    string   // text from a '#' glued to the token before it
}

// ruleOptions are parse_fw_rule's options in the order it tries them,
// each with the spellings it accepts.
var ruleOptions = []struct {
	name  string
	alts  []string
	field func(*Rule) *string
}{
	{"-i", []string{"-i"}, func(r *Rule) *string { return &r.Iface }},
	{"-p", []string{"-p", "-proto", "--proto"}, func(r *Rule) *string { return &r.Proto }},
	{"-dport", []string{"-dport", "--dport"}, func(r *Rule) *string { return &r.DPort }},
	{"-sport", []string{"-sport", "--sport"}, func(r *Rule) *string { return &r.SPort }},
	{"-source", []string{"-source", "--source"}, func(r *Rule) *string { return &r.Source }},
	{"-dest", []string{"-dest", "--dest"}, func(r *Rule) *string { return &r.Dest }},
	{"-log", []string{"-log", "--log"}, func(r *Rule) *string { return &r.Log }},
	{"-icmp-type", []string{"-icmp-type", "--icmp-type"}, func(r *Rule) *string { return &r.ICMPType }},
}

// matchOption finds the rule options that decide what a rule matches (all
// but -log) in the text a glued '#' turns into a comment.
var matchOption = regexp.MustCompile(`(^|\s)--?(i|p|proto|dport|sport|source|dest|icmp-type)\s`)

// lexRule reproduces parse_fw_rule up to verify_rule. A non-empty drop is
// why pve-firewall skips the line altogether.
func lexRule(line string) (lr lexedRule, drop string) {
	body := line
	if i := strings.IndexByte(body, '#'); i >= 0 {
		// Everything after the first '#' is the comment, wherever it is.
		lr.Comment = trimS(body[i+1:])
		if i > 0 && !isSpace(body[i-1]) {
			lr.glued = body[i:]
		}
		body = body[:i]
	}
	lr.Enabled = true
	if rest, ok := strings.CutPrefix(body, "|"); ok {
		lr.Enabled = false
		body = rest
	}
	typ, rest := leadingNonSpace(body)
	action := ""
	if rest != "" {
		action, rest = leadingNonSpace(trimLeftS(rest))
	}
	if typ == "" || action == "" {
		switch {
		case !lr.Enabled && body != "" && isSpace(body[0]):
			return lr, "a space after '|': write " + quote("|"+trimS(body)) + " to disable a rule; " + skipsLine
		case typ == "":
			return lr, "nothing but '|': " + skipsLine
		default:
			return lr, "a rule needs a direction and an action, such as 'OUT DROP -dest 10.0.0.0/8': " + skipsLine
		}
	}
	lr.typ = typ
	lr.Dir = asciiUpper(typ)
	lr.Action = action
	t := asciiLower(typ)
	if t == "in" || t == "out" || t == "forward" {
		for _, v := range []string{"ACCEPT", "DROP", "REJECT"} {
			if m, ok := strings.CutSuffix(action, "("+v+")"); ok && m != "" {
				lr.Macro, lr.Action = m, v
				break
			}
		}
	}

	seen := map[string]bool{}
	opts := trimLeftS(rest)
options:
	for opts != "" {
		for i, o := range ruleOptions {
			if i > 0 && t == "group" {
				break
			}
			for _, alt := range o.alts {
				after, ok := strings.CutPrefix(opts, alt+" ")
				if !ok {
					continue
				}
				var val string
				if o.name == "-log" {
					for _, l := range logLevels {
						if strings.HasPrefix(after, l) {
							val = l
							break
						}
					}
					after = after[len(val):]
				} else {
					val, after = leadingNonSpace(after)
				}
				if val == "" {
					continue
				}
				if seen[o.name] {
					lr.dups = append(lr.dups, o.name)
				}
				seen[o.name] = true
				if strings.HasPrefix(alt, "--") {
					lr.dashdash = append(lr.dashdash, alt)
				}
				*o.field(&lr.Rule) = val
				opts = trimLeftS(after)
				continue options
			}
		}
		return lr, badOptions(opts, t == "group", seen["-i"]) + ": " + skipsLine
	}
	return lr, ""
}

// badOptions explains the text parse_fw_rule could not read.
func badOptions(opts string, group, hadIface bool) string {
	tok, rest := leadingNonSpace(opts)
	if group && strings.HasPrefix(tok, "-") {
		if hadIface || tok == "-i" {
			return "a GROUP rule takes a single -i and nothing else"
		}
		return "a GROUP rule takes only -i, not " + quote(tok)
	}
	for _, o := range ruleOptions {
		if !slices.Contains(o.alts, tok) {
			continue
		}
		switch {
		case trimS(rest) == "":
			return tok + " needs a value"
		case o.name == "-log" && len(rest) > 1 && rest[0] == ' ' && !isSpace(rest[1]):
			lvl, _ := leadingNonSpace(rest[1:])
			return "unknown log level " + quote(lvl) + " (" + strings.Join(logLevels, ", ") + ")"
		default:
			return "exactly one space between " + tok + " and its value"
		}
	}
	switch {
	case tok == "-iface" || tok == "--iface":
		return "unknown option " + quote(tok) + ": the interface option is -i"
	case strings.HasPrefix(tok, "-"):
		return "unknown option " + quote(tok)
	}
	return "unexpected " + quote(tok) + ": options start with '-'"
}

// addrRef is what a -source or -dest value refers to.
type addrRef struct {
	kind  byte // '+' IP set, 'a' alias, 'l' literal
	scope string
	name  string
}

func classifyAddr(v string) addrRef {
	if rest, ok := strings.CutPrefix(v, "+"); ok {
		for _, sc := range []string{"guest/", "dc/", "sdn/"} {
			if n, ok := strings.CutPrefix(rest, sc); ok {
				return addrRef{'+', sc, n}
			}
		}
		return addrRef{'+', "", rest}
	}
	if scope, name, ok := isAliasRef(v); ok {
		return addrRef{'a', scope, name}
	}
	return addrRef{kind: 'l'}
}

type ruleCheck struct {
	errs   []string // verify_rule errors: the rule is kept, not compiled
	params map[string]bool
	drop   string // why pve-firewall skips the whole line
	// strict are Errors for what only pve-firewall accepts: the rule
	// compiles there, but the nftables backend refuses the file.
	strict []string
	fam    int
	famBy  string
}

func (c *ruleCheck) fail(param, msg string) {
	if c.params == nil {
		c.params = map[string]bool{}
	}
	// verify_rule keeps the first error of each parameter.
	if c.params[param] {
		return
	}
	c.params[param] = true
	c.errs = append(c.errs, msg)
}

// setFamily follows verify_rule's $set_ip_version: a rule is IPv4, IPv6 or
// both, and every part of it must agree.
func (c *ruleCheck) setFamily(f int, by string) bool {
	if f == 0 {
		return true
	}
	if c.fam != 0 && c.fam != f {
		return false
	}
	if c.fam == 0 {
		c.fam, c.famBy = f, by
	}
	return true
}

var ruleDirs = map[string][]string{
	"vm":      {"in", "out", "group"},
	"cluster": {"in", "out", "forward", "group"},
	"host":    {"in", "out", "forward", "group"},
	"group":   {"in", "out", "forward"},
}

var ifaceName = regexp.MustCompile(`^[a-zA-Z][a-zA-Z0-9_]{1,20}([:.]\d+)?$`)

func isICMPProto(p string) bool { return p == "icmp" || p == "icmpv6" || p == "ipv6-icmp" }

func knownProto(p string) bool {
	_, byName := protoByName[p]
	_, byNum := protoByNumber[p]
	return byName || byNum || p == "icmpv6"
}

// verifyRule is verify_rule: what makes pve-firewall keep the rule with
// errors, plus the one failure that makes it drop the line.
func (p *parser) verifyRule(r *Rule, typ, env string) ruleCheck {
	var c ruleCheck
	t := asciiLower(typ)
	action := r.Action

	if perlFalse(t) {
		c.fail("type", "missing direction")
	} else if !slices.Contains(ruleDirs[env], t) {
		switch env {
		case "vm":
			c.fail("type", quote(typ)+" is not a direction of a VM firewall rule (IN, OUT or GROUP)")
		case "group":
			c.fail("type", quote(typ)+" is not allowed in a security group (IN, OUT or FORWARD)")
		default:
			c.fail("type", quote(typ)+" is not a direction (IN, OUT, FORWARD or GROUP)")
		}
	}
	switch t {
	case "in", "out", "forward":
		if t == "forward" && action == "REJECT" {
			c.fail("action", "REJECT is not possible in a FORWARD rule")
		}
		if !perlFalse(action) && action != "ACCEPT" && action != "DROP" && action != "REJECT" {
			up := asciiUpper(action)
			switch {
			case up == "ACCEPT" || up == "DROP" || up == "REJECT":
				c.fail("action", "action "+quote(action)+" must be uppercase: "+up)
			case up == "DENY":
				c.fail("action", "unknown action "+quote(action)+": there is no DENY, use DROP or REJECT")
			case strings.Contains(action, "("):
				c.fail("action", "unknown action "+quote(action)+": a macro is written Name(ACCEPT), Name(DROP) or Name(REJECT)")
			default:
				c.fail("action", "unknown action "+quote(action)+" (ACCEPT, DROP or REJECT)")
			}
		}
	case "group":
		if env == "group" {
			c.fail("type", "a security group cannot include another one")
		}
		if !perlFalse(action) && !isName(action) {
			c.fail("action", "invalid security group name "+quote(action))
		}
	}
	if perlFalse(action) {
		c.fail("action", "missing action")
	}

	if !perlFalse(r.Iface) {
		switch {
		case env == "group":
			c.fail("type", "-i is not allowed in a security group rule")
		case !ifaceName.MatchString(r.Iface):
			c.fail("iface", "invalid interface name "+quote(r.Iface))
		case env == "vm" && !isNetN(r.Iface):
			c.fail("iface", "-i must name one of the guest's NICs, net0 to net31, not "+quote(r.Iface))
		}
	}

	var mac *macro
	if r.Macro != "" {
		if mac = macros[asciiLower(r.Macro)]; mac == nil {
			c.fail("macro", "unknown macro "+quote(r.Macro))
		}
	}

	isICMP := false
	if !perlFalse(r.Proto) {
		if !knownProto(r.Proto) {
			msg := "unknown protocol " + quote(r.Proto)
			if lo := asciiLower(r.Proto); lo != r.Proto && knownProto(lo) {
				msg += ": protocol names are lowercase (" + lo + ")"
			} else {
				msg += " (a name or number from /etc/protocols)"
			}
			c.fail("proto", msg)
		}
		switch r.Proto {
		case "icmp":
			c.setFamily(4, "-p icmp")
		case "icmpv6", "ipv6-icmp":
			c.setFamily(6, "-p "+r.Proto)
		}
		isICMP = isICMPProto(r.Proto)
	}

	if !perlFalse(r.DPort) {
		if _, msg := parsePorts(r.DPort, isICMP); msg != "" {
			c.fail("dport", "-dport: "+msg)
		}
		if perlFalse(r.Proto) {
			c.fail("proto", "-dport needs -p with a port protocol (tcp, udp, udplite, dccp or sctp)")
		} else if !protocolsWithPorts[r.Proto] && !isICMP && knownProto(r.Proto) {
			c.fail("dport", "-p "+r.Proto+" has no ports, so -dport cannot be used")
		}
	}
	if !perlFalse(r.ICMPType) {
		if !isICMP {
			c.fail("proto", "-icmp-type needs -p icmp, icmpv6 or ipv6-icmp")
		}
		if !perlFalse(r.DPort) {
			c.fail("icmp-type", "-icmp-type cannot be combined with -dport")
		}
		if r.Proto == "icmp" && !icmpTypes[r.ICMPType] || (r.Proto == "icmpv6" || r.Proto == "ipv6-icmp") && !icmpv6Types[r.ICMPType] {
			c.fail("icmp-type", "invalid icmp-type "+quote(r.ICMPType)+" for -p "+r.Proto+": use a type name such as echo-request, not a number")
		}
	}
	if !perlFalse(r.SPort) {
		if _, msg := parsePorts(r.SPort, false); msg != "" {
			c.fail("sport", "-sport: "+msg)
		}
		if perlFalse(r.Proto) {
			c.fail("proto", "-sport needs -p with a port protocol (tcp, udp, udplite, dccp or sctp)")
		} else if !protocolsWithPorts[r.Proto] && knownProto(r.Proto) {
			c.fail("sport", "-p "+r.Proto+" has no ports, so -sport cannot be used")
		}
	}

	for _, f := range []struct{ opt, param, val string }{{"-source", "source", r.Source}, {"-dest", "dest", r.Dest}} {
		if perlFalse(f.val) || c.drop != "" {
			continue
		}
		ref := classifyAddr(f.val)
		switch ref.kind {
		case '+':
			if env == "host" && isName(ref.name) && !p.clusterHasSet(ref.name) {
				p.vivSets = true
			}
			switch {
			case len(f.val) > 65:
				c.fail(f.param, f.opt+": IP set name too long")
			case !isName(ref.name) || strings.ContainsAny(ref.name, "/"):
				c.fail(f.param, f.opt+": invalid IP set name "+quote(f.val))
			default:
				if msg := p.checkSetRef(ref, env, r.Line); msg != "" {
					c.fail(f.param, f.opt+": "+msg)
				}
			}
		case 'a':
			if env == "host" && (ref.scope != "dc/" || !p.clusterHasAlias(ref.name)) {
				p.vivAliases = true
			}
			if len(f.val) > 64 {
				c.fail(f.param, f.opt+": alias name too long")
				continue
			}
			a, found, checked := p.resolveAlias(ref.scope, ref.name, env)
			if checked && !found {
				c.fail(f.param, f.opt+": "+p.missingAlias(ref, r.Line))
				continue
			}
			if a != nil {
				ac, _ := parseCIDR(a.CIDR)
				if !c.setFamily(ac.r.family(), f.opt+" "+f.val) {
					// This check runs outside verify_rule's eval, so the
					// error escapes parse_fw_rule and the line is lost.
					c.drop = f.opt + ": alias " + quote(f.val) + " is " + familyName(ac.r.family()) + " but the rule is already " + familyName(c.fam) + " (from " + c.famBy + "): " + skipsLine
				}
			}
		default:
			fam, _, msg, loose := parseAddressList(f.val)
			if loose != "" {
				c.strict = append(c.strict, f.opt+": "+loose+"; write it in full")
			}
			if msg != "" {
				c.fail(f.param, f.opt+": "+msg)
			} else if !c.setFamily(fam, f.opt+" "+f.val) {
				c.fail(f.param, f.opt+" is "+familyName(fam)+" but the rule is already "+familyName(c.fam)+" (from "+c.famBy+"): a rule matches one IP version")
			}
		}
	}

	// apply_macro skips a macro made for the other IP version before it
	// checks anything.
	if mac != nil && len(c.errs) == 0 && c.drop == "" && (mac.family == 0 || c.fam == 0 || mac.family == c.fam) {
		rules := mac.rules
		if c.fam == 6 && mac.v6 != nil {
			rules = mac.v6
		}
		given := map[string]string{"-p": r.Proto, "-dport": r.DPort, "-sport": r.SPort}
		for _, mr := range rules {
			for _, kv := range []struct{ opt, v string }{{"-p", mr.proto}, {"-dport", mr.dport}, {"-sport", mr.sport}} {
				if kv.v != "" && given[kv.opt] != "" && given[kv.opt] != kv.v {
					c.fail(kv.opt, quote(kv.opt+" "+given[kv.opt])+" conflicts with macro "+mac.name+", which sets "+kv.opt+" "+kv.v)
				}
			}
		}
	}
	return c
}

func (p *parser) ruleLine(n int, line string) bool {
	lr, drop := lexRule(line)
	lr.Line = n
	p.gluedHash(n, lr)
	if drop != "" {
		p.add(n, Error, drop)
		return false
	}
	env := map[Kind]string{VM: "vm", Cluster: "cluster", Host: "host"}[p.kind]
	if p.sec == secGroup {
		env = "group"
	}
	c := p.verifyRule(&lr.Rule, lr.typ, env)
	if c.drop != "" {
		p.add(n, Error, c.drop)
		return false
	}
	r := lr.Rule
	if mac := macros[asciiLower(r.Macro)]; mac != nil {
		if r.Macro != mac.name {
			p.add(n, Warning, "write the macro as "+mac.name)
		}
		// apply_macro yields nothing when the rule's IP version is not
		// the macro's.
		if len(c.errs) == 0 && mac.family != 0 && c.fam != 0 && mac.family != c.fam {
			p.add(n, Error, "macro "+mac.name+" is "+familyName(mac.family)+"-only but the rule is "+familyName(c.fam)+" (from "+c.famBy+"): the rule compiles to nothing")
		}
	}
	for _, s := range c.strict {
		p.add(n, Error, s)
	}
	if len(c.errs) > 0 {
		r.Invalid = strings.Join(c.errs, "; ")
		p.add(n, Error, r.Invalid+" ("+notCompiled+")")
	}
	if lr.typ != "" && asciiLower(lr.typ) == "group" && lr.typ != "GROUP" {
		// proxmox-firewall only treats a line starting with "GROUP" as a
		// group rule; "group x" fails its parser and with it the file.
		p.add(n, Error, "write GROUP in uppercase: the nftables backend does not recognise "+quote(lr.typ)+" and refuses the whole file")
	}
	for _, d := range lr.dups {
		// pve-firewall overwrites the earlier value without a word; the
		// nftables backend refuses the whole file ("duplicate option").
		p.add(n, Error, d+" is given more than once: pve-firewall uses only the last one, "+quote(d+" "+*fieldOf(&r, d))+", and the nftables backend refuses the whole file")
	}
	p.zeroValues(n, r)
	if r.Invalid == "" {
		p.ruleStyle(n, lr, r)
	}
	if p.sec == secGroup {
		g := &p.file.Groups[p.curGroup]
		g.Rules = append(g.Rules, r)
	} else {
		p.file.Rules = append(p.file.Rules, r)
	}
	return true
}

func fieldOf(r *Rule, opt string) *string {
	for _, o := range ruleOptions {
		if o.name == opt {
			return o.field(r)
		}
	}
	return new(string)
}

// gluedHash reports a '#' that is not preceded by a space. pve-firewall
// (and the nftables backend) cut the line at the first '#' wherever it
// is, so "-dest 10.0.0.0/8#lan -p tcp" is a rule without -p tcp. When
// options that decide the match disappear that way, the rule matches other
// traffic than it says, so that is an Error; a glued comment that hides
// none is read as written, only not as it looks, and is a Warning.
func (p *parser) gluedHash(n int, lr lexedRule) {
	if lr.glued == "" {
		return
	}
	lost := strings.TrimSpace(lr.glued[1:])
	if matchOption.MatchString(lr.glued[1:]) {
		p.add(n, Error, "'#' glued to the text before it starts a comment, so everything after it is ignored, including the rule options in "+quote(lost)+": put them before the '#', and a space before the '#'")
		return
	}
	p.add(n, Warning, "'#' glued to the text before it starts a comment, so "+quote(lost)+" is ignored: put a space before the '#'")
}

// zeroValues warns about options whose value is 0: pve-firewall tests them
// with Perl truthiness, so "0" is the same as leaving the option out.
func (p *parser) zeroValues(n int, r Rule) {
	for _, z := range []struct{ opt, val, means string }{
		{"-i", r.Iface, "every interface"},
		{"-source", r.Source, "every source address"},
		{"-dest", r.Dest, "every destination address"},
		{"-p", r.Proto, "every protocol"},
		{"-dport", r.DPort, "every destination port"},
		{"-sport", r.SPort, "every source port"},
		{"-icmp-type", r.ICMPType, "every ICMP type"},
	} {
		if z.val == "0" {
			p.add(n, Warning, "'"+z.opt+" 0' is read as no "+z.opt+" at all: the rule matches "+z.means)
		}
	}
}

// ruleStyle warns about rules pve-firewall reads as written but that are
// not in the form both backends read alike.
func (p *parser) ruleStyle(n int, lr lexedRule, r Rule) {
	for _, d := range lr.dashdash {
		p.add(n, Warning, "write "+d[1:]+" with one dash: pve-firewall before 4.2 does not know "+d+" and skips the line")
	}
	isICMP := isICMPProto(r.Proto)
	for _, f := range []struct{ opt, val string }{{"-dport", r.DPort}, {"-sport", r.SPort}} {
		if perlFalse(f.val) {
			continue
		}
		ps, _ := parsePorts(f.val, isICMP && f.opt == "-dport")
		for i, name := range ps.names {
			p.add(n, Warning, "port name "+quote(name)+" is looked up in /etc/services on the node: write "+ps.namesNum[i])
		}
		if ps.icmp != "" {
			if r.Proto == "ipv6-icmp" {
				p.add(n, Error, "an ICMP type in -dport does not compile with -p ipv6-icmp: write -icmp-type "+ps.icmp)
			} else {
				p.add(n, Warning, "write -icmp-type "+ps.icmp+" instead of -dport: the nftables backend ignores -dport for ICMP and matches every ICMP type")
			}
		}
	}
	if p.kind == VM && !perlFalse(r.Iface) && p.sec != secGroup {
		if num := r.Iface[3:]; len(num) > 1 && num[0] == '0' || !digitsAtMost(num, 31) {
			p.add(n, Error, "no NIC is called "+quote(r.Iface)+" (net0 to net31): the rule never applies")
		}
	}
}

// resolveAlias looks an alias up the way ipt_gen_src_or_dst_match does at
// compile time: the file's own aliases, then cluster.fw's, as the scope
// allows. checked is false when the answer lies in a cluster.fw this check
// was not given.
func (p *parser) resolveAlias(scope, name, env string) (a *Alias, found, checked bool) {
	local, cluster, known := p.scopes(env)
	if scope != "dc/" && local != nil {
		if a, ok := local.Alias(name); ok {
			return a, true, true
		}
	}
	if scope != "guest/" {
		if known {
			if a, ok := cluster.Alias(name); ok {
				return a, true, true
			}
		} else if scope == "dc/" || local == nil {
			return nil, false, false
		}
	}
	return nil, false, true
}

func (p *parser) resolveSet(ref addrRef, env string) (s *IPSet, found, checked bool) {
	if ref.scope == "sdn/" {
		return nil, false, false
	}
	local, cluster, known := p.scopes(env)
	if ref.scope != "dc/" && local != nil {
		if s, ok := local.IPSet(ref.name); ok {
			return s, true, true
		}
	}
	if ref.scope != "guest/" {
		if known {
			if s, ok := cluster.IPSet(ref.name); ok {
				return s, true, true
			}
		} else if ref.scope == "dc/" || local == nil {
			return nil, false, false
		}
	}
	return nil, false, true
}

// scopes returns where a name used in env resolves: the file's own
// (guest/) names and cluster.fw's (dc/) names. known is false when that
// cluster.fw was not given. An unscoped name in a VM file that is not in the
// file counts as missing: pve-firewall would find it only in cluster.fw, and
// writing dc/ says so.
func (p *parser) scopes(env string) (local, cluster *File, known bool) {
	switch {
	case p.kind == Cluster && env == "ipset":
		return &p.file, &p.file, true
	case p.kind == Cluster:
		// cluster.fw rules compile against host.fw, security group rules
		// against nothing: neither has sets or aliases of its own.
		return nil, &p.file, true
	case p.kind == VM:
		return &p.file, p.cfg.Cluster, p.cfg.Cluster != nil
	}
	return nil, p.cfg.Cluster, p.cfg.Cluster != nil
}

func (p *parser) checkSetRef(ref addrRef, env string, n int) string {
	if _, found, checked := p.resolveSet(ref, env); found || !checked {
		return ""
	}
	msg := "no such IP set " + quote(ref.scope+ref.name)
	lower := asciiLower(ref.name)
	line, inFile := p.laterSets[lower]
	switch {
	case inFile && lower != ref.name:
		return msg + ": pve-firewall stores [IPSET] names in lowercase, so refer to it as +" + ref.scope + lower
	case inFile && ref.scope == "dc/" && p.kind == VM:
		return msg + " in cluster.fw (line " + strconv.Itoa(line) + " defines it in this file: drop the dc/)"
	case ref.scope == "guest/" && p.kind != VM:
		return msg + ": guest/ names a VM's own IP sets, and these rules have none"
	case inFile && line > n:
		return msg + " yet: it is defined further down, on line " + strconv.Itoa(line) + ", and pve-firewall resolves names top-down, so put the [IPSET] section above [RULES]"
	case inFile && ref.scope != "dc/":
		return msg + ": the [IPSET] section on line " + strconv.Itoa(line) + " was not read (see the finding there)"
	case p.kind == VM && ref.scope == "" && p.cfg.Cluster == nil:
		return msg + " in this file (for a cluster.fw set, write +dc/" + ref.name + ")"
	}
	return msg
}

func (p *parser) missingAlias(ref addrRef, n int) string {
	msg := "no such alias " + quote(ref.scope+ref.name)
	line, inFile := p.laterAliases[asciiLower(ref.name)]
	switch {
	case ref.scope == "guest/" && p.kind != VM:
		return msg + ": guest/ names a VM's own aliases, and these rules have none"
	case inFile && line > n && ref.scope != "dc/":
		return msg + " yet: it is defined further down, on line " + strconv.Itoa(line) + ", and pve-firewall resolves names top-down, so put [ALIASES] above [RULES]"
	case inFile && ref.scope != "dc/":
		return msg + ": its definition on line " + strconv.Itoa(line) + " was not read (see the finding there)"
	case p.kind == VM && ref.scope == "" && p.cfg.Cluster == nil:
		return msg + " in this file (for a cluster.fw alias, write dc/" + ref.name + ")"
	}
	return msg
}

func (p *parser) clusterHasSet(name string) bool {
	if p.cfg.Cluster == nil {
		return false
	}
	_, ok := p.cfg.Cluster.IPSet(name)
	return ok
}

func (p *parser) clusterHasAlias(name string) bool {
	if p.cfg.Cluster == nil {
		return false
	}
	_, ok := p.cfg.Cluster.Alias(name)
	return ok
}

func isNetN(s string) bool {
	num, ok := strings.CutPrefix(s, "net")
	return ok && isDigits(num)
}
