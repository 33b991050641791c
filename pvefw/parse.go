package pvefw

import (
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"
)

type section int

const (
	secNone section = iota
	secOptions
	secAliases
	secRules
	secIPSet
	secGroup
)

const (
	skipsLine   = "pve-firewall skips the line"
	notCompiled = "pve-firewall keeps the rule but never compiles it"
	bom         = "\xef\xbb\xbf"
)

type parser struct {
	cfg   Config
	kind  Kind
	name  string
	lines []string
	file  File

	sec      section
	secLabel string // "[RULES]", for messages
	curSet   int    // index into file.IPSets while sec == secIPSet
	curGroup int    // index into file.Groups while sec == secGroup
	setKeys  map[string]int

	// notHeader is the last line that looked like a section header but is
	// not one to pve-firewall, until the next real header: the lines after
	// it are read as part of the previous section, or skipped.
	notHeader     int
	notHeaderText string

	optionsLine int
	optSeen     map[string]int
	aliasSeen   map[string]int
	setSeen     map[string]int
	groupSeen   map[string]int

	// laterSets and laterAliases record where names are defined anywhere
	// in the file, to explain a reference that comes before its definition.
	laterSets    map[string]int
	laterAliases map[string]int

	// vivSets and vivAliases reproduce a Perl autovivification in
	// verify_rule: once a host.fw rule has looked a name up in the file's
	// own (non-existent) IP sets or aliases, the lookup has created that
	// table, and from then on generic_fw_config_parser accepts [IPSET]
	// or [ALIASES] headers in host.fw.
	vivSets, vivAliases bool

	findings []Finding
}

func newParser(c Config, name string, data []byte) *parser {
	s := string(data)
	lines := strings.Split(s, "\n")
	if len(lines) > 0 && lines[len(lines)-1] == "" {
		lines = lines[:len(lines)-1]
	}
	return &parser{
		cfg:          c,
		kind:         c.Kind,
		name:         name,
		lines:        lines,
		file:         File{Name: name, Kind: c.Kind},
		optSeen:      map[string]int{},
		aliasSeen:    map[string]int{},
		setSeen:      map[string]int{},
		groupSeen:    map[string]int{},
		laterSets:    map[string]int{},
		laterAliases: map[string]int{},
	}
}

func (p *parser) add(line int, sev Severity, msg string) {
	if line < 1 {
		line = 1
	}
	p.findings = append(p.findings, Finding{File: p.name, Line: line, Severity: sev, Message: msg})
}

// has reports whether the file kind has section s: generic_fw_config_parser
// recognises only the headers of sections the kind has.
func (p *parser) has(s section) bool {
	switch s {
	case secAliases:
		return p.kind != Host || p.vivAliases
	case secIPSet:
		return p.kind != Host || p.vivSets
	case secGroup:
		return p.kind == Cluster
	}
	return true
}

func (p *parser) run() {
	p.prescan()
	if len(p.lines) == 0 || isBlank(strings.Join(p.lines, "")) {
		// generic_fw_config_parser returns {} for an empty file, and a VM
		// whose file has no options is left out of the firewall entirely.
		p.add(1, Error, "the file is empty, so it configures no firewall at all")
		return
	}
	for i, raw := range p.lines {
		p.line(i+1, raw)
	}
	p.finish()
}

// prescan finds where IP sets and aliases are defined, for messages only.
func (p *parser) prescan() {
	sec := secNone
	for i, raw := range p.lines {
		line := trimH(raw)
		if h, ok := p.parseHeader(line); ok {
			sec = h.sec
			if h.sec == secIPSet {
				if _, dup := p.laterSets[asciiLower(h.name)]; !dup {
					p.laterSets[asciiLower(h.name)] = i + 1
				}
			}
			continue
		}
		if sec == secAliases {
			name, _ := leadingNonSpace(line)
			if _, dup := p.laterAliases[asciiLower(name)]; !dup && isName(name) {
				p.laterAliases[asciiLower(name)] = i + 1
			}
		}
	}
}

type header struct {
	sec     section
	label   string
	name    string // as written, for [IPSET name] and [group name]
	comment string
}

// parseHeader recognises exactly what generic_fw_config_parser does:
// [OPTIONS], [ALIASES] and [RULES] with nothing after them, and [IPSET
// name] / [group name] optionally followed by a comment, all
// case-insensitive, and only the sections the file kind has.
func (p *parser) parseHeader(line string) (header, bool) {
	for _, h := range []struct {
		sec   section
		label string
	}{{secOptions, "[OPTIONS]"}, {secAliases, "[ALIASES]"}, {secRules, "[RULES]"}} {
		if p.has(h.sec) && asciiLower(line) == asciiLower(h.label) {
			return header{sec: h.sec, label: h.label}, true
		}
	}
	for _, h := range []struct {
		sec     section
		keyword string
	}{{secGroup, "group"}, {secIPSet, "ipset"}} {
		if !p.has(h.sec) {
			continue
		}
		if name, comment, ok := namedHeader(line, h.keyword); ok {
			label := "[IPSET " + name + "]"
			if h.sec == secGroup {
				label = "[group " + name + "]"
			}
			return header{sec: h.sec, label: label, name: name, comment: comment}, true
		}
	}
	return header{}, false
}

// namedHeader matches /^\[keyword\s+(\S+)\]\s*(?:#\s*(.*?)\s*)?$/i,
// backtracking like Perl: the name is the longest \S+ run that a ']' and an
// optional comment can follow.
func namedHeader(line, keyword string) (name, comment string, ok bool) {
	prefix := "[" + keyword
	if len(line) <= len(prefix) || asciiLower(line[:len(prefix)]) != prefix || !isSpace(line[len(prefix)]) {
		return "", "", false
	}
	rest := trimLeftS(line[len(prefix):])
	tok, after := leadingNonSpace(rest)
	for k := len(tok) - 1; k >= 1; k-- {
		if tok[k] != ']' {
			continue
		}
		tail := trimLeftS(tok[k+1:] + after)
		switch {
		case tail == "":
			return tok[:k], "", true
		case tail[0] == '#':
			return tok[:k], trimS(tail[1:]), true
		}
	}
	return "", "", false
}

func (p *parser) line(n int, raw string) {
	line := trimH(raw)
	if strings.HasPrefix(line, "#") || isBlank(line) {
		return
	}
	before := len(p.findings)
	if h, ok := p.parseHeader(line); ok {
		p.enterSection(n, h)
		p.checkBytesIfClean(n, before, raw, line)
		return
	}
	if looksLikeHeader(line) {
		p.badHeader(n, line)
		return
	}

	accepted := false
	switch p.sec {
	case secNone:
		msg := "line outside any section: " + skipsLine
		if n == 1 && strings.HasPrefix(line, bom) {
			msg = "UTF-8 byte order mark at the start of the file: pve-firewall does not strip it, so " + skipsLine
		} else if p.notHeader == 0 {
			msg += " (sections start with a header such as [OPTIONS] or [RULES])"
		}
		p.add(n, Error, msg)
	case secOptions:
		accepted = p.optionLine(n, line)
	case secAliases:
		accepted = p.aliasLine(n, line)
	case secIPSet:
		accepted = p.ipsetLine(n, line)
	case secRules, secGroup:
		accepted = p.ruleLine(n, line)
	}

	if p.notHeader != 0 {
		ctx := "line " + strconv.Itoa(p.notHeader) + " " + quote(p.notHeaderText) + " is not a section header"
		if accepted && len(p.findings) == before {
			p.add(n, Warning, "read as part of "+p.secLabel+" because "+ctx)
		} else {
			for i := before; i < len(p.findings); i++ {
				if p.findings[i].Line == n && p.findings[i].Severity == Error {
					p.findings[i].Message += " (" + ctx + ")"
					break
				}
			}
		}
	}
	p.checkBytesIfClean(n, before, raw, line)
}

// checkBytesIfClean runs checkBytes unless the line already has an Error,
// which then says more than a remark about its bytes.
func (p *parser) checkBytesIfClean(n, before int, raw, line string) {
	for _, f := range p.findings[before:] {
		if f.Line == n && f.Severity == Error {
			return
		}
	}
	p.checkBytes(n, raw, line)
}

// checkBytes flags what pve-firewall happens to accept but that does not
// belong in a firewall file: the nftables backend, editors and diffs treat
// these bytes differently.
func (p *parser) checkBytes(n int, raw, line string) {
	body := line
	if i := strings.IndexByte(body, '#'); i >= 0 {
		body = body[:i]
	}
	switch {
	case strings.ContainsRune(raw, '\r'):
		p.add(n, Error, "carriage return (CRLF line ending): pve-firewall does not recognise [OPTIONS], [RULES] or [ALIASES] headers that end in one; use LF line endings")
	case !utf8.ValidString(raw):
		p.add(n, Error, "the line is not valid UTF-8")
	case strings.IndexFunc(raw, func(r rune) bool { return r < ' ' && r != '\t' || r == 0x7f }) >= 0:
		p.add(n, Error, "control character in the line")
	case strings.IndexFunc(body, func(r rune) bool { return r > 0x7e }) >= 0:
		p.add(n, Error, "non-ASCII character outside a comment: pve-firewall's names, addresses and options are ASCII")
	}
}

func looksLikeHeader(line string) bool {
	return strings.HasPrefix(strings.TrimPrefix(line, bom), "[")
}

func (p *parser) enterSection(n int, h header) {
	p.notHeader, p.notHeaderText = 0, ""
	p.sec, p.secLabel = h.sec, h.label
	switch h.sec {
	case secOptions:
		if p.optionsLine == 0 {
			p.optionsLine = n
		}
	case secAliases:
		if p.kind == Host {
			p.add(n, Error, "host.fw has no [ALIASES] section: pve-firewall reads this one only because a rule above looked up an alias, and host rules cannot use it")
		}
	case secIPSet, secGroup:
		if p.kind == Host {
			p.add(n, Error, "host.fw has no [IPSET] sections: pve-firewall reads this one only because a rule above looked up an IP set, and host rules cannot use it")
		}
		name := asciiLower(h.name)
		what, max := "IP set", 64
		if h.sec == secGroup {
			what, max = "security group", 18
		}
		var msg string
		switch {
		case len(name) > max:
			msg = what + " name " + quote(h.name) + " is longer than " + strconv.Itoa(max) + " characters"
		case !isName(name):
			msg = "invalid " + what + " name " + quote(h.name) + " (a letter, then letters, digits, '-' or '_')"
		}
		if msg != "" {
			// pve-firewall leaves the section entirely: the lines up to
			// the next header are outside any section and skipped.
			p.add(n, Error, msg+": "+skipsLine+" and every line up to the next section header")
			p.sec, p.secLabel = secNone, ""
			p.notHeader, p.notHeaderText = n, strings.TrimSpace(h.label)
			return
		}
		if name != h.name {
			ref := "+" + name
			if h.sec == secGroup {
				ref = "GROUP " + name
			}
			p.add(n, Warning, "pve-firewall stores this "+what+" as "+quote(name)+" and references are case-sensitive: name it in lowercase and refer to it as "+ref)
		}
		seen := p.setSeen
		if h.sec == secGroup {
			seen = p.groupSeen
		}
		if prev, dup := seen[name]; dup {
			p.add(n, Error, what+" "+quote(name)+" is already defined on line "+strconv.Itoa(prev)+": pve-firewall throws away the entries defined there, and the nftables backend refuses the file")
		}
		seen[name] = n
		if h.sec == secIPSet {
			p.setKeys = map[string]int{}
			if i, ok := p.file.IPSet(name); ok {
				i.Line, i.Comment, i.Entries = n, h.comment, nil
				p.curSet = p.setIndex(name)
			} else {
				p.file.IPSets = append(p.file.IPSets, IPSet{Line: n, Name: name, Comment: h.comment})
				p.curSet = len(p.file.IPSets) - 1
			}
		} else {
			if g, ok := p.file.Group(name); ok {
				g.Line, g.Comment, g.Rules = n, h.comment, nil
				p.curGroup = p.groupIndex(name)
			} else {
				p.file.Groups = append(p.file.Groups, Group{Line: n, Name: name, Comment: h.comment})
				p.curGroup = len(p.file.Groups) - 1
			}
		}
	}
}

func (p *parser) setIndex(name string) int {
	for i := range p.file.IPSets {
		if p.file.IPSets[i].Name == name {
			return i
		}
	}
	return -1
}

func (p *parser) groupIndex(name string) int {
	for i := range p.file.Groups {
		if p.file.Groups[i].Name == name {
			return i
		}
	}
	return -1
}

// badHeader reports a line that starts with '[' but is no section header
// to pve-firewall. It reads such a line as an ordinary line of the current
// section, which never yields anything useful, and the section goes on.
func (p *parser) badHeader(n int, line string) {
	text := strings.TrimPrefix(line, bom)
	var why string
	lower := asciiLower(text)
	switch {
	case n == 1 && strings.HasPrefix(line, bom):
		why = "UTF-8 byte order mark before " + quote(text) + ": pve-firewall does not strip it and does not see a section header"
	case strings.ContainsRune(text, '\r'):
		why = quote(strings.TrimRight(text, "\r")) + " ends in a carriage return (CRLF line endings): pve-firewall does not recognise it as a section header"
	default:
		for _, label := range []string{"[options]", "[aliases]", "[rules]"} {
			if rest, ok := strings.CutPrefix(lower, label); ok {
				up := asciiUpper(label)
				if !p.has(map[string]section{"[options]": secOptions, "[aliases]": secAliases, "[rules]": secRules}[label]) {
					why = p.kind.String() + " firewall files have no " + up + " section"
				} else if trimS(rest) == "" {
					why = "a control character after " + up + " makes it an ordinary line to pve-firewall, not a section header"
				} else if strings.HasPrefix(trimLeftS(rest), "#") {
					why = "a comment after " + up + " makes it an ordinary line to pve-firewall, not a section header"
				} else {
					why = "text after " + up + " makes it an ordinary line to pve-firewall, not a section header"
				}
				break
			}
		}
		if why != "" {
			break
		}
		switch {
		case strings.HasPrefix(lower, "[group"):
			if p.kind != Cluster {
				why = "security groups can only be defined in cluster.fw"
			} else {
				why = "malformed security group header: write [group name]"
			}
		case strings.HasPrefix(lower, "[ipset"):
			if p.kind == Host {
				why = "host.fw has no [IPSET] sections"
			} else {
				why = "malformed IP set header: write [IPSET name]"
			}
		default:
			why = "unknown section " + quote(text) + " (sections are [OPTIONS], [ALIASES], [IPSET name], [RULES] and, in cluster.fw, [group name])"
		}
	}
	if p.sec == secNone {
		why += ", so " + skipsLine + " and the lines after it until the next section header"
	} else {
		why += ", so the lines after it are still read as part of " + p.secLabel
	}
	p.add(n, Error, why)
	// pve-firewall still reads the line in the current section; in
	// [RULES] that leaves a broken rule in its rule list, which Parse keeps
	// too so its rules match what the API would list.
	if p.sec == secRules || p.sec == secGroup || p.sec == secIPSet {
		keep := len(p.findings)
		if p.sec == secIPSet {
			p.ipsetLine(n, line)
		} else {
			p.ruleLine(n, line)
		}
		p.findings = p.findings[:keep]
	}
	p.notHeader, p.notHeaderText = n, text
}

func (p *parser) optionLine(n int, line string) bool {
	r := parseOption(p.kind, line)
	if r.err != "" {
		msg := r.err + ": " + skipsLine
		if def, ok := optionDefaults[p.kind][r.key]; ok {
			if _, set := p.optSeen[r.key]; !set {
				msg += ", and " + r.key + " keeps its default, " + def
			}
		}
		p.add(n, Error, msg)
		return false
	}
	if prev, dup := p.optSeen[r.key]; dup {
		p.add(n, Error, r.key+" is already set on line "+strconv.Itoa(prev)+": pve-firewall uses the last value, and the nftables backend refuses the file")
	}
	p.optSeen[r.key] = n
	for _, e := range r.errs {
		p.add(n, Error, e)
	}
	for _, w := range r.warns {
		p.add(n, Warning, w)
	}
	p.file.Options = append(p.file.Options, Option{Line: n, Key: r.key, Value: r.value})
	return true
}

func (p *parser) aliasLine(n int, line string) bool {
	body, comment := line, ""
	if i := strings.IndexByte(body, '#'); i >= 0 {
		body, comment = trimRightS(body[:i]), trimS(body[i+1:])
	}
	if strings.ContainsRune(body, '\r') {
		p.add(n, Error, "carriage return (CRLF line ending): pve-firewall cannot read the alias and silently ignores the line")
		return false
	}
	name, rest := leadingNonSpace(body)
	cidr := ""
	if len(rest) > 0 && isSpace(rest[0]) {
		cidr = rest[1:]
	}
	if name == "" || cidr == "" || strings.IndexFunc(cidr, func(r rune) bool { return r < 0x80 && isSpace(byte(r)) }) >= 0 {
		msg := "an alias is a name, one space, and one address or CIDR"
		if f := strings.Fields(body); len(f) == 2 {
			msg = "exactly one space between the alias name and its address"
		}
		// parse_alias returns nothing and the caller stores nothing: the
		// alias is lost without even a warning.
		p.add(n, Error, msg+": pve-firewall silently ignores the line")
		return false
	}
	c, msg := parseCIDR(cidr)
	if msg != "" {
		p.add(n, Error, msg+": "+skipsLine)
		return false
	}
	// From here on pve-firewall stores the alias, whatever else is wrong.
	p.file.Aliases = append(p.file.Aliases, Alias{Line: n, Name: name, CIDR: normalizeCIDR(cidr), Comment: comment})
	key := asciiLower(name)
	if prev, dup := p.aliasSeen[key]; dup {
		p.add(n, Error, "alias "+quote(name)+" is already defined on line "+strconv.Itoa(prev)+": pve-firewall uses the last one, and the nftables backend refuses the file")
	}
	p.aliasSeen[key] = n
	switch {
	case !isName(name) || len(name) > 64:
		p.add(n, Error, "invalid alias name "+quote(name)+" (a letter, then letters, digits, '-' or '_', 2-64 characters): no rule can refer to it")
	case c.tooLong:
		p.add(n, Error, tooLongMsg(cidr)+": iptables refuses it, and then pve-firewall cannot apply any rule change")
	case c.hostBits:
		p.add(n, Warning, quote(cidr)+" has host bits set: it is read as the network "+prefixString(c.r, cidr))
	}
	return true
}

func prefixString(r ipRange, cidr string) string {
	_, bits, _ := strings.Cut(cidr, "/")
	return r.lo.String() + "/" + bits
}

// normalizeCIDR drops a full-length prefix, as parse_ip_or_cidr does.
func normalizeCIDR(c string) string {
	if a, bits, ok := strings.Cut(c, "/"); ok {
		if addr, good := parseAddr(a); good && bits == strconv.Itoa(maxBits(addr)) {
			return a
		}
	}
	return c
}

func (p *parser) ipsetLine(n int, line string) bool {
	body, comment := line, ""
	if i := strings.IndexByte(body, '#'); i >= 0 {
		body, comment = body[:i], trimS(body[i+1:])
	}
	body = trimS(body)
	nomatch := strings.HasPrefix(body, "!")
	if nomatch {
		body = trimLeftS(body[1:])
	}
	set := &p.file.IPSets[p.curSet]
	if tok, rest := leadingNonSpace(body); tok == "" || rest != "" {
		p.add(n, Error, "an IP set line holds one address, CIDR or alias, optionally after '!': "+skipsLine)
		return false
	}
	e := IPSetEntry{Line: n, CIDR: body, NoMatch: nomatch, Comment: comment}
	var warn, tooLong string
	if scope, name, ok := isAliasRef(body); ok {
		if _, found, checked := p.resolveAlias(scope, name, "ipset"); checked && !found {
			e.Invalid = p.missingAlias(addrRef{'a', scope, name}, n)
		}
	} else {
		c, msg := parseCIDR(body)
		switch {
		case msg != "":
			e.Invalid = msg
		case strings.Contains(body, "/") && strings.Trim(body[strings.IndexByte(body, '/')+1:], "0") == "":
			e.Invalid = "a /0 prefix is not allowed in IP set entries"
		case c.tooLong:
			tooLong = tooLongMsg(body) + ": ipset refuses it, and then pve-firewall cannot apply any rule change"
		case c.hostBits:
			warn = quote(body) + " has host bits set: the set holds the network " + prefixString(c.r, body)
		}
		e.CIDR = normalizeCIDR(body)
	}
	if prev, dup := p.setKeys[e.CIDR]; dup && e.Invalid == "" {
		e.Invalid = "duplicate entry (line " + strconv.Itoa(prev) + ")"
	}
	if _, dup := p.setKeys[e.CIDR]; !dup {
		p.setKeys[e.CIDR] = n
	}
	set.Entries = append(set.Entries, e)
	if e.Invalid != "" {
		p.add(n, Error, e.Invalid+": pve-firewall leaves this entry out of IP set "+quote(set.Name))
		return false
	}
	if tooLong != "" {
		p.add(n, Error, tooLong)
	}
	if warn != "" {
		p.add(n, Warning, warn)
	}
	return true
}

// result merges the findings of each line into one, the most severe first.
func (p *parser) result() []Finding {
	byLine := map[int][]Finding{}
	var order []int
	for _, f := range p.findings {
		if _, ok := byLine[f.Line]; !ok {
			order = append(order, f.Line)
		}
		byLine[f.Line] = append(byLine[f.Line], f)
	}
	sort.Ints(order)
	out := make([]Finding, 0, len(order))
	for _, n := range order {
		fs := byLine[n]
		sort.SliceStable(fs, func(i, j int) bool { return fs[i].Severity > fs[j].Severity })
		msgs := make([]string, 0, len(fs))
		seen := map[string]bool{}
		for _, f := range fs {
			if !seen[f.Message] {
				seen[f.Message] = true
				msgs = append(msgs, f.Message)
			}
		}
		out = append(out, Finding{File: p.name, Line: n, Severity: fs[0].Severity, Message: strings.Join(msgs, "; ")})
	}
	return out
}
