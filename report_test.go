package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"openclaw-harden/steps"
	"openclaw-harden/system"
)

// TestWriteReport: the matrix grouped by source, each must-fail probe matched to the liveness record, the
// report saved under the state dir (0600) and printed.
func TestWriteReport(t *testing.T) {
	dir := t.TempDir()
	h := system.NewHost(dir, false)
	h.Runner = system.NewFakeRunner(nil)
	live := `{"Taken":"2026-11-25T10:00:00Z","Probes":[
 {"From":"container","Target":"http://192.168.1.2/","MustFail":true,"OK":true,"Detail":"exit 0"},
 {"From":"container","Target":"http://10.0.0.1/","MustFail":true,"OK":false,"Detail":"exit 1"},
 {"From":"ochlab-lan2","Target":"tcp 192.168.1.10:22","MustFail":true,"OK":true,"Detail":"SSH-2.0-OpenSSH_9.2p1"}]}`
	if err := os.WriteFile(filepath.Join(dir, LivenessFile), []byte(live), 0o600); err != nil {
		t.Fatal(err)
	}
	s := steps.NewSession(h, steps.Defaults(), nil)
	checks := []steps.Check{
		{ID: "a", Name: "http GET http://192.168.1.2:80/", Expect: steps.ExpectMustFail, Got: "dropped: no answer within 5s", OK: true, Source: "container", Target: "http://192.168.1.2:80/", DurationMS: 5001},
		{ID: "b", Name: "http GET http://10.0.0.1:80/", Expect: steps.ExpectMustFail, Got: "dropped: no answer within 5s", OK: true, Source: "container", Target: "http://10.0.0.1:80/"},
		{ID: "c", Name: "http GET http://169.254.169.254:80/", Expect: steps.ExpectMustFail, Got: "reached: answered HTTP/1.0 200 OK", Reason: "the target answered | nothing blocked it", Source: "container", Target: "http://169.254.169.254:80/"},
		{ID: "d", Name: "tcp 192.168.1.10:22", Expect: steps.ExpectMustFail, Got: "dropped: no answer", OK: true, Source: "lan", Target: "192.168.1.10:22"},
		{ID: "e", Name: "UFW active", Expect: "Status: active", Got: "Status: active", OK: true, Source: "vm"},
	}
	var out bytes.Buffer
	now := time.Date(2026, 11, 25, 16, 0, 0, 0, time.UTC)
	saved, err := writeReport(context.Background(), s, checks, now, &out)
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(dir, "reports", "report-20261125T160000Z.md"); saved != want {
		t.Errorf("saved to %q, want %q", saved, want)
	}
	data, err := os.ReadFile(saved)
	if err != nil {
		t.Fatal(err)
	}
	if st, _ := os.Stat(saved); st.Mode().Perm() != 0o600 {
		t.Errorf("report mode %v", st.Mode().Perm())
	}
	if string(data) != out.String() {
		t.Errorf("the saved report differs from the printed one")
	}
	r := out.String()
	t.Log(r)
	for _, want := range []string{
		"verification matrix: **FAIL**, 4 of 5 checks passed",
		"### From inside the gateway container",
		"### On the VM",
		"### From another LAN host",
		`the target answered \| nothing blocked it`,
		"| http GET http://192.168.1.2:80/ | container | failed as required: dropped: no answer within 5s | yes | http://192.168.1.2/ from container at 2026-11-25T10:00:00Z: exit 0 |",
		"| http GET http://10.0.0.1:80/ | container | failed as required: dropped: no answer within 5s | NO |",
		"| http GET http://169.254.169.254:80/ | container | NOT blocked: reached: answered HTTP/1.0 200 OK | not proven |",
		"| tcp 192.168.1.10:22 | lan | failed as required: dropped: no answer | yes | tcp 192.168.1.10:22 from ochlab-lan2",
		"No baseline snapshot",
	} {
		if !strings.Contains(r, want) {
			t.Errorf("report lacks %q", want)
		}
	}
	if strings.Index(r, "From inside the gateway container") > strings.Index(r, "On the VM") {
		t.Errorf("container group is not first")
	}
}

func TestProbeHostPort(t *testing.T) {
	for in, want := range map[string]string{
		"http://10.0.0.1/":                    "10.0.0.1:80",
		"http://192.168.1.2:18789/":           "192.168.1.2:18789",
		"tcp 192.168.1.2:22":                  "192.168.1.2:22",
		"tcp 203.0.113.10:443 (HTTPS server)": "203.0.113.10:443",
		"192.168.1.10:22":                     "192.168.1.10:22",
		"dns api.telegram.org @203.0.113.53":  "",
		"https://api.telegram.org/ (lab CA)":  "api.telegram.org:443",
	} {
		if got := probeHostPort(in); got != want {
			t.Errorf("probeHostPort(%q) = %q, want %q", in, got, want)
		}
	}
}
