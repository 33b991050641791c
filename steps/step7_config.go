package steps

// Step 7, the config half: openclaw.json is JSON5 on read (comments, trailing commas, unquoted keys); the
// hardened shape (assets/openclaw/hardened.json) is merged into it, every unrelated key of the operator is
// kept, and the result is written as plain JSON (OpenClaw's own writers do the same). Literal secrets in the
// operator's file are registered as secrets, so no diff shows them, and replaced by env SecretRefs.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"sort"
	"strings"

	"github.com/titanous/json5"
)

// PatchResult is the patched config, the literal secrets found in the input, and notes for the operator.
type PatchResult struct {
	Out     []byte
	Secrets []string
	Notes   []string
}

// parseJSON5Object reads a JSON5 document that must be an object; empty input is an empty object.
func parseJSON5Object(data []byte) (map[string]any, error) {
	if len(bytes.TrimSpace(data)) == 0 {
		return map[string]any{}, nil
	}
	var whole any // Unmarshal checks the whole input (nothing after the object); the Decoder keeps numbers exact
	if err := json5.Unmarshal(data, &whole); err != nil {
		return nil, fmt.Errorf("not valid JSON5: %v", err)
	}
	dec := json5.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, fmt.Errorf("not valid JSON5: %v", err)
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("the config must be one object ({ … })")
	}
	return normalizeNumbers(m).(map[string]any), nil
}

// normalizeNumbers turns json5.Number into encoding/json's json.Number so the output keeps numbers exact.
func normalizeNumbers(v any) any {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			x[k] = normalizeNumbers(e)
		}
		return x
	case []any:
		for i, e := range x {
			x[i] = normalizeNumbers(e)
		}
		return x
	case json5.Number:
		return json.Number(string(x))
	}
	return v
}

// unionLists are arrays the patch extends instead of replacing: deny lists only ever grow.
var unionLists = map[string]bool{"tools.deny": true, "channels.telegram.direct.*.tools.deny": true}

// mergeInto sets every key of patch in dst (objects merge, scalars and arrays replace; deny lists are unions).
func mergeInto(dst, patch map[string]any, path string) {
	for k, pv := range patch {
		p := k
		if path != "" {
			p = path + "." + k
		}
		if pm, ok := pv.(map[string]any); ok {
			dm, ok := dst[k].(map[string]any)
			if !ok {
				dm = map[string]any{}
			}
			mergeInto(dm, pm, p)
			dst[k] = dm
			continue
		}
		if pl, ok := pv.([]any); ok && unionLists[p] {
			dl, _ := dst[k].([]any)
			dst[k] = unionList(dl, pl)
			continue
		}
		dst[k] = pv
	}
}

func unionList(have, want []any) []any {
	out := append([]any{}, have...)
	for _, w := range want {
		found := false
		for _, h := range have {
			if reflect.DeepEqual(h, w) {
				found = true
			}
		}
		if !found {
			out = append(out, w)
		}
	}
	return out
}

func getPath(m map[string]any, path ...string) (any, bool) {
	var cur any = m
	for _, k := range path {
		mm, ok := cur.(map[string]any)
		if !ok {
			return nil, false
		}
		cur, ok = mm[k]
		if !ok {
			return nil, false
		}
	}
	return cur, true
}

// secretPaths are where OpenClaw takes a secret; a string there is a literal secret.
var secretPaths = [][]string{
	{"gateway", "auth", "token"}, {"gateway", "auth", "password"}, {"channels", "telegram", "botToken"},
	{"hooks", "token"}, {"gateway", "remote", "token"}, {"gateway", "remote", "password"},
}

// literalSecrets collects the literal secret strings of a config (also per Telegram account).
func literalSecrets(m map[string]any) []string {
	var out []string
	add := func(v any, ok bool) {
		if s, isStr := v.(string); ok && isStr && len(s) >= 4 {
			out = append(out, s)
		}
	}
	for _, p := range secretPaths {
		add(getPath(m, p...))
	}
	if accts, ok := getPath(m, "channels", "telegram", "accounts"); ok {
		if am, ok := accts.(map[string]any); ok {
			for _, a := range am {
				if mm, ok := a.(map[string]any); ok {
					add(getPath(mm, "botToken"))
				}
			}
		}
	}
	return out
}

// PatchOpenClawConfig merges patch (plain JSON) into cur (the operator's JSON5; nil when absent) and renders
// plain JSON with sorted keys and a trailing newline. Besides the merge it removes what the profile forbids:
// channels.telegram.groups["*"] (a wildcard group target makes the audit warn multi_user_heuristic) and "*"
// in Telegram allowFrom lists. Unrelated keys are never dropped. PatchOpenClawConfig(its own output) returns
// its input unchanged.
func PatchOpenClawConfig(cur, patch []byte) (PatchResult, error) {
	var res PatchResult
	m, err := parseJSON5Object(cur)
	if err != nil {
		return res, err
	}
	res.Secrets = literalSecrets(m)
	var pm map[string]any
	d := json.NewDecoder(bytes.NewReader(patch))
	d.UseNumber()
	if err := d.Decode(&pm); err != nil {
		return res, fmt.Errorf("the embedded patch: %w", err)
	}
	for _, p := range secretPaths[:3] {
		if v, ok := getPath(m, p...); ok {
			if _, lit := v.(string); lit {
				if _, patched := getPath(pm, p...); patched {
					res.Notes = append(res.Notes, fmt.Sprintf("%s held a literal secret: it is replaced by a reference to the environment (%s in %s); put the same value there if clients use it.", strings.Join(p, "."), envNameFor(p), envPath()))
				}
			}
		}
	}
	mergeInto(m, pm, "")
	if _, touchesTelegram := getPath(pm, "channels", "telegram"); touchesTelegram {
		if g, ok := getPath(m, "channels", "telegram", "groups"); ok {
			if gm, ok := g.(map[string]any); ok {
				if _, wild := gm["*"]; wild {
					delete(gm, "*")
					res.Notes = append(res.Notes, `channels.telegram.groups["*"] is removed: a wildcard group target lets any group reach the bot (and the audit warns security.trust_model.multi_user_heuristic); list the group ids you want instead.`)
				}
			}
		}
		if g, ok := getPath(m, "channels", "telegram", "groups"); ok {
			if gm, ok := g.(map[string]any); ok && len(gm) > 0 {
				res.Notes = append(res.Notes, fmt.Sprintf("channels.telegram.groups lists %d group(s); they are kept, but OpenClaw 2026.9.6's audit then warns security.trust_model.multi_user_heuristic (groupPolicy allowlist with configured group targets), so Step 7's verification fails until you remove them or accept a shared-user setup.", len(gm)))
			}
		}
		tg, _ := getPath(m, "channels", "telegram")
		if tm, ok := tg.(map[string]any); ok {
			for _, k := range []string{"allowFrom", "groupAllowFrom"} {
				if l, ok := tm[k].([]any); ok {
					kept := []any{}
					for _, e := range l {
						if s, ok := e.(string); ok && strings.TrimSpace(s) == "*" {
							continue
						}
						kept = append(kept, e)
					}
					if len(kept) != len(l) {
						tm[k] = kept
						res.Notes = append(res.Notes, fmt.Sprintf(`channels.telegram.%s had "*" (anyone): it is removed; list numeric Telegram user ids instead.`, k))
					}
				}
			}
		}
	}
	out, err := renderConfig(m)
	if err != nil {
		return res, err
	}
	// Keep the operator's bytes when they already mean the same (a second run changes nothing).
	if orig, err := parseJSON5Object(cur); err == nil && len(bytes.TrimSpace(cur)) > 0 && reflect.DeepEqual(orig, m) && isPlainJSON(cur) {
		out = cur
	}
	res.Out = out
	return res, nil
}

func envNameFor(p []string) string {
	if p[0] == "channels" {
		return "TELEGRAM_BOT_TOKEN"
	}
	return "OPENCLAW_GATEWAY_TOKEN"
}

func isPlainJSON(b []byte) bool {
	var v any
	return json.Unmarshal(b, &v) == nil
}

func renderConfig(m map[string]any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(m); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// leafPaths lists every path to a scalar, array or empty object in v, for the fuzz test's "no key dropped".
func leafPaths(v any, prefix string, out *[]string) {
	m, ok := v.(map[string]any)
	if !ok || len(m) == 0 {
		*out = append(*out, prefix)
		return
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		leafPaths(m[k], prefix+"\x00"+k, out)
	}
}
