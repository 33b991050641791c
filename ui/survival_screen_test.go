package ui

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/charmbracelet/x/exp/golden"

	"openclaw-harden/steps"
	"openclaw-harden/system"
)

// survivorCanned is a passing Step 4 whose survival is tracked, like DockerUserStep.
type survivorCanned struct{ cannedStep }

func (survivorCanned) TracksSurvival() {}

func step4Survivor() survivorCanned {
	return survivorCanned{cannedStep{id: 4, title: "Docker-aware LAN isolation (DOCKER-USER)", checks: []steps.Check{
		{ID: "step4.after-rules", Name: "/etc/ufw/after.rules holds the DOCKER-USER block", Expect: "present, as generated", Got: "present, as generated", OK: true},
		{ID: "step4.live", Name: "live DOCKER-USER chain (iptables -S DOCKER-USER)", Expect: "the block's 9 rules, RETURN last", Got: "the block's 9 rules, RETURN last", OK: true},
		{ID: "step4.forward-jump", Name: "FORWARD jumps to DOCKER-USER first", Expect: "-A FORWARD -j DOCKER-USER first", Got: "first", OK: true},
	}}}
}

const dockerInvocationArgv = "systemctl show docker.service -p InvocationID --value"

// survivalSession is a session over a fake host with a boot id and a Docker invocation; restart is the
// wizard's RestartDocker hook over it, which gives Docker a new invocation.
func survivalSession(t *testing.T, ss ...steps.Step) (*steps.Session, func(context.Context) error, *int) {
	t.Helper()
	s, h := newTestSession(t, false, "192.168.1.50", ss...)
	fr := h.Runner.(*system.FakeRunner)
	fr.Set(dockerInvocationArgv, system.FakeResponse{Stdout: "6f1c0d0e5a0b4c7e9d2f3a4b5c6d7e80\n"})
	p := h.Path(steps.BootIDPath)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte("0d6e6c52-7c1a-4a43-9d1f-1f6f0b6b1c11\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	restarts := 0
	restart := func(context.Context) error {
		restarts++
		fr.Set(dockerInvocationArgv, system.FakeResponse{Stdout: "a2b3c4d5e6f708192a3b4c5d6e7f8091\n"})
		return nil
	}
	return s, restart, &restarts
}

// TestSurvivalScreens pins Step 4's verification screen before and after the operator restarts Docker from
// the wizard. Regenerate with: go test ./ui -run TestSurvivalScreens -update
func TestSurvivalScreens(t *testing.T) {
	cases := []struct {
		name    string
		restart bool
		wants   []string
	}{
		{"step4_never_proven", false, []string{"After restarts: Step 4's rules", "Docker restart: never proven. Press x to restart Docker and",
			"Reboot: never proven. Reboot the VM, then run:", "$ openclaw-harden verify --step 4"}},
		{"step4_docker_restart_proven", true, []string{"Docker restarted; verified again", "✓ Docker restart: survived, proven at 2025-03-14T09:26:53Z",
			"Reboot: never proven"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s, restart, restarts := survivalSession(t, step4Survivor())
			m := start(t, newTestModel(s, Options{RestartDocker: restart}))
			if m.phase != phaseVerified || !steps.Passed(m.checks[0]) {
				t.Fatalf("phase %d, want a passed verification:\n%s", m.phase, plain(m))
			}
			if c.restart {
				m = press(t, m, "x")
				if *restarts != 1 || m.phase != phaseVerified {
					t.Fatalf("restarts %d, phase %d", *restarts, m.phase)
				}
			}
			view := plain(m)
			assertFits(t, view, m.width, m.height)
			requireContains(t, view, c.wants...)
			golden.RequireEqual(t, []byte(view))
			requireContains(t, plain(press(t, m, "?")), "restart Docker, verify again") // the full help lists the key
		})
	}
}

// On Step 5's screen the restart re-verifies Step 4 too, so its proof is recorded there as well.
func TestRestartDockerFromStep5ProvesStep4(t *testing.T) {
	s, restart, restarts := survivalSession(t, step4Survivor(), cannedStep{id: 5, title: "Docker daemon hardening", checks: []steps.Check{
		{ID: "step5.icc", Name: "icc off on the default bridge", Expect: "false", Got: "false", OK: true}}})
	m := start(t, newTestModel(s, Options{RestartDocker: restart}))
	m = press(t, m, "enter") // Step 4 passed: on to Step 5, verified straight away (no changes)
	if m.cur != 1 || m.phase != phaseVerified {
		t.Fatalf("cur %d phase %d:\n%s", m.cur, m.phase, plain(m))
	}
	requireContains(t, plain(m), "After restarts: Step 4's rules", "Press x to restart Docker")
	m = press(t, m, "x")
	if *restarts != 1 {
		t.Fatalf("restarts %d", *restarts)
	}
	if sv, _ := s.Survival(4); sv.DockerRestart == nil {
		t.Fatalf("Step 4 not re-verified after the restart from Step 5: %+v", sv)
	}
	if len(m.checks[0]) == 0 || len(m.checks[1]) == 0 {
		t.Fatalf("checks: %+v", m.checks)
	}
	requireContains(t, plain(m), "✓ Docker restart: survived, proven at")
}

// Without the hook, in a dry run, or when the restart fails, the screen says so and never claims a proof.
func TestRestartDockerNotOfferedOrFailing(t *testing.T) {
	s, _, _ := survivalSession(t, step4Survivor())
	m := start(t, newTestModel(s, Options{}))
	view := plain(m)
	requireContains(t, view, "Docker restart: never proven. To prove it, run:", "$ systemctl restart docker && openclaw-harden verify --step 4")
	if strings.Contains(view, "Press x") {
		t.Errorf("offered without a hook:\n%s", view)
	}
	if m = press(t, m, "x"); m.phase != phaseVerified {
		t.Fatalf("x without a hook did something: phase %d", m.phase)
	}

	s, _, _ = survivalSession(t, step4Survivor())
	s.Host.DryRun = true
	m = start(t, newTestModel(s, Options{DryRun: true, RestartDocker: func(context.Context) error { t.Fatal("restarted in a dry run"); return nil }}))
	m = press(t, m, "x")
	if strings.Contains(plain(m), "Press x") {
		t.Errorf("offered in a dry run:\n%s", plain(m))
	}

	s, _, _ = survivalSession(t, step4Survivor())
	m = start(t, newTestModel(s, Options{RestartDocker: func(context.Context) error { return errors.New("Job for docker.service failed") }}))
	m = press(t, m, "x")
	requireContains(t, plain(m), "Docker restart failed: Job for docker.service failed; verified again anyway", "Docker restart: never proven")

	// Other steps never show it.
	s2, _, _ := survivalSession(t, cannedStep{id: 6, title: "Compose", checks: []steps.Check{{ID: "c", Name: "c", Expect: "x", Got: "x", OK: true}}})
	m = start(t, newTestModel(s2, Options{RestartDocker: func(context.Context) error { return nil }}))
	if v := plain(m); strings.Contains(v, "After restarts") || strings.Contains(v, "restart Docker") {
		t.Errorf("step 6 shows the restart:\n%s", v)
	}
}
