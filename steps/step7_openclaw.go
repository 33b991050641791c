package steps

// Step 7: OpenClaw's own policy. The config is the one the Step 6 container mounts
// (/opt/openclaw/config/openclaw.json = /home/node/.openclaw/openclaw.json inside); it is patched to the
// hardened shape, the gateway restarted, and verified by OpenClaw's own `security audit --json --deep` run
// inside the container (it has the gateway's environment, so SecretRefs resolve) plus direct checks of what
// that audit does not look at.

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"time"

	"openclaw-harden/assets"
	"openclaw-harden/system"
)

// PolicyStep is Step 7.
type PolicyStep struct{}

func (PolicyStep) ID() int       { return 7 }
func (PolicyStep) Title() string { return "OpenClaw security policy" }

type step7Plan struct {
	Before, After string
	Existed       bool
	Restart       bool
}

func (PolicyStep) Plan(ctx context.Context, h *system.Host, a Answers) (Plan, error) {
	p := Plan{Step: 7}
	if st, err := h.Stat(configDir()); err != nil || !st.IsDir() {
		p.Blocked = fmt.Sprintf("%s does not exist: deploy OpenClaw with Step 6 first (Step 7 patches the config its container mounts).", configDir())
		return p, nil
	}
	cur, err := h.ReadFile(openclawJSONPath())
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return p, fmt.Errorf("reading %s: %w", openclawJSONPath(), err)
	}
	res, err := PatchOpenClawConfig(cur, assets.OpenClawHardenedPatch())
	if err != nil {
		p.Blocked = fmt.Sprintf("%s cannot be read (%v): fix it by hand and plan again.", openclawJSONPath(), err)
		return p, nil
	}
	for _, s := range res.Secrets {
		h.AddSecret(s)
	}
	p.Notes = append(p.Notes, res.Notes...)
	p.Notes = append(p.Notes, "The file is written as plain JSON with sorted keys (comments in a JSON5 file are not kept; OpenClaw's own writers drop them too).")
	sp := step7Plan{Before: string(cur), After: string(res.Out), Existed: err == nil}
	p.Changes = append(p.Changes, Change{Target: openclawJSONPath(), Kind: "file", Before: sp.Before, After: sp.After, Mode: 0o600, Secrets: res.Secrets,
		Warning: "restarts the OpenClaw gateway so it loads the policy"})
	if st, err := h.Stat(openclawJSONPath()); err == nil && st.Mode().Perm() != 0o600 {
		p.Changes = append(p.Changes, Change{Target: openclawJSONPath() + " (mode)", Kind: "setting",
			Before: fmt.Sprintf("mode %04o\n", st.Mode().Perm()), After: "mode 0600\n"})
	}
	if st, err := h.Stat(configDir()); err == nil && st.Mode().Perm() != 0o700 {
		p.Changes = append(p.Changes, Change{Target: configDir() + " (mode)", Kind: "setting",
			Before: fmt.Sprintf("mode %04o\n", st.Mode().Perm()), After: "mode 0700\n"})
	}
	sp.Restart = sp.Before != sp.After
	p.Data = sp
	p.Commands = []string{
		"sudoedit " + openclawJSONPath() + "   # or: docker exec -i " + GatewayContainer + " openclaw config patch --stdin < hardened.json5",
		"sudo chmod 0600 " + openclawJSONPath(),
		"docker restart -t 60 " + GatewayContainer,
		"docker exec " + GatewayContainer + " openclaw security audit --json --deep   # read .summary: it exits 0 even with critical findings",
	}
	return p, nil
}

func (PolicyStep) Apply(ctx context.Context, h *system.Host, p Plan) error {
	sp, ok := p.Data.(step7Plan)
	if !ok {
		return errors.New("step 7: the plan carries no config data; plan again")
	}
	cur, err := h.ReadFile(openclawJSONPath())
	if (err == nil) != sp.Existed || string(cur) != sp.Before {
		return fmt.Errorf("%s changed since this plan was made; plan Step 7 again", openclawJSONPath())
	}
	if err := writeOpenClawJSON(ctx, h, []byte(sp.After)); err != nil {
		return err
	}
	if !sp.Restart || h.DryRun {
		return nil
	}
	return PolicyStep{}.Reload(ctx, h)
}

// auditArgv is how the audit runs: inside the gateway's container (its environment holds the tokens).
func auditArgv(deep bool) []string {
	argv := []string{"docker", "exec", GatewayContainer, "openclaw", "security", "audit", "--json"}
	if deep {
		argv = append(argv, "--deep")
	}
	return argv
}

// RunAudit runs the audit and parses it: in the gateway's container (its openclaw symlink first, then node
// dist/index.js), or, when there is no such container and OpenClaw is installed on the VM itself, with the
// host's CLI given the gateway's environment (see hostAudit).
func RunAudit(ctx context.Context, h *system.Host, deep bool) (AuditReport, error) {
	if _, found, _ := inspectContainer(ctx, h, GatewayContainer); !found {
		if cli := hostOpenClaw(ctx, h); cli != "" {
			return hostAudit(ctx, h, cli, deep)
		}
	}
	argv := auditArgv(deep)
	out, err := h.ReadCmd(ctx, system.Cmd{Argv: argv, Timeout: 5 * time.Minute})
	if err != nil && jsonDocument(out) == nil {
		alt := append([]string{"docker", "exec", GatewayContainer, "node", "dist/index.js"}, argv[4:]...)
		out2, err2 := h.ReadCmd(ctx, system.Cmd{Argv: alt, Timeout: 5 * time.Minute})
		if err2 != nil && jsonDocument(out2) == nil {
			return AuditReport{}, fmt.Errorf("%s: %s", strings.Join(argv, " "), h.Redact(firstLine(err.Error())))
		}
		out = out2
	}
	return ParseAudit(out)
}

// hostOpenClaw is the path of an openclaw CLI on the VM's PATH, or "".
func hostOpenClaw(ctx context.Context, h *system.Host) string {
	out, err := h.Read(ctx, "sh", "-c", "command -v openclaw")
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(out))
}

// hostAudit runs the host's CLI on the config Step 7 patched, with the environment the gateway gets from
// .env (its tokens, so SecretRefs resolve as they do in the container). The values become secrets: they are
// passed in the environment, never on the command line, and redacted from anything shown.
func hostAudit(ctx context.Context, h *system.Host, cli string, deep bool) (AuditReport, error) {
	env := []string{"OPENCLAW_CONFIG_PATH=" + h.Path(openclawJSONPath()), "OPENCLAW_STATE_DIR=" + h.Path(configDir()),
		"OPENCLAW_DISABLE_BONJOUR=1", "DO_NOT_TRACK=1"}
	if data, err := h.ReadFile(envPath()); err == nil {
		for _, l := range parseEnvFile(string(data)) {
			if l.Key != "" {
				h.AddSecret(l.Value)
				env = append(env, l.Key+"="+l.Value)
			}
		}
	}
	argv := append([]string{cli}, auditArgv(deep)[4:]...)
	out, err := h.ReadCmd(ctx, system.Cmd{Argv: argv, Env: env, Timeout: 5 * time.Minute})
	if err != nil && jsonDocument(out) == nil {
		return AuditReport{}, fmt.Errorf("%s: %s", strings.Join(argv, " "), h.Redact(firstLine(err.Error())))
	}
	return ParseAudit(out)
}

func (PolicyStep) Verify(ctx context.Context, h *system.Host, a Answers) []Check {
	var cs []Check
	fc := Check{ID: "step7.config-file", Name: openclawJSONPath() + ": present, mode 0600, directory 0700", Expect: "file 0600, dir 0700"}
	st, err := h.Stat(openclawJSONPath())
	dst, derr := h.Stat(configDir())
	switch {
	case err != nil:
		fc.Got, fc.Reason = "absent", "there is no OpenClaw config (apply Steps 6 and 7)"
	case derr != nil:
		fc.Got, fc.Reason = "directory unreadable", firstLine(derr.Error())
	default:
		fc.Got = fmt.Sprintf("file %04o, dir %04o", st.Mode().Perm(), dst.Mode().Perm())
		fc.OK = st.Mode().Perm() == 0o600 && dst.Mode().Perm() == 0o700
		if !fc.OK {
			fc.Reason = "the config (it may hold tokens) is readable beyond its owner"
		}
	}
	cs = append(cs, fc)

	pc := Check{ID: "step7.policy", Name: "openclaw.json: Telegram dmPolicy/groupPolicy/allowFrom, elevated, mDNS, bind, deny lists (not covered by the CLI audit)", Expect: "as the profile says"}
	data, rerr := h.ReadFile(openclawJSONPath())
	if rerr != nil {
		pc.Got, pc.Reason = "unreadable", firstLine(rerr.Error())
	} else if fs, err := CheckOpenClawPolicy(data); err != nil {
		pc.Got, pc.Reason = "invalid", err.Error()
	} else {
		var ss []string
		for _, f := range fs {
			ss = append(ss, f.String())
		}
		pc.Got = h.Redact(joinOr(ss, "; ", "as the profile says"))
		pc.OK = len(fs) == 0
		if !pc.OK {
			pc.Reason = fmt.Sprintf("%d setting(s) differ from the profile", len(fs))
		}
	}
	cs = append(cs, pc)

	ac := Check{ID: "step7.audit", Name: "openclaw security audit --json --deep (in the container, or the VM's own CLI): critical and warn", Expect: "0 critical, 0 warn"}
	rep, err := RunAudit(ctx, h, true)
	if err != nil {
		ac.Got, ac.Reason = "no audit", h.Redact(err.Error())
		return append(cs, ac)
	}
	c, w := rep.Counted()
	ac.Got = fmt.Sprintf("%d critical, %d warn, %d info", c, w, rep.Summary.Info)
	if pr := rep.Problems(); len(pr) > 0 {
		ac.Got += ": " + h.Redact(strings.Join(pr, "; "))
	}
	ac.OK = rep.Clean()
	if !ac.OK {
		ac.Reason = "OpenClaw's own audit reports problems"
	}
	cs = append(cs, ac)
	kc := Check{ID: "step7.audit-known", Name: "audit findings known to be false in OpenClaw 2026.9.6 (listed, not counted)", Expect: "only known ones", OK: true}
	var ks []string
	for _, f := range rep.Known {
		ks = append(ks, fmt.Sprintf("%s %s: %s — %s", f.Severity, f.CheckID, h.Redact(f.Detail), knownFalse[f.CheckID]))
	}
	kc.Got = joinOr(ks, "; ", "none")
	cs = append(cs, kc)
	if v := rep.Surface["tools.elevated"]; v != "" {
		ec := Check{ID: "step7.audit-elevated", Name: "audit attack surface: tools.elevated", Expect: "disabled", Got: v, OK: v == "disabled"}
		if !ec.OK {
			ec.Reason = "elevated tools are on (the default): the audit does not count it as a finding"
		}
		cs = append(cs, ec)
	}
	return cs
}
