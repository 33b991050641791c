package steps

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func renderDefault(t *testing.T) string {
	t.Helper()
	s, err := RenderCompose(Defaults())
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestRenderComposeShape(t *testing.T) {
	s := renderDefault(t)
	for _, want := range []string{
		`"127.0.0.1:18789:18789"`, "--bind\", \"lan\"", "cap_drop: [ALL]", `security_opt: ["no-new-privileges:true"]`,
		"init: true", "restart: unless-stopped", "mem_limit: 2g", "pids_limit: 512", "/healthz",
		`com.docker.network.bridge.enable_icc: "false"`, "subnet: 172.20.0.0/24", "- 1.1.1.1", "- 8.8.8.8",
		"image: ghcr.io/openclaw/openclaw:latest", "/opt/openclaw/config:/home/node/.openclaw",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("compose.yaml lacks %q", want)
		}
	}
	for _, bad := range []string{"18790", "docker.sock", "privileged", "network_mode", "version:", "OPENCLAW_GATEWAY_TOKEN"} {
		if strings.Contains(s, bad) {
			t.Errorf("compose.yaml contains %q", bad)
		}
	}
	a := Defaults()
	a.GatewayPort, a.Resolvers, a.DockerSubnet, a.Image = 28789, []string{"203.0.113.53"}, "172.30.5.0/24", "lab/openclaw:2026.9.6"
	s2, err := RenderCompose(a)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"127.0.0.1:28789:18789"`, "- 203.0.113.53", "subnet: 172.30.5.0/24", "image: lab/openclaw:2026.9.6"} {
		if !strings.Contains(s2, want) {
			t.Errorf("compose.yaml for other answers lacks %q", want)
		}
	}
	for _, bad := range []func(*Answers){
		func(a *Answers) { a.Image = "" }, func(a *Answers) { a.Image = "x y" }, func(a *Answers) { a.GatewayPort = 0 },
		func(a *Answers) { a.DockerSubnet = "nope" }, func(a *Answers) { a.Resolvers = nil }, func(a *Answers) { a.Resolvers = []string{"dns.google"} },
	} {
		a := Defaults()
		bad(&a)
		if _, err := RenderCompose(a); err == nil {
			t.Errorf("RenderCompose(%+v) accepted bad answers", a)
		}
	}
}

func TestCheckComposeGeneratedIsClean(t *testing.T) {
	dir := t.TempDir()
	name := filepath.Join(dir, "compose.yaml")
	if fs := CheckCompose(name, []byte(renderDefault(t)), map[string]string{}); len(fs) != 0 {
		t.Fatalf("generated compose has findings:\n%s", strings.Join(FormatComposeFindings(name, fs), "\n"))
	}
}

// Each violation is found, with its service, key and (where the key is literal) its line.
func TestCheckComposeViolations(t *testing.T) {
	clean := renderDefault(t)
	svc := "  openclaw-gateway:\n"
	cases := []struct {
		name, from, to string
		want           string // substring of a finding
	}{
		{"port without address", `"127.0.0.1:18789:18789"`, `"18789:18789"`, "service openclaw-gateway: ports: 18789 -> 18789/tcp has no host address"},
		{"port on 0.0.0.0", `"127.0.0.1:18789:18789"`, `"0.0.0.0:18789:18789"`, "ports: 0.0.0.0:18789 -> 18789 is published on 0.0.0.0"},
		{"long syntax without host_ip", "      - \"127.0.0.1:18789:18789\"\n", "      - target: 18789\n        published: \"18789\"\n", "ports: 18789 -> 18789/tcp has no host address"},
		{"interpolated port", `"127.0.0.1:18789:18789"`, `"${OPENCLAW_GATEWAY_PORT:-18789}:18789"`, "has no host address"},
		{"interpolated host ip", `"127.0.0.1:18789:18789"`, `"${BIND_IP:-0.0.0.0}:18789:18789"`, "published on 0.0.0.0"},
		{"lan address", `"127.0.0.1:18789:18789"`, `"192.168.1.10:18789:18789"`, "published on 192.168.1.10"},
		{"docker.sock", "    volumes:\n", "    volumes:\n      - /var/run/docker.sock:/var/run/docker.sock\n", "volumes: mounts /var/run/docker.sock"},
		{"docker.sock long syntax", "    volumes:\n", "    volumes:\n      - type: bind\n        source: /run/docker.sock\n        target: /sock\n", "volumes: mounts /run/docker.sock"},
		{"privileged", "    init: true\n", "    init: true\n    privileged: true\n", "privileged: true"},
		{"privileged through an anchor", svc, "x-p: &p\n  privileged: true\nservices:\n  openclaw-gateway:\n    <<: *p\n", "privileged: true"},
		{"host network", "    networks: [openclaw]\n", "    network_mode: host\n", "network_mode: host"},
		{"no dns", "    dns:\n      - 1.1.1.1\n      - 8.8.8.8\n", "", "dns: not set"},
		{"unpinned subnet", "    ipam:\n      config:\n        - subnet: 172.20.0.0/24\n", "", "network openclaw has no pinned subnet"},
		{"icc on", `      com.docker.network.bridge.enable_icc: "false"`, `      com.docker.network.bridge.enable_icc: "true"`, "network openclaw does not set driver_opts com.docker.network.bridge.enable_icc"},
		{"default network", "    networks: [openclaw]\n", "", "network default has no pinned subnet"},
		{"cap_drop missing", "    cap_drop: [ALL]\n", "", "cap_drop: does not drop ALL"},
		{"cap_drop partial", "    cap_drop: [ALL]\n", "    cap_drop: [NET_RAW, NET_ADMIN]\n", "cap_drop: does not drop ALL"},
		{"no-new-privileges missing", "    security_opt: [\"no-new-privileges:true\"]\n", "", "security_opt: no no-new-privileges"},
		{"no mem limit", "    mem_limit: 2g\n", "", "mem_limit: not set"},
		{"no pids limit", "    pids_limit: 512\n", "", "pids_limit: not set"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if c.name == "privileged through an anchor" {
				c.from = "services:\n" + svc
			}
			if !strings.Contains(clean, c.from) {
				t.Fatalf("test case does not apply: %q not in the generated file", c.from)
			}
			data := strings.Replace(clean, c.from, c.to, 1)
			name := filepath.Join(t.TempDir(), "compose.yaml")
			got := FormatComposeFindings(name, CheckCompose(name, []byte(data), map[string]string{}))
			for _, g := range got {
				if strings.Contains(g, c.want) {
					if !strings.HasPrefix(g, name+":") {
						t.Errorf("finding %q does not start with the file name", g)
					}
					return
				}
			}
			t.Errorf("no finding containing %q; got:\n%s", c.want, strings.Join(got, "\n"))
		})
	}
}

func TestCheckComposeLinesAndEnv(t *testing.T) {
	data, err := os.ReadFile("testdata/step6/upstream-like.yaml")
	if err != nil {
		t.Fatal(err)
	}
	got := FormatComposeFindings("c.yaml", CheckCompose("c.yaml", data, map[string]string{}))
	joined := strings.Join(got, "\n")
	for _, want := range []string{
		"c.yaml:7: service gw: ports: 18789 -> 18789/tcp has no host address",
		"c.yaml:7: service gw: ports: 0.0.0.0:18790 -> 18790 is published on 0.0.0.0",
		"c.yaml:13: service gw: volumes: mounts /var/run/docker.sock",
		"c.yaml:15: service gw: cap_drop:",
		"c.yaml:18: service cli: network_mode: host",
		"service gw: privileged: true",
	} {
		if !strings.Contains(joined, want) {
			t.Errorf("missing %q in:\n%s", want, joined)
		}
	}
	if strings.Contains(joined, "1000") {
		t.Errorf("127.0.0.1:1000:1000 is fine but was reported:\n%s", joined)
	}
	// Interpolation: with PORT set to an address-bearing value the port is still caught under its real value.
	got = FormatComposeFindings("c.yaml", CheckCompose("c.yaml", data, map[string]string{"PORT": "127.0.0.1:18789"}))
	if strings.Contains(strings.Join(got, "\n"), "18789 -> 18789/tcp has no host address") {
		t.Errorf("PORT=127.0.0.1:18789 should publish on loopback:\n%s", strings.Join(got, "\n"))
	}
	// A file that does not load is one finding, not a crash.
	fs := CheckCompose("x.yaml", []byte("services: [1, 2"), map[string]string{})
	if len(fs) != 1 || !strings.Contains(fs[0].Format("x.yaml"), "does not load") {
		t.Errorf("broken file: %v", fs)
	}
	// No line known: FILE: service S: key: message.
	if f := (ComposeFinding{Service: "s", Key: "dns", Message: "m"}).Format("f"); f != "f: service s: dns: m" {
		t.Errorf("format without line: %q", f)
	}
}

func TestMergeEnvFile(t *testing.T) {
	tok := strings.Repeat("a", 64)
	out, secrets, _ := MergeEnvFile("", tok)
	if out != "OPENCLAW_GATEWAY_TOKEN="+tok+"\nTELEGRAM_BOT_TOKEN=\n" {
		t.Errorf("new .env:\n%s", out)
	}
	if len(secrets) != 1 || secrets[0] != tok {
		t.Errorf("secrets %v", secrets)
	}
	cur := "# mine\nOPENCLAW_GATEWAY_TOKEN=" + strings.Repeat("b", 40) + "\nTELEGRAM_BOT_TOKEN=123:abc\nOTHER=1\n"
	out, secrets, _ = MergeEnvFile(cur, tok)
	if out != cur {
		t.Errorf("a complete .env must stay as it is:\n%s", out)
	}
	if len(secrets) != 2 {
		t.Errorf("secrets %v", secrets)
	}
	out, _, notes := MergeEnvFile("OPENCLAW_GATEWAY_TOKEN=short\n", tok)
	if !strings.Contains(out, "OPENCLAW_GATEWAY_TOKEN="+tok+"\n") || len(notes) == 0 {
		t.Errorf("a short token must be replaced:\n%s", out)
	}
	a, _ := NewGatewayToken()
	b, _ := NewGatewayToken()
	if len(a) != 64 || a == b {
		t.Errorf("tokens %q %q", a, b)
	}
}
