package steps

// Step 5: /etc/docker/daemon.json. The profile's keys are merged into the operator's file (never dropping a
// key), only where the installed Docker applies them; dockerd 20.10 (Debian 12) has no --validate and refuses
// to start on a key it does not know, so the file is checked against the keys and types this tool knows for
// that version. After the restart the step waits for the daemon; when it does not come back, the previous file
// is put back and Docker is restarted again, so a bad file never leaves the VM without Docker.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"openclaw-harden/assets"
	"openclaw-harden/system"
)

// EngineVersion is a Docker Engine version: 20.10.24+dfsg1 → {20, 10}.
type EngineVersion struct {
	Major, Minor int
	Raw          string
}

// AtLeast reports v >= major.minor.
func (v EngineVersion) AtLeast(major, minor int) bool {
	return v.Major > major || (v.Major == major && v.Minor >= minor)
}

func (v EngineVersion) String() string {
	if v.Raw != "" {
		return v.Raw
	}
	return fmt.Sprintf("%d.%d", v.Major, v.Minor)
}

// NewestEngine is the newest Docker this tool knows the daemon.json keys of (`render daemon-json` uses it).
var NewestEngine = EngineVersion{Major: 29, Minor: 0, Raw: "29.0"}

var engineVersionRE = regexp.MustCompile(`(\d+)\.(\d+)(?:\.\d+)?[^\s,]*`)

// ParseEngineVersion reads "20.10.24+dfsg1" or "Docker version 20.10.24+dfsg1, build 5d6db84".
func ParseEngineVersion(s string) (EngineVersion, error) {
	m := engineVersionRE.FindStringSubmatch(s)
	if m == nil {
		return EngineVersion{}, fmt.Errorf("no Docker version in %q", strings.TrimSpace(s))
	}
	maj, _ := strconv.Atoi(m[1])
	mnr, _ := strconv.Atoi(m[2])
	return EngineVersion{Major: maj, Minor: mnr, Raw: m[0]}, nil
}

// daemonKey is one daemon.json key this tool knows: its JSON kind, the first Docker that accepts it, and the
// first that applies it (when later than accepting: Debian's 20.10.24 accepts default-network-opts and ignores it).
type daemonKey struct {
	kind          string // bool, string, number, array, object, stringmap, netopts
	since, effect [2]int
}

var daemonKeys = func() map[string]daemonKey {
	m := map[string]daemonKey{}
	add := func(kind string, since [2]int, names ...string) {
		for _, n := range names {
			m[n] = daemonKey{kind: kind, since: since, effect: since}
		}
	}
	add("bool", [2]int{}, "icc", "userland-proxy", "no-new-privileges", "ipv6", "ip6tables", "iptables", "ip-forward",
		"ip-masq", "live-restore", "debug", "experimental", "init", "selinux-enabled", "tls", "tlsverify", "raw-logs")
	add("string", [2]int{}, "log-driver", "data-root", "storage-driver", "log-level", "bip", "bridge", "cgroup-parent",
		"exec-root", "pidfile", "ip", "fixed-cidr", "fixed-cidr-v6", "default-gateway", "default-gateway-v6",
		"default-runtime", "default-ipc-mode", "default-shm-size", "group", "userns-remap", "seccomp-profile",
		"containerd", "init-path", "userland-proxy-path", "tlscacert", "tlscert", "tlskey", "api-cors-header",
		"cluster-store", "cluster-advertise", "swarm-default-advertise-addr", "containerd-namespace",
		"containerd-plugin-namespace", "default-cgroupns-mode", "host-gateway-ip")
	add("number", [2]int{}, "mtu", "max-concurrent-downloads", "max-concurrent-uploads", "max-download-attempts",
		"shutdown-timeout", "oom-score-adjust", "network-control-plane-mtu")
	add("array", [2]int{}, "dns", "dns-opts", "dns-search", "exec-opts", "hosts", "insecure-registries",
		"registry-mirrors", "labels", "storage-opts", "authorization-plugins", "allow-nondistributable-artifacts",
		"default-address-pools", "node-generic-resources")
	add("object", [2]int{}, "runtimes", "default-ulimits", "features", "builder", "cluster-store-opts")
	add("stringmap", [2]int{}, "log-opts")
	add("object", [2]int{23, 0}, "proxies")
	add("array", [2]int{25, 0}, "cdi-spec-dirs")
	add("string", [2]int{28, 0}, "firewall-backend")
	m["default-network-opts"] = daemonKey{kind: "netopts", effect: [2]int{24, 0}}
	return m
}()

// daemonMember is one top-level key of daemon.json, in file order, with the line it starts on.
type daemonMember struct {
	Key   string
	Value json.RawMessage
	Line  int
}

// jsonError is invalid JSON with the line it was found on.
type jsonError struct {
	Line int
	Msg  string
}

func (e *jsonError) Error() string { return fmt.Sprintf("line %d: %s", e.Line, e.Msg) }

func lineAt(data []byte, off int64) int {
	if off > int64(len(data)) {
		off = int64(len(data))
	}
	if off < 0 {
		off = 0
	}
	return bytes.Count(data[:off], []byte("\n")) + 1
}

// parseDaemonMembers reads a JSON object's top-level members in order. Empty input is an empty object.
func parseDaemonMembers(data []byte) ([]daemonMember, error) {
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, nil
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	fail := func(err error) error {
		var se *json.SyntaxError
		if errors.As(err, &se) {
			return &jsonError{Line: lineAt(data, se.Offset), Msg: "not valid JSON: " + se.Error()}
		}
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return &jsonError{Line: lineAt(data, int64(len(data))), Msg: "not valid JSON: the file ends before the object is closed"}
		}
		return &jsonError{Line: lineAt(data, dec.InputOffset()), Msg: "not valid JSON: " + err.Error()}
	}
	tok, err := dec.Token()
	if err != nil {
		return nil, fail(err)
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return nil, &jsonError{Line: lineAt(data, dec.InputOffset()), Msg: "daemon.json must be one JSON object ({ … })"}
	}
	var ms []daemonMember
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, fail(err)
		}
		key, ok := tok.(string)
		if !ok {
			return nil, &jsonError{Line: lineAt(data, dec.InputOffset()), Msg: "not valid JSON: expected a key"}
		}
		line := lineAt(data, dec.InputOffset())
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return nil, fail(err)
		}
		ms = append(ms, daemonMember{Key: key, Value: raw, Line: line})
	}
	if _, err := dec.Token(); err != nil {
		return nil, fail(err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, &jsonError{Line: lineAt(data, dec.InputOffset()), Msg: "not valid JSON: more data after the object"}
	}
	return ms, nil
}

func renderDaemonMembers(ms []daemonMember) ([]byte, error) {
	if len(ms) == 0 {
		return []byte("{}\n"), nil
	}
	var b bytes.Buffer
	b.WriteString("{\n")
	for i, m := range ms {
		k, _ := json.Marshal(m.Key)
		var v bytes.Buffer
		if err := json.Indent(&v, m.Value, "  ", "  "); err != nil {
			return nil, err
		}
		fmt.Fprintf(&b, "  %s: %s", k, v.Bytes())
		if i < len(ms)-1 {
			b.WriteString(",")
		}
		b.WriteString("\n")
	}
	b.WriteString("}\n")
	return b.Bytes(), nil
}

func findMember(ms []daemonMember, key string) int {
	for i, m := range ms {
		if m.Key == key {
			return i
		}
	}
	return -1
}

func decodeAny(raw []byte) any {
	var v any
	d := json.NewDecoder(bytes.NewReader(raw))
	d.UseNumber()
	if d.Decode(&v) != nil {
		return nil
	}
	return v
}

// jsonFileOpts are the log-opts the json-file driver accepts (dockerd refuses to start on any other).
var jsonFileOpts = map[string]bool{"max-size": true, "max-file": true, "compress": true, "labels": true,
	"labels-regex": true, "env": true, "env-regex": true, "tag": true}

// MergeDaemonJSON merges the profile's keys into cur (the operator's daemon.json; nil when there is none) for
// Docker v: every key of cur is kept; icc, userland-proxy, no-new-privileges, ipv6 and log-driver are set; log
// rotation is added where absent; default-network-opts only where v applies it. The notes say what was left
// out or overridden and why. When cur already means what the merge would write, cur is returned unchanged.
func MergeDaemonJSON(cur []byte, v EngineVersion) ([]byte, []string, error) {
	ms, err := parseDaemonMembers(cur)
	if err != nil {
		return nil, nil, err
	}
	orig := make([]daemonMember, len(ms))
	copy(orig, ms)
	profile, err := parseDaemonMembers(assets.DaemonJSONProfile())
	if err != nil {
		return nil, nil, fmt.Errorf("the embedded daemon.json profile: %w", err)
	}
	var notes []string
	// set writes key once: a duplicate of it further down would win in dockerd (the last one counts), so
	// duplicates of a key the profile sets are removed.
	set := func(key string, val json.RawMessage) {
		i := findMember(ms, key)
		if i < 0 {
			ms = append(ms, daemonMember{Key: key, Value: val})
			return
		}
		ms[i].Value = val
		kept := ms[:i+1]
		for _, m := range ms[i+1:] {
			if m.Key != key {
				kept = append(kept, m)
			}
		}
		ms = kept
	}
	for _, pm := range profile {
		k := daemonKeys[pm.Key]
		i := findMember(ms, pm.Key)
		switch pm.Key {
		case "log-opts":
			drv := "json-file"
			if j := findMember(ms, "log-driver"); j >= 0 {
				_ = json.Unmarshal(ms[j].Value, &drv)
			}
			if drv != "json-file" {
				continue
			}
			var want map[string]string
			_ = json.Unmarshal(pm.Value, &want)
			if i < 0 {
				set(pm.Key, pm.Value)
				continue
			}
			opts, err := parseDaemonMembers(ms[i].Value)
			if err != nil || bytes.HasPrefix(bytes.TrimSpace(ms[i].Value), []byte("[")) {
				return nil, nil, fmt.Errorf("daemon.json line %d: log-opts must be an object of strings", ms[i].Line)
			}
			// Options of another log driver make dockerd refuse to start once the driver is json-file.
			for _, o := range opts {
				if !jsonFileOpts[o.Key] {
					return nil, nil, fmt.Errorf("daemon.json line %d: log-opts has %q, which the json-file log driver does not accept (dockerd would not start); remove it, or keep your log driver and leave Step 5 for later", ms[i].Line, o.Key)
				}
			}
			added := false
			for _, name := range []string{"max-size", "max-file"} {
				if findMember(opts, name) < 0 {
					val, _ := json.Marshal(want[name])
					opts = append(opts, daemonMember{Key: name, Value: val})
					added = true
				}
			}
			if added {
				val, _ := renderDaemonMembers(opts)
				set(pm.Key, bytes.TrimSpace(val))
			}
		case "default-network-opts":
			if !v.AtLeast(k.effect[0], k.effect[1]) {
				msg := fmt.Sprintf("default-network-opts (bridge host_binding_ipv4 127.0.0.1) is left out: Docker %s accepts it but does not apply it (new networks get no such option and -p still publishes on 0.0.0.0); the gateway is kept off the LAN by publishing 127.0.0.1:18789 in compose (Step 6).", v)
				if i >= 0 {
					msg = fmt.Sprintf("default-network-opts is in the file already and is kept, but Docker %s does not apply it: it protects nothing there; the gateway is kept off the LAN by publishing 127.0.0.1:18789 in compose (Step 6).", v)
				}
				notes = append(notes, msg)
				continue
			}
			if i < 0 {
				set(pm.Key, pm.Value)
				continue
			}
			merged, err := mergeNetOpts(ms[i].Value, pm.Value)
			if err != nil {
				return nil, nil, fmt.Errorf("daemon.json line %d: default-network-opts: %w", ms[i].Line, err)
			}
			set(pm.Key, merged)
		default:
			if !v.AtLeast(k.since[0], k.since[1]) {
				notes = append(notes, fmt.Sprintf("%s is left out: Docker %s does not know it and would refuse to start.", pm.Key, v))
				continue
			}
			if i >= 0 && !reflect.DeepEqual(decodeAny(ms[i].Value), decodeAny(pm.Value)) {
				notes = append(notes, fmt.Sprintf("%s was %s in the file; the profile sets %s.", pm.Key, compactJSON(ms[i].Value), compactJSON(pm.Value)))
			}
			set(pm.Key, pm.Value)
		}
	}
	if i := findMember(ms, "data-root"); i >= 0 {
		notes = append(notes, fmt.Sprintf("data-root %s is kept: without it Docker would come back on an empty /var/lib/docker, with no images or volumes.", compactJSON(ms[i].Value)))
	}
	if sameDaemonJSON(orig, ms) && len(cur) > 0 {
		return cur, notes, nil
	}
	out, err := renderDaemonMembers(ms)
	return out, notes, err
}

func compactJSON(raw []byte) string {
	var b bytes.Buffer
	if json.Compact(&b, raw) != nil {
		return string(raw)
	}
	return b.String()
}

func sameDaemonJSON(a, b []daemonMember) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].Key != b[i].Key || !reflect.DeepEqual(decodeAny(a[i].Value), decodeAny(b[i].Value)) {
			return false
		}
	}
	return true
}

// mergeNetOpts sets the profile's driver options inside the operator's default-network-opts, keeping the rest.
func mergeNetOpts(cur, want json.RawMessage) (json.RawMessage, error) {
	var c, w map[string]map[string]string
	if err := json.Unmarshal(cur, &c); err != nil {
		return nil, errors.New("must be an object of driver names to objects of strings")
	}
	_ = json.Unmarshal(want, &w)
	if c == nil {
		c = map[string]map[string]string{}
	}
	for drv, opts := range w {
		if c[drv] == nil {
			c[drv] = map[string]string{}
		}
		for k, v := range opts {
			c[drv][k] = v
		}
	}
	return json.Marshal(c)
}

// CheckDaemonJSON reads an operator's daemon.json: invalid JSON (with its line), keys this tool does not know
// (dockerd refuses to start on a key it does not know), values of the wrong kind, and the settings the profile
// hardens: icc and userland-proxy on (their default), no-new-privileges off, json-file logs without limits.
func CheckDaemonJSON(data []byte) []Finding {
	ms, err := parseDaemonMembers(data)
	if err != nil {
		var je *jsonError
		if errors.As(err, &je) {
			return []Finding{{Line: je.Line, Message: je.Msg}}
		}
		return []Finding{{Line: 1, Message: err.Error()}}
	}
	fs := checkDaemonMembers(ms, NewestEngine, true)
	last := lineAt(data, int64(len(data)))
	val := func(key string) (any, int, bool) {
		if i := findMember(ms, key); i >= 0 {
			return decodeAny(ms[i].Value), ms[i].Line, true
		}
		return nil, last, false
	}
	for _, want := range []struct {
		key  string
		good bool
		why  string
	}{
		{"icc", false, "containers on the default bridge can reach each other"},
		{"userland-proxy", false, "docker-proxy relays published ports and hides the client's address"},
		{"no-new-privileges", true, "setuid binaries in a container can gain privileges"},
	} {
		v, line, ok := val(want.key)
		switch {
		case !ok:
			fs = append(fs, Finding{Line: line, Message: fmt.Sprintf("%s is not set (Docker's default is %v): %s; set \"%s\": %v", want.key, !want.good, want.why, want.key, want.good)})
		case v != want.good:
			if b, isBool := v.(bool); isBool {
				fs = append(fs, Finding{Line: line, Message: fmt.Sprintf("%s is %v: %s; set it to %v", want.key, b, want.why, want.good)})
			}
		}
	}
	drv, _, hasDrv := val("log-driver")
	if !hasDrv || drv == "json-file" {
		opts, line, ok := val("log-opts")
		m, _ := opts.(map[string]any)
		for _, name := range []string{"max-size", "max-file"} {
			if _, has := m[name]; !ok || !has {
				fs = append(fs, Finding{Line: line, Message: fmt.Sprintf("log-opts has no %s: json-file logs grow without limit and can fill the disk; add \"log-opts\": {\"max-size\": \"10m\", \"max-file\": \"3\"}", name)})
			}
		}
	}
	sort.SliceStable(fs, func(i, j int) bool { return fs[i].Line < fs[j].Line })
	return fs
}

// checkDaemonMembers reports keys v does not know (when unknown is set) and values of the wrong kind.
func checkDaemonMembers(ms []daemonMember, v EngineVersion, unknown bool) []Finding {
	var fs []Finding
	seen := map[string]int{}
	for _, m := range ms {
		if first, dup := seen[m.Key]; dup {
			fs = append(fs, Finding{Line: m.Line, Message: fmt.Sprintf("%s is set twice (first at line %d): only the last one counts", m.Key, first)})
		}
		seen[m.Key] = m.Line
		k, known := daemonKeys[m.Key]
		if !known || !v.AtLeast(k.since[0], k.since[1]) {
			switch {
			case !unknown:
			case !known:
				fs = append(fs, Finding{Line: m.Line, Message: fmt.Sprintf("unknown key %q (not a daemon.json key of Docker up to %s): dockerd refuses to start with a key it does not know", m.Key, NewestEngine)})
			default:
				fs = append(fs, Finding{Line: m.Line, Message: fmt.Sprintf("unknown key %q for Docker %s (it came in %d.%d): dockerd refuses to start with a key it does not know", m.Key, v, k.since[0], k.since[1])})
			}
			continue
		}
		if msg := kindError(k.kind, m.Value); msg != "" {
			fs = append(fs, Finding{Line: m.Line, Message: fmt.Sprintf("%s %s: dockerd refuses to start", m.Key, msg)})
		}
	}
	return fs
}

func kindError(kind string, raw json.RawMessage) string {
	v := decodeAny(raw)
	switch kind {
	case "bool":
		if _, ok := v.(bool); !ok {
			return "must be true or false"
		}
	case "string":
		if _, ok := v.(string); !ok {
			return "must be a string"
		}
	case "number":
		if _, ok := v.(json.Number); !ok {
			return "must be a number"
		}
	case "array":
		if _, ok := v.([]any); !ok {
			return "must be a list"
		}
	case "object":
		if _, ok := v.(map[string]any); !ok {
			return "must be an object"
		}
	case "stringmap":
		m, ok := v.(map[string]any)
		if !ok {
			return "must be an object of strings"
		}
		for k, x := range m {
			if _, ok := x.(string); !ok {
				return fmt.Sprintf("value of %q must be a string (write \"%v\")", k, x)
			}
		}
	case "netopts":
		m, ok := v.(map[string]any)
		if !ok {
			return "must be an object of driver names to objects of strings"
		}
		for drv, x := range m {
			if drv != "bridge" && drv != "overlay" && drv != "macvlan" && drv != "ipvlan" {
				return fmt.Sprintf("names driver %q, which is not a network driver", drv)
			}
			if kindError("stringmap", mustJSON(x)) != "" {
				return fmt.Sprintf("options for %q must be an object of strings", drv)
			}
		}
	}
	return ""
}

func mustJSON(v any) json.RawMessage {
	b, _ := json.Marshal(v)
	return b
}

// validateDaemonForVersion is the check used where dockerd has no --validate: the file must parse, every key
// known to this tool must have a value of the right kind, and every key that was not in the previous file must
// be one that version knows. A key this tool does not know that the operator already had is left to dockerd
// (it ran with it); the rollback catches a daemon that does not come back.
func validateDaemonForVersion(data, before []byte, v EngineVersion) error {
	ms, err := parseDaemonMembers(data)
	if err != nil {
		return err
	}
	old, _ := parseDaemonMembers(before)
	for _, f := range checkDaemonMembers(ms, v, true) {
		if strings.HasPrefix(f.Message, "unknown key ") {
			if key, _ := strconv.Unquote(strings.Fields(f.Message)[2]); findMember(old, key) >= 0 {
				continue
			}
		}
		return fmt.Errorf("line %d: %s", f.Line, f.Message)
	}
	return nil
}

// Timing of the restart; tests shorten them.
var (
	dockerRestartTimeout = 3 * time.Minute
	dockerWaitTimeout    = 90 * time.Second
	dockerPollInterval   = time.Second
)

// DaemonStep is Step 5.
type DaemonStep struct{}

func (DaemonStep) ID() int       { return 5 }
func (DaemonStep) Title() string { return "Docker daemon hardening" }

type step5Plan struct {
	Before   string
	Existed  bool
	After    string
	Version  EngineVersion
	Validate []string // dockerd --validate where it exists; nil means this tool's own check
	Restart  bool
}

// engineVersion asks the running daemon, then the dockerd binary.
func engineVersion(ctx context.Context, h *system.Host) (EngineVersion, string, error) {
	if out, err := h.Read(ctx, "docker", "version", "--format", "{{.Server.Version}}"); err == nil {
		if v, err := ParseEngineVersion(string(out)); err == nil {
			return v, "docker version", nil
		}
	}
	out, err := h.Read(ctx, "dockerd", "--version")
	if err != nil {
		return EngineVersion{}, "", err
	}
	v, err := ParseEngineVersion(string(out))
	return v, "dockerd --version", err
}

// bridgeNetwork is the part of `docker network inspect bridge` Step 5 reads.
type bridgeNetwork struct {
	EnableIPv6 bool              `json:"EnableIPv6"`
	Options    map[string]string `json:"Options"`
}

func readBridge(ctx context.Context, h *system.Host) (bridgeNetwork, error) {
	var b bridgeNetwork
	out, err := h.Read(ctx, "docker", "network", "inspect", "bridge", "--format", "{{json .}}")
	if err != nil {
		return b, err
	}
	obj := firstJSONObject(out)
	if obj == nil {
		return b, errors.New("docker network inspect bridge printed no JSON")
	}
	return b, json.Unmarshal(obj, &b)
}

func (DaemonStep) Plan(ctx context.Context, h *system.Host, a Answers) (Plan, error) {
	p := Plan{Step: 5}
	v, src, err := engineVersion(ctx, h)
	if err != nil {
		p.Blocked = "Docker is not installed (neither docker version nor dockerd --version answered); install docker.io and plan again."
		return p, nil
	}
	cur, err := h.ReadFile(daemonJSONPath)
	existed := err == nil
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return p, fmt.Errorf("reading %s: %w", daemonJSONPath, err)
	}
	after, notes, err := MergeDaemonJSON(cur, v)
	if err != nil {
		p.Blocked = fmt.Sprintf("%s cannot be merged (%v); fix the file by hand and plan again.", daemonJSONPath, err)
		return p, nil
	}
	p.Notes = append(p.Notes, fmt.Sprintf("Docker %s (from %s).", v, src))
	sp := step5Plan{Before: string(cur), Existed: existed, After: string(after), Version: v}
	if v.AtLeast(23, 0) {
		sp.Validate = []string{"dockerd", "--validate", "--config-file", "%s"}
		p.Notes = append(p.Notes, "The new file is checked with dockerd --validate before it is moved in.")
	} else {
		p.Notes = append(p.Notes, fmt.Sprintf("Docker %s has no dockerd --validate (23.0+): the new file is checked against the keys and value kinds Docker %s knows, and a Docker that does not come back is rolled back automatically.", v, v))
		if ms, err := parseDaemonMembers(cur); err == nil {
			for _, f := range checkDaemonMembers(ms, v, true) {
				p.Notes = append(p.Notes, fmt.Sprintf("%s line %d: %s.", daemonJSONPath, f.Line, f.Message))
			}
		}
	}
	p.Notes = append(p.Notes, notes...)
	p.Notes = append(p.Notes, "icc false applies to the default bridge only: the compose network needs com.docker.network.bridge.enable_icc \"false\" (Step 6).")
	cmds := []string{"sudoedit " + daemonJSONPath}
	if sp.Validate != nil {
		cmds = append(cmds, "sudo dockerd --validate --config-file="+daemonJSONPath)
	}
	p.Commands = append(cmds, "sudo systemctl restart docker", "docker info --format '{{.LoggingDriver}} {{.SecurityOptions}}'",
		"docker network inspect bridge --format '{{json .Options}}'", "sudo iptables -t nat -S OUTPUT   # no '! -d 127.0.0.0/8': userland-proxy is off")
	warn := "restarts Docker: running containers stop and start again according to their restart policy"
	c := Change{Target: daemonJSONPath, Kind: "file", Before: string(cur), After: string(after), Mode: 0o644, Warning: warn}
	p.Changes = append(p.Changes, c)
	sp.Restart = c.Action() != "="
	// The file can be right while the daemon still runs the old one (edited without a restart).
	if !sp.Restart {
		if b, err := readBridge(ctx, h); err == nil && b.Options["com.docker.network.bridge.enable_icc"] != "false" {
			p.Changes = append(p.Changes, Change{Target: "dockerd (running configuration)", Kind: "setting", Warning: warn,
				Before: "icc on the default bridge: " + orDash(b.Options["com.docker.network.bridge.enable_icc"]) + "\n",
				After:  "icc on the default bridge: false (after systemctl restart docker)\n"})
			sp.Restart = true
		}
	}
	p.Data = sp
	return p, nil
}

func (DaemonStep) Apply(ctx context.Context, h *system.Host, p Plan) error {
	sp, ok := p.Data.(step5Plan)
	if !ok {
		return errors.New("step 5: the plan carries no daemon.json data; plan again")
	}
	cur, err := h.ReadFile(daemonJSONPath)
	if (err == nil) != sp.Existed || string(cur) != sp.Before {
		return fmt.Errorf("%s changed since this plan was made; plan Step 5 again", daemonJSONPath)
	}
	if sp.After != sp.Before {
		if sp.Validate == nil {
			if err := validateDaemonForVersion([]byte(sp.After), []byte(sp.Before), sp.Version); err != nil {
				return fmt.Errorf("the new %s was not written: Docker %s would refuse it (%v)", daemonJSONPath, sp.Version, err)
			}
		}
		if _, err := h.Stat("/etc/docker"); errors.Is(err, fs.ErrNotExist) {
			if err := h.MkdirAll("/etc/docker", 0o755, -1, -1); err != nil {
				return err
			}
		}
		if err := h.WriteFile(ctx, daemonJSONPath, []byte(sp.After), system.WriteOpts{Perm: 0o644, Validate: sp.Validate}); err != nil {
			return fmt.Errorf("writing %s: %w", daemonJSONPath, err)
		}
	}
	if !sp.Restart {
		return nil
	}
	rerr := restartDocker(ctx, h)
	if rerr == nil || h.DryRun {
		return nil
	}
	// Docker did not come back: put the previous file back and restart again.
	journal := dockerJournal(ctx, h)
	var restoreErr error
	if sp.Existed {
		restoreErr = h.WriteFile(ctx, daemonJSONPath, []byte(sp.Before), system.WriteOpts{Perm: 0o644})
	} else {
		restoreErr = h.RemoveFile(daemonJSONPath)
	}
	if restoreErr != nil {
		return fmt.Errorf("docker did not come back after %s was changed (%v), and restoring the previous file failed: %v\n%s", daemonJSONPath, firstLine(rerr.Error()), restoreErr, journal)
	}
	_, _ = h.Exec(ctx, "systemctl", "reset-failed", "docker")
	if err := restartDocker(ctx, h); err != nil {
		return fmt.Errorf("docker did not come back after %s was changed, and not after the previous file was restored either (%v)\n%s", daemonJSONPath, err, journal)
	}
	return fmt.Errorf("docker did not come back with the new %s (%v), so the previous file was restored and Docker runs again with it\n%s", daemonJSONPath, rerr, journal)
}

// restartDocker restarts the daemon and waits until `docker info` answers.
func restartDocker(ctx context.Context, h *system.Host) error {
	if _, err := h.ExecCmd(ctx, system.Cmd{Argv: []string{"systemctl", "restart", "docker"}, Timeout: dockerRestartTimeout}); err != nil {
		if code := system.ExitCode(err); code >= 0 {
			return fmt.Errorf("systemctl restart docker exited %d", code)
		}
		return fmt.Errorf("systemctl restart docker: %v", firstLine(err.Error()))
	}
	if h.DryRun {
		return nil
	}
	deadline := time.Now().Add(dockerWaitTimeout)
	for {
		_, err := h.Read(ctx, "docker", "info", "--format", "{{.ServerVersion}}")
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("dockerd did not answer docker info within %s", dockerWaitTimeout)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(dockerPollInterval):
		}
	}
}

func dockerJournal(ctx context.Context, h *system.Host) string {
	out, err := h.Read(ctx, "journalctl", "-u", "docker", "--no-pager", "-n", "15", "-o", "cat")
	if err != nil {
		return ""
	}
	return "journalctl -u docker:\n" + strings.TrimRight(string(out), "\n")
}

func (DaemonStep) Verify(ctx context.Context, h *system.Host, a Answers) []Check {
	var cs []Check
	out, err := h.Read(ctx, "docker", "info", "--format", "{{json .}}")
	var info struct {
		ServerVersion   string   `json:"ServerVersion"`
		LoggingDriver   string   `json:"LoggingDriver"`
		DockerRootDir   string   `json:"DockerRootDir"`
		SecurityOptions []string `json:"SecurityOptions"`
	}
	running := err == nil && firstJSONObject(out) != nil && json.Unmarshal(firstJSONObject(out), &info) == nil && info.ServerVersion != ""
	c := Check{ID: "step5.running", Name: "the Docker daemon answers docker info", Expect: "a server version"}
	if running {
		c.Got, c.OK = info.ServerVersion, true
	} else {
		c.Got, c.Reason = "no answer", "docker info failed: the daemon is not running"
		if err != nil {
			c.Reason += ": " + firstLine(err.Error())
		}
		return append(cs, c)
	}
	cs = append(cs, c)

	file, _ := h.ReadFile(daemonJSONPath)
	ms, _ := parseDaemonMembers(file)
	fileVal := func(key string) any {
		if i := findMember(ms, key); i >= 0 {
			return decodeAny(ms[i].Value)
		}
		return nil
	}

	c = Check{ID: "step5.log-driver", Name: "docker info: log driver", Expect: "json-file", Got: info.LoggingDriver}
	c.OK = info.LoggingDriver == "json-file"
	if !c.OK {
		c.Reason = "the daemon logs with another driver: the profile's log rotation does not apply"
	}
	cs = append(cs, c)

	wantRoot := "/var/lib/docker"
	if s, ok := fileVal("data-root").(string); ok && s != "" {
		wantRoot = s
	}
	c = Check{ID: "step5.data-root", Name: "docker info: data root is the configured one", Expect: wantRoot, Got: info.DockerRootDir}
	c.OK = strings.TrimRight(info.DockerRootDir, "/") == strings.TrimRight(wantRoot, "/")
	if !c.OK {
		c.Reason = "Docker runs on another data root than daemon.json names: its images and volumes are not the ones there"
	}
	cs = append(cs, c)

	b, berr := readBridge(ctx, h)
	c = Check{ID: "step5.icc", Name: "docker network inspect bridge: com.docker.network.bridge.enable_icc", Expect: "false"}
	if berr != nil {
		c.Got, c.Reason = "unreadable", firstLine(berr.Error())
	} else {
		c.Got = orDash(b.Options["com.docker.network.bridge.enable_icc"])
		c.OK = c.Got == "false"
		if !c.OK {
			c.Reason = "containers on the default bridge can reach each other: the daemon runs without icc false (restart Docker)"
		}
	}
	cs = append(cs, c)

	c = Check{ID: "step5.ipv6", Name: "docker network inspect bridge: IPv6", Expect: "false"}
	if berr != nil {
		c.Got, c.Reason = "unreadable", firstLine(berr.Error())
	} else {
		c.Got, c.OK = strconv.FormatBool(b.EnableIPv6), !b.EnableIPv6
		if !c.OK {
			c.Reason = "the default bridge has IPv6 on, which this IPv4-only isolation does not cover"
		}
	}
	cs = append(cs, c)

	cs = append(cs, userlandProxyCheck(ctx, h))
	cs = append(cs, noNewPrivsCheck(ctx, h, fileVal("no-new-privileges")))
	return cs
}

// userlandProxyCheck reads the effect of userland-proxy false: Docker then sends local traffic to published
// ports through NAT (hairpin), so its nat OUTPUT jump has no "! -d 127.0.0.0/8", and no docker-proxy runs.
func userlandProxyCheck(ctx context.Context, h *system.Host) Check {
	c := Check{ID: "step5.userland-proxy", Name: "userland-proxy off: nat OUTPUT jump without ! -d 127.0.0.0/8, no docker-proxy", Expect: "hairpin NAT, 0 docker-proxy"}
	proxies := 0
	if out, err := h.Read(ctx, "pgrep", "-x", "docker-proxy"); err == nil {
		proxies = len(strings.Fields(string(out)))
	}
	out, err := h.Read(ctx, "iptables", "-t", "nat", "-S", "OUTPUT")
	if err != nil {
		c.Got, c.Reason = "unreadable", firstLine(err.Error())
		return c
	}
	hairpin, proxy := false, false
	for _, r := range ruleLines(string(out), "-A OUTPUT") {
		if !strings.HasSuffix(r, "-j DOCKER") {
			continue
		}
		if strings.Contains(r, "! -d 127.0.0.0/8") {
			proxy = true
		} else {
			hairpin = true
		}
	}
	switch {
	case proxy:
		c.Got, c.Reason = fmt.Sprintf("OUTPUT excludes 127.0.0.0/8, %d docker-proxy", proxies), "the daemon runs with the userland proxy on (restart Docker after writing daemon.json)"
	case proxies > 0:
		c.Got, c.Reason = fmt.Sprintf("%d docker-proxy process(es)", proxies), "docker-proxy relays published ports: the userland proxy is on"
	case hairpin:
		c.Got, c.OK = "hairpin NAT, 0 docker-proxy", true
	default:
		c.Got, c.OK = "no nat OUTPUT jump to DOCKER, 0 docker-proxy", true
	}
	return c
}

// noNewPrivsCheck starts a throwaway container from a local image (no network) and reads NoNewPrivs from
// its /proc/self/status; with no usable image it can only show that the file sets it and dockerd started after
// the file was written.
func noNewPrivsCheck(ctx context.Context, h *system.Host, fileVal any) Check {
	c := Check{ID: "step5.no-new-privileges", Name: "no-new-privileges: a new container runs with NoNewPrivs 1", Expect: "NoNewPrivs: 1"}
	if out, err := h.Read(ctx, "docker", "image", "ls", "--format", "{{.Repository}}:{{.Tag}}"); err == nil {
		for _, img := range strings.Fields(string(out)) {
			if strings.Contains(img, "<none>") {
				continue
			}
			st, err := h.ReadCmd(ctx, system.Cmd{Argv: []string{"docker", "run", "--rm", "--network", "none", "--entrypoint", "cat", img, "/proc/self/status"}, Timeout: 2 * time.Minute})
			if err != nil {
				continue
			}
			for _, line := range strings.Split(string(st), "\n") {
				if f := strings.Fields(line); len(f) == 2 && f[0] == "NoNewPrivs:" {
					c.Got = "NoNewPrivs: " + f[1] + " (container from " + img + ")"
					c.OK = f[1] == "1"
					if !c.OK {
						c.Reason = "a new container can gain privileges through setuid binaries: the daemon runs without no-new-privileges"
					}
					return c
				}
			}
		}
	}
	if fileVal != true {
		c.Got, c.Reason = fmt.Sprintf("daemon.json no-new-privileges = %v", fileVal), "no-new-privileges is not set in daemon.json"
		return c
	}
	st, serr := h.Stat(daemonJSONPath)
	out, err := h.Read(ctx, "ps", "-o", "etimes=", "-C", "dockerd")
	secs, perr := strconv.Atoi(strings.TrimSpace(firstLine(string(out))))
	if serr != nil || err != nil || perr != nil {
		c.Got, c.Reason = "cannot tell", "no local image to probe with, and the dockerd start time is unknown"
		return c
	}
	started := h.Now().Add(-time.Duration(secs) * time.Second)
	if started.Before(st.ModTime().Add(-2 * time.Second)) {
		c.Got, c.Reason = "daemon.json is newer than dockerd", "dockerd started before daemon.json was written: restart Docker"
		return c
	}
	c.Got, c.OK = "set in daemon.json, which dockerd loaded (started after it was written); no local image to probe a container with", true
	return c
}
