package ui

import (
	"context"
	"io"
	"sync/atomic"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/x/ansi"
	"github.com/charmbracelet/x/exp/teatest/v2"

	"openclaw-harden/steps"
)

// probeMsg does nothing; sending it lets the program's filter see the model as it is now.
type probeMsg struct{}

type where struct {
	phase phase
	cur   int
}

// TestEndToEndTwoSteps runs the real Bubble Tea program over two steps with a fake host: plan, confirm,
// apply, verify, next, twice, then the final screen; and checks what state.json says afterwards.
func TestEndToEndTwoSteps(t *testing.T) {
	s, h := newTestSession(t, false, "192.168.1.50", sshStep(), dockerStep())
	seedDaemonJSON(t, h)

	var seen atomic.Value
	observe := func(m tea.Model, msg tea.Msg) tea.Msg {
		if mm, ok := m.(Model); ok {
			seen.Store(where{mm.phase, mm.cur})
		}
		return msg
	}
	var tookAfter atomic.Bool
	m := New(s, Options{Audit: AuditHooks{
		TakeAfter: func(context.Context) error { tookAfter.Store(true); return nil },
		Latest: func() (string, string, error) {
			return "sshd  passwordauthentication = yes\n", "sshd  passwordauthentication = no\n", nil
		},
	}})
	m.explain = testExplain
	tm := teatest.NewTestModel(t, m, teatest.WithInitialTermSize(80, 24),
		teatest.WithProgramOptions(tea.WithFilter(observe)))

	// Keys sent before the screen that takes them would be lost, so wait for each screen first.
	waitFor := func(p phase, cur int) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for time.Now().Before(deadline) {
			tm.Send(probeMsg{})
			if w, ok := seen.Load().(where); ok && w == (where{p, cur}) {
				return
			}
			time.Sleep(5 * time.Millisecond)
		}
		t.Fatalf("never reached phase %d at step index %d (last seen %+v)", p, cur, seen.Load())
	}
	for i := range 2 {
		waitFor(phasePlan, i)
		tm.Send(keyMsg("enter"))
		waitFor(phaseConfirm, i)
		tm.Send(keyMsg("y"))
		waitFor(phaseVerified, i)
		tm.Send(keyMsg("enter"))
	}
	waitFor(phaseFinal, 2)
	tm.Send(keyMsg("q"))

	fm, ok := tm.FinalModel(t, teatest.WithFinalTimeout(5*time.Second)).(Model)
	if !ok {
		t.Fatal("final model is not a ui.Model")
	}
	requireContains(t, plain(fm), "2 of 2 steps passed.", "-sshd  passwordauthentication = yes", "+sshd  passwordauthentication = no")
	out, err := io.ReadAll(tm.FinalOutput(t))
	if err != nil {
		t.Fatal(err)
	}
	requireContains(t, ansi.Strip(string(out)), "openclaw-harden", "Docker daemon hardening", "passed")
	if !tookAfter.Load() {
		t.Error("the after snapshot was not taken")
	}

	st := loadState(t, h)
	for _, id := range []int{0, 5} {
		if got := st.Get(id).Status; got != steps.StatusPassed {
			t.Errorf("state.json: step %d is %q, want passed", id, got)
		}
	}
	if st.Answers == nil || st.Answers.AdminSource != "192.168.1.50" {
		t.Errorf("state.json answers: %+v", st.Answers)
	}
}
