package lab

// Unit tests of the CIS referee (lab/cisbench.go). They need no lab, no root and no Docker: the samples in
// testdata/cisbench-sample*.{json,txt} were written by the vendored docker-bench-security itself, run against
// a stand-in docker (testdata/cisbench-gen/gen.sh).

import (
	"archive/tar"
	"bytes"
	"io"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
)

func readCISSample(t *testing.T, name string) *CISReport {
	t.Helper()
	data, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	var r *CISReport
	if strings.HasSuffix(name, ".json") {
		r, err = ParseCISJSON(data)
	} else {
		r, err = ParseCISText(string(data))
	}
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return r
}

func cisIDs(rs []CISResult) []string {
	var ids []string
	for _, r := range rs {
		ids = append(ids, r.ID)
	}
	return ids
}

func findCIS(r *CISReport, id string) (CISResult, bool) {
	for _, res := range r.Results {
		if res.ID == id {
			return res, true
		}
	}
	return CISResult{}, false
}

// The sample: the gateway as Step 6 runs it, plus two stray containers (one privileged on the host network
// with /etc mounted, one publishing 0.0.0.0:8080 with the Docker socket, NET_ADMIN and no limits).
func TestCISParseJSON(t *testing.T) {
	r := readCISSample(t, "cisbench-sample.json")
	if r.Version != "1.6.0" || r.Checks != 50 || r.Score != -1 || len(r.Results) != 50 {
		t.Errorf("version %q checks %d score %d results %d, want 1.6.0 50 -1 50", r.Version, r.Checks, r.Score, len(r.Results))
	}
	mem, ok := findCIS(r, "5.11")
	if !ok || mem.Result != "WARN" || !strings.Contains(mem.Title, "memory usage for containers is limited") ||
		!slices.Equal(mem.Items, []string{"lab-stray-web", "lab-stray-host"}) {
		t.Errorf("5.11 = %+v", mem)
	}
	if dep, ok := findCIS(r, "2.18"); !ok || dep.Result != "INFO" {
		t.Errorf("2.18 (deprecated, printed without its number) = %+v, %v", dep, ok)
	}
	if icc, _ := findCIS(r, "2.2"); icc.Result != "PASS" {
		t.Errorf("2.2 = %+v, want PASS (icc false in daemon.json)", icc)
	}
	if got := len(r.Warns()); got != 20 {
		t.Errorf("%d WARN, want 20", got)
	}
}

func TestCISControlledWarns(t *testing.T) {
	r := readCISSample(t, "cisbench-sample.json")
	got := cisIDs(r.ControlledWarns())
	// 5.26 passes through daemon.json's no-new-privileges; 5.9, 5.12, 5.13, 5.17, 5.21 and 2.x WARN but are not
	// the tool's to control.
	want := []string{"5.4", "5.5", "5.6", "5.10", "5.11", "5.14", "5.27", "5.29", "5.32"}
	if !slices.Equal(got, want) {
		t.Errorf("controlled WARNs %v, want %v", got, want)
	}
	if m := r.Missing(); len(m) != 0 {
		t.Errorf("missing %v, want none", m)
	}

	h := readCISSample(t, "cisbench-sample-hardened.json")
	if w := h.ControlledWarns(); len(w) != 0 {
		t.Errorf("the gateway alone: controlled WARNs %v", w)
	}
	if m := h.Missing(); len(m) != 0 {
		t.Errorf("the gateway alone: missing %v", m)
	}
	if got := cisIDs(h.Warns()); !slices.Equal(got, []string{"2.9", "2.12", "2.13", "2.15", "5.9", "5.12", "5.13"}) {
		t.Errorf("the gateway alone: WARN %v (uncontrolled ones changed: update the report)", got)
	}
}

// With no container running the script skips section 5 but for 5.1: every container check is missing, and
// the run must not count as a pass.
func TestCISMissingNoContainers(t *testing.T) {
	r := readCISSample(t, "cisbench-sample-nocontainers.json")
	if w := r.ControlledWarns(); len(w) != 0 {
		t.Errorf("controlled WARNs %v", w)
	}
	m := r.Missing()
	var ids []string
	for _, c := range CISControlled {
		if c.Step == 6 {
			ids = append(ids, c.ID)
		}
	}
	if len(m) != len(ids) {
		t.Fatalf("missing %d, want the %d container checks %v:\n%s", len(m), len(ids), ids, strings.Join(m, "\n"))
	}
	for i, id := range ids {
		if !strings.Contains(m[i], " "+id+" in docker-bench-security") {
			t.Errorf("missing[%d] = %q, want check %s", i, m[i], id)
		}
	}
}

// A check renamed in another version of the script must show up as missing, even while it WARNs.
func TestCISRenamedCheck(t *testing.T) {
	r := readCISSample(t, "cisbench-sample.json")
	for i, res := range r.Results {
		if res.ID == "5.29" {
			r.Results[i].Title = "Ensure that the number of processes is capped (Automated)"
		}
	}
	if slices.Contains(cisIDs(r.ControlledWarns()), "5.29") {
		t.Error("a renamed check still counted as controlled")
	}
	m := r.Missing()
	if len(m) != 1 || !strings.Contains(m[0], "pids_limit") {
		t.Errorf("missing %v, want the PIDs limit check", m)
	}
}

// The text output (stdout with -b) gives the same results as the JSON log, but for the two documented quirks.
func TestCISParseText(t *testing.T) {
	j := readCISSample(t, "cisbench-sample.json")
	x := readCISSample(t, "cisbench-sample.txt")
	if x.Version != j.Version || x.Checks != j.Checks || x.Score != j.Score {
		t.Errorf("text: version %q checks %d score %d; JSON %q %d %d", x.Version, x.Checks, x.Score, j.Version, j.Checks, j.Score)
	}
	if _, ok := findCIS(x, "2.18"); ok {
		t.Error("text: 2.18 is printed without its number and cannot be found")
	}
	if len(x.Results) != len(j.Results)-1 {
		t.Errorf("text: %d results, JSON %d", len(x.Results), len(j.Results))
	}
	for _, jr := range j.Results {
		xr, ok := findCIS(x, jr.ID)
		if jr.ID == "2.18" {
			continue
		}
		want := jr.Result
		if jr.ID == "2.1" {
			want = "NOTE" // logged as INFO, printed as NOTE
		}
		if !ok || xr.Title != jr.Title || xr.Result != want {
			t.Errorf("%s: text %+v, JSON %+v", jr.ID, xr, jr)
		}
		for _, it := range jr.Items { // "container", "container:path" or "id:name"
			if !slices.ContainsFunc(strings.Split(it, ":"), func(part string) bool { return strings.Contains(xr.Details, part) }) {
				t.Errorf("%s: text details %q lack %q", jr.ID, xr.Details, it)
			}
		}
	}
	if !slices.Equal(cisIDs(x.ControlledWarns()), cisIDs(j.ControlledWarns())) {
		t.Errorf("text controlled WARNs %v, JSON %v", cisIDs(x.ControlledWarns()), cisIDs(j.ControlledWarns()))
	}
	if _, err := ParseCISText("Error connecting to docker daemon (does docker ps work?)\n"); err == nil {
		t.Error("output without results parsed")
	}
	if _, err := ParseCISJSON([]byte(`{"dockerbenchsecurity": "1.6.0", "start": 1, "tests": [`)); err == nil {
		t.Error("a truncated JSON log parsed")
	}
}

var cisDescRE = regexp.MustCompile(`(?m)^\s*local id="([0-9.]+)"\n\s*local desc="([^"]*)"`)

// Every controlled title matches exactly one check of the vendored sections 2 and 5, with the ID the table
// says, and no check matches two controls.
func TestCISTitleTable(t *testing.T) {
	checks := map[string]string{} // id -> desc
	for _, f := range []string{"2_docker_daemon_configuration.sh", "5_container_runtime.sh"} {
		src, err := cisBenchFS.ReadFile(cisBenchRoot + "/tests/" + f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range cisDescRE.FindAllStringSubmatch(string(src), -1) {
			checks[m[1]] = m[2]
		}
	}
	if len(checks) < 45 {
		t.Fatalf("read %d checks from the vendored tests; the pattern no longer fits", len(checks))
	}
	for _, c := range CISControlled {
		var hits []string
		for id, desc := range checks {
			if c.Matches(desc) {
				hits = append(hits, id)
			}
		}
		if len(hits) != 1 || hits[0] != c.ID {
			t.Errorf("control %q matches checks %v, want exactly [%s]", c.Title, hits, c.ID)
		}
		if c.Title != normTitle(c.Title) {
			t.Errorf("control %q must be lower case with single spaces", c.Title)
		}
	}
	for id, desc := range checks {
		n := 0
		for _, c := range CISControlled {
			if c.Matches(desc) {
				n++
			}
		}
		if n > 1 {
			t.Errorf("check %s %q matches %d controls", id, desc, n)
		}
	}
	if c, ok := ControlFor("Ensure   Userland Proxy is Disabled (Scored)"); !ok || c.ID != "2.16" {
		t.Errorf("ControlFor is not case and space insensitive: %+v %v", c, ok)
	}
}

// What CISBench copies to the VM and the command it runs there.
func TestCISBenchPayload(t *testing.T) {
	tb, err := cisBenchTar()
	if err != nil {
		t.Fatal(err)
	}
	files := map[string]int64{}
	tr := tar.NewReader(bytes.NewReader(tb))
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		files[h.Name] = h.Mode
	}
	for name, mode := range map[string]int64{
		"docker-bench-security.sh": 0o755, "functions/functions_lib.sh": 0o755, "functions/helper_lib.sh": 0o755,
		"functions/output_lib.sh": 0o755, "tests/2_docker_daemon_configuration.sh": 0o755,
		"tests/5_container_runtime.sh": 0o755, "LICENSE.md": 0o644, "README.md": 0o644,
	} {
		if got, ok := files[name]; !ok || got != mode {
			t.Errorf("payload %s: mode %o, present %v; want %o", name, got, ok, mode)
		}
	}
	for name := range files {
		if strings.HasPrefix(name, "tests/") && !strings.HasPrefix(name, "tests/2_") && !strings.HasPrefix(name, "tests/5_") && name != "tests/" {
			t.Errorf("payload has %s: the script runs every tests/*.sh it finds", name)
		}
	}
	lib, _ := cisBenchFS.ReadFile(cisBenchRoot + "/functions/functions_lib.sh")
	for _, g := range strings.Split(cisBenchGroups, ",") {
		if !strings.Contains(string(lib), "\n"+g+"() {") {
			t.Errorf("functions_lib.sh has no group %s()", g)
		}
	}
	readme, _ := cisBenchFS.ReadFile(cisBenchRoot + "/README.md")
	if !strings.Contains(string(readme), CISBenchCommit) || !strings.Contains(string(readme), cisBenchCommand("X")[len("cd 'X' && "):]) {
		t.Error("the vendored README must name CISBenchCommit and the command CISBench runs")
	}
	if got, want := cisBenchCommand("/root/cis"), "cd '/root/cis' && bash ./docker-bench-security.sh -b -l log/referee.log -c docker_daemon_configuration,container_runtime"; got != want {
		t.Errorf("command %q, want %q", got, want)
	}
	for _, dir := range []string{"relative/dir", "/", "/root/dockerd-bench"} {
		if _, err := CISBench(nil, dir); err == nil {
			t.Errorf("remoteDir %q was accepted", dir)
		}
	}
}
