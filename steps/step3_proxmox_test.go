package steps

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"openclaw-harden/pvefw"
	"openclaw-harden/system"
)

func step3Host(t *testing.T, dry bool) *system.Host {
	t.Helper()
	return system.NewFakeHost(t.TempDir(), t.TempDir(), system.NewFakeRunner(nil), dry)
}

func failedChecks(cs []Check) map[string]Check {
	out := map[string]Check{}
	for _, c := range cs {
		if !c.OK {
			out[c.ID] = c
		}
	}
	return out
}

func TestProxmoxStepFilePath(t *testing.T) {
	ctx := context.Background()
	h := step3Host(t, false)
	a := defaultAnswers()
	var st ProxmoxStep
	p, err := st.Plan(ctx, h, a)
	if err != nil || p.Blocked != "" {
		t.Fatalf("plan: %v %q", err, p.Blocked)
	}
	if len(p.Changes) != 2 || p.Changes[0].Target != filepath.Join(h.StateDir, "proxmox", "100.fw") || p.Changes[0].Kind != "file" {
		t.Fatalf("changes: %+v", p.Changes)
	}
	cmds := strings.Join(p.Commands, "\n")
	for _, want := range []string{"scp 100.fw root@pve:/etc/pve/firewall/100.fw", "sudo cat " + filepath.Join(h.StateDir, "proxmox", "100.fw"), "pve-firewall compile", "pve-firewall status",
		"pvesh set /cluster/firewall/options --enable 1", "qm config 100 | grep ^net0:", "qm set 100 --net0 <that same value>,firewall=1",
		"pve-firewall localnet"} {
		if !strings.Contains(cmds, want) {
			t.Errorf("commands lack %q:\n%s", want, cmds)
		}
	}
	if p.Risk != "" {
		t.Errorf("the file path writes only the state dir: no risk, got %q", p.Risk)
	}

	// dry run: nothing is written
	hd := step3Host(t, true)
	pd, _ := st.Plan(ctx, hd, a)
	if err := st.Apply(ctx, hd, pd); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(hd.StateDir, "proxmox")); !os.IsNotExist(err) {
		t.Fatalf("dry run wrote the state dir: %v", err)
	}

	if err := st.Apply(ctx, h, p); err != nil {
		t.Fatal(err)
	}
	saved, err := os.ReadFile(filepath.Join(h.StateDir, "proxmox", "100.fw"))
	if err != nil || len(pvefw.Check("100.fw", saved)) != 0 {
		t.Fatalf("saved: %v", err)
	}
	if p2, _ := st.Plan(ctx, h, a); !p2.Empty() {
		t.Fatalf("second plan: %s", p2.Summary())
	}

	// Verify without the API: the file checks pass, each switch fails until the operator confirms it.
	cs := st.Verify(ctx, h, a)
	bad := failedChecks(cs)
	if len(bad) != 4 || bad["step3.file.saved"].ID != "" {
		t.Fatalf("verify before confirmation: %+v", cs)
	}
	dc := bad["step3.confirm.datacenter"]
	if !strings.HasPrefix(dc.Reason, "not confirmed: run `pve-firewall status`") || !strings.Contains(dc.Reason, "on node pve") {
		t.Fatalf("reason: %q", dc.Reason)
	}
	if err := ConfirmProxmox(h, a, []string{"rules", "datacenter", "vm", "nic"}); err != nil {
		t.Fatal(err)
	}
	if cs := st.Verify(ctx, h, a); !Passed(cs) {
		t.Fatalf("verify after confirmation: %+v", failedChecks(cs))
	}

	// The answers change: the saved file is stale and the confirmation was for the old file.
	a.AllowHTTP = true
	bad = failedChecks(st.Verify(ctx, h, a))
	if bad["step3.file.saved"].Got != "differs" || !strings.Contains(bad["step3.confirm.vm"].Reason, "another version of the file") {
		t.Fatalf("after an answers change: %+v", bad)
	}
	if err := ConfirmProxmox(h, a, []string{"vm"}); err == nil {
		t.Fatal("confirming a file that was not saved must fail")
	}

	// A saved file edited by hand fails the strict check too.
	_ = os.WriteFile(filepath.Join(h.StateDir, "proxmox", "100.fw"), []byte("[OPTIONS] # x\nenable: 1\n"), 0o600)
	if bad := failedChecks(st.Verify(ctx, h, defaultAnswers())); bad["step3.file.valid"].ID == "" {
		t.Fatalf("edited file passes: %+v", bad)
	}

	// No admin_source: blocked, with the reason.
	a.AdminSource = ""
	if p, err := st.Plan(ctx, h, a); err != nil || !strings.Contains(p.Blocked, "admin_source") {
		t.Fatalf("no admin_source: %v %q", err, p.Blocked)
	}
}

const step3Token = "fwtool@pve!fw=5e1f2a3b-0c4d-4e5f-8a9b-0c1d2e3f4a5b"

func step3API(t *testing.T) (*system.Host, Answers, *system.FakePVE) {
	t.Helper()
	fake := system.NewFakePVE(step3Token, "pve", 100)
	srv := httptest.NewTLSServer(fake)
	t.Cleanup(srv.Close)
	pool := x509.NewCertPool()
	pool.AddCert(srv.Certificate())
	old := pveClientOptions
	pveClientOptions = system.PVEOptions{TLS: &tls.Config{RootCAs: pool}}
	t.Cleanup(func() { pveClientOptions = old })
	h := step3Host(t, false)
	tf := "/root/.pve-token"
	if err := os.MkdirAll(filepath.Dir(h.Path(tf)), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(h.Path(tf), []byte(step3Token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	a := defaultAnswers()
	a.Proxmox.APIURL, a.Proxmox.TokenFile = srv.URL, tf
	return h, a, fake
}

func TestProxmoxStepAPI(t *testing.T) {
	ctx := context.Background()
	h, a, fake := step3API(t)
	// an old rule the operator had: replaced with the rest, as copying the file would
	fake.Rules = []system.PVERule{{Type: "out", Action: "ACCEPT", Enable: 1, Comment: "old allow-all"}}
	var st ProxmoxStep
	p, err := st.Plan(ctx, h, a)
	if err != nil || p.Blocked != "" {
		t.Fatalf("plan: %v %q", err, p.Blocked)
	}
	if len(p.Changes) != 3 || p.Changes[2].Kind != "rules" || p.Changes[2].Action() != "~" {
		t.Fatalf("changes: %+v", p.Changes)
	}
	if !strings.Contains(p.Changes[2].Before, "OUT ACCEPT # old allow-all") || !strings.Contains(p.Changes[2].Before, "datacenter firewall enable: (unset, off)") {
		t.Fatalf("before:\n%s", p.Changes[2].Before)
	}
	if !strings.Contains(p.Risk, "datacenter firewall on") {
		t.Fatalf("switching the datacenter firewall on is a named risk: %q", p.Risk)
	}
	// Before Apply, Verify through the API fails on every switch and on the rules.
	bad := failedChecks(st.Verify(ctx, h, a))
	for _, id := range []string{"step3.api.datacenter", "step3.api.vm.enable", "step3.api.vm.policy_out", "step3.api.nic", "step3.api.rules"} {
		if bad[id].ID == "" {
			t.Errorf("%s passes before apply", id)
		}
	}
	if err := st.Apply(ctx, h, p); err != nil {
		t.Fatal(err)
	}
	rules, vm, cluster, cfg := fake.Snapshot()
	rs, _ := ProxmoxRules(a)
	if len(rules) != len(rs.Rules) {
		t.Fatalf("%d rules on the node, want %d", len(rules), len(rs.Rules))
	}
	for i, r := range rules {
		if RuleLine(pveToRule(r)) != RuleLine(rs.Rules[i]) || r.Enable != 1 {
			t.Fatalf("rule %d: node %q, want %q", i, RuleLine(pveToRule(r)), RuleLine(rs.Rules[i]))
		}
	}
	if vm["enable"] != "1" || vm["policy_in"] != "DROP" || vm["policy_out"] != "DROP" || vm["dhcp"] != "1" || cluster["enable"] != "1" {
		t.Fatalf("options: vm %v cluster %v", vm, cluster)
	}
	if cfg["net0"] != "virtio=BC:24:11:AA:BB:CC,bridge=vmbr0,firewall=1" {
		t.Fatalf("net0 = %q (the MAC and bridge must be kept)", cfg["net0"])
	}
	// The VM's own switch is the last write.
	var writes []string
	for _, c := range fake.Calls {
		if !strings.HasPrefix(c, "GET ") {
			writes = append(writes, c)
		}
	}
	if last := writes[len(writes)-1]; last != "PUT /nodes/pve/qemu/100/firewall/options" {
		t.Fatalf("last write %q", last)
	}
	cs := st.Verify(ctx, h, a)
	if !Passed(cs) {
		t.Fatalf("verify after apply: %+v", failedChecks(cs))
	}
	if p2, _ := st.Plan(ctx, h, a); !p2.Empty() || p2.Risk != "" {
		t.Fatalf("second plan: %s %q", p2.Summary(), p2.Risk)
	}
	// The secret never shows: not in the plan, the checks or the journal.
	secret := strings.SplitN(step3Token, "=", 2)[1]
	j, _ := os.ReadFile(filepath.Join(h.StateDir, "journal.log"))
	all := string(j) + p.Changes[2].Diff() + strings.Join(p.Notes, "") + strings.Join(p.Commands, "")
	for _, c := range cs {
		all += c.Got + c.Reason
	}
	if strings.Contains(all, secret) {
		t.Fatal("the token's secret leaked")
	}

	// Only the NIC flag drifted: Apply fixes it without touching the rules.
	fake.Config["net0"] = "virtio=BC:24:11:AA:BB:CC,bridge=vmbr0,firewall=0"
	p3, _ := st.Plan(ctx, h, a)
	calls := len(fake.Calls)
	if err := st.Apply(ctx, h, p3); err != nil {
		t.Fatal(err)
	}
	for _, c := range fake.Calls[calls:] {
		if strings.Contains(c, "/firewall/rules") && !strings.HasPrefix(c, "GET ") {
			t.Fatalf("rules rewritten although they were as generated: %s", c)
		}
	}
	if !Passed(st.Verify(ctx, h, a)) {
		t.Fatal("NIC drift not repaired")
	}

	// Drift on the node: two rules swapped, or one disabled, is caught with the rule number.
	fake.Rules[1], fake.Rules[2] = fake.Rules[2], fake.Rules[1]
	bad = failedChecks(st.Verify(ctx, h, a))
	if !strings.Contains(bad["step3.api.rules"].Reason, "rule 2 differs") {
		t.Fatalf("swapped rules: %+v", bad)
	}
	fake.Rules[1], fake.Rules[2] = fake.Rules[2], fake.Rules[1]
	fake.Rules[5].Enable = 0
	bad = failedChecks(st.Verify(ctx, h, a))
	if !strings.Contains(bad["step3.api.rules"].Reason, "rule 6 differs") {
		t.Fatalf("disabled rule: %+v", bad)
	}
}

func TestProxmoxStepAPIUnreachableAndForbidden(t *testing.T) {
	ctx := context.Background()
	h, a, fake := step3API(t)
	var st ProxmoxStep
	fake.ForbidDC = true
	p, err := st.Plan(ctx, h, a)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Apply(ctx, h, p); err == nil || !strings.Contains(err.Error(), "Sys.Modify") {
		t.Fatalf("403 on the datacenter switch: %v", err)
	}

	// A node the VM cannot reach: Verify falls back to the operator's confirmation and says why.
	a.Proxmox.APIURL = "https://127.0.0.1:1"
	bad := failedChecks(st.Verify(ctx, h, a))
	if r := bad["step3.confirm.nic"].Reason; !strings.Contains(r, "the Proxmox API could not be read") || !strings.Contains(r, "not confirmed") {
		t.Fatalf("fallback reason: %q", r)
	}
	// A token file others can read blocks the plan.
	_ = os.Chmod(h.Path(a.Proxmox.TokenFile), 0o644)
	if p, _ := st.Plan(ctx, h, a); !strings.Contains(p.Blocked, "chmod 600") {
		t.Fatalf("blocked = %q", p.Blocked)
	}
}
