package steps

// Step 6: the OpenClaw gateway deployed with Docker Compose so that the safe path is the only one: the
// gateway listens on its container's interface (--bind lan, the same gateway.bind in openclaw.json) and is
// published on 127.0.0.1 only; no capabilities, no new privileges, no Docker socket, explicit DNS, a network
// pinned to the subnet DOCKER-USER (Step 4) lets through, with inter-container traffic off.
//
// Layout (decided here, documented in the README): everything lives in /opt/openclaw, root-owned 0755:
//   compose.yaml   0644  the generated file (no secrets in it: they come from .env through env_file)
//   .env           0600  OPENCLAW_GATEWAY_TOKEN (generated with crypto/rand when absent), TELEGRAM_BOT_TOKEN
//   config/        0700  uid 1000: mounted at /home/node/.openclaw (openclaw.json, state, workspace)
//   auth/          0700  uid 1000: mounted at /home/node/.config/openclaw (auth-profile keys)
// The project name is always "openclaw" (-p), so v1 and v2 address the same containers.

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"text/template"
	"time"

	"openclaw-harden/assets"
	"openclaw-harden/system"
)

// Where Step 6 deploys; tests and the lab may change them.
var (
	ComposeDir       = "/opt/openclaw"
	ComposeProject   = "openclaw"
	GatewayContainer = "openclaw-gateway"
	// OpenClawUID owns the mounted directories: the image runs as node (uid 1000).
	OpenClawUID = 1000
	// healthTimeout bounds the wait for the container's health check after docker compose up.
	healthTimeout      = 6 * time.Minute
	healthPollInterval = 2 * time.Second
)

func composePath() string      { return ComposeDir + "/compose.yaml" }
func envPath() string          { return ComposeDir + "/.env" }
func configDir() string        { return ComposeDir + "/config" }
func authDir() string          { return ComposeDir + "/auth" }
func openclawJSONPath() string { return configDir() + "/openclaw.json" }

// RenderCompose is Step 6's compose.yaml for the answers.
func RenderCompose(a Answers) (string, error) {
	if a.Image == "" {
		return "", errors.New("image: empty; set the OpenClaw image in the answers (e.g. ghcr.io/openclaw/openclaw:latest)")
	}
	if strings.ContainsAny(a.Image, " \t\n\"'$#") {
		return "", fmt.Errorf("image: %q is not an image reference", a.Image)
	}
	if a.GatewayPort < 1 || a.GatewayPort > 65535 {
		return "", fmt.Errorf("gateway_port: %d is not a TCP port", a.GatewayPort)
	}
	sub, err := netip.ParsePrefix(a.DockerSubnet)
	if err != nil {
		return "", fmt.Errorf("docker_subnet: %q is not a CIDR", a.DockerSubnet)
	}
	if len(a.Resolvers) == 0 {
		return "", errors.New("resolvers: empty; the container needs explicit DNS resolvers")
	}
	for _, r := range a.Resolvers {
		if _, err := netip.ParseAddr(r); err != nil {
			return "", fmt.Errorf("resolvers: %q is not an IP address", r)
		}
	}
	t, err := template.New("compose").Parse(assets.ComposeTemplate())
	if err != nil {
		return "", err
	}
	var b bytes.Buffer
	err = t.Execute(&b, map[string]any{"Image": a.Image, "Port": a.GatewayPort, "Resolvers": a.Resolvers,
		"Subnet": sub.Masked().String(), "ConfigDir": configDir(), "AuthDir": authDir()})
	return b.String(), err
}

// envLine is one line of .env: a KEY=value assignment or anything else (comments, blanks), kept as is.
type envLine struct {
	Key, Value, Raw string
}

func parseEnvFile(data string) []envLine {
	var out []envLine
	for _, l := range strings.Split(strings.TrimRight(data, "\n"), "\n") {
		if data == "" {
			break
		}
		t := strings.TrimSpace(l)
		k, v, ok := strings.Cut(t, "=")
		if ok && !strings.HasPrefix(t, "#") && k != "" && !strings.ContainsAny(k, " \t") {
			out = append(out, envLine{Key: strings.TrimPrefix(k, "export "), Value: unquoteShell(strings.TrimSpace(v)), Raw: l})
			continue
		}
		out = append(out, envLine{Raw: l})
	}
	return out
}

func envValue(ls []envLine, key string) (string, bool) {
	for _, l := range ls {
		if l.Key == key {
			return l.Value, true
		}
	}
	return "", false
}

// minTokenLen is what the OpenClaw audit accepts without gateway.token_too_short.
const minTokenLen = 24

// NewGatewayToken is 32 random bytes in hex, from crypto/rand.
func NewGatewayToken() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return hex.EncodeToString(b), nil
}

// MergeEnvFile keeps every line of the operator's .env and makes sure OPENCLAW_GATEWAY_TOKEN holds a token
// of at least 24 characters (newToken when it does not) and TELEGRAM_BOT_TOKEN exists (left empty for the
// operator). It returns the new file and the secret values in it.
func MergeEnvFile(cur, newToken string) (string, []string, []string) {
	ls := parseEnvFile(cur)
	var notes []string
	tok, ok := envValue(ls, "OPENCLAW_GATEWAY_TOKEN")
	switch {
	case !ok:
		ls = append(ls, envLine{Key: "OPENCLAW_GATEWAY_TOKEN", Value: newToken, Raw: "OPENCLAW_GATEWAY_TOKEN=" + newToken})
		notes = append(notes, "OPENCLAW_GATEWAY_TOKEN is generated (32 random bytes, hex) and kept in .env (0600); clients through the SSH tunnel need it.")
	case len(tok) < minTokenLen || tok == "null" || tok == "undefined":
		for i := range ls {
			if ls[i].Key == "OPENCLAW_GATEWAY_TOKEN" {
				ls[i] = envLine{Key: ls[i].Key, Value: newToken, Raw: "OPENCLAW_GATEWAY_TOKEN=" + newToken}
			}
		}
		notes = append(notes, fmt.Sprintf("OPENCLAW_GATEWAY_TOKEN in .env has %d characters (OpenClaw wants at least %d): it is replaced by a generated one; clients need the new token.", len(tok), minTokenLen))
	}
	if _, ok := envValue(ls, "TELEGRAM_BOT_TOKEN"); !ok {
		ls = append(ls, envLine{Key: "TELEGRAM_BOT_TOKEN", Raw: "TELEGRAM_BOT_TOKEN="})
		notes = append(notes, "TELEGRAM_BOT_TOKEN is empty in .env: put the bot token from @BotFather there (the config reads it from the environment).")
	}
	var b strings.Builder
	var secrets []string
	for _, l := range ls {
		b.WriteString(l.Raw + "\n")
		if strings.Contains(l.Key, "TOKEN") || strings.Contains(l.Key, "SECRET") || strings.Contains(l.Key, "PASSWORD") || strings.HasSuffix(l.Key, "_KEY") {
			if len(l.Value) >= 4 {
				secrets = append(secrets, l.Value)
			}
		}
	}
	return b.String(), secrets, notes
}

// ComposeCLI is how compose is run here: the v2 plugin ("docker compose") or v1 ("docker-compose").
type ComposeCLI struct {
	Argv    []string // {"docker", "compose"} or {"docker-compose"}
	Version string
}

func (c ComposeCLI) cmd(args ...string) []string {
	// v1 1.29 and v2 both take -p, -f and --project-directory (where .env and relative paths are resolved).
	argv := append([]string{}, c.Argv...)
	argv = append(argv, "-p", ComposeProject, "-f", composePath(), "--project-directory", ComposeDir)
	return append(argv, args...)
}

// detectCompose prefers the v2 plugin.
func detectCompose(ctx context.Context, h *system.Host) (ComposeCLI, error) {
	if out, err := h.Read(ctx, "docker", "compose", "version", "--short"); err == nil && len(bytes.TrimSpace(out)) > 0 {
		return ComposeCLI{Argv: []string{"docker", "compose"}, Version: "v2 " + strings.TrimSpace(string(out))}, nil
	}
	if out, err := h.Read(ctx, "docker-compose", "version", "--short"); err == nil && len(bytes.TrimSpace(out)) > 0 {
		return ComposeCLI{Argv: []string{"docker-compose"}, Version: "v1 " + strings.TrimSpace(string(out))}, nil
	}
	return ComposeCLI{}, errors.New("neither docker compose (v2 plugin) nor docker-compose (v1) is installed")
}

// containerState is the part of `docker inspect` Steps 6–8 read.
type containerState struct {
	Name         string `json:"Name"`
	Image        string `json:"Image"`
	RestartCount int    `json:"RestartCount"`
	State        struct {
		Status    string `json:"Status"`
		Running   bool   `json:"Running"`
		Pid       int    `json:"Pid"`
		ExitCode  int    `json:"ExitCode"`
		OOMKilled bool   `json:"OOMKilled"`
		Health    *struct {
			Status string `json:"Status"`
			Log    []struct {
				ExitCode int    `json:"ExitCode"`
				Output   string `json:"Output"`
			} `json:"Log"`
		} `json:"Health"`
	} `json:"State"`
	Config struct {
		Image  string            `json:"Image"`
		Labels map[string]string `json:"Labels"`
	} `json:"Config"`
	HostConfig struct {
		Privileged   bool     `json:"Privileged"`
		CapDrop      []string `json:"CapDrop"`
		CapAdd       []string `json:"CapAdd"`
		SecurityOpt  []string `json:"SecurityOpt"`
		NetworkMode  string   `json:"NetworkMode"`
		Memory       int64    `json:"Memory"`
		PidsLimit    *int64   `json:"PidsLimit"`
		Init         *bool    `json:"Init"`
		DNS          []string `json:"Dns"`
		PortBindings map[string][]struct {
			HostIP   string `json:"HostIp"`
			HostPort string `json:"HostPort"`
		} `json:"PortBindings"`
	} `json:"HostConfig"`
	Mounts []struct {
		Type        string `json:"Type"`
		Source      string `json:"Source"`
		Destination string `json:"Destination"`
	} `json:"Mounts"`
	NetworkSettings struct {
		Ports    map[string][]struct{ HostIp, HostPort string } `json:"Ports"`
		Networks map[string]struct {
			IPAddress string `json:"IPAddress"`
			NetworkID string `json:"NetworkID"`
		} `json:"Networks"`
	} `json:"NetworkSettings"`
}

func (c containerState) health() string {
	if c.State.Health == nil {
		return "none"
	}
	return c.State.Health.Status
}

// inspectContainer reads `docker inspect NAME`; ok is false when there is no such container.
func inspectContainer(ctx context.Context, h *system.Host, name string) (containerState, bool, error) {
	var cs []containerState
	out, err := h.Read(ctx, "docker", "inspect", "--type", "container", name)
	if err != nil {
		if strings.Contains(err.Error(), "No such") || strings.Contains(string(out), "No such") {
			return containerState{}, false, nil
		}
		return containerState{}, false, err
	}
	if err := json.Unmarshal(out, &cs); err != nil || len(cs) == 0 {
		return containerState{}, false, fmt.Errorf("docker inspect %s: unreadable output", name)
	}
	return cs[0], true, nil
}

// dockerNetwork is the part of `docker network inspect` Step 6 reads.
type dockerNetwork struct {
	Name    string            `json:"Name"`
	Options map[string]string `json:"Options"`
	IPAM    struct {
		Config []struct {
			Subnet string `json:"Subnet"`
		} `json:"Config"`
	} `json:"IPAM"`
}

func inspectNetwork(ctx context.Context, h *system.Host, id string) (dockerNetwork, error) {
	var ns []dockerNetwork
	out, err := h.Read(ctx, "docker", "network", "inspect", id)
	if err != nil {
		return dockerNetwork{}, err
	}
	if err := json.Unmarshal(out, &ns); err != nil || len(ns) == 0 {
		return dockerNetwork{}, fmt.Errorf("docker network inspect %s: unreadable output", id)
	}
	return ns[0], nil
}

// ComposeStep is Step 6.
type ComposeStep struct{}

func (ComposeStep) ID() int       { return 6 }
func (ComposeStep) Title() string { return "OpenClaw deployment (compose)" }

type step6Plan struct {
	CLI         ComposeCLI
	Compose     string
	ComposeWas  string
	Env         string
	EnvWas      string
	Config      string // openclaw.json after the gateway patch ("" when unchanged)
	ConfigWas   string
	ConfigFound bool
	Up          bool
}

func dirDesc(h *system.Host, path string) string {
	st, err := h.Stat(path)
	if err != nil {
		return ""
	}
	if !st.IsDir() {
		return "not a directory\n"
	}
	owner := "?"
	if sys, ok := st.Sys().(*syscall.Stat_t); ok {
		owner = strconv.Itoa(int(sys.Uid))
	}
	return fmt.Sprintf("directory, mode %04o, owner uid %s\n", st.Mode().Perm(), owner)
}

func (ComposeStep) Plan(ctx context.Context, h *system.Host, a Answers) (Plan, error) {
	p := Plan{Step: 6}
	if _, err := h.Read(ctx, "docker", "version", "--format", "{{.Server.Version}}"); err != nil {
		p.Blocked = "Docker is not running (docker version has no server): install docker.io and finish Step 5 first."
		return p, nil
	}
	cli, err := detectCompose(ctx, h)
	if err != nil {
		p.Blocked = err.Error() + ": install docker-compose (Debian 12) or the docker-compose-plugin, then plan again."
		return p, nil
	}
	p.Notes = append(p.Notes, "Compose: "+cli.Version+" ("+strings.Join(cli.Argv, " ")+").")
	compose, err := RenderCompose(a)
	if err != nil {
		p.Blocked = "The compose file cannot be generated: " + err.Error()
		return p, nil
	}
	sp := step6Plan{CLI: cli, Compose: compose}
	was, _ := h.ReadFile(composePath())
	sp.ComposeWas = string(was)
	envWas, err := h.ReadFile(envPath())
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return p, err
	}
	sp.EnvWas = string(envWas)
	tok, err := NewGatewayToken()
	if err != nil {
		return p, err
	}
	env, secrets, notes := MergeEnvFile(sp.EnvWas, tok)
	sp.Env = env
	for _, s := range secrets {
		h.AddSecret(s)
	}
	for _, l := range parseEnvFile(sp.EnvWas) { // an old token replaced is still a secret
		if strings.Contains(l.Key, "TOKEN") && len(l.Value) >= 4 {
			h.AddSecret(l.Value)
			secrets = append(secrets, l.Value)
		}
	}
	p.Notes = append(p.Notes, notes...)
	for _, d := range []string{ComposeDir} {
		want := "directory, mode 0755, owner uid 0\n"
		p.Changes = append(p.Changes, Change{Target: d, Kind: "state", Before: dirDesc(h, d), After: want})
	}
	for _, d := range []string{configDir(), authDir()} {
		want := fmt.Sprintf("directory, mode 0700, owner uid %d\n", OpenClawUID)
		p.Changes = append(p.Changes, Change{Target: d, Kind: "state", Before: dirDesc(h, d), After: want})
	}
	p.Changes = append(p.Changes,
		Change{Target: composePath(), Kind: "file", Before: sp.ComposeWas, After: compose, Mode: 0o644},
		Change{Target: envPath(), Kind: "file", Before: sp.EnvWas, After: env, Mode: 0o600, Secrets: secrets})
	if st, err := h.Stat(envPath()); err == nil && st.Mode().Perm() != 0o600 {
		p.Changes = append(p.Changes, Change{Target: envPath() + " (mode)", Kind: "setting",
			Before: fmt.Sprintf("mode %04o\n", st.Mode().Perm()), After: "mode 0600\n"})
	}
	// The gateway must start with bind lan and token auth: write the gateway part of openclaw.json now
	// (Step 7 writes the rest of the policy).
	cfgWas, cerr := h.ReadFile(openclawJSONPath())
	sp.ConfigFound = cerr == nil
	sp.ConfigWas = string(cfgWas)
	res, err := PatchOpenClawConfig(cfgWas, assets.OpenClawGatewayPatch())
	if err != nil {
		p.Blocked = fmt.Sprintf("%s cannot be read (%v): fix it by hand and plan again.", openclawJSONPath(), err)
		return p, nil
	}
	for _, s := range res.Secrets {
		h.AddSecret(s)
	}
	sp.Config = string(res.Out)
	p.Notes = append(p.Notes, res.Notes...)
	p.Changes = append(p.Changes, Change{Target: openclawJSONPath(), Kind: "file", Before: sp.ConfigWas, After: sp.Config, Mode: 0o600, Secrets: res.Secrets})

	// The container: running from this compose file, healthy.
	cur, found, _ := inspectContainer(ctx, h, GatewayContainer)
	before := ""
	if found {
		before = fmt.Sprintf("container %s: %s, image %s, health %s\n", GatewayContainer, cur.State.Status, cur.Config.Image, cur.health())
	}
	after := fmt.Sprintf("container %s: running, image %s, health healthy\n", GatewayContainer, a.Image)
	filesChange := sp.ComposeWas != compose || sp.EnvWas != env || sp.ConfigWas != sp.Config
	if filesChange && before == after {
		before = strings.TrimSuffix(before, "\n") + " (with the previous files)\n"
	}
	p.Changes = append(p.Changes, Change{Target: "container " + GatewayContainer, Kind: "state", Before: before, After: after,
		Warning: "starts or recreates the OpenClaw gateway container"})
	sp.Up = before != after
	p.Data = sp
	up := strings.Join(cli.cmd("up", "-d"), " ")
	p.Commands = []string{
		"sudo install -d -m 0755 " + ComposeDir,
		fmt.Sprintf("sudo install -d -m 0700 -o %d -g %d %s %s", OpenClawUID, OpenClawUID, configDir(), authDir()),
		"sudoedit " + composePath(),
		"sudo sh -c 'umask 077; printf \"OPENCLAW_GATEWAY_TOKEN=%s\\nTELEGRAM_BOT_TOKEN=\\n\" \"$(openssl rand -hex 32)\" > " + envPath() + "'",
		"sudo " + up,
		"docker inspect --format '{{.State.Health.Status}}' " + GatewayContainer,
		"sudo ss -H -tlnp 'sport = :" + strconv.Itoa(a.GatewayPort) + "'",
	}
	return p, nil
}

func (ComposeStep) Apply(ctx context.Context, h *system.Host, p Plan) error {
	sp, ok := p.Data.(step6Plan)
	if !ok {
		return errors.New("step 6: the plan carries no compose data; plan again")
	}
	if cur, _ := h.ReadFile(envPath()); string(cur) != sp.EnvWas {
		return fmt.Errorf("%s changed since this plan was made; plan Step 6 again", envPath())
	}
	if cur, _ := h.ReadFile(openclawJSONPath()); string(cur) != sp.ConfigWas {
		return fmt.Errorf("%s changed since this plan was made; plan Step 6 again", openclawJSONPath())
	}
	if err := h.MkdirAll(ComposeDir, 0o755, 0, 0); err != nil {
		return err
	}
	for _, d := range []string{configDir(), authDir()} {
		if err := h.MkdirAll(d, 0o700, OpenClawUID, OpenClawUID); err != nil {
			return err
		}
	}
	if err := h.WriteFile(ctx, envPath(), []byte(sp.Env), system.WriteOpts{Perm: 0o600, ForcePerm: true}); err != nil {
		return fmt.Errorf("writing %s: %w", envPath(), err)
	}
	if err := h.WriteFile(ctx, composePath(), []byte(sp.Compose), system.WriteOpts{Perm: 0o644}); err != nil {
		return fmt.Errorf("writing %s: %w", composePath(), err)
	}
	if err := writeOpenClawJSON(ctx, h, []byte(sp.Config)); err != nil {
		return err
	}
	if !sp.Up {
		return nil
	}
	out := progressFunc(h)
	args := []string{"up", "-d", "--remove-orphans"}
	if sp.ConfigWas != sp.Config && sp.ComposeWas == sp.Compose && sp.EnvWas == sp.Env {
		// Only openclaw.json changed: compose would leave the container as it is; the gateway must reread it.
		args = append(args, "--force-recreate")
	}
	if _, err := h.ExecCmd(ctx, system.Cmd{Argv: sp.CLI.cmd(args...), Timeout: 10 * time.Minute, Output: out}); err != nil {
		return fmt.Errorf("%s up -d: %w", strings.Join(sp.CLI.Argv, " "), err)
	}
	if h.DryRun {
		return nil
	}
	return waitHealthy(ctx, h, GatewayContainer, healthTimeout)
}

// writeOpenClawJSON writes the config as the container's user owns it: file 0600, directory 0700.
func writeOpenClawJSON(ctx context.Context, h *system.Host, data []byte) error {
	if err := h.MkdirAll(configDir(), 0o700, OpenClawUID, OpenClawUID); err != nil {
		return err
	}
	if err := h.WriteFile(ctx, openclawJSONPath(), data, system.WriteOpts{Perm: 0o600, ForcePerm: true}); err != nil {
		return fmt.Errorf("writing %s: %w", openclawJSONPath(), err)
	}
	if h.DryRun {
		return nil
	}
	if st, err := h.Stat(openclawJSONPath()); err == nil {
		if sys, ok := st.Sys().(*syscall.Stat_t); ok && int(sys.Uid) == OpenClawUID {
			return nil
		}
	}
	if err := chownPath(ctx, h, openclawJSONPath(), OpenClawUID); err != nil {
		return fmt.Errorf("chown %s: %w", openclawJSONPath(), err)
	}
	return nil
}

// waitHealthy polls docker inspect until the container's health check reports healthy, reporting each change.
func waitHealthy(ctx context.Context, h *system.Host, name string, timeout time.Duration) error {
	start := h.Now()
	deadline := time.Now().Add(timeout)
	last := ""
	for {
		c, found, err := inspectContainer(ctx, h, name)
		st := "absent"
		if err != nil {
			st = "unreadable: " + firstLine(err.Error())
		} else if found {
			st = c.State.Status + ", health " + c.health()
			if c.RestartCount > 0 || !c.State.Running {
				st += fmt.Sprintf(", %d restart(s), last exit %d", c.RestartCount, c.State.ExitCode)
			}
			if c.State.OOMKilled {
				st += ", OOM-killed"
			}
		}
		if st != last {
			progressFunc(h)(fmt.Sprintf("%s: %s (%s)", name, st, h.Now().Sub(start).Round(time.Second)))
			last = st
		}
		if found && c.health() == "healthy" {
			return nil
		}
		if found && c.health() == "none" && c.State.Running {
			return fmt.Errorf("%s runs without a health check", name)
		}
		if time.Now().After(deadline) {
			msg := fmt.Sprintf("%s was not healthy within %s (last: %s)", name, timeout, st)
			if found && c.State.Health != nil && len(c.State.Health.Log) > 0 {
				l := c.State.Health.Log[len(c.State.Health.Log)-1]
				msg += fmt.Sprintf("; last health check exit %d: %s", l.ExitCode, firstLine(strings.TrimSpace(l.Output)))
			}
			// The gateway logs to stderr too: both streams.
			if logs, err := h.Read(ctx, "sh", "-c", "docker logs --tail 30 "+name+" 2>&1"); err == nil {
				msg += "\ndocker logs --tail 30 " + name + ":\n" + h.Redact(strings.TrimRight(string(logs), "\n"))
			}
			return errors.New(msg)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(healthPollInterval):
		}
	}
}

func (ComposeStep) Verify(ctx context.Context, h *system.Host, a Answers) []Check {
	var cs []Check
	port := strconv.Itoa(a.GatewayPort)
	c, found, err := inspectContainer(ctx, h, GatewayContainer)
	run := Check{ID: "step6.running", Name: "docker inspect " + GatewayContainer + ": running and healthy", Expect: "running, health healthy"}
	switch {
	case err != nil:
		run.Got, run.Reason = "unreadable", firstLine(err.Error())
		return append(cs, run)
	case !found:
		run.Got, run.Reason = "no such container", "the gateway is not deployed (apply Step 6)"
		return append(cs, run)
	}
	run.Got = c.State.Status + ", health " + c.health()
	run.OK = c.State.Running && c.health() == "healthy"
	if !run.OK {
		run.Reason = "the gateway is not running or its /healthz check fails"
	}
	cs = append(cs, run)

	// Published ports: exactly 127.0.0.1:<port> -> 18789/tcp.
	pc := Check{ID: "step6.ports", Name: "docker inspect: published ports", Expect: "127.0.0.1:" + port + "->18789/tcp only"}
	var got []string
	bad := false
	for cport, bs := range c.HostConfig.PortBindings {
		for _, b := range bs {
			got = append(got, fmt.Sprintf("%s:%s->%s", orDash(b.HostIP), b.HostPort, cport))
			if b.HostIP != "127.0.0.1" || b.HostPort != port || cport != "18789/tcp" {
				bad = true
			}
		}
	}
	sort.Strings(got)
	pc.Got = joinOr(got, ", ", "none")
	pc.OK = !bad && len(got) == 1
	if !pc.OK {
		pc.Reason = "the gateway must be published once, on 127.0.0.1 only"
	}
	cs = append(cs, pc)

	ss := Check{ID: "step6.listen", Name: "ss -H -tlnp: listeners on port " + port, Expect: "127.0.0.1:" + port + " only"}
	if out, err := h.Read(ctx, "ss", "-H", "-tlnp", "sport = :"+port); err != nil {
		ss.Got, ss.Reason = "unreadable", firstLine(err.Error())
	} else {
		addrs := ssLocalAddrs(string(out))
		ss.Got = joinOr(addrs, ", ", "nothing listens")
		ss.OK = true
		for _, ad := range addrs {
			if ad != "127.0.0.1:"+port {
				ss.OK = false
			}
		}
		if !ss.OK {
			ss.Reason = "something listens on the gateway port beyond 127.0.0.1"
		}
		if len(addrs) == 0 {
			// userland-proxy off (Step 5): Docker publishes through NAT only, nothing listens; the NAT rule names the address.
			ss.Got = "nothing listens (userland-proxy off: NAT only)"
			if out, err := h.Read(ctx, "iptables", "-t", "nat", "-S", "DOCKER"); err == nil {
				for _, r := range ruleLines(string(out), "-A DOCKER") {
					if strings.Contains(r, "--dport "+port+" ") || strings.HasSuffix(r, "--dport "+port) || strings.Contains(r, "--dport "+port+" -j") {
						ss.Got += "; " + r
						if !strings.Contains(r, "-d 127.0.0.1/32") {
							ss.OK, ss.Reason = false, "the NAT rule for the gateway port is not limited to 127.0.0.1"
						}
					}
				}
			}
		}
	}
	cs = append(cs, ss)

	nc := Check{ID: "step6.network", Name: "docker network inspect: pinned subnet, enable_icc false", Expect: a.DockerSubnet + ", enable_icc false"}
	if len(c.NetworkSettings.Networks) != 1 {
		nc.Got, nc.Reason = fmt.Sprintf("%d networks", len(c.NetworkSettings.Networks)), "the gateway must be on exactly one network, the pinned one"
	}
	for name, n := range c.NetworkSettings.Networks {
		net, err := inspectNetwork(ctx, h, n.NetworkID)
		if err != nil {
			nc.Got, nc.Reason = name+": unreadable", firstLine(err.Error())
			break
		}
		var subs []string
		for _, cfg := range net.IPAM.Config {
			subs = append(subs, cfg.Subnet)
		}
		icc := orDash(net.Options["com.docker.network.bridge.enable_icc"])
		nc.Got = fmt.Sprintf("%s: %s, enable_icc %s", name, joinOr(subs, ",", "no subnet"), icc)
		if len(c.NetworkSettings.Networks) == 1 {
			nc.OK = len(subs) == 1 && samePrefix(subs[0], a.DockerSubnet) && icc == "false"
			if !nc.OK {
				nc.Reason = "the network is not the pinned subnet with inter-container traffic off (DOCKER-USER lets only the pinned subnet through)"
			}
		}
	}
	cs = append(cs, nc)

	hc := Check{ID: "step6.hardening", Name: "docker inspect: cap_drop ALL, no-new-privileges, not privileged, no host network, no docker.sock, dns, mem/pids limits", Expect: "all set"}
	var probs []string
	if !hasFold(c.HostConfig.CapDrop, "ALL") {
		probs = append(probs, "cap_drop is "+joinOr(c.HostConfig.CapDrop, ",", "empty"))
	}
	if len(c.HostConfig.CapAdd) > 0 {
		probs = append(probs, "cap_add "+strings.Join(c.HostConfig.CapAdd, ","))
	}
	nnp := false
	for _, o := range c.HostConfig.SecurityOpt {
		if o == "no-new-privileges:true" || o == "no-new-privileges" || o == "no-new-privileges=true" {
			nnp = true
		}
	}
	if !nnp {
		probs = append(probs, "no no-new-privileges")
	}
	if c.HostConfig.Privileged {
		probs = append(probs, "privileged")
	}
	if c.HostConfig.NetworkMode == "host" {
		probs = append(probs, "host network")
	}
	for _, m := range c.Mounts {
		if isDockerSock(m.Source) || isDockerSock(m.Destination) {
			probs = append(probs, "mounts "+m.Source)
		}
	}
	if !sameStrings(c.HostConfig.DNS, a.Resolvers) {
		probs = append(probs, "dns "+joinOr(c.HostConfig.DNS, ",", "unset"))
	}
	if c.HostConfig.Memory < 2<<30 {
		probs = append(probs, fmt.Sprintf("memory limit %d bytes (want 2g)", c.HostConfig.Memory))
	}
	if c.HostConfig.PidsLimit == nil || *c.HostConfig.PidsLimit <= 0 {
		probs = append(probs, "no pids limit")
	}
	hc.Got = joinOr(probs, "; ", "all set")
	hc.OK = len(probs) == 0
	if !hc.OK {
		hc.Reason = "the running container is not the hardened one (recreate it from " + composePath() + ")"
	}
	cs = append(cs, hc)

	dc := Check{ID: "step6.config-dir", Name: configDir() + ": owner and mode", Expect: fmt.Sprintf("directory, mode 0700, owner uid %d", OpenClawUID)}
	dc.Got = strings.TrimSpace(orDash(dirDesc(h, configDir())))
	dc.OK = dc.Got == dc.Expect
	if !dc.OK {
		dc.Reason = "the mounted config dir must belong to the container user and be private"
	}
	cs = append(cs, dc)
	ec := Check{ID: "step6.env-mode", Name: envPath() + ": mode", Expect: "0600"}
	if st, err := h.Stat(envPath()); err != nil {
		ec.Got, ec.Reason = "absent", "the gateway token file is missing"
	} else {
		ec.Got = fmt.Sprintf("%04o", st.Mode().Perm())
		ec.OK = st.Mode().Perm() == 0o600
		if !ec.OK {
			ec.Reason = "the token file is readable by others"
		}
	}
	return append(cs, ec)
}

// ssLocalAddrs reads the local addresses of `ss -H -tln` lines.
func ssLocalAddrs(out string) []string {
	var addrs []string
	for _, l := range strings.Split(out, "\n") {
		f := strings.Fields(l)
		if len(f) >= 4 {
			addrs = append(addrs, strings.TrimSuffix(strings.TrimPrefix(f[3], "["), "]"))
		}
	}
	sort.Strings(addrs)
	return addrs
}

func samePrefix(a, b string) bool {
	pa, err1 := netip.ParsePrefix(a)
	pb, err2 := netip.ParsePrefix(b)
	return err1 == nil && err2 == nil && pa.Masked() == pb.Masked()
}

func hasFold(ss []string, want string) bool {
	for _, s := range ss {
		if strings.EqualFold(s, want) {
			return true
		}
	}
	return false
}

func sameStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func isDockerSock(p string) bool {
	return strings.HasSuffix(p, "docker.sock") || p == "/var/run/docker" || p == "/run/docker" || p == "/var/run" || p == "/run"
}

// chownPath gives a file to the container's user (the Host has no chown of its own; dry-run reports it).
func chownPath(ctx context.Context, h *system.Host, path string, uid int) error {
	_, err := h.Exec(ctx, "chown", fmt.Sprintf("%d:%d", uid, uid), h.Path(path))
	return err
}

// progressFunc forwards long-running output to the apply log (redacted); a no-op where the Host offers none.
func progressFunc(h *system.Host) func(string) {
	if p := step2Progress(h); p != nil {
		return func(l string) { p(h.Redact(l)) }
	}
	return func(string) {}
}
