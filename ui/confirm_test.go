package ui

import (
	"context"
	"testing"

	"openclaw-harden/steps"
	"openclaw-harden/system"
)

// switchStep is a fakeStep whose checks pass only once the operator confirmed its switches by hand.
type switchStep struct {
	*fakeStep
	confirmed []string
}

func (s *switchStep) Confirmations(steps.Answers) []steps.Confirmation {
	return []steps.Confirmation{
		{ID: "datacenter", Name: "datacenter firewall on", Commands: []string{"pvesh get /cluster/firewall/options --output-format json"}, Expect: `"enable": 1`},
		{ID: "nic", Name: "net0 firewall=1", Commands: []string{"qm config 100 | grep ^net0:"}, Expect: "firewall=1"},
	}
}

func (s *switchStep) Confirm(_ *system.Host, _ steps.Answers, ids []string) error {
	s.confirmed = ids
	return nil
}

func (s *switchStep) Verify(ctx context.Context, h *system.Host, a steps.Answers) []steps.Check {
	ok := len(s.confirmed) == 2
	c := steps.Check{ID: "fake.switches", Name: "switches confirmed", Expect: "datacenter, nic", Got: "not confirmed", OK: ok}
	if ok {
		c.Got = "datacenter, nic"
	}
	return []steps.Check{c}
}

func TestConfirmSwitchesByHandThenVerify(t *testing.T) {
	st := &switchStep{fakeStep: &fakeStep{id: 3, title: "Proxmox VM firewall", path: "/var/lib/x/100.fw", want: "[OPTIONS]\nenable: 1\n"}}
	s, _ := newTestSession(t, false, "192.168.1.50", st, dockerStep())
	m := press(t, start(t, newTestModel(s, Options{})), "enter", "y")
	if m.phase != phaseVerified || steps.Passed(m.checks[0]) {
		t.Fatalf("want failed verification before confirmation; phase %d", m.phase)
	}
	requireContains(t, plain(m), "o confirm on the node")
	m = press(t, m, "o")
	requireContains(t, plain(m), "Confirm by hand", "$ qm config 100 | grep ^net0:", "expected: firewall=1", "y confirm")
	assertFits(t, plain(m), 80, 24)
	m = press(t, m, "n")
	if m.phase != phaseVerified || st.confirmed != nil {
		t.Fatal("n must go back without recording anything")
	}
	m = press(t, m, "o", "y")
	if len(st.confirmed) != 2 || !steps.Passed(m.checks[0]) {
		t.Fatalf("confirmed %v, checks %+v", st.confirmed, m.checks[0])
	}
	m = press(t, m, "enter")
	if m.cur != 1 {
		t.Fatalf("after confirmation and a passing verify the wizard should go on; cur %d", m.cur)
	}
}

func TestDryRunOffersNoConfirmation(t *testing.T) {
	st := &switchStep{fakeStep: &fakeStep{id: 3, title: "Proxmox VM firewall", path: "/var/lib/x/100.fw", want: "x\n"}}
	s, _ := newTestSession(t, true, "192.168.1.50", st)
	m := press(t, start(t, newTestModel(s, Options{DryRun: true})), "enter", "y", "enter", "o")
	if m.phase == phaseSwitches || st.confirmed != nil {
		t.Fatal("a dry run must not record confirmations")
	}
}
