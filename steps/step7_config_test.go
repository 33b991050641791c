package steps

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"openclaw-harden/assets"
)

func hardened(t testing.TB, cur []byte) PatchResult {
	t.Helper()
	res, err := PatchOpenClawConfig(cur, assets.OpenClawHardenedPatch())
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func TestPatchEmptyIsTheHardenedShape(t *testing.T) {
	res := hardened(t, nil)
	fs, err := CheckOpenClawPolicy(res.Out)
	if err != nil || len(fs) != 0 {
		t.Fatalf("policy findings on the patched empty config: %v %v", fs, err)
	}
	var m map[string]any
	if err := json.Unmarshal(res.Out, &m); err != nil {
		t.Fatalf("output is not plain JSON: %v", err)
	}
	for _, p := range [][]string{{"gateway", "auth", "rateLimit", "maxAttempts"}, {"tools", "elevated", "enabled"}, {"discovery", "mdns", "mode"}} {
		if _, ok := getPath(m, p...); !ok {
			t.Errorf("missing %s", strings.Join(p, "."))
		}
	}
	if v, _ := getPath(m, "gateway", "bind"); v != "lan" {
		t.Errorf("gateway.bind %v, want lan (container case)", v)
	}
	if _, ok := getPath(m, "channels", "telegram", "groups"); ok {
		t.Error("channels.telegram.groups must not be written")
	}
	again := hardened(t, res.Out)
	if !bytes.Equal(again.Out, res.Out) {
		t.Errorf("not idempotent:\n%s\n---\n%s", res.Out, again.Out)
	}
}

func TestPatchOperatorJSON5(t *testing.T) {
	cur, err := os.ReadFile("testdata/step7/operator.json5")
	if err != nil {
		t.Fatal(err)
	}
	res := hardened(t, cur)
	var m map[string]any
	d := json.NewDecoder(bytes.NewReader(res.Out))
	d.UseNumber()
	if err := d.Decode(&m); err != nil {
		t.Fatalf("not plain JSON: %v\n%s", err, res.Out)
	}
	check := func(want any, path ...string) {
		t.Helper()
		got, ok := getPath(m, path...)
		gb, _ := json.Marshal(got)
		wb, _ := json.Marshal(want)
		if !ok || string(gb) != string(wb) {
			t.Errorf("%s = %s (present %v), want %s", strings.Join(path, "."), gb, ok, wb)
		}
	}
	// Unrelated keys survive.
	check("anthropic/claude", "agents", "entries", "main", "model")
	check("ANTHROPIC_API_KEY", "models", "providers", "anthropic", "apiKey", "id")
	check("info", "logging", "level")
	check(false, "channels", "telegram", "linkPreview")
	check(map[string]any{"requireMention": false}, "channels", "telegram", "groups", "-100123")
	check([]string{"http://127.0.0.1:18789"}, "gateway", "controlUi", "allowedOrigins")
	check(map[string]any{"telegram": []string{"12345"}}, "tools", "elevated", "allowFrom")
	// The policy wins.
	check("lan", "gateway", "bind")
	check(false, "gateway", "controlUi", "enabled")
	check(false, "tools", "elevated", "enabled")
	check("pairing", "channels", "telegram", "dmPolicy")
	check("allowlist", "channels", "telegram", "groupPolicy")
	check([]any{json.Number("12345678")}, "channels", "telegram", "allowFrom")
	check([]string{"web_search", "group:runtime", "group:fs", "group:automation", "sessions_spawn", "sessions_send"}, "tools", "deny")
	check("OPENCLAW_GATEWAY_TOKEN", "gateway", "auth", "token", "id")
	check("TELEGRAM_BOT_TOKEN", "channels", "telegram", "botToken", "id")
	if _, ok := getPath(m, "channels", "telegram", "groups", "*"); ok {
		t.Error(`groups["*"] survived`)
	}
	// Literal secrets are found, and a diff never shows them.
	want := []string{"literal-operator-token-0123456789abcdef", "123456:AAE-literal-bot-token"}
	for _, w := range want {
		found := false
		for _, s := range res.Secrets {
			found = found || s == w
		}
		if !found {
			t.Errorf("secret %q not registered (got %v)", w, res.Secrets)
		}
	}
	c := Change{Target: "/opt/openclaw/config/openclaw.json", Before: string(cur), After: string(res.Out), Secrets: res.Secrets}
	diff := c.Diff()
	for _, w := range want {
		if strings.Contains(diff, w) {
			t.Errorf("the diff shows secret %q", w)
		}
	}
	if !strings.Contains(diff, "<redacted>") {
		t.Errorf("no <redacted> in the diff:\n%s", diff)
	}
	if len(res.Notes) < 3 {
		t.Errorf("notes: %v", res.Notes)
	}
	if again := hardened(t, res.Out); !bytes.Equal(again.Out, res.Out) {
		t.Error("second patch changed the file")
	}
	if fs, err := CheckOpenClawPolicy(res.Out); err != nil || len(fs) != 0 {
		t.Errorf("policy findings after the patch: %v %v", fs, err)
	}
}

func TestPatchRejectsNonObjects(t *testing.T) {
	for _, in := range []string{"[1]", "{ a: ", "42", "{\"a\":1} {"} {
		if _, err := PatchOpenClawConfig([]byte(in), assets.OpenClawHardenedPatch()); err == nil {
			t.Errorf("%q accepted", in)
		}
	}
}

func TestCheckOpenClawPolicyFindings(t *testing.T) {
	cur, _ := os.ReadFile("testdata/step7/operator.json5")
	fs, err := CheckOpenClawPolicy(cur)
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, f := range fs {
		keys = append(keys, f.Key)
	}
	got := strings.Join(keys, ",")
	for _, want := range []string{"channels.telegram.dmPolicy", "channels.telegram.groupPolicy", "channels.telegram.allowFrom",
		"channels.telegram.groups.*", "tools.elevated.enabled", "discovery.mdns.mode", "gateway.bind", "gateway.controlUi.enabled", "tools.deny"} {
		if !strings.Contains(got, want) {
			t.Errorf("no finding for %s (got %s)", want, got)
		}
	}
	for _, f := range fs {
		if strings.Contains(f.String(), "literal-operator-token") {
			t.Errorf("a finding shows the token: %s", f)
		}
	}
}

func TestParseAuditSamples(t *testing.T) {
	want := map[string]struct {
		crit, warn int
		clean      bool
		ids        string
		known      int
		elevated   string
	}{
		"audit-empty.json":           {1, 2, false, "critical gateway.loopback_no_auth,warn gateway.http.no_auth,warn gateway.trusted_proxies_missing", 0, "enabled"},
		"audit-hardened-deep.json":   {0, 0, true, "", 1, "disabled"},
		"audit-recommended.json":     {0, 0, true, "", 0, "disabled"},
		"scen-bind_lan_noauth.json":  {2, 1, false, "critical gateway.bind_no_auth,critical gateway.http.no_auth,warn gateway.auth_no_rate_limit", 0, ""},
		"scen-dm_open.json":          {0, 1, false, "warn security.trust_model.multi_user_heuristic", 0, ""},
		"scen-docker_lan_rl.json":    {0, 0, true, "", 0, ""},
		"scen-elevated_default.json": {0, 0, true, "", 0, "enabled"},
		"scen-world_readable.json":   {0, 0, true, "", 0, ""},
	}
	files, _ := filepath.Glob("testdata/step7/*.json")
	if len(files) != len(want) {
		t.Fatalf("%d samples, %d expectations", len(files), len(want))
	}
	for _, f := range files {
		w := want[filepath.Base(f)]
		data, _ := os.ReadFile(f)
		// Warnings printed before the JSON must not matter.
		data = append([]byte("Config observe anomaly: x (missing-meta-vs-last-good)\n"), data...)
		r, err := ParseAudit(data)
		if err != nil {
			t.Errorf("%s: %v", f, err)
			continue
		}
		c, wn := r.Counted()
		var ids []string
		for _, p := range r.Problems() {
			id, _, _ := strings.Cut(p, ":")
			ids = append(ids, id)
		}
		if c != w.crit || wn != w.warn || r.Clean() != w.clean || strings.Join(ids, ",") != w.ids || len(r.Known) != w.known {
			t.Errorf("%s: crit %d warn %d clean %v ids %q known %d; want %+v", filepath.Base(f), c, wn, r.Clean(), strings.Join(ids, ","), len(r.Known), w)
		}
		if w.elevated != "" && r.Surface["tools.elevated"] != w.elevated {
			t.Errorf("%s: tools.elevated %q, want %q", filepath.Base(f), r.Surface["tools.elevated"], w.elevated)
		}
	}
}

func TestParseAuditErrors(t *testing.T) {
	_, err := ParseAudit([]byte(`{"ok":false,"error":{"type":"cli_error","message":"OpenClaw config is invalid: x"},"issues":[{"path":"gateway.bind","message":"Invalid input"}]}`))
	if err == nil || !strings.Contains(err.Error(), "gateway.bind: Invalid input") {
		t.Errorf("invalid config: %v", err)
	}
	if _, err := ParseAudit([]byte("error: unknown option\n")); err == nil {
		t.Error("no JSON accepted")
	}
	r, err := ParseAudit([]byte(`{"fix":{"ok":true},"report":{"summary":{"critical":1,"warn":0,"info":0},"findings":[{"checkId":"fs.config.perms_world_readable","severity":"critical","title":"t"}]}}`))
	if err != nil || r.Clean() {
		t.Errorf("--fix form: %v %+v", err, r)
	}
	// A summary that understates the findings is not trusted.
	r, _ = ParseAudit([]byte(`{"summary":{"critical":0,"warn":0,"info":0},"findings":[{"checkId":"x","severity":"warn","title":"t"}]}`))
	if r.Clean() {
		t.Error("a warn finding with a zero summary passed")
	}
}

// FuzzPatchOpenClawConfig: the patch never drops an unrelated key and is idempotent.
func FuzzPatchOpenClawConfig(f *testing.F) {
	op, _ := os.ReadFile("testdata/step7/operator.json5")
	for _, s := range []string{"", "{}", string(op), `{"gateway":"x"}`, `{a:1, tools:{deny:["group:fs"]}}`, `{channels:{telegram:{groups:{"*":{}}}}}`, `{"x":{"y":[1,{"z":null}]}}`} {
		f.Add([]byte(s))
	}
	patch := assets.OpenClawHardenedPatch()
	var pm map[string]any
	_ = json.Unmarshal(patch, &pm)
	var patchPaths []string
	leafPaths(pm, "", &patchPaths)
	related := func(p string) bool {
		for _, pp := range patchPaths {
			if strings.HasPrefix(p, pp) || strings.HasPrefix(pp, p) {
				return true
			}
		}
		tg := "\x00channels\x00telegram\x00"
		return strings.HasPrefix(p, tg+"groups\x00*") || strings.HasPrefix(p, tg+"allowFrom") || strings.HasPrefix(p, tg+"groupAllowFrom")
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		in, err := parseJSON5Object(data)
		if err != nil {
			return
		}
		res, err := PatchOpenClawConfig(data, patch)
		if err != nil {
			t.Fatalf("parsable input refused: %v", err)
		}
		out, err := parseJSON5Object(res.Out)
		if err != nil {
			t.Fatalf("output unreadable: %v\n%s", err, res.Out)
		}
		var inPaths []string
		leafPaths(in, "", &inPaths)
		var outPaths []string
		leafPaths(out, "", &outPaths)
		have := map[string]bool{}
		for _, p := range outPaths {
			have[p] = true
		}
		for _, p := range inPaths {
			if !related(p) && !have[p] {
				t.Fatalf("unrelated key %q dropped\nin:  %s\nout: %s", strings.ReplaceAll(p, "\x00", "."), data, res.Out)
			}
		}
		again, err := PatchOpenClawConfig(res.Out, patch)
		if err != nil || !bytes.Equal(again.Out, res.Out) {
			t.Fatalf("not idempotent (%v):\n%s\n---\n%s", err, res.Out, again.Out)
		}
		if fs, err := CheckOpenClawPolicy(res.Out); err != nil || len(fs) != 0 {
			t.Fatalf("patched config fails the policy: %v %v\n%s", fs, err, res.Out)
		}
	})
}

// The lab's OpenClaw mutations (TestLabFullRun), one at a time on the generated config: each must be a finding.
func TestCheckOpenClawPolicyCatchesEachMutation(t *testing.T) {
	res, err := PatchOpenClawConfig(nil, assets.OpenClawHardenedPatch())
	if err != nil {
		t.Fatal(err)
	}
	if fs, err := CheckOpenClawPolicy(res.Out); err != nil || len(fs) != 0 {
		t.Fatalf("the generated config has findings: %v %v", fs, err)
	}
	for _, m := range []struct {
		key   string
		value any
	}{{"tools.elevated.enabled", true}, {"discovery.mdns.mode", "full"}, {"channels.telegram.dmPolicy", "open"}} {
		var cfg map[string]any
		if err := json.Unmarshal(res.Out, &cfg); err != nil {
			t.Fatal(err)
		}
		path := strings.Split(m.key, ".")
		node := cfg
		for _, k := range path[:len(path)-1] {
			next, _ := node[k].(map[string]any)
			if next == nil {
				next = map[string]any{}
				node[k] = next
			}
			node = next
		}
		node[path[len(path)-1]] = m.value
		out, _ := json.Marshal(cfg)
		fs, err := CheckOpenClawPolicy(out)
		found := false
		for _, f := range fs {
			found = found || f.Key == m.key
		}
		if err != nil || !found {
			t.Errorf("%s = %v: findings %v %v", m.key, m.value, fs, err)
		}
	}
}
