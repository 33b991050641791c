package steps

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"openclaw-harden/system"
)

var docker2010 = EngineVersion{Major: 20, Minor: 10, Raw: "20.10.24+dfsg1"}

func step5Testdata(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "step5", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func decodeObj(t testing.TB, b []byte) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("not a JSON object: %v\n%s", err, b)
	}
	return m
}

func TestParseEngineVersion(t *testing.T) {
	for in, want := range map[string][2]int{
		"20.10.24+dfsg1\n": {20, 10},
		"Docker version 20.10.24+dfsg1, build 5d6db84": {20, 10},
		"29.0.1":   {29, 0},
		"24.0":     {24, 0},
		"28.5.2\n": {28, 5},
	} {
		v, err := ParseEngineVersion(in)
		if err != nil || v.Major != want[0] || v.Minor != want[1] {
			t.Errorf("ParseEngineVersion(%q) = %+v, %v", in, v, err)
		}
	}
	if _, err := ParseEngineVersion("Cannot connect to the Docker daemon"); err == nil {
		t.Error("no error for text without a version")
	}
	if !docker2010.AtLeast(20, 10) || docker2010.AtLeast(23, 0) || !(EngineVersion{Major: 24}).AtLeast(23, 0) {
		t.Error("AtLeast")
	}
}

func TestMergeDaemonJSON(t *testing.T) {
	// No file: the profile's keys, without default-network-opts on 20.10 (and a note saying why).
	out, notes, err := MergeDaemonJSON(nil, docker2010)
	if err != nil {
		t.Fatal(err)
	}
	m := decodeObj(t, out)
	want := map[string]any{"icc": false, "userland-proxy": false, "no-new-privileges": true, "ipv6": false, "log-driver": "json-file",
		"log-opts": map[string]any{"max-size": "10m", "max-file": "3"}}
	if len(m) != len(want) {
		t.Errorf("keys: %v", m)
	}
	for k, v := range want {
		if b1, _ := json.Marshal(m[k]); string(b1) != string(mustJSON(v)) {
			t.Errorf("%s = %s, want %s", k, b1, mustJSON(v))
		}
	}
	if !strings.Contains(strings.Join(notes, "\n"), "default-network-opts") || !strings.Contains(strings.Join(notes, "\n"), "does not apply it") {
		t.Errorf("notes do not say why default-network-opts is left out: %q", notes)
	}
	if err := validateDaemonForVersion(out, nil, docker2010); err != nil {
		t.Errorf("the merged file fails the 20.10 check: %v", err)
	}
	// Docker 24+: default-network-opts is written.
	out24, _, err := MergeDaemonJSON(nil, EngineVersion{Major: 24, Minor: 0})
	if err != nil || !strings.Contains(string(out24), "host_binding_ipv4") {
		t.Errorf("Docker 24: %v\n%s", err, out24)
	}

	// The operator's file: every key kept, in order, their log-opts kept with max-file added, icc overridden.
	op := step5Testdata(t, "daemon-operator.json")
	out, notes, err = MergeDaemonJSON(op, docker2010)
	if err != nil {
		t.Fatal(err)
	}
	m = decodeObj(t, out)
	if m["data-root"] != "/srv/docker" || m["icc"] != false || m["dns"] == nil {
		t.Errorf("operator keys: %v", m)
	}
	lo := m["log-opts"].(map[string]any)
	if lo["max-size"] != "50m" || lo["tag"] != "{{.Name}}" || lo["max-file"] != "3" {
		t.Errorf("log-opts: %v", lo)
	}
	if !strings.HasPrefix(string(out), "{\n  \"data-root\": \"/srv/docker\",\n  \"log-opts\": {") {
		t.Errorf("the operator's key order is not kept:\n%s", out)
	}
	joined := strings.Join(notes, "\n")
	for _, w := range []string{"icc was true", "data-root \"/srv/docker\" is kept"} {
		if !strings.Contains(joined, w) {
			t.Errorf("notes lack %q: %q", w, notes)
		}
	}
	// Idempotent: merging the result again changes nothing, byte for byte.
	again, _, err := MergeDaemonJSON(out, docker2010)
	if err != nil || string(again) != string(out) {
		t.Errorf("second merge changed the file (%v):\n%s\n---\n%s", err, out, again)
	}
	// A file that already means the same but is formatted differently is left alone.
	compact := []byte(`{"icc":false,"userland-proxy":false,"no-new-privileges":true,"ipv6":false,"log-driver":"json-file","log-opts":{"max-size":"10m","max-file":"3"}}`)
	if same, _, _ := MergeDaemonJSON(compact, docker2010); string(same) != string(compact) {
		t.Errorf("an equivalent compact file was rewritten:\n%s", same)
	}
	// default-network-opts already there on 20.10: kept, with a note that it does nothing.
	withNet := []byte(`{"default-network-opts": {"bridge": {"com.docker.network.driver.mtu": "1400"}}}`)
	out, notes, _ = MergeDaemonJSON(withNet, docker2010)
	if !strings.Contains(string(out), "com.docker.network.driver.mtu") || strings.Contains(string(out), "host_binding") ||
		!strings.Contains(strings.Join(notes, "\n"), "protects nothing") {
		t.Errorf("existing default-network-opts on 20.10:\n%s\n%q", out, notes)
	}
	out, _, _ = MergeDaemonJSON(withNet, EngineVersion{Major: 27})
	if !strings.Contains(string(out), "com.docker.network.driver.mtu") || !strings.Contains(string(out), "host_binding_ipv4") {
		t.Errorf("existing default-network-opts on 27: not merged:\n%s", out)
	}
	// Another log driver is overridden (noted); invalid JSON is an error with its line.
	_, notes, _ = MergeDaemonJSON([]byte(`{"log-driver": "journald"}`), docker2010)
	if !strings.Contains(strings.Join(notes, "\n"), `log-driver was "journald"`) {
		t.Errorf("log-driver override not noted: %q", notes)
	}
	_, _, err = MergeDaemonJSON(step5Testdata(t, "daemon-bad.json"), docker2010)
	if err == nil || !strings.Contains(err.Error(), "line 9") {
		t.Errorf("invalid JSON: %v, want an error at line 9", err)
	}
	for _, bad := range []string{`[1]`, `"x"`, `{"log-opts": [1]}`, `{} {}`, `{"log-driver": "syslog", "log-opts": {"syslog-address": "udp://203.0.113.53:514"}}`} {
		if _, _, err := MergeDaemonJSON([]byte(bad), docker2010); err == nil {
			t.Errorf("%s: no error", bad)
		}
	}
}

func TestCheckDaemonJSON(t *testing.T) {
	fs := CheckDaemonJSON(step5Testdata(t, "daemon-bad.json"))
	if len(fs) != 1 || fs[0].Line != 9 || !strings.Contains(fs[0].Message, "not valid JSON") {
		t.Errorf("trailing comma: %v", fs)
	}
	fs = CheckDaemonJSON(step5Testdata(t, "daemon-unknown.json"))
	got := strings.Join(FormatFindings("daemon.json", fs), "\n")
	for _, w := range []string{`daemon.json:6: ipv6 must be true or false`, `daemon.json:7: unknown key "bogus-key"`} {
		if !strings.Contains(got, w) {
			t.Errorf("findings lack %q:\n%s", w, got)
		}
	}
	fs = CheckDaemonJSON([]byte("{\n  \"icc\": true,\n  \"userland-proxy\": true,\n  \"no-new-privileges\": true,\n  \"log-opts\": {\"max-file\": 3}\n}\n"))
	got = strings.Join(FormatFindings("d.json", fs), "\n")
	for _, w := range []string{"d.json:2: icc is true", "d.json:3: userland-proxy is true", `d.json:5: log-opts value of "max-file" must be a string`, "d.json:5: log-opts has no max-size"} {
		if !strings.Contains(got, w) {
			t.Errorf("findings lack %q:\n%s", w, got)
		}
	}
	fs = CheckDaemonJSON([]byte("{}\n"))
	got = strings.Join(FormatFindings("e.json", fs), "\n")
	for _, w := range []string{"icc is not set", "userland-proxy is not set", "no-new-privileges is not set", "log-opts has no max-size", "log-opts has no max-file"} {
		if !strings.Contains(got, w) {
			t.Errorf("empty object: findings lack %q:\n%s", w, got)
		}
	}
	profile, _, _ := MergeDaemonJSON(nil, NewestEngine)
	if fs := CheckDaemonJSON(profile); len(fs) != 0 {
		t.Errorf("the profile's own file has findings: %v", fs)
	}
	if fs := CheckDaemonJSON([]byte(`{"icc": false, "icc": true}`)); len(fs) == 0 || !strings.Contains(fs[0].Message, "set twice") {
		t.Errorf("duplicate key: %v", fs)
	}
}

// docker5 is a stand-in Docker 20.10 for Step 5's tests: `systemctl restart docker` loads daemon.json from the
// Host's root and fails, as dockerd does, on a key 20.10 does not know; docker info, the bridge network, nat
// OUTPUT and a probe container show the loaded configuration's effects.
type docker5 struct {
	mu      sync.Mutex
	root    string
	running bool
	cfg     map[string]any
	calls   []string
	images  string
	reject  func(data []byte) bool // nil: refuse what 20.10 refuses
}

func (d *docker5) Run(_ context.Context, c system.Cmd) ([]byte, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	key := strings.Join(c.Argv, " ")
	d.calls = append(d.calls, key)
	fail := func(code int, msg string) ([]byte, error) {
		return nil, &system.CmdError{Argv: c.Argv, ExitCode: code, Output: msg, Err: os.ErrInvalid}
	}
	down := func() ([]byte, error) {
		return fail(1, "Cannot connect to the Docker daemon at unix:///var/run/docker.sock.")
	}
	b := func(k string, def bool) bool {
		if v, ok := d.cfg[k].(bool); ok {
			return v
		}
		return def
	}
	switch key {
	case "dockerd --version":
		return []byte("Docker version 20.10.24+dfsg1, build 5d6db84\n"), nil
	case "docker version --format {{.Server.Version}}", "docker info --format {{.ServerVersion}}":
		if !d.running {
			return down()
		}
		return []byte("20.10.24+dfsg1\n"), nil
	case "systemctl restart docker":
		data, err := os.ReadFile(filepath.Join(d.root, daemonJSONPath))
		if err != nil && !os.IsNotExist(err) {
			return fail(1, err.Error())
		}
		if (d.reject == nil && validateDaemonForVersion(data, nil, docker2010) != nil) || (d.reject != nil && d.reject(data)) {
			d.running = false
			return fail(1, "Job for docker.service failed because the control process exited with error code.")
		}
		d.cfg = map[string]any{}
		_ = json.Unmarshal(data, &d.cfg)
		d.running = true
		return nil, nil
	case "systemctl reset-failed docker":
		return nil, nil
	case "journalctl -u docker --no-pager -n 15 -o cat":
		return []byte("unable to configure the Docker daemon with file /etc/docker/daemon.json: the following directives don't match any configuration option: bogus-key\n"), nil
	case "docker info --format {{json .}}":
		if !d.running {
			return down()
		}
		root, _ := d.cfg["data-root"].(string)
		if root == "" {
			root = "/var/lib/docker"
		}
		drv, _ := d.cfg["log-driver"].(string)
		if drv == "" {
			drv = "json-file"
		}
		return json.Marshal(map[string]any{"ServerVersion": "20.10.24+dfsg1", "LoggingDriver": drv, "DockerRootDir": root,
			"SecurityOptions": []string{"name=apparmor", "name=seccomp,profile=default"}})
	case "docker network inspect bridge --format {{json .}}":
		if !d.running {
			return down()
		}
		return json.Marshal(map[string]any{"Name": "bridge", "EnableIPv6": b("ipv6", false),
			"Options": map[string]string{"com.docker.network.bridge.enable_icc": map[bool]string{true: "true", false: "false"}[b("icc", true)],
				"com.docker.network.bridge.name": "docker0"}})
	case "pgrep -x docker-proxy":
		if b("userland-proxy", true) {
			return []byte("4242\n"), nil
		}
		return fail(1, "")
	case "iptables -t nat -S OUTPUT":
		if b("userland-proxy", true) {
			return []byte("-P OUTPUT ACCEPT\n-A OUTPUT ! -d 127.0.0.0/8 -m addrtype --dst-type LOCAL -j DOCKER\n"), nil
		}
		return []byte("-P OUTPUT ACCEPT\n-A OUTPUT -m addrtype --dst-type LOCAL -j DOCKER\n"), nil
	case "docker image ls --format {{.Repository}}:{{.Tag}}":
		if !d.running {
			return down()
		}
		return []byte(d.images), nil
	case "docker run --rm --network none --entrypoint cat lab/busybox:latest /proc/self/status":
		nnp := "0"
		if b("no-new-privileges", false) {
			nnp = "1"
		}
		return []byte("Name:\tcat\nNoNewPrivs:\t" + nnp + "\nSeccomp:\t2\n"), nil
	case "ps -o etimes= -C dockerd":
		return []byte("   0\n"), nil
	}
	return fail(127, "docker5: unknown command "+key)
}

func newStep5Host(t *testing.T, daemonJSON []byte) (*system.Host, *docker5) {
	t.Helper()
	root := t.TempDir()
	if daemonJSON != nil {
		os.MkdirAll(filepath.Join(root, "/etc/docker"), 0o755)
		if err := os.WriteFile(filepath.Join(root, daemonJSONPath), daemonJSON, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	d := &docker5{root: root, running: true, cfg: map[string]any{}, images: "lab/busybox:latest\n"}
	_ = json.Unmarshal(daemonJSON, &d.cfg)
	h := &system.Host{Runner: d, Root: root, StateDir: filepath.Join(root, "/var/lib/openclaw-harden")}
	oldWait, oldPoll := dockerWaitTimeout, dockerPollInterval
	dockerWaitTimeout, dockerPollInterval = 200*time.Millisecond, 10*time.Millisecond
	t.Cleanup(func() { dockerWaitTimeout, dockerPollInterval = oldWait, oldPoll })
	return h, d
}

func TestStep5PlanApplyVerify(t *testing.T) {
	ctx := context.Background()
	op := step5Testdata(t, "daemon-operator.json")
	h, d := newStep5Host(t, op)
	s := DaemonStep{}
	a := step4Answers()
	if Passed(s.Verify(ctx, h, a)) {
		t.Fatal("verify passed before apply")
	}
	p, err := s.Plan(ctx, h, a)
	if err != nil || p.Blocked != "" {
		t.Fatalf("plan: %v %q", err, p.Blocked)
	}
	if len(p.Pending()) != 1 || p.Changes[0].Target != daemonJSONPath || p.Changes[0].Warning == "" {
		t.Fatalf("changes: %+v", p.Changes)
	}
	notes := strings.Join(p.Notes, "\n")
	for _, w := range []string{"Docker 20.10.24+dfsg1", "no dockerd --validate", "default-network-opts", "data-root \"/srv/docker\" is kept", "enable_icc"} {
		if !strings.Contains(notes, w) {
			t.Errorf("notes lack %q:\n%s", w, notes)
		}
	}
	if err := s.Apply(ctx, h, p); err != nil {
		t.Fatal(err)
	}
	written, _ := os.ReadFile(filepath.Join(h.Root, daemonJSONPath))
	m := decodeObj(t, written)
	if m["data-root"] != "/srv/docker" || m["dns"] == nil || m["no-new-privileges"] != true {
		t.Errorf("written file: %s", written)
	}
	if indexOf(d.calls, "systemctl restart docker") < 0 {
		t.Errorf("docker was not restarted: %v", d.calls)
	}
	cs := s.Verify(ctx, h, a)
	if !Passed(cs) {
		t.Fatalf("verify after apply: %+v", cs)
	}
	for _, c := range cs {
		if c.ID == "step5.no-new-privileges" && !strings.Contains(c.Got, "container from lab/busybox") {
			t.Errorf("no-new-privileges was not probed with a container: %+v", c)
		}
		if c.ID == "step5.data-root" && c.Got != "/srv/docker" {
			t.Errorf("data-root: %+v", c)
		}
	}
	p2, err := s.Plan(ctx, h, a)
	if err != nil || !p2.Empty() {
		t.Fatalf("second plan: %v %+v", err, p2.Pending())
	}
	// The file is right but dockerd runs an older configuration: the plan restarts it.
	d.cfg["icc"] = true
	p3, _ := s.Plan(ctx, h, a)
	if len(p3.Pending()) != 1 || p3.Pending()[0].Kind != "setting" {
		t.Fatalf("stale daemon: %+v", p3.Pending())
	}
	if err := s.Apply(ctx, h, p3); err != nil || !Passed(s.Verify(ctx, h, a)) {
		t.Fatalf("restart of a stale daemon: %v", err)
	}
	// Without an image, no-new-privileges is shown from the file and the daemon's start time.
	d.images = ""
	for _, c := range s.Verify(ctx, h, a) {
		if c.ID == "step5.no-new-privileges" && (!c.OK || !strings.Contains(c.Got, "no local image")) {
			t.Errorf("fallback no-new-privileges check: %+v", c)
		}
	}
}

func TestStep5RestoresWhenDockerDoesNotComeBack(t *testing.T) {
	ctx := context.Background()
	// The operator had a key this tool does not know; 20.10 (in this stand-in) refuses it only once the
	// file is rewritten, which is the case the automatic restore is for.
	orig := []byte("{\n  \"bogus-key\": 1\n}\n")
	h, d := newStep5Host(t, orig)
	d.reject = func(data []byte) bool { return string(data) != string(orig) }
	s := DaemonStep{}
	p, err := s.Plan(ctx, h, step4Answers())
	if err != nil || p.Blocked != "" {
		t.Fatalf("plan: %v %q", err, p.Blocked)
	}
	if !strings.Contains(strings.Join(p.Notes, "\n"), `unknown key "bogus-key"`) {
		t.Errorf("the plan does not warn about the unknown key: %q", p.Notes)
	}
	err = s.Apply(ctx, h, p)
	if err == nil {
		t.Fatal("apply succeeded although Docker did not come back")
	}
	first := firstLine(err.Error())
	if !strings.Contains(first, "previous file was restored and Docker runs again") || !strings.Contains(err.Error(), "journalctl -u docker") {
		t.Errorf("error: %v", err)
	}
	if got, _ := os.ReadFile(filepath.Join(h.Root, daemonJSONPath)); string(got) != string(orig) {
		t.Errorf("daemon.json after the restore:\n%s", got)
	}
	if indexOf(d.calls, "systemctl reset-failed docker") < 0 || strings.Count(strings.Join(d.calls, "\n"), "systemctl restart docker") != 2 {
		t.Errorf("calls: %v", d.calls)
	}
	if !d.running {
		t.Error("Docker is not running after the restore")
	}

	// No file before: the restore removes the new one.
	h, d = newStep5Host(t, nil)
	d.running = false // dockerd answers only --version; restart fails whatever the file says
	p, err = s.Plan(ctx, h, step4Answers())
	if err != nil || p.Blocked != "" {
		t.Fatalf("plan: %v %q", err, p.Blocked)
	}
	sp := p.Data.(step5Plan)
	sp.After = "{\n  \"bogus-key\": true\n}\n"
	p.Data = sp
	if err := s.Apply(ctx, h, p); err == nil || !strings.Contains(err.Error(), "would refuse it") {
		t.Errorf("a file 20.10 would refuse must not be written: %v", err)
	}
	if _, err := os.Stat(filepath.Join(h.Root, daemonJSONPath)); !os.IsNotExist(err) {
		t.Errorf("daemon.json exists after a refused write: %v", err)
	}
}

func TestStep5BlockedAndDryRun(t *testing.T) {
	ctx := context.Background()
	h := &system.Host{Runner: system.NewFakeRunner(nil), Root: t.TempDir()}
	p, err := DaemonStep{}.Plan(ctx, h, step4Answers())
	if err != nil || !strings.Contains(p.Blocked, "Docker is not installed") {
		t.Errorf("no docker: %v %q", err, p.Blocked)
	}
	h, _ = newStep5Host(t, step5Testdata(t, "daemon-bad.json"))
	p, _ = DaemonStep{}.Plan(ctx, h, step4Answers())
	if !strings.Contains(p.Blocked, "line 9") {
		t.Errorf("invalid JSON: %q", p.Blocked)
	}
	h, d := newStep5Host(t, nil)
	h.DryRun = true
	p, _ = DaemonStep{}.Plan(ctx, h, step4Answers())
	if err := (DaemonStep{}).Apply(ctx, h, p); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(h.Root, daemonJSONPath)); !os.IsNotExist(err) {
		t.Error("dry run wrote daemon.json")
	}
	if indexOf(d.calls, "systemctl restart docker") >= 0 {
		t.Error("dry run restarted docker")
	}
	w := strings.Join(h.Would(), "\n")
	if !strings.Contains(w, "would write: "+daemonJSONPath) || !strings.Contains(w, "would run: systemctl restart docker") {
		t.Errorf("would-records:\n%s", w)
	}
}

func FuzzMergeDaemonJSON(f *testing.F) {
	f.Add([]byte(`{"data-root": "/srv/docker", "log-opts": {"max-size": "1m"}}`))
	f.Add([]byte(`{"icc": true, "x": [1, {"y": null}], "log-driver": "journald"}`))
	f.Add([]byte(`{"default-network-opts": {"bridge": {}}}`))
	f.Add([]byte(`{"log-opts": 5}`))
	f.Add([]byte(``))
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, v := range []EngineVersion{docker2010, NewestEngine} {
			out, _, err := MergeDaemonJSON(data, v)
			_ = CheckDaemonJSON(data)
			if err != nil {
				continue
			}
			before, _ := parseDaemonMembers(data)
			after, err := parseDaemonMembers(out)
			if err != nil {
				t.Fatalf("merge output does not parse: %v\n%s", err, out)
			}
			for _, m := range before {
				if findMember(after, m.Key) < 0 {
					t.Fatalf("merge dropped key %q from %q", m.Key, data)
				}
			}
			again, _, err := MergeDaemonJSON(out, v)
			if err != nil || string(again) != string(out) {
				t.Fatalf("merge is not idempotent on %q: %v\n%s\n%s", data, err, out, again)
			}
		}
	})
}

func TestMergeDaemonJSONDuplicateKey(t *testing.T) {
	out, _, err := MergeDaemonJSON([]byte(`{"icc": false, "dns": [], "icc": true}`), docker2010)
	if err != nil {
		t.Fatal(err)
	}
	ms, _ := parseDaemonMembers(out)
	n := 0
	for _, m := range ms {
		if m.Key == "icc" {
			n++
			if string(m.Value) != "false" {
				t.Errorf("icc = %s", m.Value)
			}
		}
	}
	if n != 1 || findMember(ms, "dns") < 0 {
		t.Errorf("duplicates not collapsed or a key lost:\n%s", out)
	}
}

func TestDaemonKeysByVersion(t *testing.T) {
	ms, err := parseDaemonMembers([]byte("{\n  \"firewall-backend\": \"iptables\",\n  \"made-up\": 1\n}\n"))
	if err != nil {
		t.Fatal(err)
	}
	got := strings.Join(FormatFindings("d.json", checkDaemonMembers(ms, docker2010, true)), "\n")
	for _, w := range []string{`d.json:2: unknown key "firewall-backend" for Docker 20.10.24+dfsg1 (it came in 28.0)`, `d.json:3: unknown key "made-up" (not a daemon.json key of Docker up to 29.0)`} {
		if !strings.Contains(got, w) {
			t.Errorf("findings lack %q:\n%s", w, got)
		}
	}
	if fs := checkDaemonMembers(ms[:1], NewestEngine, true); len(fs) != 0 {
		t.Errorf("firewall-backend on Docker 29: %v", fs)
	}
	// A key the operator already had passes the pre-write check; a new unknown key does not.
	if err := validateDaemonForVersion([]byte(`{"made-up": 1, "icc": false}`), []byte(`{"made-up": 1}`), docker2010); err != nil {
		t.Errorf("operator's own key refused: %v", err)
	}
	if err := validateDaemonForVersion([]byte(`{"made-up": 1}`), nil, docker2010); err == nil {
		t.Error("a new unknown key passed the pre-write check")
	}
}

func TestStep5KeepsDirMode(t *testing.T) {
	ctx := context.Background()
	h, _ := newStep5Host(t, []byte("{}\n"))
	dir := filepath.Join(h.Root, "/etc/docker")
	if err := os.Chmod(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	p, err := DaemonStep{}.Plan(ctx, h, step4Answers())
	if err != nil {
		t.Fatal(err)
	}
	if err := (DaemonStep{}).Apply(ctx, h, p); err != nil {
		t.Fatal(err)
	}
	if st, _ := os.Stat(dir); st.Mode().Perm() != 0o700 {
		t.Errorf("/etc/docker mode changed to %o", st.Mode().Perm())
	}
	// No /etc/docker at all: it is created.
	h, _ = newStep5Host(t, nil)
	p, _ = DaemonStep{}.Plan(ctx, h, step4Answers())
	if err := (DaemonStep{}).Apply(ctx, h, p); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(h.Root, daemonJSONPath)); err != nil {
		t.Error(err)
	}
}

func TestStep5AfterRollback(t *testing.T) {
	ctx := context.Background()
	op := step5Testdata(t, "daemon-operator.json")
	h, d := newStep5Host(t, op)
	h.SetStep(5)
	p, err := DaemonStep{}.Plan(ctx, h, step4Answers())
	if err != nil {
		t.Fatal(err)
	}
	if err := (DaemonStep{}).Apply(ctx, h, p); err != nil {
		t.Fatal(err)
	}
	if _, err := h.Rollback(5); err != nil {
		t.Fatal(err)
	}
	if err := (DaemonStep{}).Reload(ctx, h); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(filepath.Join(h.Root, daemonJSONPath)); string(got) != string(op) {
		t.Errorf("daemon.json after the rollback:\n%s", got)
	}
	if d.cfg["icc"] != true || !d.running {
		t.Errorf("Docker did not restart with the restored file: %v running=%v", d.cfg, d.running)
	}
}
