package steps

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"openclaw-harden/system"
)

var auditNow = time.Date(2026, 11, 25, 14, 21, 42, 0, time.UTC)

// vmAddr is `ip -j addr` of the lab VM: eth0 on the LAN by DHCP, docker0, a compose bridge.
const vmAddr = `[{"ifindex":1,"ifname":"lo","flags":["LOOPBACK","UP","LOWER_UP"],"addr_info":[{"family":"inet","local":"127.0.0.1","prefixlen":8,"scope":"host","label":"lo"},{"family":"inet6","local":"::1","prefixlen":128,"scope":"host"}]},` +
	`{"ifindex":2,"ifname":"eth0","flags":["BROADCAST","MULTICAST","UP","LOWER_UP"],"addr_info":[{"family":"inet","local":"192.168.1.10","prefixlen":24,"broadcast":"192.168.1.255","scope":"global","label":"eth0"},{"family":"inet6","local":"fe80::5054:ff:fe12:3456","prefixlen":64,"scope":"link"}]},` +
	`{"ifindex":3,"ifname":"docker0","flags":["NO-CARRIER","BROADCAST","MULTICAST","UP"],"addr_info":[{"family":"inet","local":"172.17.0.1","prefixlen":16,"broadcast":"172.17.255.255","scope":"global","label":"docker0"}]}]`

// fakeVM is a Debian 12 VM before hardening: Docker 20.10 running, UFW active, sshd readable (root).
func fakeVM(t *testing.T) (*system.Host, *system.FakeRunner, string) {
	t.Helper()
	r := system.NewFakeRunner(map[string]string{
		"uname -srvm":                              "Linux 6.1.0-21-amd64 #1 SMP PREEMPT_DYNAMIC Debian 6.1.90-1 (2024-05-03) x86_64\n",
		"hostname":                                 "openclaw-vm\n",
		"ip -j addr":                               vmAddr,
		"ip -j route":                              `[{"dst":"default","gateway":"192.168.1.1","dev":"eth0","flags":[]},{"dst":"192.168.1.0/24","dev":"eth0","protocol":"kernel","scope":"link","prefsrc":"192.168.1.10","flags":[]}]`,
		"ip -j -6 route":                           `[{"dst":"fe80::/64","dev":"eth0","protocol":"kernel","metric":256,"flags":[],"pref":"medium"}]`,
		"ss -H -tulpn":                             sample(t, "ss-debian.txt"),
		"ufw status verbose":                       "Status: inactive\n",
		"iptables --version":                       sample(t, "iptables-version.txt"),
		"iptables -t filter -S":                    sample(t, "iptables-S-filter-docker.txt"),
		"iptables -t nat -S":                       sample(t, "iptables-S-nat-docker.txt"),
		"docker version --format {{json .}}":       sample(t, "docker-version-20.10.json"),
		"docker info --format {{json .}}":          sample(t, "docker-info-20.10.json"),
		"docker ps --no-trunc --format {{json .}}": sample(t, "docker-ps.jsonl"),
		"systemctl list-units --type=service --state=running --no-legend --plain": sample(t, "systemctl-running.txt"),
		"sshd -T": sample(t, "sshd-T.txt"),
	})
	r.Set("openclaw --version", system.FakeResponse{Exit: 127, Stderr: "sh: openclaw: not found"})
	root := t.TempDir()
	writeRoot(t, root, "/etc/os-release", sample(t, "os-release.txt"))
	writeRoot(t, root, "/proc/sys/net/ipv6/conf/all/disable_ipv6", "0\n")
	writeRoot(t, root, "/proc/sys/net/ipv6/conf/default/disable_ipv6", "0\n")
	state := filepath.Join(t.TempDir(), "state")
	h := system.NewFakeHost(root, state, r, false)
	h.Clock = func() time.Time { return auditNow }
	return h, r, root
}

func writeRoot(t *testing.T, root, path, content string) {
	t.Helper()
	p := filepath.Join(root, path)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func itemMap(s Snapshot) map[string]string {
	m := map[string]string{}
	for _, it := range s.Items {
		m[it.Section+" | "+it.Key] = it.Value
	}
	return m
}

func TestTakeSnapshotVM(t *testing.T) {
	h, r, _ := fakeVM(t)
	s, err := TakeSnapshot(context.Background(), h)
	if err != nil {
		t.Fatal(err)
	}
	if s.Version != 1 || !s.Taken.Equal(auditNow) {
		t.Errorf("version %d taken %v", s.Version, s.Taken)
	}
	if len(r.Unknown) != 0 {
		t.Errorf("unexpected commands: %q", r.Unknown)
	}
	if len(s.Notes) != 0 {
		t.Errorf("notes: %q", s.Notes)
	}
	m := itemMap(s)
	for k, v := range map[string]string{
		"system | kernel":                             "Linux 6.1.0-21-amd64 #1 SMP PREEMPT_DYNAMIC Debian 6.1.90-1 (2024-05-03) x86_64",
		"system | hostname":                           "openclaw-vm",
		"os | id":                                     "debian",
		"os | version_id":                             "12",
		"ipv6 | all disable_ipv6":                     "0",
		"ipv6 | default disable_ipv6":                 "0",
		"ipv6 | global addresses":                     "none",
		"addresses | eth0 inet 192.168.1.10/24":       "global",
		"addresses | docker0 inet 172.17.0.1/16":      "global",
		"routes | default dev eth0":                   "via 192.168.1.1",
		"routes ipv6 | fe80::/64 dev eth0 metric 256": "proto kernel",
		"listening | tcp 0.0.0.0:22":                  "sshd",
		"ufw | installed":                             "yes",
		"ufw | status":                                "inactive",
		"iptables | backend":                          "nf_tables",
		"iptables | version":                          "1.8.9",
		"iptables filter FORWARD | policy":            "DROP",
		"iptables filter DOCKER-USER | -A DOCKER-USER -d 10.0.0.0/8 -j DROP": "#4",
		"docker | installed":                      "yes",
		"docker | daemon":                         "running",
		"docker | version":                        "20.10.24+dfsg1",
		"docker | client version":                 "20.10.24+dfsg1",
		"docker | cgroup driver":                  "systemd (cgroup v2)",
		"docker | firewall backend":               "iptables (not reported by Docker before 28)",
		"docker containers | openclaw-openclaw-1": "image ghcr.io/openclaw/openclaw:latest; ports 127.0.0.1:18789->18789/tcp; networks openclaw_internal",
		"daemon.json | file":                      "absent",
		"services | ssh.service":                  "OpenBSD Secure Shell server",
		"sshd | installed":                        "yes",
		"sshd | passwordauthentication":           "yes",
		"sshd | permitrootlogin":                  "without-password",
		"openclaw | installed":                    "no",
		"openclaw | cli":                          "not installed",
	} {
		if m[k] != v {
			t.Errorf("%s = %q, want %q", k, m[k], v)
		}
	}
	// Sorted, and sorting again changes nothing.
	again := append([]Item(nil), s.Items...)
	SortItems(again)
	if !reflect.DeepEqual(again, s.Items) || s.Items[0].Section != "system" {
		t.Errorf("items not sorted; first %+v", s.Items[0])
	}
	// The same machine twice: no differences.
	s2, _ := TakeSnapshot(context.Background(), h)
	if d := DiffSnapshots(s, s2); len(d) != 0 {
		t.Errorf("same machine differs: %s", RenderDiff(d))
	}
}

// The lab reads snapshots as JSON with these names; keep them.
func TestSnapshotJSONShape(t *testing.T) {
	const lab = `{"version":1,"taken":"2026-11-25T14:21:42Z","items":[{"section":"docker","key":"version","value":"20.10.24+dfsg1"},` +
		`{"section":"sshd","key":"passwordauthentication","value":"yes"},{"section":"addresses","key":"eth0 inet 192.168.1.10/24","value":"global"}]}`
	var s Snapshot
	if err := json.Unmarshal([]byte(lab), &s); err != nil {
		t.Fatal(err)
	}
	h, _, _ := fakeVM(t)
	taken, _ := TakeSnapshot(context.Background(), h)
	m := itemMap(taken)
	for _, it := range s.Items {
		if m[it.Section+" | "+it.Key] != it.Value {
			t.Errorf("lab expects %s | %s = %q, snapshot has %q", it.Section, it.Key, it.Value, m[it.Section+" | "+it.Key])
		}
	}
	out, _ := json.Marshal(snap(Item{"a", "b", "c"}))
	if string(out) != `{"version":1,"taken":"2026-11-25T14:00:00Z","items":[{"section":"a","key":"b","value":"c"}]}` {
		t.Errorf("JSON: %s", out)
	}
}

func TestTakeSnapshotFreshVM(t *testing.T) {
	// No Docker, UFW or OpenClaw; not root: sshd -T and ufw fail; no systemd; a secret in a value.
	r := system.NewFakeRunner(map[string]string{
		"uname -srvm":        "Linux 6.1.0-21-amd64 #1 SMP PREEMPT_DYNAMIC Debian 6.1.90-1 (2024-05-03) x86_64\n",
		"hostname":           "tok-s3cr3t-value\n",
		"ip -j addr":         vmAddr,
		"ip -j route":        "[]",
		"ip -j -6 route":     "[]",
		"ss -H -tulpn":       "tcp LISTEN 0 128 0.0.0.0:22 0.0.0.0:*\n",
		"iptables --version": "iptables v1.8.9 (nf_tables)\n",
	})
	r.Set("iptables -t filter -S", system.FakeResponse{Exit: 4, Stderr: "iptables v1.8.9 (nf_tables): Could not fetch rule set generation id: Permission denied (you must be root)"})
	r.Set("iptables -t nat -S", system.FakeResponse{Exit: 4, Stderr: "Permission denied (you must be root)"})
	r.Set("sshd -T", system.FakeResponse{Exit: 255, Stderr: "/etc/ssh/sshd_config: Permission denied"})
	r.Set("systemctl list-units --type=service --state=running --no-legend --plain",
		system.FakeResponse{Exit: 1, Stderr: "System has not been booted with systemd as init system (PID 1). Can't operate.\nFailed to connect to bus: Host is down"})
	h := system.NewFakeHost(t.TempDir(), t.TempDir(), r, true)
	h.AddSecret("s3cr3t-value")
	writeRoot(t, h.Root, "/etc/docker/daemon.json", `{"icc": false, "log-opts": {`) // broken
	s, err := TakeSnapshot(context.Background(), h)
	if err != nil {
		t.Fatal(err)
	}
	m := itemMap(s)
	for k, v := range map[string]string{
		"docker | installed":          "no",
		"ufw | installed":             "no",
		"openclaw | cli":              "not installed",
		"sshd | installed":            "yes",
		"iptables | backend":          "nf_tables",
		"listening | tcp 0.0.0.0:22":  "unknown",
		"system | hostname":           "tok-<redacted>",
		"daemon.json | file":          "invalid JSON",
		"ipv6 | all disable_ipv6":     "absent (no IPv6 in this kernel)",
		"ipv6 | default disable_ipv6": "absent (no IPv6 in this kernel)",
	} {
		if m[k] != v {
			t.Errorf("%s = %q, want %q", k, m[k], v)
		}
	}
	if _, ok := m["sshd | passwordauthentication"]; ok {
		t.Error("sshd settings recorded though sshd -T failed")
	}
	notes := strings.Join(s.Notes, "\n")
	for _, want := range []string{
		"iptables -t filter -S failed (exit status 4): iptables v1.8.9 (nf_tables): Could not fetch rule set generation id: Permission denied (you must be root)",
		"sshd -T failed (exit status 255): /etc/ssh/sshd_config: Permission denied",
		"sshd -T needs root",
		"systemctl list-units --type=service --state=running --no-legend --plain failed (exit status 1): System has not been booted",
		"/etc/docker/daemon.json: not valid JSON",
		"no /etc/os-release",
	} {
		if !strings.Contains(notes, want) {
			t.Errorf("notes lack %q:\n%s", want, notes)
		}
	}
	if strings.Contains(notes, "docker version") {
		t.Errorf("a missing docker is an item, not a failure note:\n%s", notes)
	}
}

func TestTakeSnapshotDockerStopped(t *testing.T) {
	h, r, _ := fakeVM(t)
	r.Set("docker version --format {{json .}}", system.FakeResponse{Stdout: sample(t, "docker-version-stopped.txt"), Exit: 1,
		Stderr: "Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker daemon running?"})
	s, err := TakeSnapshot(context.Background(), h)
	if err != nil {
		t.Fatal(err)
	}
	m := itemMap(s)
	if m["docker | daemon"] != "not running" || m["docker | client version"] != "28.2.2" || m["docker | installed"] != "yes" {
		t.Errorf("docker items: %v", m)
	}
	if _, ok := m["docker | version"]; ok {
		t.Error("a server version without a server")
	}
	for _, c := range r.CallsSnapshot() {
		if strings.HasPrefix(c, "docker info") || strings.HasPrefix(c, "docker ps") {
			t.Errorf("asked a stopped daemon: %s", c)
		}
	}
	if len(s.Notes) != 1 || !strings.Contains(s.Notes[0], "daemon is not running") {
		t.Errorf("notes: %q", s.Notes)
	}
}

func TestTakeSnapshotCancelled(t *testing.T) {
	h, _, _ := fakeVM(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := TakeSnapshot(ctx, h); err == nil {
		t.Error("no error for a cancelled context")
	}
}

func TestAuditStepPlanApplyVerify(t *testing.T) {
	h, _, _ := fakeVM(t)
	ctx := context.Background()
	st := AuditStep{}

	cs := st.Verify(ctx, h, Answers{})
	if Passed(cs) || len(cs) == 0 || cs[0].Got != "none in "+filepath.Join(h.StateDir, "audits") {
		t.Fatalf("Verify without a baseline: %+v", cs)
	}

	p, err := st.Plan(ctx, h, Answers{})
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Changes) != 1 || p.Empty() {
		t.Fatalf("plan: %+v", p)
	}
	c := p.Changes[0]
	wantTarget := filepath.Join(h.StateDir, "audits", "20261125T142142Z-baseline.json")
	if c.Target != wantTarget || c.Kind != "state" || c.Before != "" || c.Action() != "+" {
		t.Errorf("change %q %q before %q", c.Target, c.Kind, c.Before)
	}
	if !strings.Contains(c.After, "sshd\n") || !strings.Contains(c.After, "  passwordauthentication: yes\n") {
		t.Errorf("After is not the rendered snapshot:\n%s", c.After)
	}
	if p.Summary() != "Apply 1 change?" {
		t.Errorf("summary %q", p.Summary())
	}
	if _, err := os.Stat(filepath.Join(h.StateDir, "audits")); err == nil {
		t.Error("Plan wrote something")
	}

	if name, ok := PlannedBaseline(p); !ok || filepath.Join(h.StateDir, name) != wantTarget {
		t.Errorf("PlannedBaseline = %q %v", name, ok)
	}
	if err := st.Apply(ctx, h, p); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(wantTarget)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("baseline file: %v %v", fi, err)
	}
	cs = st.Verify(ctx, h, Answers{})
	if !Passed(cs) || len(cs) != 3 {
		t.Errorf("Verify after Apply: %+v", cs)
	}
	if want := fmt.Sprintf("%d items", len(p.Data.(auditPlan).Snapshot.Items)); cs[2].Got != want {
		t.Errorf("items check: %+v", cs[2])
	}

	p2, err := st.Plan(ctx, h, Answers{})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := PlannedBaseline(p2); ok {
		t.Error("an empty plan names a baseline to save")
	}
	if !p2.Empty() || p2.Summary() != "No changes" || len(p2.Notes) != 1 ||
		!strings.Contains(p2.Notes[0], wantTarget) || !strings.Contains(p2.Notes[0], "2026-11-25T14:21:42Z") {
		t.Errorf("second plan: %+v", p2)
	}

	base, latest, err := LatestSnapshots(h)
	if err != nil || base != "audits/20261125T142142Z-baseline.json" || latest != base {
		t.Errorf("LatestSnapshots = %q %q %v", base, latest, err)
	}
	saved, err := LoadSnapshot(h, base)
	if err != nil {
		t.Fatal(err)
	}
	if want := p.Data.(auditPlan).Snapshot; !reflect.DeepEqual(saved.Items, want.Items) || !saved.Taken.Equal(want.Taken) {
		t.Error("saved snapshot differs from the planned one")
	}

	// A later snapshot, at the same second: a new name, and it is the latest.
	name, err := SaveSnapshot(h, saved, "snapshot")
	if err != nil || name != "audits/20261125T142142Z-snapshot.json" {
		t.Fatalf("SaveSnapshot = %q %v", name, err)
	}
	later := saved
	later.Taken = auditNow.Add(time.Hour)
	name2, _ := SaveSnapshot(h, later, "after")
	name3, _ := SaveSnapshot(h, later, "after")
	if name2 != "audits/20261125T152142Z-after.json" || name3 != "audits/20261125T152142Z-2-after.json" {
		t.Errorf("names %q %q", name2, name3)
	}
	base, latest, _ = LatestSnapshots(h)
	if base != "audits/20261125T142142Z-baseline.json" || latest != name3 {
		t.Errorf("LatestSnapshots = %q %q", base, latest)
	}
	if _, err := LoadSnapshot(h, "20261125T152142Z-after.json"); err != nil {
		t.Errorf("bare file name: %v", err)
	}
	if _, err := SaveSnapshot(h, saved, "../evil"); err == nil {
		t.Error("kind with a path accepted")
	}
}

func TestAuditStepDryRun(t *testing.T) {
	h, _, _ := fakeVM(t)
	h.DryRun = true
	ctx := context.Background()
	p, err := AuditStep{}.Plan(ctx, h, Answers{})
	if err != nil || len(p.Changes) != 1 {
		t.Fatalf("plan %+v %v", p, err)
	}
	if err := (AuditStep{}).Apply(ctx, h, p); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(h.StateDir); err == nil {
		t.Error("dry run wrote the state dir")
	}
	if Passed(AuditStep{}.Verify(ctx, h, Answers{})) {
		t.Error("Verify passed after a dry run")
	}
}

func TestAuditStepBrokenBaseline(t *testing.T) {
	h, _, _ := fakeVM(t)
	ctx := context.Background()
	if err := h.SaveState("audits/20200101T000000Z-baseline.json", []byte("{not json")); err != nil {
		t.Fatal(err)
	}
	cs := AuditStep{}.Verify(ctx, h, Answers{})
	if Passed(cs) || len(cs) != 2 || cs[1].Name != "baseline parses" || !strings.Contains(cs[1].Reason, "is not an audit snapshot") {
		t.Errorf("Verify: %+v", cs)
	}
	p, err := AuditStep{}.Plan(ctx, h, Answers{})
	if err != nil || len(p.Changes) != 1 || !strings.Contains(p.Notes[0], "20200101T000000Z-baseline.json is ignored") {
		t.Fatalf("plan %+v %v", p, err)
	}
	if err := (AuditStep{}).Apply(ctx, h, p); err != nil {
		t.Fatal(err)
	}
	if cs := (AuditStep{}).Verify(ctx, h, Answers{}); !Passed(cs) {
		t.Errorf("Verify after a new baseline: %+v", cs)
	}

	// An empty snapshot and one of another version do not count as baselines either.
	h2, _, _ := fakeVM(t)
	h2.SaveState("audits/20200101T000000Z-baseline.json", []byte(`{"version":1,"taken":"2020-01-01T00:00:00Z","items":[]}`))
	if cs := (AuditStep{}).Verify(ctx, h2, Answers{}); Passed(cs) || cs[len(cs)-1].Got != "0 items" {
		t.Errorf("empty baseline: %+v", cs)
	}
	h2.SaveState("audits/20200101T000000Z-baseline.json", []byte(`{"version":2,"items":[{"section":"a","key":"b","value":"c"}]}`))
	if cs := (AuditStep{}).Verify(ctx, h2, Answers{}); Passed(cs) || !strings.Contains(cs[len(cs)-1].Reason, "version 2") {
		t.Errorf("version 2 baseline: %+v", cs)
	}
}

func TestLatestSnapshotsPrefersStateBaseline(t *testing.T) {
	h, _, _ := fakeVM(t)
	s := snap(Item{"a", "b", "c"})
	first, _ := SaveSnapshot(h, s, "baseline")
	s.Taken = s.Taken.Add(time.Minute)
	second, _ := SaveSnapshot(h, s, "baseline")
	if b, _, _ := LatestSnapshots(h); b != first {
		t.Errorf("baseline %q, want the oldest %q", b, first)
	}
	st := &State{Version: 1, Steps: map[string]*StepState{}, Baseline: second}
	if err := st.Save(h); err != nil {
		t.Fatal(err)
	}
	if b, l, _ := LatestSnapshots(h); b != second || l != second {
		t.Errorf("baseline %q latest %q, want state.json's %q", b, l, second)
	}
	if b, l, err := LatestSnapshots(system.NewFakeHost(t.TempDir(), t.TempDir(), system.NewFakeRunner(nil), false)); b != "" || l != "" || err != nil {
		t.Errorf("empty state dir: %q %q %v", b, l, err)
	}
}

func TestAuditStepThroughSession(t *testing.T) {
	h, _, _ := fakeVM(t)
	ctx := context.Background()
	sess := NewSession(h, Answers{}, nil)
	st, _ := ByID(1)
	if !Available(st) {
		t.Fatal("Step 1 is registered as not available")
	}
	p, err := sess.Plan(ctx, st)
	if err != nil {
		t.Fatal(err)
	}
	if err := sess.Apply(ctx, st, p); err != nil {
		t.Fatal(err)
	}
	if cs := sess.Verify(ctx, st); !Passed(cs) || sess.Status(1).Status != StatusPassed {
		t.Errorf("checks %+v status %+v", cs, sess.Status(1))
	}
	p, _ = sess.Plan(ctx, st)
	if !p.Empty() {
		t.Errorf("second run plans %+v", p.Changes)
	}
}
