package steps

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"openclaw-harden/assets"
	"openclaw-harden/system"
)

// fakeUFW is a small UFW for unit tests: it keeps the rules in the temp root's /etc/ufw/user*.rules (as
// "### tuple ###" lines, the way UFW writes them) and implements the commands Step 2 runs with UFW's
// semantics: numbering IPv4 rules first, then IPv6; `insert N` only into the IPv4 part; a rule with "any"
// addresses getting an IPv6 twin; adding an existing rule is skipped; `--force reset` restores the stock
// files and disables UFW. Every other command goes to the FakeRunner.
type fakeUFW struct {
	root  string
	inner *system.FakeRunner

	mu       sync.Mutex
	active   bool
	calls    []string // every ufw command, in order
	resets   int
	stockOut string // what `ufw --force reset` puts in after.rules
}

func (f *fakeUFW) Run(ctx context.Context, c system.Cmd) ([]byte, error) {
	if len(c.Argv) == 3 && c.Argv[0] == "iptables" && c.Argv[1] == "-S" {
		return f.iptables(c.Argv[2])
	}
	if len(c.Argv) == 0 || c.Argv[0] != "ufw" {
		return f.inner.Run(ctx, c)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, strings.Join(c.Argv, " "))
	out, err := f.ufw(c.Argv[1:])
	if err != nil {
		return []byte(out), &system.CmdError{Argv: c.Argv, ExitCode: 1, Output: err.Error(), Err: errors.New("exit status 1")}
	}
	return []byte(out), nil
}

func (f *fakeUFW) path(p string) string { return filepath.Join(f.root, p) }

func (f *fakeUFW) load() (v4, v6 []ufwRule, err error) {
	for _, x := range []struct {
		p   string
		v6  bool
		dst *[]ufwRule
	}{{ufwUserRules, false, &v4}, {ufwUser6Rules, true, &v6}} {
		b, err := os.ReadFile(f.path(x.p))
		if err != nil {
			return nil, nil, err
		}
		if *x.dst, err = parseUserRules(string(b), x.v6); err != nil {
			return nil, nil, fmt.Errorf("ERROR: %v", err)
		}
	}
	return v4, v6, nil
}

func (f *fakeUFW) save(v4, v6 []ufwRule) {
	write := func(p string, rs []ufwRule) {
		var b strings.Builder
		b.WriteString("*filter\n### RULES ###\n")
		for _, r := range rs {
			b.WriteString("\n" + ufwTupleLine(r) + "\n")
		}
		b.WriteString("\n### END RULES ###\nCOMMIT\n")
		if err := os.WriteFile(f.path(p), []byte(b.String()), 0o640); err != nil {
			panic(err)
		}
	}
	write(ufwUserRules, v4)
	write(ufwUser6Rules, v6)
}

// ufwTupleLine is the "### tuple ###" line UFW writes for a rule.
func ufwTupleLine(r ufwRule) string {
	action := r.Action
	if r.Route {
		action = "route:" + action
	}
	s := fmt.Sprintf("### tuple ### %s %s %s %s %s %s", action, r.Proto, r.DPort, r.Dst, r.SPort, r.Src)
	if r.DApp != "" || r.SApp != "" {
		s += " " + step2Or(r.DApp, "-") + " " + step2Or(r.SApp, "-")
	}
	s += " " + r.Dir
	if r.Comment != "" {
		s += " comment=" + r.Comment
	}
	return s
}

func (f *fakeUFW) setDefault(key, val string) {
	p := f.path(ufwDefaults)
	b, _ := os.ReadFile(p)
	lines := strings.Split(string(b), "\n")
	found := false
	for i, l := range lines {
		if strings.HasPrefix(l, key+"=") {
			lines[i], found = key+`="`+val+`"`, true
		}
	}
	if !found {
		lines = append(lines, key+`="`+val+`"`)
	}
	os.WriteFile(p, []byte(strings.Join(lines, "\n")), 0o644)
}

func (f *fakeUFW) ufw(args []string) (string, error) {
	switch {
	case len(args) == 1 && args[0] == "version":
		return "ufw 0.36.2\n", nil
	case len(args) == 2 && args[0] == "status" && args[1] == "verbose":
		if _, _, err := f.load(); err != nil {
			return "", err
		}
		if !f.active {
			return "Status: inactive\n", nil
		}
		d := parseShellVars(step2ReadOr(f.path(ufwDefaults)))
		word := map[string]string{"DROP": "deny", "ACCEPT": "allow", "REJECT": "reject"}
		return fmt.Sprintf("Status: active\nLogging: on (low)\nDefault: %s (incoming), %s (outgoing), disabled (routed)\nNew profiles: skip\n",
			word[d["DEFAULT_INPUT_POLICY"]], word[d["DEFAULT_OUTPUT_POLICY"]]), nil
	case len(args) == 2 && args[0] == "--force" && args[1] == "enable":
		f.active = true
		os.WriteFile(f.path(ufwConf), []byte("ENABLED=yes\nLOGLEVEL=low\n"), 0o644)
		return "Firewall is active and enabled on system startup\n", nil
	case len(args) == 2 && args[0] == "--force" && args[1] == "reset":
		f.resets++
		f.active = false
		os.WriteFile(f.path(ufwConf), []byte("ENABLED=no\nLOGLEVEL=low\n"), 0o644)
		os.WriteFile(f.path(ufwAfterRules), []byte(f.stockOut), 0o640)
		f.save(nil, nil)
		return "Backing up 'user.rules' to '/etc/ufw/user.rules.20261125_143656'\n", nil
	case len(args) == 3 && args[0] == "default":
		key := map[string]string{"incoming": "DEFAULT_INPUT_POLICY", "outgoing": "DEFAULT_OUTPUT_POLICY"}[args[2]]
		val := map[string]string{"deny": "DROP", "allow": "ACCEPT", "reject": "REJECT"}[args[1]]
		if key == "" || val == "" {
			return "", fmt.Errorf("ERROR: bad default %v", args)
		}
		f.setDefault(key, val)
		return "Default " + args[2] + " policy changed to '" + args[1] + "'\n", nil
	case len(args) == 3 && args[0] == "--force" && args[1] == "delete":
		v4, v6, err := f.load()
		if err != nil {
			return "", err
		}
		n, err := strconv.Atoi(args[2])
		switch {
		case err != nil || n < 1 || n > len(v4)+len(v6):
			return "", fmt.Errorf("ERROR: Could not find rule '%s'", args[2])
		case n <= len(v4):
			v4 = append(v4[:n-1:n-1], v4[n:]...)
		default:
			j := n - len(v4) - 1
			v6 = append(v6[:j:j], v6[j+1:]...)
		}
		f.save(v4, v6)
		return "Rule deleted\n", nil
	}
	pos := 0
	if len(args) > 2 && args[0] == "insert" {
		n, err := strconv.Atoi(args[1])
		if err != nil {
			return "", fmt.Errorf("ERROR: Invalid position '%s'", args[1])
		}
		pos, args = n, args[2:]
	}
	r, err := parseUFWArgs(args)
	if err != nil {
		return "", err
	}
	v4, v6, err := f.load()
	if err != nil {
		return "", err
	}
	if pos > len(v4) {
		return "", fmt.Errorf("ERROR: Invalid position '%d'", pos)
	}
	var out strings.Builder
	if ufwHasRule(v4, r) {
		out.WriteString("Skipping adding existing rule\n")
	} else if pos > 0 {
		v4 = append(v4[:pos-1:pos-1], append([]ufwRule{r}, v4[pos-1:]...)...)
		out.WriteString("Rule inserted\n")
	} else {
		v4 = append(v4, r)
		out.WriteString("Rules updated\n")
	}
	if t, ok := r.twin(); ok {
		if ufwHasRule(v6, t) {
			out.WriteString("Skipping adding existing rule (v6)\n")
		} else {
			v6 = append(v6, t)
			out.WriteString("Rules updated (v6)\n")
		}
	}
	f.save(v4, v6)
	return out.String(), nil
}

func ufwHasRule(rs []ufwRule, r ufwRule) bool {
	for _, x := range rs {
		if x.key() == r.key() {
			return true
		}
	}
	return false
}

func step2ReadOr(p string) string {
	b, _ := os.ReadFile(p)
	return string(b)
}

// iptables -S of UFW's user chains, as the kernel would show the loaded rules (only when active).
func (f *fakeUFW) iptables(chain string) ([]byte, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	dir := map[string]string{"ufw-user-input": "in", "ufw-user-output": "out"}[chain]
	if !f.active || dir == "" {
		return nil, &system.CmdError{Argv: []string{"iptables", "-S", chain}, ExitCode: 1, Output: "iptables: No chain/target/match by that name.", Err: errors.New("exit status 1")}
	}
	v4, _, err := f.load()
	if err != nil {
		return nil, err
	}
	out := "-N " + chain + "\n"
	for _, r := range v4 {
		if r.Dir == dir {
			out += "-A " + chain + " " + ufwExpectedIPT(r) + "\n"
		}
	}
	return []byte(out), nil
}

// mutations are the ufw commands that change something (not status or version).
func (f *fakeUFW) mutations() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var m []string
	for _, c := range f.calls {
		if c != "ufw status verbose" && c != "ufw version" {
			m = append(m, c)
		}
	}
	return m
}

// parseUFWArgs reads the rule syntax Step 2 emits: [route] ACTION in|out [on IF] [log|log-all] [proto P]
// [from ADDR [port P|app A]] [to ADDR [port P|app A]] [comment C].
func parseUFWArgs(args []string) (ufwRule, error) {
	r := ufwRule{Proto: "any", DPort: "any", SPort: "any", Dst: "0.0.0.0/0", Src: "0.0.0.0/0", Dir: "in"}
	i := 0
	next := func() string {
		if i >= len(args) {
			return ""
		}
		i++
		return args[i-1]
	}
	if len(args) > 0 && args[0] == "route" {
		r.Route = true
		next()
	}
	r.Action = next()
	switch r.Action {
	case "allow", "deny", "reject", "limit":
	default:
		return r, fmt.Errorf("ERROR: Invalid syntax %q", args)
	}
	if i < len(args) && (args[i] == "in" || args[i] == "out") {
		r.Dir = next()
		if i < len(args) && args[i] == "on" {
			next()
			r.Dir += "_" + next()
		}
	}
	if i < len(args) && (args[i] == "log" || args[i] == "log-all") {
		r.Action += "_" + next()
	}
	addr := func(a string) string {
		if a == "any" {
			return "0.0.0.0/0"
		}
		return normUFWAddr(a)
	}
	for i < len(args) {
		switch w := next(); w {
		case "proto":
			r.Proto = next()
		case "from":
			r.Src = addr(next())
			if i < len(args) && args[i] == "port" {
				next()
				r.SPort = next()
			}
		case "to":
			r.Dst = addr(next())
			if i < len(args) && args[i] == "port" {
				next()
				r.DPort = next()
			}
		default:
			return r, fmt.Errorf("ERROR: Invalid syntax at %q in %q", w, args)
		}
	}
	return r, nil
}

// step2Env is a fake machine for Step 2: a temp root with the files, a FakeRunner for the read-only
// commands and apt, and fakeUFW. By default everything is already as Step 2 wants it.
type step2Env struct {
	t    *testing.T
	root string
	fr   *system.FakeRunner
	ufw  *fakeUFW
	h    *system.Host
	env  map[string]string
	a    Answers
}

const step2StockAfter = "# stock after.rules\n*filter\n:ufw-after-input - [0:0]\nCOMMIT\n"

const step2TestBlock = step2BlockBegin + `
*filter
:DOCKER-USER - [0:0]
-A DOCKER-USER -d 192.168.1.0/24 -j DROP
-A DOCKER-USER -j RETURN
COMMIT
` + step2BlockEnd

func step2AptArgv(args ...string) string {
	argv := append([]string{"apt-get"}, aptOpts...)
	if len(args) == 1 && args[0] == "update" {
		argv = append(argv, "-o", "APT::Update::Error-Mode=any")
	}
	return strings.Join(append(argv, args...), " ")
}

func newStep2Env(t *testing.T) *step2Env {
	t.Helper()
	root := t.TempDir()
	e := &step2Env{t: t, root: root, env: map[string]string{}}
	e.a = Defaults()
	e.a.AdminSource = "192.168.1.50/32"
	e.a.Resolvers = []string{"203.0.113.53"}
	uid, gid := os.Getuid(), os.Getgid()
	e.fr = system.NewFakeRunner(map[string]string{
		"apt-get -s -o Debug::NoLocking=1 full-upgrade":            "Reading package lists...\nCalculating upgrade...\n",
		"dpkg-query -W -f=${db:Status-Status} unattended-upgrades": "installed",
		"dpkg-query -W -f=${db:Status-Status} ca-certificates":     "installed",
		"getent group sudo":                "sudo:x:27:admin\n",
		"getent passwd admin":              fmt.Sprintf("admin:x:%d:%d:Admin:/home/admin:/bin/bash\n", uid, gid),
		"ss -H -tulpn":                     "tcp   LISTEN 0      128          0.0.0.0:22         0.0.0.0:*    users:((\"sshd\",pid=601,fd=3))\n",
		"apt-config dump":                  step2Testdata(t, "apt-config-dump-uu.txt"),
		"ip -j -6 addr":                    "[]\n",
		"getent ahostsv4 deb.debian.org":   "203.0.113.20    STREAM deb.debian.org\n",
		"sysctl --system":                  "* Applying /etc/sysctl.d/99-openclaw-disable-ipv6.conf ...\n",
		step2AptArgv("update"):             "Hit:1 https://deb.debian.org/debian bookworm InRelease\nReading package lists...\n",
		step2AptArgv("-y", "full-upgrade"): "Reading package lists...\n0 upgraded, 0 newly installed, 0 to remove and 0 not upgraded.\n",
		step2AptArgv("install", "-y", "--no-install-recommends", "unattended-upgrades"): "Setting up unattended-upgrades (2.9.1+nmu3) ...\n",
		"systemctl enable --now unattended-upgrades.service":                            "",
	})
	e.ufw = &fakeUFW{root: root, inner: e.fr, active: true, stockOut: step2StockAfter}
	e.h = system.NewFakeHost(root, filepath.Join(root, "var/lib/openclaw-harden"), e.fr, false)
	e.h.Runner = e.ufw
	e.h.Env = func(k string) string { return e.env[k] }

	e.write("/etc/resolv.conf", "nameserver 203.0.113.53\n", 0o644)
	e.write("/etc/apt/sources.list", "deb https://deb.debian.org/debian bookworm main\ndeb https://security.debian.org/debian-security bookworm-security main\n", 0o644)
	e.write(autoUpgrades, string(assets.AutoUpgrades()), 0o644)
	e.write(ipv6DropIn, string(assets.IPv6SysctlDropIn()), 0o644)
	e.write(ipv6Sysctls[0], "1\n", 0o644)
	e.write(ipv6Sysctls[1], "1\n", 0o644)
	if err := os.MkdirAll(filepath.Join(root, "home/admin/.openclaw"), 0o700); err != nil {
		t.Fatal(err)
	}
	os.Chmod(filepath.Join(root, "home/admin/.openclaw"), 0o700)
	e.write(ufwConf, "ENABLED=yes\nLOGLEVEL=low\n", 0o644)
	e.write(ufwDefaults, "IPV6=yes\nDEFAULT_INPUT_POLICY=\"DROP\"\nDEFAULT_OUTPUT_POLICY=\"DROP\"\nDEFAULT_FORWARD_POLICY=\"DROP\"\n", 0o644)
	e.write(ufwAfterRules, step2StockAfter, 0o640)
	e.write(ufwStockAfter, step2StockAfter, 0o640)
	e.ufw.save(nil, nil)
	e.setRules(e.desired())
	return e
}

func step2Testdata(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "step2", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func (e *step2Env) write(p, content string, mode os.FileMode) {
	e.t.Helper()
	full := filepath.Join(e.root, p)
	if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
		e.t.Fatal(err)
	}
	if err := os.WriteFile(full, []byte(content), mode); err != nil {
		e.t.Fatal(err)
	}
}

func (e *step2Env) read(p string) string {
	b, _ := os.ReadFile(filepath.Join(e.root, p))
	return string(b)
}

func (e *step2Env) desired() []ufwRule {
	e.t.Helper()
	g, err := desiredUFW(e.a)
	if err != nil {
		e.t.Fatal(err)
	}
	return ufwFlatten(g)
}

// setRules writes rules as UFW would have them after adding them one by one.
func (e *step2Env) setRules(rs []ufwRule) {
	var v4, v6 []ufwRule
	for _, r := range rs {
		if r.V6 {
			v6 = append(v6, r)
			continue
		}
		v4 = append(v4, r)
		if t, ok := r.twin(); ok {
			v6 = append(v6, t)
		}
	}
	e.ufw.save(v4, v6)
}

func (e *step2Env) plan() Plan {
	e.t.Helper()
	p, err := HostStep{}.Plan(context.Background(), e.h, e.a)
	if err != nil {
		e.t.Fatal(err)
	}
	return p
}

// ufwMustRule parses a rule written as after "ufw".
func ufwMustRule(t *testing.T, s string) ufwRule {
	t.Helper()
	r, err := parseUFWArgs(strings.Fields(s))
	if err != nil {
		t.Fatal(err)
	}
	return r
}
