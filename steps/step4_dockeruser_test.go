package steps

import (
	"context"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"openclaw-harden/system"
)

func step4Answers() Answers {
	a := Defaults()
	a.AdminSource = "192.168.1.50/32"
	return a
}

func debianAfterRules(t testing.TB) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "step4", "after.rules.debian12"))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestRenderDockerUserBlock(t *testing.T) {
	a := step4Answers()
	a.ExtraPrivateRanges = []string{"198.18.0.0/15", "10.0.0.0/8", "203.0.113.7"}
	b, err := RenderDockerUserBlock(a)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(b, "\n")
	if lines[0] != DockerUserBegin || lines[len(lines)-1] != DockerUserEnd {
		t.Fatalf("markers: first %q last %q", lines[0], lines[len(lines)-1])
	}
	var rules []string
	for _, l := range lines {
		if strings.HasPrefix(l, "-A ") || strings.HasPrefix(l, "*") || strings.HasPrefix(l, ":") || l == "COMMIT" {
			rules = append(rules, l)
		}
	}
	want := []string{
		"*filter",
		":DOCKER-USER - [0:0]",
		"-A DOCKER-USER -m conntrack --ctstate ESTABLISHED,RELATED -j RETURN",
		"-A DOCKER-USER -s 172.20.0.0/24 -d 172.20.0.0/24 -j RETURN",
		"-A DOCKER-USER -d 192.168.1.0/24 -j DROP",
		"-A DOCKER-USER -d 10.0.0.0/8 -j DROP",
		"-A DOCKER-USER -d 172.16.0.0/12 -j DROP",
		"-A DOCKER-USER -d 192.168.0.0/16 -j DROP",
		"-A DOCKER-USER -d 169.254.0.0/16 -j DROP",
		"-A DOCKER-USER -d 100.64.0.0/10 -j DROP",
		"-A DOCKER-USER -d 198.18.0.0/15 -j DROP",
		"-A DOCKER-USER -d 203.0.113.7/32 -j DROP",
		"-A DOCKER-USER -d 224.0.0.0/4 -j DROP",
		"-A DOCKER-USER -d 255.255.255.255/32 -j DROP",
		"-A DOCKER-USER -j RETURN",
		"COMMIT",
	}
	if strings.Join(rules, "\n") != strings.Join(want, "\n") {
		t.Errorf("block rules:\n%s\nwant:\n%s", strings.Join(rules, "\n"), strings.Join(want, "\n"))
	}
	// The generated block, after Debian's stock after.rules, has no findings.
	after, err := SpliceDockerUserBlock(debianAfterRules(t), b)
	if err != nil {
		t.Fatal(err)
	}
	if fs := CheckAfterRules(after, netip.MustParsePrefix("172.20.0.0/24")); len(fs) > 0 {
		t.Errorf("findings on the generated file: %v", fs)
	}
	// The live form iptables prints matches the block rule for rule.
	exp, err := expectedDockerUser(a)
	if err != nil {
		t.Fatal(err)
	}
	if len(exp) != len(want)-3 {
		t.Errorf("expected live chain has %d rules, the block %d", len(exp), len(want)-3)
	}
	for _, bad := range []string{"fd00::/8", "not-a-cidr"} {
		a.ExtraPrivateRanges = []string{bad}
		if _, err := RenderDockerUserBlock(a); err == nil || !strings.Contains(err.Error(), "extra_private_ranges") {
			t.Errorf("extra range %q: err %v, want one naming extra_private_ranges", bad, err)
		}
	}
}

func TestSpliceDockerUserBlock(t *testing.T) {
	stock := debianAfterRules(t)
	block, err := RenderDockerUserBlock(step4Answers())
	if err != nil {
		t.Fatal(err)
	}
	once, err := SpliceDockerUserBlock(stock, block)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(once, stock) || once != stock+"\n"+block+"\n" {
		t.Fatalf("appended file does not keep the stock file byte for byte and add the block after it")
	}
	// Step 2's helper writes the block back the same way, so the two steps agree on the bytes.
	if got := afterRulesWithBlock(stock, block); got != once {
		t.Errorf("Step 2's afterRulesWithBlock and Step 4 disagree:\n%q\n%q", got, once)
	}
	twice, err := SpliceDockerUserBlock(once, block)
	if err != nil || twice != once {
		t.Fatalf("re-splice changed the file (err %v)", err)
	}
	if n := strings.Count(twice, DockerUserBegin); n != 1 {
		t.Fatalf("%d blocks after a re-run", n)
	}
	// An older block in the middle, with operator lines around it: replaced in place, the rest kept.
	a2 := step4Answers()
	a2.DockerSubnet = "172.30.0.0/24"
	old, _ := RenderDockerUserBlock(a2)
	custom := stock + "\n# operator line before\n" + old + "\n# operator line after\n"
	got, err := SpliceDockerUserBlock(custom, block)
	if err != nil {
		t.Fatal(err)
	}
	if want := stock + "\n# operator line before\n" + block + "\n# operator line after\n"; got != want {
		t.Errorf("in-place replace:\n%s\nwant:\n%s", got, want)
	}
	// Two blocks (an earlier tool appended twice): one is left, where the first was.
	dup := stock + "\n" + old + "\n# middle\n" + old + "\n"
	got, err = SpliceDockerUserBlock(dup, block)
	if err != nil {
		t.Fatal(err)
	}
	if want := stock + "\n" + block + "\n# middle\n"; got != want {
		t.Errorf("duplicate blocks:\n%s\nwant:\n%s", got, want)
	}
	// No trailing newline and no newline after the END marker are handled.
	got, _ = SpliceDockerUserBlock("COMMIT", block)
	if got != "COMMIT\n\n"+block+"\n" {
		t.Errorf("no trailing newline: %q", got)
	}
	got, _ = SpliceDockerUserBlock("x\n"+old, block)
	if got != "x\n"+block {
		t.Errorf("block at EOF without newline: %q", got)
	}
	for name, bad := range map[string]string{
		"begin only":    stock + DockerUserBegin + "\n*filter\n",
		"end only":      stock + DockerUserEnd + "\n",
		"end first":     DockerUserEnd + "\n" + DockerUserBegin + "\n",
		"interleaved":   DockerUserBegin + "\n" + DockerUserBegin + "\n" + DockerUserEnd + "\n" + DockerUserEnd + "\n",
		"three and two": DockerUserBegin + "\n" + DockerUserEnd + "\n" + DockerUserBegin + "\n" + DockerUserBegin + "\n" + DockerUserEnd + "\n",
	} {
		if _, err := SpliceDockerUserBlock(bad, block); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

func TestCheckAfterRules(t *testing.T) {
	stock := debianAfterRules(t)
	stockLines := strings.Count(stock, "\n")
	block, _ := RenderDockerUserBlock(step4Answers())
	good := stock + "\n" + block + "\n"
	b0 := stockLines + 2 // the BEGIN marker's line
	replace := func(old, new string) string {
		if !strings.Contains(good, old) {
			t.Fatalf("test setup: %q not in the block", old)
		}
		return strings.Replace(good, old, new, 1)
	}
	lineOf := func(s, sub string) int {
		i := strings.Index(s, sub)
		return strings.Count(s[:i], "\n") + 1
	}
	swapped := replace("-A DOCKER-USER -s 172.20.0.0/24 -d 172.20.0.0/24 -j RETURN\n-A DOCKER-USER -d 192.168.1.0/24 -j DROP\n-A DOCKER-USER -d 10.0.0.0/8 -j DROP\n-A DOCKER-USER -d 172.16.0.0/12 -j DROP\n",
		"-A DOCKER-USER -d 192.168.1.0/24 -j DROP\n-A DOCKER-USER -d 10.0.0.0/8 -j DROP\n-A DOCKER-USER -d 172.16.0.0/12 -j DROP\n-A DOCKER-USER -s 172.20.0.0/24 -d 172.20.0.0/24 -j RETURN\n")
	inside := strings.Replace(stock, "# don't delete the 'COMMIT' line", block+"\n# don't delete the 'COMMIT' line", 1)
	cases := []struct {
		name string
		data string
		line int
		msg  string
	}{
		{"missing block", stock, 1, "no DOCKER-USER block"},
		{"duplicated block", good + block + "\n", b0 + strings.Count(block, "\n") + 1, "a second BEGIN"},
		{"drop before subnet return", swapped, lineOf(swapped, "-d 172.16.0.0/12 -j DROP"), "DROP for 172.16.0.0/12 comes before the Docker subnet RETURN"},
		{"missing commit", replace("COMMIT\n"+DockerUserEnd, DockerUserEnd), b0 + strings.Count(block, "\n") - 1, "no COMMIT"},
		{"missing conntrack", replace("-A DOCKER-USER -m conntrack --ctstate ESTABLISHED,RELATED -j RETURN\n", ""), b0, "no '-m conntrack"},
		{"conntrack not first", replace("-A DOCKER-USER -m conntrack --ctstate ESTABLISHED,RELATED -j RETURN\n-A DOCKER-USER -s 172.20.0.0/24 -d 172.20.0.0/24 -j RETURN\n",
			"-A DOCKER-USER -s 172.20.0.0/24 -d 172.20.0.0/24 -j RETURN\n-A DOCKER-USER -m conntrack --ctstate RELATED,ESTABLISHED -j RETURN\n"), b0 + 6, "not the first rule"},
		{"missing multicast", replace("-A DOCKER-USER -d 224.0.0.0/4 -j DROP\n", ""), b0 + strings.Count(block, "\n") - 1, "no DROP for 224.0.0.0/4"},
		{"missing broadcast", replace("-A DOCKER-USER -d 255.255.255.255/32 -j DROP\n", ""), b0 + strings.Count(block, "\n") - 1, "no DROP for 255.255.255.255/32"},
		{"missing subnet return", replace("-A DOCKER-USER -s 172.20.0.0/24 -d 172.20.0.0/24 -j RETURN\n", ""), b0, "for the Docker subnet"},
		{"no chain declaration", replace(":DOCKER-USER - [0:0]\n", ""), b0, "every ufw reload appends another copy"},
		{"inside stock filter", inside, lineOf(inside, DockerUserBegin), "inside the table section opened at line"},
		{"begin without end", stock + DockerUserBegin + "\n", stockLines + 1, "without an END marker"},
		{"unreachable drop", replace("-A DOCKER-USER -d 224.0.0.0/4 -j DROP\n", "-A DOCKER-USER -j RETURN\n-A DOCKER-USER -d 224.0.0.0/4 -j DROP\n"), lineOf(good, "-d 224.0.0.0/4") + 1, "never reached"},
		{"foreign chain", replace("COMMIT\n"+DockerUserEnd, "-A FORWARD -j DOCKER-USER\nCOMMIT\n"+DockerUserEnd), lineOf(good, "COMMIT\n"+DockerUserEnd), "a rule for chain FORWARD"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			fs := CheckAfterRules(c.data, netip.Prefix{})
			for _, f := range fs {
				if f.Line == c.line && strings.Contains(f.Message, c.msg) {
					return
				}
			}
			t.Errorf("want a finding at line %d containing %q; got %v", c.line, c.msg, fs)
		})
	}
	if fs := CheckAfterRules(good, netip.Prefix{}); len(fs) != 0 {
		t.Errorf("good file: %v", fs)
	}
	if fs := CheckAfterRules(good, netip.MustParsePrefix("172.21.0.0/24")); len(fs) != 1 || !strings.Contains(fs[0].Message, "172.21.0.0/24") {
		t.Errorf("a block for another subnet, checked against 172.21.0.0/24: %v", fs)
	}
	got := FormatFindings("after.rules", []Finding{{Line: 7, Message: "x"}})
	if len(got) != 1 || got[0] != "after.rules:7: x" {
		t.Errorf("FormatFindings: %v", got)
	}
}

// kernel4 is a stand-in kernel and toolset for Step 4's unit tests: the DOCKER-USER and FORWARD chains,
// `ufw reload` (which loads the block from the after.rules under the Host's root), and Docker's info.
type kernel4 struct {
	mu         sync.Mutex
	root       string
	chain      []string
	hasChain   bool
	forward    []string
	ufwActive  bool
	dockerInfo string
	calls      []string
	noRestore  bool
	dockerDown string // systemctl is-active docker.service prints it (exit 3); "" is active
}

func (k *kernel4) Run(_ context.Context, c system.Cmd) ([]byte, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	key := strings.Join(c.Argv, " ")
	k.calls = append(k.calls, key)
	fail := func(code int, msg string) ([]byte, error) {
		return nil, &system.CmdError{Argv: c.Argv, ExitCode: code, Output: msg, Err: os.ErrInvalid}
	}
	load := func(text string) {
		block := ExtractDockerUserBlock(text)
		if block == "" {
			block = text
		}
		k.hasChain, k.chain = true, nil
		for _, l := range strings.Split(block, "\n") {
			if strings.HasPrefix(l, "-A DOCKER-USER") {
				k.chain = append(k.chain, strings.Replace(l, "ESTABLISHED,RELATED", "RELATED,ESTABLISHED", 1))
			}
		}
	}
	switch key {
	case "iptables --version":
		return []byte("iptables v1.8.9 (nf_tables)\n"), nil
	case "iptables -S DOCKER-USER":
		if !k.hasChain {
			return fail(1, "iptables: No chain/target/match by that name.")
		}
		return []byte("-N DOCKER-USER\n" + strings.Join(append(k.chain, ""), "\n")), nil
	case "iptables -S FORWARD":
		return []byte("-P FORWARD DROP\n" + strings.Join(append(k.forward, ""), "\n")), nil
	case "iptables -C FORWARD -j DOCKER-USER":
		if indexOf(k.forward, forwardJumpRule) < 0 {
			return fail(1, "iptables: Bad rule (does a matching rule exist in that chain?).")
		}
		return nil, nil
	case "iptables -w -D FORWARD -j DOCKER-USER":
		if i := indexOf(k.forward, forwardJumpRule); i >= 0 {
			k.forward = append(k.forward[:i:i], k.forward[i+1:]...)
		}
		return nil, nil
	case "iptables -w -F DOCKER-USER":
		k.chain = nil
		return nil, nil
	case "iptables -w -A DOCKER-USER -j RETURN":
		k.chain = append(k.chain, "-A DOCKER-USER -j RETURN")
		return nil, nil
	case "iptables -w -I FORWARD 1 -j DOCKER-USER":
		k.forward = append([]string{forwardJumpRule}, k.forward...)
		return nil, nil
	case "iptables-restore --test --noflush":
		if k.noRestore {
			return fail(127, "not found")
		}
		if !strings.Contains(string(c.Stdin), "COMMIT") {
			return fail(2, "iptables-restore: COMMIT expected at line 12")
		}
		return nil, nil
	case "iptables-restore --noflush":
		load(string(c.Stdin))
		return nil, nil
	case "ufw status":
		if k.ufwActive {
			return []byte("Status: active\n"), nil
		}
		return []byte("Status: inactive\n"), nil
	case "ufw reload":
		if !k.ufwActive {
			return fail(1, "Firewall not enabled (skipping reload)")
		}
		b, err := os.ReadFile(filepath.Join(k.root, afterRulesPath))
		if err != nil {
			return fail(1, err.Error())
		}
		if ExtractDockerUserBlock(string(b)) != "" { // without a block nothing declares DOCKER-USER: it is left alone
			load(string(b))
		}
		return []byte("Firewall reloaded\n"), nil
	case "systemctl is-active docker.service":
		if k.dockerDown != "" {
			return []byte(k.dockerDown + "\n"), &system.CmdError{Argv: c.Argv, ExitCode: 3, Output: k.dockerDown + "\n", Err: os.ErrInvalid}
		}
		return []byte("active\n"), nil
	case "docker info --format {{json .}}":
		if k.dockerInfo == "" {
			return fail(1, "Cannot connect to the Docker daemon")
		}
		return []byte(k.dockerInfo), nil
	}
	return fail(127, "kernel4: unknown command "+key)
}

func newStep4Host(t *testing.T) (*system.Host, *kernel4) {
	t.Helper()
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "/etc/ufw"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, afterRulesPath), []byte(debianAfterRules(t)), 0o640); err != nil {
		t.Fatal(err)
	}
	k := &kernel4{root: root, ufwActive: true, hasChain: true, chain: []string{"-A DOCKER-USER -j RETURN"},
		forward:    []string{forwardJumpRule, "-A FORWARD -j DOCKER-ISOLATION-STAGE-1", "-A FORWARD -j ufw-before-logging-forward"},
		dockerInfo: `{"ServerVersion":"20.10.24+dfsg1"}`}
	h := &system.Host{Runner: k, Root: root, StateDir: filepath.Join(root, "/var/lib/openclaw-harden")}
	return h, k
}

func TestStep4PlanApplyVerify(t *testing.T) {
	ctx := context.Background()
	h, k := newStep4Host(t)
	a := step4Answers()
	s := DockerUserStep{}
	if cs := s.Verify(ctx, h, a); Passed(cs) {
		t.Fatalf("verify passed before apply: %+v", cs)
	}
	p, err := s.Plan(ctx, h, a)
	if err != nil || p.Blocked != "" {
		t.Fatalf("plan: %v %q", err, p.Blocked)
	}
	if len(p.Pending()) != 2 || p.Changes[0].Action() != "~" || p.Changes[1].Kind != "rules" {
		t.Fatalf("plan changes: %+v", p.Changes)
	}
	if d := p.Changes[0].Diff(); !strings.Contains(d, "+-A DOCKER-USER -d 224.0.0.0/4 -j DROP") {
		t.Errorf("file diff lacks the multicast drop:\n%s", d)
	}
	if err := s.Apply(ctx, h, p); err != nil {
		t.Fatal(err)
	}
	if indexOf(k.calls, "ufw reload") < 0 || indexOf(k.calls, "iptables-restore --test --noflush") < 0 {
		t.Errorf("apply did not validate and reload: %v", k.calls)
	}
	cs := s.Verify(ctx, h, a)
	if !Passed(cs) {
		t.Fatalf("verify after apply: %+v", cs)
	}
	if len(cs) != 6 {
		t.Errorf("%d checks, want 6", len(cs))
	}
	p2, err := s.Plan(ctx, h, a)
	if err != nil || !p2.Empty() {
		t.Fatalf("second plan not empty (%v): %+v", err, p2.Pending())
	}
	// Docker put another rule above the jump, then a stray rule in the chain: verify fails on each, naming it.
	k.forward = append([]string{"-A FORWARD -j ACCEPT"}, k.forward...)
	k.chain = append([]string{"-A DOCKER-USER -d 172.16.0.0/12 -j DROP"}, k.chain...)
	failed := map[string]string{}
	for _, c := range s.Verify(ctx, h, a) {
		if !c.OK {
			failed[c.ID] = c.Reason
		}
	}
	for _, id := range []string{"step4.chain", "step4.forward-first", "step4.subnet-order"} {
		if failed[id] == "" {
			t.Errorf("%s did not fail: %v", id, failed)
		}
	}
	if failed["step4.forward-jump"] != "" || failed["step4.file"] != "" {
		t.Errorf("unexpected failures: %v", failed)
	}
	// Re-plan and apply: the jump goes back to the top, the chain is reloaded.
	p3, err := s.Plan(ctx, h, a)
	if err != nil || p3.Empty() || p3.Changes[0].Action() != "=" {
		t.Fatalf("drift plan: %v %+v", err, p3.Pending())
	}
	if err := s.Apply(ctx, h, p3); err != nil {
		t.Fatal(err)
	}
	if k.forward[0] != forwardJumpRule || indexOf(k.forward[1:], forwardJumpRule) >= 0 {
		t.Errorf("FORWARD after repair: %v", k.forward)
	}
	if !Passed(s.Verify(ctx, h, a)) {
		t.Error("verify after repair failed")
	}
}

func TestStep4UFWInactiveAndNoDocker(t *testing.T) {
	ctx := context.Background()
	h, k := newStep4Host(t)
	k.ufwActive, k.hasChain, k.chain, k.forward, k.dockerInfo = false, false, nil, nil, ""
	k.noRestore = true
	s := DockerUserStep{}
	a := step4Answers()
	p, err := s.Plan(ctx, h, a)
	if err != nil || p.Blocked != "" {
		t.Fatalf("plan: %v %q", err, p.Blocked)
	}
	if !strings.Contains(strings.Join(p.Notes, "\n"), "Step 2 enables UFW") || p.Changes[1].Before != "" {
		t.Errorf("notes %q, rules before %q", p.Notes, p.Changes[1].Before)
	}
	if err := s.Apply(ctx, h, p); err != nil {
		t.Fatal(err)
	}
	if indexOf(k.calls, "ufw reload") >= 0 || indexOf(k.calls, "iptables-restore --noflush") < 0 {
		t.Errorf("with UFW inactive the block must be loaded directly: %v", k.calls)
	}
	var ufw Check
	for _, c := range s.Verify(ctx, h, a) {
		if c.ID == "step4.ufw-active" {
			ufw = c
		} else if !c.OK {
			t.Errorf("%s: %s", c.ID, c.Reason)
		}
	}
	if ufw.OK || !strings.Contains(ufw.Reason, "Step 2") {
		t.Errorf("ufw-active check: %+v", ufw)
	}
}

func TestStep4Blocked(t *testing.T) {
	ctx := context.Background()
	a := step4Answers()
	s := DockerUserStep{}

	h, k := newStep4Host(t)
	k.dockerInfo = `{"ServerVersion":"29.0.1","FirewallBackend":{"Driver":"nftables"}}`
	p, err := s.Plan(ctx, h, a)
	if err != nil || !strings.Contains(p.Blocked, "nftables") || !strings.Contains(p.Blocked, "no DOCKER-USER chain") {
		t.Errorf("nftables backend (docker info): %v %q", err, p.Blocked)
	}

	h, k = newStep4Host(t)
	k.dockerInfo = ""
	os.MkdirAll(filepath.Join(h.Root, "/etc/docker"), 0o755)
	os.WriteFile(filepath.Join(h.Root, daemonJSONPath), []byte(`{"firewall-backend": "nftables"}`), 0o644)
	if p, _ := s.Plan(ctx, h, a); !strings.Contains(p.Blocked, "daemon.json firewall-backend") {
		t.Errorf("nftables backend (daemon.json): %q", p.Blocked)
	}

	h, _ = newStep4Host(t)
	os.WriteFile(filepath.Join(h.Root, afterRulesPath), []byte(debianAfterRules(t)+DockerUserBegin+"\n"), 0o640)
	if p, _ := s.Plan(ctx, h, a); !strings.Contains(p.Blocked, "pair them by hand") {
		t.Errorf("unpaired marker: %q", p.Blocked)
	}

	h, _ = newStep4Host(t)
	os.Remove(filepath.Join(h.Root, afterRulesPath))
	if p, _ := s.Plan(ctx, h, a); !strings.Contains(p.Blocked, "Step 2") {
		t.Errorf("no after.rules: %q", p.Blocked)
	}

	h, _ = newStep4Host(t)
	h.Runner = system.NewFakeRunner(nil)
	if p, _ := s.Plan(ctx, h, a); !strings.Contains(p.Blocked, "iptables is not installed") {
		t.Errorf("no iptables: %q", p.Blocked)
	}
	for _, p := range []Plan{p} {
		if strings.Count(p.Blocked, ". ") > 0 {
			t.Errorf("Blocked is more than one sentence: %q", p.Blocked)
		}
	}
}

func TestStep4DryRun(t *testing.T) {
	ctx := context.Background()
	h, k := newStep4Host(t)
	h.DryRun = true
	s := DockerUserStep{}
	p, err := s.Plan(ctx, h, step4Answers())
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Apply(ctx, h, p); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(h.Root, afterRulesPath)); string(b) != debianAfterRules(t) {
		t.Error("dry run changed after.rules")
	}
	if indexOf(k.calls, "ufw reload") >= 0 {
		t.Error("dry run ran ufw reload")
	}
	w := strings.Join(h.Would(), "\n")
	for _, want := range []string{"would write: " + afterRulesPath, "would run: ufw reload"} {
		if !strings.Contains(w, want) {
			t.Errorf("would-records lack %q:\n%s", want, w)
		}
	}
}

func FuzzCheckAfterRules(f *testing.F) {
	block, _ := RenderDockerUserBlock(step4Answers())
	f.Add("")
	f.Add("*filter\nCOMMIT\n")
	f.Add(DockerUserBegin + "\n*filter\n-A DOCKER-USER -s 1.2.3.4 -d 1.2.3.4 -j RETURN\n-A DOCKER-USER -d\n" + DockerUserEnd)
	f.Add("*filter\n" + block + "\nCOMMIT\n" + block)
	f.Fuzz(func(t *testing.T, data string) {
		_ = CheckAfterRules(data, netip.Prefix{})
		_ = ExtractDockerUserBlock(data)
		out, err := SpliceDockerUserBlock(data, block)
		if err != nil {
			return
		}
		if n := len(markerLinesOf(out)); n != 1 {
			t.Fatalf("%d BEGIN markers after splicing into %q", n, data)
		}
		if ExtractDockerUserBlock(out) != block {
			t.Fatalf("the spliced block is not the block: %q", out)
		}
		again, err := SpliceDockerUserBlock(out, block)
		if err != nil || again != out {
			t.Fatalf("splice is not idempotent on %q", data)
		}
		if begins, ends := markerLines(strings.Split(data, "\n")); len(begins) == 0 && len(ends) == 0 && !strings.HasPrefix(out, data) {
			t.Fatalf("a file without a block is not kept byte for byte")
		}
	})
}

func markerLinesOf(s string) []int {
	b, _ := markerLines(strings.Split(s, "\n"))
	return b
}

// TestStep4AfterRollback: the rollback hook (rollback_hooks.go) reloads UFW; ResetDockerUserWithoutBlock puts
// the live chain back to Docker's lone RETURN when the restored file has no block.
func TestStep4AfterRollback(t *testing.T) {
	ctx := context.Background()
	h, k := newStep4Host(t)
	s := DockerUserStep{}
	a := step4Answers()
	p, err := s.Plan(ctx, h, a)
	if err != nil {
		t.Fatal(err)
	}
	h.SetStep(4)
	if err := s.Apply(ctx, h, p); err != nil {
		t.Fatal(err)
	}
	if _, err := h.Rollback(4); err != nil {
		t.Fatal(err)
	}
	if err := ResetDockerUserWithoutBlock(ctx, h); err != nil {
		t.Fatal(err)
	}
	if strings.Join(k.chain, "\n") != "-A DOCKER-USER -j RETURN" {
		t.Errorf("live chain after ResetDockerUserWithoutBlock: %v", k.chain)
	}
	if err := s.Reload(ctx, h); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(h.Root, afterRulesPath)); string(b) != debianAfterRules(t) {
		t.Error("after.rules is not the stock file after the rollback")
	}
	if strings.Join(k.chain, "\n") != "-A DOCKER-USER -j RETURN" {
		t.Errorf("live chain after the rollback: %v", k.chain)
	}
	if strings.Count(strings.Join(k.calls, "\n"), "ufw reload") != 2 {
		t.Errorf("calls: %v", k.calls)
	}
}

// Right after a boot UFW has loaded the block but dockerd has not started (and not put FORWARD's jump in
// place): the check fails, and its reason says Docker is not running yet instead of leaving the operator to
// guess; with Docker running the reason stays the plain one.
func TestStep4ForwardJumpMissingWhileDockerStarts(t *testing.T) {
	ctx := context.Background()
	h, k := newStep4Host(t)
	a := step4Answers()
	want, err := expectedDockerUser(a)
	if err != nil {
		t.Fatal(err)
	}
	k.chain, k.forward = want, []string{"-A FORWARD -j ufw-before-logging-forward"}
	reason := func() string {
		for _, c := range (DockerUserStep{}).Verify(ctx, h, a) {
			if c.ID == "step4.forward-jump" {
				if c.OK {
					t.Fatalf("forward-jump passed without the jump: %+v", c)
				}
				return c.Reason
			}
		}
		t.Fatal("no step4.forward-jump check")
		return ""
	}
	k.dockerDown = "activating"
	if r := reason(); !strings.Contains(r, "Docker is not running (systemctl is-active docker: activating)") || !strings.Contains(r, "verify again once") {
		t.Errorf("while Docker starts: %q", r)
	}
	k.dockerDown = ""
	if r := reason(); strings.Contains(r, "not running") {
		t.Errorf("with Docker running: %q", r)
	}
}
