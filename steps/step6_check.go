package steps

// `check compose FILE`: an operator's compose file is loaded the way Docker Compose loads it (compose-go:
// interpolation from the environment and the .env beside the file, anchors and merge keys, short and long
// port syntax), and each service is held to Step 6's rules. Findings carry the line of the offending key
// when the YAML has it literally (not when it comes from an anchor or a merge).

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/compose-spec/compose-go/v2/dotenv"
	"github.com/compose-spec/compose-go/v2/loader"
	"github.com/compose-spec/compose-go/v2/types"
	"go.yaml.in/yaml/v3"
)

// ComposeFinding is one violation: in a service (or a network) and a key, at a line when known (0 when not).
type ComposeFinding struct {
	Line    int
	Service string // "" for a finding about a top-level network
	Network string
	Key     string
	Message string
}

// Format is "FILE:LINE: service S: key: message", or "FILE: service S: key: message" without a line.
func (f ComposeFinding) Format(file string) string {
	where := file + ":"
	if f.Line > 0 {
		where = fmt.Sprintf("%s:%d:", file, f.Line)
	}
	subject := "service " + f.Service
	if f.Service == "" {
		subject = "network " + f.Network
	}
	return fmt.Sprintf("%s %s: %s: %s", where, subject, f.Key, f.Message)
}

// yamlLine finds the line of a mapping key along path in the document ("" path elements never match).
func yamlLine(root *yaml.Node, path ...string) int {
	n := root
	if n == nil {
		return 0
	}
	if n.Kind == yaml.DocumentNode && len(n.Content) > 0 {
		n = n.Content[0]
	}
	line := 0
	for _, key := range path {
		if n.Kind != yaml.MappingNode {
			return line
		}
		found := false
		for i := 0; i+1 < len(n.Content); i += 2 {
			if n.Content[i].Value == key {
				line = n.Content[i].Line
				n = n.Content[i+1]
				found = true
				break
			}
		}
		if !found {
			return line
		}
	}
	return line
}

// LoadCompose loads a compose file as Docker Compose would, with env for interpolation (nil: the process
// environment plus the .env beside the file).
func LoadCompose(ctx context.Context, name string, data []byte, env map[string]string) (*types.Project, error) {
	dir := composeDir(name)
	if env == nil {
		env = composeEnv(name)
	}
	details := types.ConfigDetails{WorkingDir: dir, Environment: env,
		ConfigFiles: []types.ConfigFile{{Filename: name, Content: data}}}
	return loader.LoadWithContext(ctx, details, func(o *loader.Options) {
		o.SetProjectName("check", true)
		o.SkipConsistencyCheck = true
		o.SkipResolveEnvironment = true
	})
}

func composeDir(name string) string {
	dir := filepath.Dir(name)
	if abs, err := filepath.Abs(dir); err == nil {
		dir = abs
	}
	return dir
}

// composeEnv is what Docker Compose interpolates from: the process environment, then the .env beside the file.
func composeEnv(name string) map[string]string {
	env := map[string]string{}
	for _, kv := range os.Environ() {
		if k, v, ok := strings.Cut(kv, "="); ok {
			env[k] = v
		}
	}
	if dot, err := dotenv.Read(filepath.Join(composeDir(name), ".env")); err == nil {
		for k, v := range dot {
			if _, set := env[k]; !set {
				env[k] = v
			}
		}
	}
	return env
}

// secretEnvValues are the values of the variables that hold secrets by their name (as MergeEnvFile decides),
// longest first so a secret inside another is not left half shown.
func secretEnvValues(env map[string]string) []string {
	var out []string
	for k, v := range env {
		k = strings.ToUpper(k)
		if len(v) >= 4 && (strings.Contains(k, "TOKEN") || strings.Contains(k, "SECRET") || strings.Contains(k, "PASSWORD") || strings.HasSuffix(k, "_KEY")) {
			out = append(out, v)
		}
	}
	sort.Slice(out, func(i, j int) bool { return len(out[i]) > len(out[j]) || len(out[i]) == len(out[j]) && out[i] < out[j] })
	return out
}

// CheckCompose reports each violation of Step 6's rules in a compose file. A file that does not load is one
// finding at line 1 (or the line compose-go names). Values of secret variables (…TOKEN, …SECRET, …PASSWORD,
// …_KEY) that interpolation put into the file are shown as <redacted> when a message would quote them.
func CheckCompose(name string, data []byte, env map[string]string) []ComposeFinding {
	if env == nil {
		env = composeEnv(name)
	}
	fs := checkCompose(name, data, env)
	if secrets := secretEnvValues(env); len(secrets) > 0 {
		for i := range fs {
			fs[i].Message = redactValues(fs[i].Message, secrets)
		}
	}
	return fs
}

// redactValues replaces each secret in s, and what a parser quotes of one when it splits it (a number and
// an "invalid suffix", a host and a port): its longest prefix or suffix of at least 8 characters.
func redactValues(s string, secrets []string) string {
	const minPart = 8
	for _, sec := range secrets {
		s = strings.ReplaceAll(s, sec, "<redacted>")
		for n := len(sec) - 1; n >= minPart; n-- {
			s = strings.ReplaceAll(s, sec[len(sec)-n:], "<redacted>")
			s = strings.ReplaceAll(s, sec[:n], "<redacted>")
		}
	}
	return s
}

func checkCompose(name string, data []byte, env map[string]string) []ComposeFinding {
	var root yaml.Node
	_ = yaml.Unmarshal(data, &root)
	proj, err := LoadCompose(context.Background(), name, data, env)
	if err != nil {
		return []ComposeFinding{{Line: 1, Service: "-", Key: "file", Message: "does not load as a compose file: " + err.Error()}}
	}
	var fs []ComposeFinding
	names := make([]string, 0, len(proj.Services))
	for n := range proj.Services {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, sn := range names {
		s := proj.Services[sn]
		add := func(key, msg string) {
			fs = append(fs, ComposeFinding{Line: yamlLine(&root, "services", sn, key), Service: sn, Key: key, Message: msg})
		}
		for _, p := range s.Ports {
			where := p.Published
			if where == "" {
				where = "a random port"
			}
			switch {
			case p.HostIP == "":
				add("ports", fmt.Sprintf("%s -> %d/%s has no host address, so Docker publishes it on every interface (0.0.0.0); write \"127.0.0.1:%s:%d\"", where, p.Target, orDefault(p.Protocol, "tcp"), orDefault(p.Published, strconv.Itoa(int(p.Target))), p.Target))
			case !isLoopback(p.HostIP):
				add("ports", fmt.Sprintf("%s:%s -> %d is published on %s, reachable from the network; publish on 127.0.0.1 only and use an SSH tunnel", p.HostIP, where, p.Target, p.HostIP))
			}
		}
		for _, v := range s.Volumes {
			if isDockerSock(v.Source) || isDockerSock(v.Target) {
				add("volumes", fmt.Sprintf("mounts %s: the Docker socket gives the container root on the host", orDefault(v.Source, v.Target)))
			}
		}
		if s.Privileged {
			add("privileged", "true: the container gets every capability and the host's devices")
		}
		if s.NetworkMode == "host" {
			add("network_mode", "host: the container shares the host's network, bypassing port publishing and DOCKER-USER")
		}
		if len(s.DNS) == 0 {
			add("dns", "not set: the container inherits the host's resolvers (e.g. a LAN resolver); set explicit resolvers")
		}
		if !hasFold(s.CapDrop, "ALL") {
			add("cap_drop", "does not drop ALL capabilities; set cap_drop: [ALL]")
		}
		if len(s.CapAdd) > 0 {
			add("cap_add", "adds "+strings.Join(s.CapAdd, ", ")+": the profile runs with no capabilities")
		}
		nnp := false
		for _, o := range s.SecurityOpt {
			o = strings.ReplaceAll(o, "=", ":")
			if o == "no-new-privileges:true" || o == "no-new-privileges" {
				nnp = true
			}
		}
		if !nnp {
			add("security_opt", "no no-new-privileges:true: setuid binaries in the container can gain privileges")
		}
		mem, pids := int64(s.MemLimit), s.PidsLimit
		if s.Deploy != nil && s.Deploy.Resources.Limits != nil {
			if mem == 0 {
				mem = int64(s.Deploy.Resources.Limits.MemoryBytes)
			}
			if pids == 0 {
				pids = s.Deploy.Resources.Limits.Pids
			}
		}
		if mem == 0 {
			add("mem_limit", "not set: the container can use all the host's memory (the gateway needs about 1 GB: set 2g)")
		}
		if pids <= 0 {
			add("pids_limit", "not set: a fork bomb in the container can exhaust the host's PIDs")
		}
		if s.HealthCheck == nil || s.HealthCheck.Disable {
			add("healthcheck", "not set here (the image's own may apply): add one on /healthz so a hung gateway is seen")
		}
		if s.NetworkMode != "" && s.NetworkMode != "bridge" && s.NetworkMode != "default" {
			continue
		}
		nets := make([]string, 0, len(s.Networks))
		for n := range s.Networks {
			nets = append(nets, n)
		}
		sort.Strings(nets)
		if len(nets) == 0 {
			nets = []string{"default"}
		}
		for _, n := range nets {
			nc, ok := proj.Networks[n]
			if !ok && n != "default" {
				continue
			}
			var subs []string
			for _, c := range nc.Ipam.Config {
				if c != nil && c.Subnet != "" {
					subs = append(subs, c.Subnet)
				}
			}
			if bool(nc.External) {
				add("networks", fmt.Sprintf("network %s is external: its subnet and options are not pinned by this file", n))
				continue
			}
			if len(subs) == 0 {
				add("networks", fmt.Sprintf("network %s has no pinned subnet (ipam.config[].subnet): Docker picks one, which DOCKER-USER does not know", n))
			}
			if nc.DriverOpts["com.docker.network.bridge.enable_icc"] != "false" {
				add("networks", fmt.Sprintf("network %s does not set driver_opts com.docker.network.bridge.enable_icc: \"false\": containers on it can reach each other", n))
			}
		}
	}
	sort.SliceStable(fs, func(i, j int) bool {
		if fs[i].Line == 0 || fs[j].Line == 0 {
			return fs[i].Line != 0 && fs[j].Line == 0
		}
		return fs[i].Line < fs[j].Line
	})
	return fs
}

func isLoopback(ip string) bool {
	a, err := netip.ParseAddr(strings.Trim(ip, "[]"))
	return err == nil && a.IsLoopback()
}

func orDefault(s, d string) string {
	if s == "" {
		return d
	}
	return s
}

// FormatComposeFindings renders findings for the check command.
func FormatComposeFindings(file string, fs []ComposeFinding) []string {
	out := make([]string, len(fs))
	for i, f := range fs {
		out[i] = f.Format(file)
	}
	return out
}
