package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"openclaw-harden/steps"
	"openclaw-harden/system"
)

// step8Sample is a Step 8 result as the matrix returns it: container, VM and an unrun LAN part.
func step8Sample() []steps.Check {
	return []steps.Check{
		{ID: "step8.container.found", Name: "running gateway container", Expect: "found, running", Got: "openclaw-gateway, pid 812 (docker API)", OK: true, Source: "container"},
		{ID: "step8.container.must-fail.lan-gateway", Name: "http GET http://192.168.1.1:80/", Expect: steps.ExpectMustFail, Got: "dropped: no answer within 5s", OK: true, Source: "container", Target: "http://192.168.1.1:80/"},
		{ID: "step8.container.must-fail.lan-host", Name: "http GET http://192.168.1.2:80/", Expect: steps.ExpectMustFail, Got: "reached: answered HTTP/1.0 200 OK", Reason: "the target answered: nothing on the way blocked it", Source: "container", Target: "http://192.168.1.2:80/"},
		{ID: "step8.container.udp5353", Name: "nothing listens on 5353/udp in the container", Expect: "no socket on 5353/udp", Got: "none", OK: true, Source: "container", Target: "udp :5353"},
		{ID: "step8.vm.gateway-loopback", Name: "http GET http://127.0.0.1:18789/", Expect: "works", Got: "fails: refused", Reason: "connection refused (rejected)", Source: "vm", Target: "http://127.0.0.1:18789/"},
		{ID: "step8.lan.not-run", Name: "probes from another LAN host", Expect: "optional (answers probes.lan_host)", Got: "not run: no probes.lan_host in the answers", OK: true, Reason: steps.LANUnproven, Source: "lan"},
	}
}

func TestPrintChecksGroupsStep8BySource(t *testing.T) {
	var b bytes.Buffer
	printChecks(printer{w: &b}, 8, step8Sample())
	out := b.String()
	t.Logf("\n%s", out)
	order := []string{
		"  From the container (gateway's network namespace)\n",
		"    ✓ step 8 running gateway container: expected found, running, got openclaw-gateway",
		"    ✓ step 8 http GET http://192.168.1.1:80/: expected fails (dropped or rejected), got dropped: no answer within 5s\n",
		"    ✗ step 8 http GET http://192.168.1.2:80/: expected fails (dropped or rejected), got reached: answered HTTP/1.0 200 OK (the target answered: nothing on the way blocked it)\n",
		"    ✓ step 8 nothing listens on 5353/udp in the container → udp :5353: ",
		"  From the VM\n",
		"    ✗ step 8 http GET http://127.0.0.1:18789/: expected works, got fails: refused (connection refused (rejected))\n",
		"  From the LAN host: not run — " + steps.LANUnproven + "\n",
		"    ✓ step 8 probes from another LAN host: expected optional",
	}
	at := 0
	for _, want := range order {
		i := strings.Index(out[at:], want)
		if i < 0 {
			t.Fatalf("missing or out of order: %q\nin:\n%s", want, out)
		}
		at += i + len(want)
	}
}

func TestPrintChecksLANHostAddressAndHint(t *testing.T) {
	cs := []steps.Check{{ID: "step8.lan.ssh-login", Name: "SSH to the LAN host 192.168.1.2 as admin", Expect: "logged in, probes run", OK: true,
		Got:    "not run: the VM cannot reach the LAN host over SSH (dropped), as the hardening intends (UFW denies out to 192.168.1.0/24)",
		Reason: steps.LANUnproven + "; run on the LAN host: nc -zv -w 5 192.168.1.10 22", Source: "lan", Target: "192.168.1.2:22"}}
	var b bytes.Buffer
	printChecks(printer{w: &b}, 8, cs)
	out := b.String()
	for _, want := range []string{"  From the LAN host 192.168.1.2: not run — unproven without it: ", "\n    run on the LAN host: nc -zv -w 5 192.168.1.10 22\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("missing %q in:\n%s", want, out)
		}
	}
	// A LAN host that ran its probes has a plain heading with its address.
	cs[0].Got, cs[0].Reason = "ran 3 probes (host key SHA256:x, not pinned)", ""
	b.Reset()
	printChecks(printer{w: &b}, 8, cs)
	if !strings.Contains(b.String(), "  From the LAN host 192.168.1.2\n") || strings.Contains(b.String(), "not run") {
		t.Errorf("ran: %s", b.String())
	}
	// Steps without sources keep the flat list.
	b.Reset()
	printChecks(printer{w: &b}, 1, []steps.Check{{Name: "baseline parses", Expect: "yes", Got: "yes", OK: true}})
	if b.String() != "  ✓ step 1 baseline parses: expected yes, got yes\n\n" {
		t.Errorf("flat: %q", b.String())
	}
}

func survivalSession(t *testing.T) *steps.Session {
	t.Helper()
	h := system.NewFakeHost(t.TempDir(), t.TempDir(), system.NewFakeRunner(nil), false)
	s := steps.NewSession(h, steps.Defaults(), nil)
	s.Steps = []steps.Step{steps.DockerUserStep{}, steps.DaemonStep{}}
	return s
}

func TestVerifyReportsWhatSurvivalWasProven(t *testing.T) {
	s := survivalSession(t)
	at := time.Date(2026, 11, 25, 18, 3, 0, 0, time.UTC)
	s.State.Survival = map[string]*steps.Survival{"4": {Boot: "b", Docker: "d", DockerRestart: &at}}

	var b bytes.Buffer
	printSurvival(printer{w: &b}, s, 4)
	out := b.String()
	for _, want := range []string{
		"Step 4's rules after restarts (seen by passing verifications; not a check)",
		"    ✓ survived a Docker restart, proven at 2026-11-25T18:03:00Z\n",
		"    ? never proven to survive a reboot; to prove it: reboot, then openclaw-harden verify --step 4\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("missing %q in:\n%s", want, out)
		}
	}
	b.Reset()
	printSurvival(printer{w: &b}, s, 5)
	if b.Len() != 0 {
		t.Errorf("step 5 is not tracked, yet: %s", b.String())
	}

	// JSON: Step 4 carries "proven" with null for what never was; other steps leave it out.
	data, _ := json.Marshal([]stepReport{{Step: 4, Proven: proven(s, 4)}, {Step: 5, Proven: proven(s, 5)}})
	for _, want := range []string{`"proven":{"docker_restart":"2026-11-25T18:03:00Z","reboot":null}`} {
		if !strings.Contains(string(data), want) {
			t.Errorf("missing %s in %s", want, data)
		}
	}
	if strings.Count(string(data), `"proven"`) != 1 {
		t.Errorf("proven on a step that is not tracked: %s", data)
	}

	// Nothing recorded yet (never passed): both null, both with the command to prove them.
	s.State.Survival = nil
	b.Reset()
	printSurvival(printer{w: &b}, s, 4)
	if !strings.Contains(b.String(), "to prove it: systemctl restart docker && openclaw-harden verify --step 4") {
		t.Errorf("no restart instruction:\n%s", b.String())
	}
	data, _ = json.Marshal(stepReport{Step: 4, Proven: proven(s, 4)})
	if !strings.Contains(string(data), `"proven":{"docker_restart":null,"reboot":null}`) {
		t.Errorf("%s", data)
	}
}
