package steps

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"openclaw-harden/system"
)

// Snapshot is a structured picture of the machine: per-item facts, so two snapshots diff per item.
type Snapshot struct {
	Version int       `json:"version"`
	Taken   time.Time `json:"taken"`
	Items   []Item    `json:"items"`
	Notes   []string  `json:"notes,omitempty"` // facts about what could not be read (no Docker yet, not root)
}

// Item is one fact: section ("docker", "sshd", "listening", "iptables filter FORWARD"), key and value.
//
// Sections and keys (values are single lines):
//
//	system               kernel (uname -srvm), hostname
//	os                   id, version_id, pretty_name, version_codename (from /etc/os-release)
//	ipv6                 all disable_ipv6, default disable_ipv6, global addresses
//	addresses            "IFACE FAMILY ADDR/PREFIX" → scope ("global", "host", "link"; "+ dynamic")
//	routes, routes ipv6  "DST dev DEV [metric N]" → "via GW proto P scope S src A"
//	listening            "PROTO LOCAL:PORT" ("tcp 0.0.0.0:22") → process names ("sshd") or "unknown"
//	ufw                  installed, status, logging, default incoming|outgoing|routed, new profiles
//	ufw rules            rule text ("22/tcp ALLOW IN 192.168.1.50") → position ("#1")
//	iptables             installed, version, backend (nf_tables | legacy)
//	iptables TABLE CHAIN policy → ACCEPT | DROP | "none (user-defined chain)"; each rule as
//	                     `iptables -S` prints it ("-A DOCKER-USER -d 10.0.0.0/8 -j DROP") → position ("#3")
//	docker               installed, client version, daemon (running | not running), version (the
//	                     server's), api version, firewall backend, cgroup driver, security options, …
//	docker containers    container name → "image I; ports P; networks N"
//	daemon.json          file (absent | present | invalid JSON), then each top-level key → compact JSON
//	services             unit ("ssh.service") → description
//	sshd                 installed, then every key of `sshd -T` (lower case) → value
//	openclaw             installed, cli (the `openclaw --version` output)
type Item struct {
	Section string `json:"section"`
	Key     string `json:"key"`
	Value   string `json:"value"`
}

// SnapshotVersion is the format version this tool writes and reads.
const SnapshotVersion = 1

// auditTimeout bounds each read-only command of the snapshot: a hung docker CLI must not hang the step.
const auditTimeout = 20 * time.Second

// snapshotter collects items and notes while the commands run.
type snapshotter struct {
	ctx   context.Context
	h     *system.Host
	items []Item
	notes []string
}

func (s *snapshotter) add(section string, kvs ...kv) {
	for _, x := range kvs {
		s.items = append(s.items, Item{Section: section, Key: s.h.Redact(x.Key), Value: s.h.Redact(x.Value)})
	}
}

func (s *snapshotter) note(format string, args ...any) {
	s.notes = append(s.notes, s.h.Redact(fmt.Sprintf(format, args...)))
}

// runResult is how one read-only command ended.
type runResult int

const (
	ranOK runResult = iota
	notInstalled
	failed
)

// run runs a read-only command. A missing tool is reported as notInstalled without a note (the caller says
// what that means for its section); any other failure becomes a note naming the command and its exit
// status. The output is returned in every case (docker version prints its client half and exits 1).
func (s *snapshotter) run(argv ...string) ([]byte, runResult) {
	out, err := s.h.ReadCmd(s.ctx, system.Cmd{Argv: argv, Timeout: auditTimeout})
	if err == nil {
		return out, ranOK
	}
	if isNotFound(err) {
		return out, notInstalled
	}
	s.note("%s failed (exit status %d): %s", system.ShellQuote(argv), system.ExitCode(err), cmdOutput(err))
	return out, failed
}

// isNotFound tells "the tool is not installed" from "the tool failed": exec's not-found error, or the
// shell's exit status 127 (which is also what system.FakeRunner gives for a command it does not know).
func isNotFound(err error) bool {
	var ce *system.CmdError
	if errors.As(err, &ce) && ce.ExitCode == 127 {
		return true
	}
	return strings.Contains(err.Error(), "executable file not found")
}

// cmdOutput is the first line of what a failed command printed (or of its error), for a note.
func cmdOutput(err error) string {
	var ce *system.CmdError
	msg := err.Error()
	if errors.As(err, &ce) {
		msg = strings.TrimSpace(ce.Output)
		if (msg == "" || ce.ExitCode == -1) && ce.Err != nil { // -1: killed or timed out; say that
			msg = ce.Err.Error()
		}
	}
	return truncate(firstLine(strings.TrimSpace(msg)), 200)
}

// TakeSnapshot records the machine's state with read-only commands and files. It runs in dry-run mode too.
// Missing tools (no Docker, no UFW, no OpenClaw yet) and stopped daemons are items; commands that fail
// (not root, a broken tool) are notes. It returns an error only when the context is cancelled.
func TakeSnapshot(ctx context.Context, h *system.Host) (Snapshot, error) {
	s := &snapshotter{ctx: ctx, h: h}
	for _, part := range []func(){
		s.system, s.osRelease, s.addresses, s.routes, s.listening, s.ufw, s.iptables, s.docker,
		s.daemonJSON, s.services, s.sshd, s.openclaw,
	} {
		if err := ctx.Err(); err != nil {
			return Snapshot{}, fmt.Errorf("taking the audit snapshot: %w", err)
		}
		part()
	}
	SortItems(s.items)
	return Snapshot{Version: SnapshotVersion, Taken: h.Now().UTC(), Items: s.items, Notes: s.notes}, nil
}

func (s *snapshotter) system() {
	if out, r := s.run("uname", "-srvm"); r == ranOK {
		s.add("system", kv{"kernel", strings.TrimSpace(string(out))})
	}
	if out, r := s.run("hostname"); r == ranOK {
		s.add("system", kv{"hostname", strings.TrimSpace(string(out))})
	}
}

func (s *snapshotter) osRelease() {
	for _, p := range []string{"/etc/os-release", "/usr/lib/os-release"} {
		data, err := s.h.ReadFile(p)
		if err == nil {
			s.add("os", parseOSRelease(string(data))...)
			return
		}
		if !errors.Is(err, fs.ErrNotExist) {
			s.note("reading %s: %v", p, err)
			return
		}
	}
	s.note("no /etc/os-release or /usr/lib/os-release")
}

func (s *snapshotter) addresses() {
	out, r := s.run("ip", "-j", "addr")
	if r == notInstalled {
		s.note("ip (iproute2) is not installed: addresses and routes not recorded")
	}
	var global []string
	if r == ranOK {
		items, g, err := parseIPAddr(out)
		if err != nil {
			s.note("%v", err)
		}
		s.add("addresses", items...)
		global = g
	}
	for _, which := range []string{"all", "default"} {
		p := "/proc/sys/net/ipv6/conf/" + which + "/disable_ipv6"
		data, err := s.h.ReadFile(p)
		switch {
		case err == nil:
			s.add("ipv6", kv{which + " disable_ipv6", strings.TrimSpace(string(data))})
		case errors.Is(err, fs.ErrNotExist):
			s.add("ipv6", kv{which + " disable_ipv6", "absent (no IPv6 in this kernel)"})
		default:
			s.note("reading %s: %v", p, err)
		}
	}
	if r == ranOK {
		s.add("ipv6", kv{"global addresses", joinOr(global, ", ", "none")})
	}
}

func (s *snapshotter) routes() {
	for _, rt := range []struct {
		section string
		argv    []string
	}{{"routes", []string{"ip", "-j", "route"}}, {"routes ipv6", []string{"ip", "-j", "-6", "route"}}} {
		out, r := s.run(rt.argv...)
		if r != ranOK {
			continue
		}
		items, err := parseIPRoute(out)
		if err != nil {
			s.note("%v", err)
		}
		s.add(rt.section, items...)
	}
}

func (s *snapshotter) listening() {
	out, r := s.run("ss", "-H", "-tulpn")
	switch r {
	case notInstalled:
		s.note("ss (iproute2) is not installed: listening sockets not recorded")
	case ranOK:
		s.add("listening", parseSS(string(out))...)
	}
}

func (s *snapshotter) ufw() {
	out, r := s.run("ufw", "status", "verbose")
	switch r {
	case notInstalled:
		s.add("ufw", kv{"installed", "no"})
	case ranOK:
		s.add("ufw", kv{"installed", "yes"})
		settings, rules := parseUFWStatus(string(out))
		s.add("ufw", settings...)
		s.add("ufw rules", rules...)
	default:
		s.add("ufw", kv{"installed", "yes"})
	}
}

func (s *snapshotter) iptables() {
	out, r := s.run("iptables", "--version")
	switch r {
	case notInstalled:
		s.add("iptables", kv{"installed", "no"})
		return
	case ranOK:
		s.add("iptables", kv{"installed", "yes"})
		if b, err := system.ParseIPTablesVersion(strings.TrimSpace(string(out))); err != nil {
			s.note("%v", err)
		} else {
			s.add("iptables", kv{"version", b.Version}, kv{"backend", b.Mode})
		}
	}
	for _, table := range []string{"filter", "nat"} {
		out, r := s.run("iptables", "-t", table, "-S")
		if r != ranOK {
			continue
		}
		for _, it := range iptablesItems(parseIPTables(table, string(out))) {
			s.add(it.Section, kv{it.Key, it.Value})
		}
	}
}

func (s *snapshotter) docker() {
	// docker version exits 1 when the daemon is down but still prints the client half: not a failure here.
	argv := []string{"docker", "version", "--format", "{{json .}}"}
	out, err := s.h.ReadCmd(s.ctx, system.Cmd{Argv: argv, Timeout: auditTimeout})
	if err != nil && isNotFound(err) {
		s.add("docker", kv{"installed", "no"})
		return
	}
	s.add("docker", kv{"installed", "yes"})
	v, perr := parseDockerVersion(out)
	if perr != nil {
		if err != nil {
			s.note("%s failed (exit status %d): %s", system.ShellQuote(argv), system.ExitCode(err), cmdOutput(err))
		} else {
			s.note("%v", perr)
		}
		return
	}
	if v.Client != nil {
		s.add("docker", kv{"client version", v.Client.Version})
	}
	if v.Server == nil {
		s.add("docker", kv{"daemon", "not running"})
		s.note("Docker is installed but its daemon is not running: Docker's settings and containers not recorded")
		return
	}
	s.add("docker", kv{"daemon", "running"}, kv{"version", v.Server.Version}, kv{"api version", v.Server.APIVersion})
	if out, r := s.run("docker", "info", "--format", "{{json .}}"); r == ranOK {
		items, err := parseDockerInfo(out)
		if err != nil {
			s.note("%v", err)
		}
		s.add("docker", items...)
	}
	if out, r := s.run("docker", "ps", "--no-trunc", "--format", "{{json .}}"); r == ranOK {
		items, err := parseDockerPS(out)
		if err != nil {
			s.note("%v", err)
		}
		s.add("docker containers", items...)
	}
}

func (s *snapshotter) daemonJSON() {
	const p = "/etc/docker/daemon.json"
	data, err := s.h.ReadFile(p)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		s.add("daemon.json", kv{"file", "absent"})
	case err != nil:
		s.note("reading %s: %v", p, err)
	default:
		items, err := parseDaemonJSON(data)
		if err != nil {
			s.add("daemon.json", kv{"file", "invalid JSON"})
			s.note("%s: %v", p, err)
			return
		}
		s.add("daemon.json", kv{"file", "present"})
		s.add("daemon.json", items...)
	}
}

func (s *snapshotter) services() {
	out, r := s.run("systemctl", "list-units", "--type=service", "--state=running", "--no-legend", "--plain")
	switch r {
	case notInstalled:
		s.note("systemctl is not installed: running services not recorded")
	case ranOK:
		s.add("services", parseSystemctlUnits(string(out))...)
	}
}

func (s *snapshotter) sshd() {
	out, err := s.h.ReadCmd(s.ctx, system.Cmd{Argv: []string{"sshd", "-T"}, Timeout: auditTimeout})
	switch {
	case err == nil:
		s.add("sshd", kv{"installed", "yes"})
		s.add("sshd", parseSSHDT(string(out))...)
	case isNotFound(err):
		s.add("sshd", kv{"installed", "no"})
	default:
		s.add("sshd", kv{"installed", "yes"})
		s.note("sshd -T failed (exit status %d): %s%s; the effective sshd settings were not recorded",
			system.ExitCode(err), cmdOutput(err), sshdTHint(err))
	}
}

func (s *snapshotter) openclaw() {
	out, r := s.run("openclaw", "--version")
	switch r {
	case notInstalled:
		s.add("openclaw", kv{"installed", "no"}, kv{"cli", "not installed"})
	case ranOK:
		s.add("openclaw", kv{"installed", "yes"}, kv{"cli", firstLine(strings.TrimSpace(string(out)))})
	default:
		s.add("openclaw", kv{"installed", "yes"})
	}
}

// auditDir is where snapshots live inside the state dir.
const auditDir = "audits"

var kindRE = regexp.MustCompile(`^[a-z][a-z0-9-]{0,30}$`)

// SaveSnapshot writes s as audits/<UTC time>-<kind>.json in the state dir (kind: "baseline", "snapshot",
// "after") and returns that name, which LoadSnapshot accepts. In dry-run mode nothing is written (the name
// is still returned). An existing file is never overwritten.
func SaveSnapshot(h *system.Host, s Snapshot, kind string) (string, error) {
	if !kindRE.MatchString(kind) {
		return "", fmt.Errorf("snapshot kind %q: use lower-case letters, digits and dashes, like \"baseline\"", kind)
	}
	name := snapshotName(h, s.Taken, kind)
	data, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return "", err
	}
	if err := h.SaveState(name, append(data, '\n')); err != nil {
		return "", fmt.Errorf("saving the audit snapshot %s: %w", filepath.Join(h.StateDir, name), err)
	}
	return name, nil
}

// snapshotName is audits/<time>-<kind>.json, with "-2", "-3"… added to the time when that name is taken.
func snapshotName(h *system.Host, t time.Time, kind string) string {
	if t.IsZero() {
		t = h.Now()
	}
	stamp := t.UTC().Format("20060102T150405Z")
	name := path.Join(auditDir, stamp+"-"+kind+".json")
	for n := 2; ; n++ {
		if _, err := h.LoadState(name); errors.Is(err, fs.ErrNotExist) {
			return name
		}
		name = path.Join(auditDir, fmt.Sprintf("%s-%d-%s.json", stamp, n, kind))
	}
}

// LoadSnapshot reads a snapshot saved by SaveSnapshot ("audits/…json", or just the file name).
func LoadSnapshot(h *system.Host, name string) (Snapshot, error) {
	var s Snapshot
	if !strings.Contains(name, "/") {
		name = path.Join(auditDir, name)
	}
	data, err := h.LoadState(name)
	if err != nil {
		return s, fmt.Errorf("reading the audit snapshot %s: %w", filepath.Join(h.StateDir, name), err)
	}
	if err := json.Unmarshal(data, &s); err != nil {
		return Snapshot{}, fmt.Errorf("%s is not an audit snapshot: %v", filepath.Join(h.StateDir, name), err)
	}
	if s.Version != SnapshotVersion {
		return Snapshot{}, fmt.Errorf("%s is an audit snapshot of version %d; this tool reads version %d",
			filepath.Join(h.StateDir, name), s.Version, SnapshotVersion)
	}
	return s, nil
}

// savedSnapshot is one readable file under audits/.
type savedSnapshot struct {
	Name string
	Snap Snapshot
}

// usable is a snapshot that can serve as a baseline: it parsed and holds at least one item.
func (s savedSnapshot) usable() bool { return len(s.Snap.Items) > 0 }

// listSnapshots loads every audits/*.json, oldest first (by the time it was taken, then by name), and
// returns the files that could not be read with why.
func listSnapshots(h *system.Host) (ok []savedSnapshot, broken map[string]error, err error) {
	names, err := h.StateFiles(auditDir)
	if err != nil {
		return nil, nil, fmt.Errorf("listing %s: %w", filepath.Join(h.StateDir, auditDir), err)
	}
	broken = map[string]error{}
	for _, n := range names {
		if !strings.HasSuffix(n, ".json") {
			continue
		}
		s, err := LoadSnapshot(h, filepath.ToSlash(n))
		if err != nil {
			broken[filepath.ToSlash(n)] = err
			continue
		}
		ok = append(ok, savedSnapshot{Name: filepath.ToSlash(n), Snap: s})
	}
	sort.SliceStable(ok, func(i, j int) bool {
		if !ok[i].Snap.Taken.Equal(ok[j].Snap.Taken) {
			return ok[i].Snap.Taken.Before(ok[j].Snap.Taken)
		}
		if si, sj := snapshotSeq(ok[i].Name), snapshotSeq(ok[j].Name); si != sj {
			return si < sj
		}
		return ok[i].Name < ok[j].Name
	})
	return ok, broken, nil
}

var seqRE = regexp.MustCompile(`^\d{8}T\d{6}Z-(\d{1,6})-`)

// snapshotSeq is the "-2", "-3"… snapshotName adds when a second snapshot is saved in the same second
// (1 when there is none), so same-second snapshots sort in the order they were saved.
func snapshotSeq(name string) int {
	m := seqRE.FindStringSubmatch(path.Base(name))
	if m == nil {
		return 1
	}
	n, _ := strconv.Atoi(m[1])
	return n
}

func isBaselineName(n string) bool { return strings.HasSuffix(n, "-baseline.json") }

// LatestSnapshots names the baseline and the most recent snapshot in the state dir ("" when there is none).
// The baseline is the one state.json records when that file is usable, else the oldest usable
// audits/*-baseline.json (usable: version 1, at least one item). The latest is the most recently taken
// usable snapshot of any kind; it is the baseline itself when that is the only one.
func LatestSnapshots(h *system.Host) (baseline, latest string, err error) {
	snaps, _, err := listSnapshots(h)
	if err != nil {
		return "", "", err
	}
	baseline = findBaseline(h, snaps)
	for i := len(snaps) - 1; i >= 0; i-- {
		if snaps[i].usable() {
			latest = snaps[i].Name
			break
		}
	}
	return baseline, latest, nil
}

func findBaseline(h *system.Host, snaps []savedSnapshot) string {
	if st, err := LoadState(h); err == nil && st.Baseline != "" {
		for _, s := range snaps {
			if s.Name == st.Baseline && s.usable() {
				return s.Name
			}
		}
	}
	for _, s := range snaps {
		if isBaselineName(s.Name) && s.usable() {
			return s.Name
		}
	}
	return ""
}

// AuditStep is Step 1: take the before snapshot and keep it under audits/ in the state dir.
type AuditStep struct{}

func (AuditStep) ID() int       { return 1 }
func (AuditStep) Title() string { return "Baseline audit" }

// auditPlan is what Plan hands to Apply: the snapshot and the name it will be saved under.
type auditPlan struct {
	Name     string
	Snapshot Snapshot
}

// auditCommands is what an admin would type by hand for the same snapshot (the profile's Step 1).
var auditCommands = []string{
	"uname -a && cat /etc/os-release",
	"docker version && docker info",
	"ip addr && ip route",
	"ss -tulpn",
	"ufw status verbose",
	"iptables -S && iptables -t nat -S",
	"systemctl list-units --type=service --state=running",
	"sshd -T",
	"cat /etc/docker/daemon.json",
}

// Plan is read-only. With a usable baseline it is empty ("No changes") and says which file that is;
// otherwise it takes a snapshot and plans to save it as the baseline.
func (AuditStep) Plan(ctx context.Context, h *system.Host, a Answers) (Plan, error) {
	p := Plan{Step: 1, Title: "Baseline audit", Commands: auditCommands}
	snaps, broken, err := listSnapshots(h)
	if err != nil {
		return p, err
	}
	for _, n := range system.SortedKeys(broken) {
		if isBaselineName(n) {
			p.Notes = append(p.Notes, fmt.Sprintf("%s is ignored: %v", filepath.Join(h.StateDir, n), broken[n]))
		}
	}
	if base := findBaseline(h, snaps); base != "" {
		for _, s := range snaps {
			if s.Name == base {
				p.Notes = append(p.Notes, fmt.Sprintf("The baseline %s was taken %s (%d items); it is kept. "+
					"`openclaw-harden audit diff` compares it with the machine now.",
					filepath.Join(h.StateDir, base), s.Snap.Taken.UTC().Format(time.RFC3339), len(s.Snap.Items)))
			}
		}
		return p, nil
	}
	snap, err := TakeSnapshot(ctx, h)
	if err != nil {
		return p, err
	}
	name := snapshotName(h, snap.Taken, "baseline")
	p.Changes = []Change{{
		Target: filepath.Join(h.StateDir, name),
		Kind:   "state",
		After:  RenderSnapshot(snap),
		Mode:   0o600,
	}}
	p.Notes = append(p.Notes, fmt.Sprintf("No baseline yet: this snapshot (%d items) becomes the before picture "+
		"that later audits are compared with.", len(snap.Items)))
	for _, n := range snap.Notes {
		p.Notes = append(p.Notes, "Snapshot: "+n)
	}
	p.Data = auditPlan{Name: name, Snapshot: snap}
	return p, nil
}

// PlannedBaseline names the file ("audits/…-baseline.json") a Step 1 plan will save, so the session can
// record it as State.Baseline once Apply succeeded; ok is false for a plan that saves nothing.
func PlannedBaseline(p Plan) (name string, ok bool) {
	ap, ok := p.Data.(auditPlan)
	return ap.Name, ok
}

// Apply saves the planned snapshot as the baseline (nothing is written in dry-run mode).
func (AuditStep) Apply(ctx context.Context, h *system.Host, p Plan) error {
	ap, ok := p.Data.(auditPlan)
	if !ok {
		if p.Empty() {
			return nil
		}
		return errors.New("the Step 1 plan carries no snapshot; plan the step again")
	}
	data, err := json.MarshalIndent(ap.Snapshot, "", "  ")
	if err != nil {
		return err
	}
	if err := h.SaveState(ap.Name, append(data, '\n')); err != nil {
		return fmt.Errorf("saving the baseline %s: %w", filepath.Join(h.StateDir, ap.Name), err)
	}
	return nil
}

// Verify checks that a baseline was saved, parses as a version 1 snapshot and holds items. Without one it
// fails: Step 1 has not been done.
func (AuditStep) Verify(ctx context.Context, h *system.Host, a Answers) []Check {
	dir := filepath.Join(h.StateDir, auditDir)
	saved := Check{ID: "step1.baseline.saved", Name: "baseline snapshot saved", Expect: "an audits/*-baseline.json file"}
	snaps, broken, err := listSnapshots(h)
	if err != nil {
		saved.Got, saved.Reason = "unreadable", err.Error()
		return []Check{saved}
	}
	base := findBaseline(h, snaps)
	if base == "" {
		// No usable baseline: report the oldest broken one if there is one, else that there is none.
		for _, n := range system.SortedKeys(broken) {
			if isBaselineName(n) {
				saved.Got, saved.OK = filepath.Join(h.StateDir, n), true
				return []Check{saved, {ID: "step1.baseline.parses", Name: "baseline parses", Expect: "snapshot version 1",
					Got: "unreadable", Reason: broken[n].Error()}}
			}
		}
		for _, s := range snaps {
			if isBaselineName(s.Name) {
				saved.Got, saved.OK = filepath.Join(h.StateDir, s.Name), true
				return []Check{saved,
					{ID: "step1.baseline.parses", Name: "baseline parses", Expect: "snapshot version 1", Got: "version 1", OK: true},
					{ID: "step1.baseline.items", Name: "baseline has items", Expect: "at least 1 item", Got: "0 items",
						Reason: "the snapshot is empty; move it away and apply Step 1 again"}}
			}
		}
		saved.Got = "none in " + dir
		saved.Reason = "Step 1 has not saved a baseline yet; apply it"
		return []Check{saved}
	}
	var snap Snapshot
	for _, s := range snaps {
		if s.Name == base {
			snap = s.Snap
		}
	}
	saved.Got, saved.OK = filepath.Join(h.StateDir, base), true
	return []Check{saved,
		{ID: "step1.baseline.parses", Name: "baseline parses", Expect: "snapshot version 1",
			Got: fmt.Sprintf("version %d, taken %s", snap.Version, snap.Taken.UTC().Format(time.RFC3339)), OK: true},
		{ID: "step1.baseline.items", Name: "baseline has items", Expect: "at least 1 item",
			Got: fmt.Sprintf("%d items", len(snap.Items)), OK: len(snap.Items) > 0},
	}
}
