package steps

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

// FuzzCheckCompose: `check compose FILE` on any bytes. It must not panic; it may only call a file clean when
// the file is YAML that loads as a compose file; a file that does not load is exactly one "file" finding;
// every other finding names a service the loaded project has, a key and a message, at a line inside the
// file (or 0 when the key has no literal line); findings come in line order with the unlined ones last; no
// finding quotes (a part of) the value of a secret variable; and the checker answers within 10 s.
func FuzzCheckCompose(f *testing.F) {
	clean, err := RenderCompose(Defaults())
	if err != nil {
		f.Fatal(err)
	}
	f.Add(clean)
	// The mutations TestCheckComposeViolations applies to the generated file.
	for _, m := range [][2]string{
		{`"127.0.0.1:18789:18789"`, `"18789:18789"`},
		{`"127.0.0.1:18789:18789"`, `"0.0.0.0:18789:18789"`},
		{"      - \"127.0.0.1:18789:18789\"\n", "      - target: 18789\n        published: \"18789\"\n"},
		{`"127.0.0.1:18789:18789"`, `"${OPENCLAW_GATEWAY_PORT:-18789}:18789"`},
		{`"127.0.0.1:18789:18789"`, `"${BIND_IP:-0.0.0.0}:18789:18789"`},
		{`"127.0.0.1:18789:18789"`, `"[::1]:18789:18789"`},
		{`"127.0.0.1:18789:18789"`, `"${OPENCLAW_GATEWAY_TOKEN}:18789"`},
		{"mem_limit: 2g", "mem_limit: ${OPENCLAW_GATEWAY_TOKEN}"},
		{"    volumes:\n", "    volumes:\n      - /var/run/docker.sock:/var/run/docker.sock\n"},
		{"    volumes:\n", "    volumes:\n      - type: bind\n        source: /run/docker.sock\n        target: /sock\n"},
		{"    init: true\n", "    init: true\n    privileged: true\n    cap_add: [NET_ADMIN]\n"},
		{"services:\n  openclaw-gateway:\n", "x-p: &p\n  privileged: true\nservices:\n  openclaw-gateway:\n    <<: *p\n"},
		{"    networks: [openclaw]\n", "    network_mode: host\n"},
		{"    networks: [openclaw]\n", ""},
		{"    dns:\n      - 1.1.1.1\n      - 8.8.8.8\n", ""},
		{"    ipam:\n      config:\n        - subnet: 172.20.0.0/24\n", ""},
		{`      com.docker.network.bridge.enable_icc: "false"`, `      com.docker.network.bridge.enable_icc: "true"`},
		{"    cap_drop: [ALL]\n", "    cap_drop: [NET_RAW, NET_ADMIN]\n"},
		{"    security_opt: [\"no-new-privileges:true\"]\n", ""},
		{"    mem_limit: 2g\n", "    deploy:\n      resources:\n        limits:\n          memory: 1g\n          pids: 100\n"},
		{"    pids_limit: 512\n", ""},
	} {
		if strings.Contains(clean, m[0]) {
			f.Add(strings.Replace(clean, m[0], m[1], 1))
		}
	}
	if data, err := os.ReadFile("testdata/step6/upstream-like.yaml"); err == nil {
		f.Add(string(data))
	}
	for _, s := range []string{
		"", "services: [1, 2", "services: {}\n", "services:\n  a:\n    image: x\n",
		"services:\n  a:\n    image: x\n    network_mode: \"service:b\"\n  b:\n    image: y\n    networks: [n]\nnetworks:\n  n:\n    external: true\n",
		"services:\n  a:\n    image: x\n    ports: [\"1-3:1-3/udp\"]\n    volumes: [\"/run:/run\"]\n",
		"services:\n  a: &a\n    image: x\n  b: *a\n",
		"name: p\nservices:\n  a:\n    build: .\n    healthcheck:\n      disable: true\n",
	} {
		f.Add(s)
	}
	dir := f.TempDir() // empty: no .env beside the file, nothing an include or env_file could find
	name := filepath.Join(dir, "compose.yaml")
	const token = "fuzz-SECRET-gateway-token-0123456789"
	env := map[string]string{"PORT": "127.0.0.1:18789", "OPENCLAW_GATEWAY_TOKEN": token}
	f.Fuzz(func(t *testing.T, data string) {
		// No input may hang the checker (a file takes milliseconds; compose-go's schema check is the slow part).
		wd := time.AfterFunc(10*time.Second, func() { panic(fmt.Sprintf("CheckCompose ran over 10 s on %q", data)) })
		fs := CheckCompose(name, []byte(data), env)
		wd.Stop()
		var root yaml.Node
		yamlErr := yaml.Unmarshal([]byte(data), &root)
		proj, loadErr := LoadCompose(context.Background(), name, []byte(data), env)
		if len(fs) == 0 && (yamlErr != nil || loadErr != nil) {
			t.Fatalf("clean result for a file that does not load (yaml: %v, compose: %v):\n%s", yamlErr, loadErr, data)
		}
		if loadErr != nil {
			if len(fs) == 1 && strings.Contains(fs[0].Message, "SECRET-gateway") {
				t.Fatalf("the load error quotes the value of OPENCLAW_GATEWAY_TOKEN: %s", fs[0].Message)
			}
			if len(fs) != 1 || fs[0].Key != "file" || fs[0].Service != "-" || !strings.Contains(fs[0].Message, "does not load") {
				t.Fatalf("a file that does not load (%v) gave %+v", loadErr, fs)
			}
			return
		}
		lines := strings.Count(data, "\n") + 1
		for i, c := range fs {
			if strings.Contains(c.Message, token) || strings.Contains(c.Message, "SECRET-gateway") {
				t.Fatalf("finding quotes the value of OPENCLAW_GATEWAY_TOKEN: %+v", c)
			}
			if c.Key == "" || c.Message == "" {
				t.Fatalf("finding without a key or a message: %+v", c)
			}
			if c.Service == "" && c.Network == "" {
				t.Fatalf("finding names neither a service nor a network: %+v", c)
			}
			if c.Service != "" {
				if _, ok := proj.Services[c.Service]; !ok {
					t.Fatalf("finding names service %q, which the file does not have: %+v", c.Service, c)
				}
			}
			if c.Line < 0 || c.Line > lines {
				t.Fatalf("finding at line %d of a %d-line file: %+v", c.Line, lines, c)
			}
			if out := c.Format(name); !strings.HasPrefix(out, name+":") || !strings.Contains(out, ": "+c.Key+": ") {
				t.Fatalf("formatted finding %q does not start with the file name or lacks its key", out)
			}
			if i > 0 {
				prev := fs[i-1]
				if (prev.Line == 0 && c.Line != 0) || (prev.Line != 0 && c.Line != 0 && c.Line < prev.Line) {
					t.Fatalf("findings out of order: line %d after line %d", c.Line, prev.Line)
				}
			}
		}
	})
}
