package lab

// The referee of issue #7: Docker's own CIS benchmark script, docker-bench-security, sections 2 (Docker daemon
// configuration) and 5 (Container runtime), run on the hardened lab VM, must report no WARN for what Steps 5
// and 6 control. The script is vendored, unmodified, in testdata/docker-bench-security (the VM has no
// internet) and embedded here, so CISBench works from any working directory.
//
// Checks are recognised by their title, not their number: IDs shift between versions of the benchmark (what
// is 5.29 in CIS 1.6.0 was 5.28 in 1.2.0). A controlled check that does not appear at all is reported by
// Missing, so a renamed check, or section 5 skipped because no container was running, cannot pass silently.

import (
	"archive/tar"
	"bytes"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"regexp"
	"strconv"
	"strings"
	"time"
)

//go:embed testdata/docker-bench-security
var cisBenchFS embed.FS

const (
	cisBenchRoot = "testdata/docker-bench-security"
	// CISBenchCommit is the docker-bench-security commit vendored in testdata/docker-bench-security.
	CISBenchCommit = "ff26d67f25be60fc2d82a01710ee14570b2cb9db"
	// cisBenchGroups are the script's own group functions (functions/functions_lib.sh) for sections 2 and 5.
	cisBenchGroups = "docker_daemon_configuration,container_runtime"
	cisBenchLog    = "log/referee.log" // relative to the remote directory; the JSON log is this + ".json"
	// cisBenchTimeout: section 5 runs a few docker CLI calls per check and container, about a second each
	// on the small TCG VM; with the gateway alone that is one to two minutes.
	cisBenchTimeout = 15 * time.Minute
)

// CISResult is one check of docker-bench-security.
type CISResult struct {
	ID      string   // "5.10" (this version's number; informational, see CISControl)
	Title   string   // the check's description, e.g. "Ensure that the host's network namespace is not shared (Automated)"
	Result  string   // PASS, WARN, INFO or NOTE
	Details string   // e.g. "Container running without memory restrictions:  lab-stray-web"
	Items   []string // the containers (or container:path) a failing container check names
}

func (r CISResult) String() string {
	s := fmt.Sprintf("[%s] %s - %s", r.Result, r.ID, r.Title)
	if r.Details != "" {
		s += ": " + strings.Join(strings.Fields(r.Details), " ")
	}
	return s
}

// CISReport is one run of docker-bench-security.
type CISReport struct {
	Version string // docker-bench-security's version, "1.6.0"
	Results []CISResult
	Checks  int    // the script's own count of checks run
	Score   int    // +1 per scored PASS, -1 per scored WARN
	Output  string // the script's stdout (no colour); CISBench fills it
	// Containers are the names of the containers running when CISBench started (docker ps): section 5 judged
	// all of them, so the referee means something only when this is just the gateway.
	Containers []string
}

// CISControl is one check whose outcome Steps 5–6 decide, recognised by a substring of its title.
type CISControl struct {
	Title    string // lower-case substring of the check's title
	ID       string // its number in the vendored version (for messages only; never used to match)
	Step     int    // 5: /etc/docker/daemon.json, 6: the generated compose.yaml
	Controls string // what the tool sets that makes it pass
}

// CISControlled is every docker-bench-security check (sections 2 and 5) that Steps 5–6 control. Each Title
// matches exactly one check of the vendored version (TestCISTitleTable).
var CISControlled = []CISControl{
	{"network traffic is restricted between containers on the default bridge", "2.2", 5, `daemon.json "icc": false (inter-container traffic)`},
	{"containers are restricted from acquiring new privileges", "2.14", 5, `daemon.json "no-new-privileges": true`},
	{"userland proxy is disabled", "2.16", 5, `daemon.json "userland-proxy": false`},
	{"linux kernel capabilities are restricted within containers", "5.4", 6, "compose cap_drop: [ALL], no cap_add"},
	{"privileged containers are not used", "5.5", 6, "compose: no privileged"},
	{"sensitive host system directories are not mounted", "5.6", 6, "compose volumes: only /opt/openclaw/{config,auth}"},
	{"host's network namespace is not shared", "5.10", 6, "compose networks: [openclaw] (no network_mode: host)"},
	{"memory usage for containers is limited", "5.11", 6, "compose mem_limit"},
	{"incoming container traffic is bound to a specific host interface", "5.14", 6, `compose ports "127.0.0.1:<port>:18789"`},
	{"container is restricted from acquiring additional privileges", "5.26", 6, `compose security_opt no-new-privileges:true (and daemon.json "no-new-privileges": true, Step 5)`},
	{"container health is checked at runtime", "5.27", 6, "compose healthcheck"},
	{"pids cgroup limit is used", "5.29", 6, "compose pids_limit"},
	{"docker socket is not mounted inside any containers", "5.32", 6, "compose volumes: no docker.sock"},
}

// Matches reports whether a check title is this control's check.
func (c CISControl) Matches(title string) bool {
	return strings.Contains(normTitle(title), c.Title)
}

func (c CISControl) String() string {
	return fmt.Sprintf("Step %d, %s (check %q, %s in docker-bench-security %.7s)", c.Step, c.Controls, c.Title, c.ID, CISBenchCommit)
}

func normTitle(s string) string {
	s = strings.NewReplacer("\u2019", "'", "\u2018", "'").Replace(strings.ToLower(s))
	return strings.Join(strings.Fields(s), " ")
}

// ControlFor returns the control a check title belongs to.
func ControlFor(title string) (CISControl, bool) {
	for _, c := range CISControlled {
		if c.Matches(title) {
			return c, true
		}
	}
	return CISControl{}, false
}

// ControlledWarns returns the WARN results among the checks Steps 5–6 control: the referee wants none.
func (r *CISReport) ControlledWarns() []CISResult {
	var out []CISResult
	for _, res := range r.Results {
		if res.Result != "WARN" {
			continue
		}
		if _, ok := ControlFor(res.Title); ok {
			out = append(out, res)
		}
	}
	return out
}

// Missing names the controlled checks that did not appear in the report at all: renamed in another version of
// the script, or (for section 5) skipped because no container was running.
func (r *CISReport) Missing() []string {
	var out []string
	for _, c := range CISControlled {
		found := false
		for _, res := range r.Results {
			if c.Matches(res.Title) {
				found = true
				break
			}
		}
		if !found {
			out = append(out, c.String())
		}
	}
	return out
}

// Warns returns every WARN result, controlled or not (for the log).
func (r *CISReport) Warns() []CISResult {
	var out []CISResult
	for _, res := range r.Results {
		if res.Result == "WARN" {
			out = append(out, res)
		}
	}
	return out
}

// ParseCISJSON reads the JSON log docker-bench-security writes next to its log file (-l FILE → FILE.json).
func ParseCISJSON(data []byte) (*CISReport, error) {
	var doc struct {
		Version string `json:"dockerbenchsecurity"`
		Tests   []struct {
			ID      string `json:"id"`
			Desc    string `json:"desc"`
			Results []struct {
				ID      string   `json:"id"`
				Desc    string   `json:"desc"`
				Result  string   `json:"result"`
				Details string   `json:"details"`
				Items   []string `json:"items"`
			} `json:"results"`
		} `json:"tests"`
		Checks *int `json:"checks"`
		Score  *int `json:"score"`
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("docker-bench-security JSON log: %w", err)
	}
	if doc.Checks == nil {
		return nil, errors.New("docker-bench-security JSON log: no \"checks\" (the run did not finish)")
	}
	r := &CISReport{Version: doc.Version, Checks: *doc.Checks}
	if doc.Score != nil {
		r.Score = *doc.Score
	}
	for _, sec := range doc.Tests {
		for _, t := range sec.Results {
			r.Results = append(r.Results, CISResult{ID: t.ID, Title: t.Desc, Result: t.Result, Details: t.Details, Items: t.Items})
		}
	}
	return r, nil
}

var (
	ansiRE       = regexp.MustCompile(`\x1b\[[0-9;]*m`)
	cisCheckRE   = regexp.MustCompile(`^\[(PASS|WARN|INFO|NOTE)\]\s+(\d+(?:\.\d+)+)\s+-\s+(.*)$`)
	cisDetailRE  = regexp.MustCompile(`^\[(?:PASS|WARN|INFO|NOTE)\]\s+\*\s+(.*)$`)
	cisCountRE   = regexp.MustCompile(`^\[INFO\]\s+(Checks|Score):\s+(-?\d+)`)
	cisVersionRE = regexp.MustCompile(`Docker Bench for Security v(\S+)`)
)

// ParseCISText reads the script's stdout (or its -l log file): "[WARN] 5.11 - Ensure ..." lines, each
// followed by its "[WARN]      * detail" lines. It is the fallback when the JSON log is unreadable. Two
// differences from the JSON: a check the script logs as INFO but prints as NOTE (2.1) reads NOTE here, and a
// check printed without its number (2.18, deprecated) is not seen.
func ParseCISText(out string) (*CISReport, error) {
	r := &CISReport{}
	var details []string
	flush := func() {
		if n := len(r.Results); n > 0 && len(details) > 0 {
			r.Results[n-1].Details = strings.Join(details, "; ")
		}
		details = nil
	}
	for _, line := range strings.Split(ansiRE.ReplaceAllString(out, ""), "\n") {
		line = strings.TrimRight(line, " \r")
		if m := cisVersionRE.FindStringSubmatch(line); m != nil && r.Version == "" {
			r.Version = m[1]
			continue
		}
		if m := cisCheckRE.FindStringSubmatch(line); m != nil {
			flush()
			r.Results = append(r.Results, CISResult{ID: m[2], Title: m[3], Result: m[1]})
			continue
		}
		if m := cisDetailRE.FindStringSubmatch(line); m != nil && len(r.Results) > 0 {
			details = append(details, m[1])
			continue
		}
		if m := cisCountRE.FindStringSubmatch(line); m != nil {
			flush()
			n, _ := strconv.Atoi(m[2])
			if m[1] == "Checks" {
				r.Checks = n
			} else {
				r.Score = n
			}
			continue
		}
		if strings.HasPrefix(line, "[") { // a section header or a check printed without its number
			flush()
		}
	}
	flush()
	if len(r.Results) == 0 {
		return nil, errors.New("docker-bench-security output: no check results")
	}
	return r, nil
}

// cisBenchTar is the vendored directory as a tar stream (the script and its libraries executable).
func cisBenchTar() ([]byte, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	now := time.Now() // tar on the VM warns about the zero time
	err := fs.WalkDir(cisBenchFS, cisBenchRoot, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel := strings.TrimPrefix(strings.TrimPrefix(p, cisBenchRoot), "/")
		if rel == "" {
			return nil
		}
		if d.IsDir() {
			return tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: rel + "/", Mode: 0o755, ModTime: now})
		}
		data, err := cisBenchFS.ReadFile(p)
		if err != nil {
			return err
		}
		mode := int64(0o644)
		if path.Ext(rel) == ".sh" {
			mode = 0o755
		}
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: rel, Mode: mode, Size: int64(len(data)), ModTime: now}); err != nil {
			return err
		}
		_, err = tw.Write(data)
		return err
	})
	if err != nil {
		return nil, err
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// cisBenchCommand is the shell command CISBench runs on the VM (as root): sections 2 and 5 only, no colour.
func cisBenchCommand(remoteDir string) string {
	return fmt.Sprintf("cd %s && bash ./docker-bench-security.sh -b -l %s -c %s", shellQuote(remoteDir), cisBenchLog, cisBenchGroups)
}

// CISBench copies the vendored docker-bench-security to remoteDir on the VM (an absolute path such as
// /root/cis-bench, created if needed; its log/ is cleared), runs sections 2 and 5 as root and returns the
// parsed results (from the script's JSON log, or its stdout when that log is unreadable). An error means the
// script could not run (a missing tool, Docker unreachable, a timeout) or printed no results.
//
// The caller must ensure that Docker is running with the daemon.json under test (Step 5 applied, Docker
// restarted) and that the gateway is up and the only running container: section 5 inspects every running
// container (docker ps), so any other container the scenario started counts against the referee, and with
// no container running section 5 is skipped (Missing then names its checks). A container whose name
// contains "nil" is ignored by the script. report.Containers lists what was running. The referee passes when
// report.ControlledWarns() and report.Missing() are both empty.
// It takes one to two minutes on the TCG VM.
func CISBench(l *Lab, remoteDir string) (*CISReport, error) {
	if !path.IsAbs(remoteDir) || path.Clean(remoteDir) == "/" || strings.Contains(remoteDir, "dockerd") {
		// The script finds the daemon with pgrep -f -n dockerd: a command line naming remoteDir must not match.
		return nil, fmt.Errorf("CISBench: remoteDir %q must be an absolute directory other than /, without \"dockerd\" in it", remoteDir)
	}
	remoteDir = path.Clean(remoteDir)
	done := l.Phase("docker-bench-security sections 2 and 5 (CIS referee)")
	defer done()

	tb, err := cisBenchTar()
	if err != nil {
		return nil, fmt.Errorf("CISBench: packing the vendored script: %w", err)
	}
	copyCmd := fmt.Sprintf("mkdir -p %[1]s && tar -xf - -C %[1]s && rm -rf %[1]s/log", shellQuote(remoteDir))
	if _, e, code, err := l.RunInput(copyCmd, bytes.NewReader(tb)); err != nil || code != 0 {
		return nil, fmt.Errorf("CISBench: copying docker-bench-security to %s on the VM: exit %d, %v: %s", remoteDir, code, err, e)
	}

	ps, e, code, err := l.Run("docker ps --format '{{.Names}}'")
	if err != nil || code != 0 {
		return nil, fmt.Errorf("CISBench: docker ps on the VM: exit %d, %v: %s", code, err, e)
	}
	containers := strings.Fields(ps)
	l.Logf("docker-bench-security will judge the running containers: %v", containers)

	cmd := cisBenchCommand(remoteDir)
	o, e, code, err := l.RunTimeout(cmd, nil, cisBenchTimeout)
	if err != nil || code != 0 {
		return nil, fmt.Errorf("CISBench: %q: exit %d, %v\nstdout:\n%s\nstderr:\n%s", cmd, code, err, o, e)
	}
	var r *CISReport
	data, jerr := l.ReadFile(remoteDir + "/" + cisBenchLog + ".json")
	if jerr == nil {
		r, jerr = ParseCISJSON(data)
	}
	if jerr != nil {
		l.Logf("docker-bench-security JSON log unusable (%v); reading its stdout instead", jerr)
		var terr error
		if r, terr = ParseCISText(o); terr != nil {
			return nil, fmt.Errorf("CISBench: %v; %v\nstdout:\n%s\nstderr:\n%s", jerr, terr, o, e)
		}
	}
	r.Output = o
	r.Containers = containers
	l.Logf("docker-bench-security %s: %d checks, score %d, %d WARN (%d of them controlled by Steps 5–6), %d controlled checks missing",
		r.Version, r.Checks, r.Score, len(r.Warns()), len(r.ControlledWarns()), len(r.Missing()))
	return r, nil
}
