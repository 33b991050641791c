package steps

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"openclaw-harden/system"
)

const (
	upV1      = "docker-compose -p openclaw -f /opt/openclaw/compose.yaml --project-directory /opt/openclaw up -d --remove-orphans"
	inspectGW = "docker inspect --type container openclaw-gateway"
)

// fakeInspect is docker inspect of a hardened gateway container (as Docker 20.10 prints the fields read here).
func fakeInspect(health string) string {
	c := map[string]any{
		"Name": "/openclaw-gateway",
		"State": map[string]any{"Status": "running", "Running": true, "Pid": 4242,
			"Health": map[string]any{"Status": health, "Log": []any{map[string]any{"ExitCode": 0, "Output": ""}}}},
		"Config": map[string]any{"Image": "ghcr.io/openclaw/openclaw:latest"},
		"HostConfig": map[string]any{"Privileged": false, "CapDrop": []string{"ALL"}, "SecurityOpt": []string{"no-new-privileges:true"},
			"NetworkMode": "openclaw_openclaw", "Memory": 2 << 30, "PidsLimit": 512, "Dns": []string{"1.1.1.1", "8.8.8.8"},
			"PortBindings": map[string]any{"18789/tcp": []any{map[string]string{"HostIp": "127.0.0.1", "HostPort": "18789"}}}},
		"Mounts":          []any{map[string]string{"Type": "bind", "Source": "/opt/openclaw/config", "Destination": "/home/node/.openclaw"}},
		"NetworkSettings": map[string]any{"Networks": map[string]any{"openclaw_openclaw": map[string]string{"IPAddress": "172.20.0.2", "NetworkID": "abc123"}}},
	}
	b, _ := json.Marshal([]any{c})
	return string(b)
}

func step67Host(t *testing.T) (*system.Host, *system.FakeRunner, string) {
	t.Helper()
	root := t.TempDir()
	f := system.NewFakeRunner(map[string]string{
		"docker version --format {{.Server.Version}}": "20.10.24+dfsg1\n",
		"docker-compose version --short":              "1.29.2\n",
		upV1:                                          "Creating network \"openclaw_openclaw\" with driver \"bridge\"\nCreating openclaw-gateway ... done\n",
		"chown 1000:1000 " + filepath.Join(root, "/opt/openclaw/config/openclaw.json"): "",
	})
	f.Set(inspectGW, system.FakeResponse{Exit: 1, Stderr: "Error: No such object: openclaw-gateway"})
	h := &system.Host{Runner: f, Root: root, StateDir: filepath.Join(root, "/var/lib/openclaw-harden")}
	return h, f, root
}

func TestStep6And7OnAFakeHost(t *testing.T) {
	ctx := context.Background()
	h, f, root := step67Host(t)
	old := healthPollInterval
	healthPollInterval = 0
	defer func() { healthPollInterval = old }()
	a := Defaults()

	p, err := ComposeStep{}.Plan(ctx, h, a)
	if err != nil || p.Blocked != "" {
		t.Fatalf("plan: %v %q", err, p.Blocked)
	}
	var token string
	for _, c := range p.Pending() {
		if strings.HasSuffix(c.Target, "/.env") {
			ls := parseEnvFile(c.After)
			token, _ = envValue(ls, "OPENCLAW_GATEWAY_TOKEN")
			if d := c.Diff(); strings.Contains(d, token) || !strings.Contains(d, "OPENCLAW_GATEWAY_TOKEN=<redacted>") {
				t.Errorf(".env diff shows the token or no <redacted>:\n%s", d)
			}
		}
	}
	if len(token) != 64 {
		t.Fatalf("no generated token in the plan (%q)", token)
	}
	if h.Redact("x"+token) != "x<redacted>" {
		t.Error("the token is not registered with the Host")
	}
	// Apply: compose up through v1, then the health wait sees healthy.
	f.Set(upV1, system.FakeResponse{Stdout: "Creating openclaw-gateway ... done\n"})
	// The fake cannot change its answer mid-Apply, so the container "appears" when up runs: answer healthy already.
	f.Set(inspectGW, system.FakeResponse{Stdout: fakeInspect("healthy")})
	if err := (ComposeStep{}).Apply(ctx, h, p); err != nil {
		t.Fatalf("apply: %v", err)
	}
	mode := func(p string) (os.FileMode, int) {
		st, err := os.Stat(filepath.Join(root, p))
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		return st.Mode().Perm(), int(st.Sys().(*syscall.Stat_t).Uid)
	}
	if m, _ := mode("/opt/openclaw/.env"); m != 0o600 {
		t.Errorf(".env mode %04o", m)
	}
	if m, uid := mode("/opt/openclaw/config"); m != 0o700 || uid != 1000 {
		t.Errorf("config dir mode %04o uid %d", m, uid)
	}
	if m, _ := mode("/opt/openclaw/config/openclaw.json"); m != 0o600 {
		t.Errorf("openclaw.json mode %04o", m)
	}
	journal, _ := os.ReadFile(filepath.Join(h.StateDir, "journal.log"))
	if strings.Contains(string(journal), token) {
		t.Error("the journal holds the token")
	}
	if !strings.Contains(strings.Join(f.Calls, "\n"), upV1) {
		t.Errorf("compose up did not run: %v", f.Calls)
	}
	// A second plan: nothing to do.
	p2, err := ComposeStep{}.Plan(ctx, h, a)
	if err != nil || !p2.Empty() {
		for _, c := range p2.Pending() {
			t.Errorf("second plan: %s %s\n%s", c.Action(), c.Target, c.Diff())
		}
	}
	// Verify against the fake's Docker.
	f.Set("ss -H -tlnp sport = :18789", system.FakeResponse{Stdout: "LISTEN 0 4096 127.0.0.1:18789 0.0.0.0:* users:((\"docker-proxy\",pid=9,fd=4))\n"})
	f.Set("docker network inspect abc123", system.FakeResponse{Stdout: `[{"Name":"openclaw_openclaw","Options":{"com.docker.network.bridge.enable_icc":"false"},"IPAM":{"Config":[{"Subnet":"172.20.0.0/24"}]}}]`})
	for _, c := range (ComposeStep{}).Verify(ctx, h, a) {
		if !c.OK {
			t.Errorf("verify %s: got %q: %s", c.ID, c.Got, c.Reason)
		}
	}
	// A LAN-published port fails verification.
	f.Set("ss -H -tlnp sport = :18789", system.FakeResponse{Stdout: "LISTEN 0 4096 0.0.0.0:18789 0.0.0.0:*\n"})
	failed := false
	for _, c := range (ComposeStep{}).Verify(ctx, h, a) {
		failed = failed || (c.ID == "step6.listen" && !c.OK)
	}
	if !failed {
		t.Error("a listener on 0.0.0.0:18789 passed")
	}

	// Step 7 on the config Step 6 left: the whole policy, then a restart and the audit.
	p7, err := PolicyStep{}.Plan(ctx, h, a)
	if err != nil || p7.Blocked != "" || p7.Empty() {
		t.Fatalf("step 7 plan: %v %q empty=%v", err, p7.Blocked, p7.Empty())
	}
	f.Set("docker restart -t 60 openclaw-gateway", system.FakeResponse{Stdout: "openclaw-gateway\n"})
	if err := (PolicyStep{}).Apply(ctx, h, p7); err != nil {
		t.Fatalf("step 7 apply: %v", err)
	}
	if p7b, _ := (PolicyStep{}).Plan(ctx, h, a); !p7b.Empty() {
		t.Errorf("second step 7 plan not empty: %v", p7b.Pending())
	}
	if p6b, _ := (ComposeStep{}).Plan(ctx, h, a); !p6b.Empty() {
		t.Errorf("step 6 after step 7 not empty (they must agree on the gateway keys): %v", p6b.Pending())
	}
	deep, _ := os.ReadFile("testdata/step7/audit-hardened-deep.json")
	f.Set(strings.Join(auditArgv(true), " "), system.FakeResponse{Stdout: string(deep)})
	var ids []string
	for _, c := range (PolicyStep{}).Verify(ctx, h, a) {
		ids = append(ids, c.ID)
		if !c.OK {
			t.Errorf("step 7 verify %s: got %q: %s", c.ID, c.Got, c.Reason)
		}
		if c.ID == "step7.audit-known" && !strings.Contains(c.Got, "gateway.probe_failed") {
			t.Errorf("the known finding is not listed: %q", c.Got)
		}
	}
	if !strings.Contains(strings.Join(ids, ","), "step7.audit,step7.audit-known") {
		t.Errorf("checks: %v", ids)
	}
	empty, _ := os.ReadFile("testdata/step7/audit-empty.json")
	f.Set(strings.Join(auditArgv(true), " "), system.FakeResponse{Stdout: string(empty)})
	for _, c := range (PolicyStep{}).Verify(ctx, h, a) {
		if c.ID == "step7.audit" && c.OK {
			t.Error("an audit with a critical finding passed")
		}
	}
}

func TestStep7LiteralTokenRedacted(t *testing.T) {
	ctx := context.Background()
	h, _, root := step67Host(t)
	dir := filepath.Join(root, "/opt/openclaw/config")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	secret := "operator-literal-gateway-token-XYZ123456789"
	cfg := "{ gateway: { auth: { mode: 'token', token: '" + secret + "' } }, // mine\n custom: 1, }\n"
	if err := os.WriteFile(filepath.Join(dir, "openclaw.json"), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	p, err := PolicyStep{}.Plan(ctx, h, Defaults())
	if err != nil || p.Blocked != "" {
		t.Fatal(err, p.Blocked)
	}
	var all strings.Builder
	for _, c := range p.Pending() {
		all.WriteString(c.Diff())
	}
	for _, n := range p.Notes {
		all.WriteString(n)
	}
	if strings.Contains(all.String(), secret) || !strings.Contains(all.String(), "<redacted>") {
		t.Errorf("plan shows the literal token or no <redacted>:\n%s", all.String())
	}
	if h.Redact(secret) != "<redacted>" {
		t.Error("the literal token is not registered with the Host")
	}
	if !strings.Contains(all.String(), "mode 0644") {
		t.Errorf("the 0644 file is not shown as a mode change:\n%s", all.String())
	}
}
