package system

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

const testToken = "fwtool@pve!fw=0a1b2c3d-4e5f-6071-8293-a4b5c6d7e8f9"

func writeToken(t *testing.T, h *Host, content string, mode os.FileMode) string {
	t.Helper()
	p := "/root/.pve-token"
	real := h.Path(p)
	if err := os.MkdirAll(filepath.Dir(real), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(real, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(real, mode); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestReadPVEToken(t *testing.T) {
	h, _ := newTestHost(t, false)
	p := writeToken(t, h, testToken+"\n", 0o600)
	tok, err := h.ReadPVEToken(p)
	if err != nil || tok != testToken {
		t.Fatalf("ReadPVEToken = %q, %v", tok, err)
	}
	secret := strings.SplitN(testToken, "=", 2)[1]
	if got := h.Redact("header PVEAPIToken=" + testToken); strings.Contains(got, secret) {
		t.Fatalf("the secret is not registered: %q", got)
	}

	h2, _ := newTestHost(t, false)
	bad := "fwtool@pve=" + secret // no !TOKENID
	p = writeToken(t, h2, bad, 0o600)
	if _, err := h2.ReadPVEToken(p); err == nil || strings.Contains(err.Error(), secret) {
		t.Fatalf("a malformed token: err = %v (must fail and never quote the file)", err)
	}
	if got := h2.Redact(bad); strings.Contains(got, secret) {
		t.Fatalf("a malformed token's secret is not registered either: %q", got)
	}

	h3, _ := newTestHost(t, false)
	p = writeToken(t, h3, testToken, 0o644)
	if _, err := h3.ReadPVEToken(p); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Fatalf("a world-readable token file must be refused: %v", err)
	}
	if _, err := h3.ReadPVEToken("/nope"); err == nil || !strings.Contains(err.Error(), "does not exist") {
		t.Fatalf("missing file: %v", err)
	}
}

func fakeServer(t *testing.T) (*FakePVE, *httptest.Server, PVEOptions) {
	t.Helper()
	f := NewFakePVE(testToken, "pve", 100)
	srv := httptest.NewTLSServer(f)
	t.Cleanup(srv.Close)
	pool := x509.NewCertPool()
	pool.AddCert(srv.Certificate())
	return f, srv, PVEOptions{TLS: &tls.Config{RootCAs: pool}}
}

func rulesFor(names ...string) []PVERule {
	var rs []PVERule
	for _, n := range names {
		rs = append(rs, PVERule{Type: "out", Action: "DROP", Dest: n, Comment: "drop " + n, Enable: 1})
	}
	return rs
}

func dests(rs []PVERule) []string {
	var out []string
	for _, r := range rs {
		out = append(out, r.Dest)
	}
	return out
}

func TestPVEReplaceRulesReverseOrder(t *testing.T) {
	ctx := context.Background()
	f, srv, o := fakeServer(t)
	h, _ := newTestHost(t, false)
	c, err := h.NewPVEClient(srv.URL, testToken, o)
	if err != nil {
		t.Fatal(err)
	}
	want := rulesFor("192.168.1.0/24", "10.0.0.0/8", "172.16.0.0/12")

	// Posting in file order, as a naive client would, gives the list upside down: POST inserts at 0.
	for _, r := range want {
		if err := c.AddVMRule(ctx, "pve", 100, r); err != nil {
			t.Fatal(err)
		}
	}
	got, err := c.VMRules(ctx, "pve", 100)
	if err != nil {
		t.Fatal(err)
	}
	if reflect.DeepEqual(dests(got), dests(want)) {
		t.Fatalf("forward posting should reverse the list, got %v", dests(got))
	}
	if !reflect.DeepEqual(dests(got), []string{"172.16.0.0/12", "10.0.0.0/8", "192.168.1.0/24"}) {
		t.Fatalf("forward posting: %v", dests(got))
	}

	// ReplaceVMRules posts in reverse and removes the old ones: exactly want, in order, all enabled.
	if err := c.ReplaceVMRules(ctx, "pve", 100, want); err != nil {
		t.Fatal(err)
	}
	got, _ = c.VMRules(ctx, "pve", 100)
	if !reflect.DeepEqual(dests(got), dests(want)) {
		t.Fatalf("after ReplaceVMRules: %v, want %v", dests(got), dests(want))
	}
	for _, r := range got {
		if r.Enable != 1 || r.Comment != "drop "+r.Dest {
			t.Fatalf("rule not as posted: %+v", r)
		}
	}
	// A rule posted without enable=1 is created disabled, as the real API does.
	if err := c.Do(ctx, "POST", "/nodes/pve/qemu/100/firewall/rules", map[string][]string{"type": {"in"}, "action": {"DROP"}}, nil); err != nil {
		t.Fatal(err)
	}
	rs, _, _, _ := f.Snapshot()
	if rs[0].Enable != 0 {
		t.Fatalf("POST without enable must create a disabled rule: %+v", rs[0])
	}
}

func TestPVEOptionsConfigAndErrors(t *testing.T) {
	ctx := context.Background()
	f, srv, o := fakeServer(t)
	h, _ := newTestHost(t, false)
	c, _ := h.NewPVEClient(srv.URL+"/", testToken, o)
	if err := c.SetVMFirewallOptions(ctx, "pve", 100, map[string][]string{"enable": {"1"}, "policy_out": {"DROP"}}); err != nil {
		t.Fatal(err)
	}
	m, err := c.VMFirewallOptions(ctx, "pve", 100)
	if err != nil || m["enable"] != "1" || m["policy_out"] != "DROP" {
		t.Fatalf("options = %v, %v", m, err)
	}
	cfg, err := c.VMConfig(ctx, "pve", 100)
	if err != nil || NetFirewall(cfg["net0"]) {
		t.Fatalf("config = %v, %v", cfg, err)
	}
	f.ForbidDC = true
	err = c.SetClusterFirewallOptions(ctx, map[string][]string{"enable": {"1"}})
	var pe *PVEError
	if !errors.As(err, &pe) || pe.Status != 403 || !strings.Contains(err.Error(), "privilege") {
		t.Fatalf("403 = %v", err)
	}
	// a wrong token: 401, and the token never appears in the error or the journal
	bad, _ := h.NewPVEClient(srv.URL, "fwtool@pve!fw=wrong-secret-value", o)
	_, err = bad.VMRules(ctx, "pve", 100)
	if !errors.As(err, &pe) || pe.Status != 401 || strings.Contains(err.Error(), "wrong-secret-value") {
		t.Fatalf("401 = %v", err)
	}
	j, _ := os.ReadFile(filepath.Join(h.StateDir, "journal.log"))
	if strings.Contains(string(j), "0a1b2c3d") || !strings.Contains(string(j), "api: PUT /nodes/pve/qemu/100/firewall/options") {
		t.Fatalf("journal:\n%s", j)
	}
}

func TestPVEDryRunSendsNothing(t *testing.T) {
	ctx := context.Background()
	f, srv, o := fakeServer(t)
	h, _ := newTestHost(t, true)
	c, _ := h.NewPVEClient(srv.URL, testToken, o)
	// The test server is on loopback, which Dial allows: writes must still be refused by the client.
	if err := c.ReplaceVMRules(ctx, "pve", 100, rulesFor("10.0.0.0/8")); err != nil {
		t.Fatal(err)
	}
	if err := c.SetVMConfig(ctx, "pve", 100, map[string][]string{"net0": {"x"}}); err != nil {
		t.Fatal(err)
	}
	for _, call := range f.Calls {
		if !strings.HasPrefix(call, "GET ") {
			t.Fatalf("dry run sent %s", call)
		}
	}
	if w := strings.Join(h.Would(), "\n"); !strings.Contains(w, "would call: POST /nodes/pve/qemu/100/firewall/rules") ||
		!strings.Contains(w, "would call: PUT /nodes/pve/qemu/100/config") {
		t.Fatalf("would = %s", w)
	}
	// A node that is not on loopback is not contacted at all: Host.Dial refuses it.
	c2, _ := h.NewPVEClient("https://192.0.2.1:8006", testToken, o)
	if _, err := c2.VMRules(ctx, "pve", 100); !errors.Is(err, ErrDryRun) {
		t.Fatalf("dry-run GET to a remote node: %v", err)
	}
	if err := c2.ReplaceVMRules(ctx, "pve", 100, rulesFor("10.0.0.0/8")); err != nil {
		t.Fatalf("dry-run replace without reaching the node: %v", err)
	}
}

func TestNetFirewall(t *testing.T) {
	for in, want := range map[string]string{
		"virtio=BC:24:11:AA:BB:CC,bridge=vmbr0":                  "virtio=BC:24:11:AA:BB:CC,bridge=vmbr0,firewall=1",
		"virtio=BC:24:11:AA:BB:CC,bridge=vmbr0,firewall=0":       "virtio=BC:24:11:AA:BB:CC,bridge=vmbr0,firewall=1",
		"virtio=BC:24:11:AA:BB:CC,firewall=1,bridge=vmbr0,tag=5": "virtio=BC:24:11:AA:BB:CC,firewall=1,bridge=vmbr0,tag=5",
	} {
		got := WithNetFirewall(in)
		if got != want || !NetFirewall(got) {
			t.Errorf("WithNetFirewall(%q) = %q, want %q", in, got, want)
		}
	}
	if NetFirewall("virtio=BC:24:11:AA:BB:CC,bridge=vmbr0,firewall=0") || NetFirewall("") {
		t.Error("firewall=0 and empty are off")
	}
}
