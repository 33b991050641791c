package pvefw

import (
	"bufio"
	"fmt"
	"os"
	"regexp"
	"sort"
	"strings"
	"testing"
)

// testdata/testvectors.txt is research output: each "=== Vn: title" block
// holds a <vmid>.fw ("    | " lines) and what the real pve-firewall 6.0.4
// parser made of it ("    > " lines). The test reads the file itself, so a
// vector added there fails here until it has an expectation.

type vector struct {
	id, title string
	file      []string
	out       []string
}

func readVectors(t testing.TB) []vector {
	t.Helper()
	f, err := os.Open("testdata/testvectors.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var vs []vector
	head := regexp.MustCompile(`^=== (V\d+): (.*)$`)
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case head.MatchString(line):
			m := head.FindStringSubmatch(line)
			vs = append(vs, vector{id: m[1], title: m[2]})
		case len(vs) == 0:
			t.Fatalf("text before the first vector: %q", line)
		case line == "    |" || strings.HasPrefix(line, "    | "):
			vs[len(vs)-1].file = append(vs[len(vs)-1].file, strings.TrimPrefix(strings.TrimPrefix(line, "    |"), " "))
		case line == "    >" || strings.HasPrefix(line, "    > "):
			vs[len(vs)-1].out = append(vs[len(vs)-1].out, strings.TrimPrefix(strings.TrimPrefix(line, "    >"), " "))
		default:
			t.Fatalf("unrecognised line in the vectors file: %q", line)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return vs
}

type want struct {
	line int
	sev  Severity
	text string // a part of the message
}

// vectorWants is the decision for every vector: each finding Check must
// give, and no other. Errors: pve-firewall skips, keeps-uncompiled or
// loses the line (or the nftables backend refuses the file: V22). Warnings:
// accepted but read differently from how it looks (V31, V34), or a
// consequence reported on the [OPTIONS] header (policy_out/enable unset).
var vectorWants = map[string][]want{
	"V1":  {{5, Error, "-dport needs -p"}},
	"V2":  {{5, Error, "'accept' must be uppercase"}},
	"V3":  {{5, Error, "there is no DENY"}},
	"V4":  {{5, Error, "written 8000:8080"}},
	"V5":  {{5, Error, "backwards range '8080:8000'"}},
	"V6":  {{5, Error, "more than 15"}},
	"V7":  {{5, Error, "host bits set: the network is 192.168.1.0/24"}},
	"V8":  {{5, Error, "a range cannot be part of a list"}},
	"V9":  {{5, Error, "stray comma"}},
	"V10": {{5, Error, "mixes IPv4 and IPv6"}},
	"V11": {{5, Error, "-dest is IPv6 but the rule is already IPv4"}},
	"V12": {{5, Error, "host names are not resolved"}, {6, Error, "no such alias 'nas'"}},
	"V13": {{5, Error, "exactly one space between -dport and its value"}},
	"V14": {{5, Error, "a space after '|'"}},
	"V15": {{5, Error, "unknown log level 'warn'"}},
	"V16": {{5, Error, "protocol names are lowercase (tcp)"}},
	"V17": {{5, Error, "-p gre has no ports"}},
	"V18": {{5, Error, "invalid icmp-type '8'"}},
	"V19": {{5, Error, "not 'eth0'"}},
	"V20": {{5, Error, "'FORWARD' is not a direction of a VM firewall rule"}},
	"V21": {{5, Error, "GROUP rule takes only -i"}},
	"V22": {{5, Error, "-dport is given more than once: pve-firewall uses only the last one, '-dport 8443'"}},
	"V23": {{5, Error, "the interface option is -i"}},
	"V24": {{5, Error, "defined further down, on line 6"}},
	"V25": {
		{1, Warning, "policy_out is not set"},
		{3, Warning, "stores this IP set as 'public4'"},
		{6, Error, "refer to it as +public4"},
	},
	"V26": {
		{1, Error, "a comment after [OPTIONS]"},
		{2, Error, "line 1 '[OPTIONS] # vm options' is not a section header"},
		{3, Error, "line outside any section"},
	},
	"V27": {
		{1, Warning, "enable is not set"},
		{2, Error, "comment is not allowed on an option line"},
		{3, Error, "policy_out keeps its default, ACCEPT"},
	},
	"V28": {{1, Warning, "enable is not set"}, {2, Error, "'true' is not 0 or 1"}},
	"V29": {{1, Warning, "policy_out is not set"}, {3, Error, "did you mean policy_out?"}},
	"V30": {{1, Error, "line outside any section"}},
	"V31": {{3, Warning, "write DROP in uppercase"}},
	"V32": {
		{1, Warning, "policy_out is not set"},
		{4, Error, "exactly one space between the alias name and its address"},
		{6, Error, "its definition on line 4 was not read"},
	},
	"V33": {
		{1, Warning, "policy_out is not set"},
		{4, Error, "/0 prefix is not allowed"},
		{6, Error, "IP set 'all4' has no usable entries"},
	},
	"V34": {{5, Warning, "'#' glued"}},
}

const wantVectors = 34

func TestVectors(t *testing.T) {
	vs := readVectors(t)
	if len(vs) != wantVectors {
		t.Fatalf("testdata/testvectors.txt has %d vectors, want %d", len(vs), wantVectors)
	}
	seen := map[string]bool{}
	for _, v := range vs {
		seen[v.id] = true
		t.Run(v.id, func(t *testing.T) {
			wants, ok := vectorWants[v.id]
			if !ok {
				t.Fatalf("no expectation for %s (%s)", v.id, v.title)
			}
			data := []byte(strings.Join(v.file, "\n") + "\n")
			got := Check("100.fw", data)
			checkFindings(t, got, wants)
			// Whatever the real parser warned about is an Error here.
			for _, n := range pveWarnedLines(v.out) {
				if f, ok := findingAt(got, n); !ok || f.Severity != Error {
					t.Errorf("pve-firewall warns about line %d, want an Error there; got %v", n, got)
				}
			}
			checkParsedLikePVE(t, data, v.out)
		})
	}
	for id := range vectorWants {
		if !seen[id] {
			t.Errorf("expectation for %s, which is not in testdata/testvectors.txt", id)
		}
	}
}

func checkFindings(t *testing.T, got []Finding, wants []want) {
	t.Helper()
	if len(got) != len(wants) {
		t.Errorf("got %d findings, want %d:\n%s", len(got), len(wants), dump(got))
	}
	for _, w := range wants {
		f, ok := findingAt(got, w.line)
		switch {
		case !ok:
			t.Errorf("no finding on line %d, want %s containing %q", w.line, w.sev, w.text)
		case f.Severity != w.sev:
			t.Errorf("line %d: got %s, want %s: %s", w.line, f.Severity, w.sev, f.Message)
		case !strings.Contains(f.Message, w.text):
			t.Errorf("line %d: message %q lacks %q", w.line, f.Message, w.text)
		}
	}
}

func findingAt(fs []Finding, line int) (Finding, bool) {
	for _, f := range fs {
		if f.Line == line {
			return f, true
		}
	}
	return Finding{}, false
}

func dump(fs []Finding) string {
	var b strings.Builder
	for _, f := range fs {
		b.WriteString("\t" + f.String() + "\n")
	}
	return b.String()
}

var pveLine = regexp.MustCompile(`^WARN: .*\(line (\d+)\)`)

func pveWarnedLines(out []string) []int {
	var ns []int
	for _, o := range out {
		if m := pveLine.FindStringSubmatch(o); m != nil {
			var n int
			fmt.Sscan(m[1], &n)
			ns = append(ns, n)
		}
	}
	return ns
}

var pveRule = regexp.MustCompile(`^rule +(\d+) \[(ok|ERRORS\(.*\))\] (\S+) (\S+) src=(\S+) dst=(\S+) p=(\S+) dport=(\S+) ipv=(\S+)$`)

// checkParsedLikePVE compares Parse with what the real parser kept: the
// options, each rule (valid or kept with errors, and its fields) and the
// IP sets.
func checkParsedLikePVE(t *testing.T, data []byte, out []string) {
	t.Helper()
	f, _ := Parse("100.fw", data)
	var rules []string
	var opts string
	var sets []string
	for _, o := range out {
		switch {
		case strings.HasPrefix(o, "vm options:"):
			opts = strings.TrimSpace(strings.TrimPrefix(o, "vm options:"))
		case strings.HasPrefix(o, "rule "):
			m := pveRule.FindStringSubmatch(o)
			if m == nil {
				t.Fatalf("unrecognised rule output %q", o)
			}
			status := "ok"
			if m[2] != "ok" {
				status = "errors"
			}
			rules = append(rules, strings.Join([]string{status, m[3], m[4], m[5], m[6], m[7], m[8]}, " "))
		case strings.HasPrefix(o, "ipset "):
			sets = append(sets, o)
		}
	}

	var gotOpts []string
	for _, o := range f.Options {
		last, _ := f.Option(o.Key)
		s := o.Key + "=" + last.Value
		if !contains(gotOpts, s) {
			gotOpts = append(gotOpts, s)
		}
	}
	sort.Strings(gotOpts)
	if got := strings.Join(gotOpts, ", "); got != opts {
		t.Errorf("options: got %q, pve-firewall read %q", got, opts)
	}

	var gotRules []string
	dash := func(s string) string {
		if perlFalse(s) {
			return "-"
		}
		return s
	}
	for _, r := range f.Rules {
		status := "ok"
		if r.Invalid != "" {
			status = "errors"
		}
		gotRules = append(gotRules, strings.Join([]string{status, r.Dir, r.Action, dash(r.Source), dash(r.Dest), dash(r.Proto), dash(r.DPort)}, " "))
	}
	if strings.Join(gotRules, "\n") != strings.Join(rules, "\n") {
		t.Errorf("rules:\ngot\n\t%s\npve-firewall kept\n\t%s", strings.Join(gotRules, "\n\t"), strings.Join(rules, "\n\t"))
	}

	var gotSets []string
	for _, s := range f.IPSets {
		var es []string
		for _, e := range s.Entries {
			x := e.CIDR
			if e.Invalid != "" {
				x += "(ERR)"
			}
			es = append(es, x)
		}
		gotSets = append(gotSets, "ipset "+s.Name+": "+strings.Join(es, " "))
	}
	if strings.Join(gotSets, "\n") != strings.Join(sets, "\n") {
		t.Errorf("ipsets: got %q, pve-firewall read %q", gotSets, sets)
	}
}

func contains(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}
