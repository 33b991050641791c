package ui

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/x/ansi"
	"github.com/charmbracelet/x/exp/golden"

	"openclaw-harden/steps"
	"openclaw-harden/system"
)

// seedDaemonJSON puts a pre-existing daemon.json on the fake host, so the docker step shows a "~" diff.
func seedDaemonJSON(t *testing.T, h *system.Host) {
	t.Helper()
	p := h.Path("/etc/docker/daemon.json")
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(daemonBefore), 0o644); err != nil {
		t.Fatal(err)
	}
}

func loadState(t *testing.T, h *system.Host) *steps.State {
	t.Helper()
	st, err := steps.LoadState(h)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// TestGolden pins the main screens at 80×24, ANSI-stripped. Regenerate with: go test ./ui -update
func TestGolden(t *testing.T) {
	cases := []struct {
		name  string
		build func(t *testing.T) Model
	}{
		{"first_screen", func(t *testing.T) Model {
			s, _ := newTestSession(t, false, "", sshStep(), auditStep(), dockerStep(), laterStep())
			return start(t, newTestModel(s, Options{AskAdminSource: "192.168.1.50", AnswersPath: "/root/answers.yaml"}))
		}},
		{"plan_diff", func(t *testing.T) Model {
			s, h := newTestSession(t, false, "192.168.1.50", dockerStep(), laterStep())
			seedDaemonJSON(t, h)
			return start(t, newTestModel(s, Options{}))
		}},
		{"plan_commands", func(t *testing.T) Model {
			s, _ := newTestSession(t, false, "192.168.1.50", sshStep())
			return press(t, start(t, newTestModel(s, Options{})), "c")
		}},
		{"confirm", func(t *testing.T) Model {
			s, _ := newTestSession(t, false, "192.168.1.50", sshStep(), dockerStep())
			return press(t, start(t, newTestModel(s, Options{})), "enter")
		}},
		{"risk", func(t *testing.T) Model {
			st := sshStep()
			st.risk = "No key login for a sudo user has been seen to work; switching passwords off may lock you out."
			s, _ := newTestSession(t, false, "192.168.1.50", st)
			return press(t, start(t, newTestModel(s, Options{})), "enter")
		}},
		{"verify_failed", func(t *testing.T) Model {
			st := sshStep()
			st.failing.Store(true)
			s, _ := newTestSession(t, false, "192.168.1.50", st, dockerStep())
			return press(t, start(t, newTestModel(s, Options{})), "enter", "y")
		}},
		{"verify_details", func(t *testing.T) Model {
			st := sshStep()
			st.failing.Store(true)
			s, _ := newTestSession(t, true, "192.168.1.50", st)
			return press(t, start(t, newTestModel(s, Options{DryRun: true})), "enter", "y", "enter", "d")
		}},
		{"blocked", func(t *testing.T) Model {
			st := sshStep()
			st.blocked = "no key login for a sudo user has worked yet; log in with a key as admin first, then run the wizard again."
			s, _ := newTestSession(t, false, "192.168.1.50", st)
			return start(t, newTestModel(s, Options{}))
		}},
		{"not_available", func(t *testing.T) Model {
			s, _ := newTestSession(t, false, "192.168.1.50", laterStep())
			return start(t, newTestModel(s, Options{}))
		}},
		{"dry_run_would", func(t *testing.T) Model {
			s, h := newTestSession(t, true, "192.168.1.50", dockerStep(), sshStep())
			seedDaemonJSON(t, h)
			return press(t, start(t, newTestModel(s, Options{DryRun: true})), "enter", "y")
		}},
		{"final_audit", func(t *testing.T) Model {
			s, _ := newTestSession(t, false, "192.168.1.50", sshStep(), laterStep())
			m := newTestModel(s, Options{Audit: AuditHooks{Latest: func() (string, string, error) {
				return "sshd  passwordauthentication = yes\nsshd  permitrootlogin = yes\nufw  status = inactive\nlisten  0.0.0.0:18789 node\n",
					"sshd  passwordauthentication = no\nsshd  permitrootlogin = no\nufw  status = active\nlisten  127.0.0.1:18789 node\n", nil
			}}})
			return press(t, start(t, m), "enter", "y", "enter", "s")
		}},
		{"review_earlier_step", func(t *testing.T) Model {
			s, _ := newTestSession(t, false, "192.168.1.50", sshStep(), dockerStep())
			return press(t, start(t, newTestModel(s, Options{})), "enter", "y", "enter", "left")
		}},
		{"wide_120x30", func(t *testing.T) Model {
			s, h := newTestSession(t, false, "192.168.1.50", sshStep(), auditStep(), dockerStep(), laterStep())
			seedDaemonJSON(t, h)
			m := start(t, newTestModel(s, Options{}))
			m = press(t, m, "enter", "y", "enter")
			return resize(m, 120, 30)
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m := c.build(t)
			view := plain(m)
			assertFits(t, view, m.width, m.height)
			golden.RequireEqual(t, []byte(view))
		})
	}
}

func assertFits(t *testing.T, view string, w, h int) {
	t.Helper()
	lines := strings.Split(view, "\n")
	if len(lines) > h {
		t.Errorf("%d lines, more than the terminal's %d", len(lines), h)
	}
	for i, l := range lines {
		if got := ansi.StringWidth(l); got > w {
			t.Errorf("line %d is %d cells wide, more than %d: %q", i+1, got, w, l)
		}
	}
}

func TestAdminSourceIsAskedValidatedAndKept(t *testing.T) {
	s, h := newTestSession(t, false, "", sshStep())
	m := start(t, newTestModel(s, Options{AskAdminSource: "192.168.1.50"}))
	if m.phase != phaseAsk {
		t.Fatalf("phase %d, want the admin source question first", m.phase)
	}
	requireContains(t, plain(m), "admin source › 192.168.1.50", "You are connected from 192.168.1.50")

	m = press(t, m, "ctrl+u")
	m = typeText(t, m, "10.0.0.0/8")
	m = press(t, m, "enter")
	if m.phase != phaseAsk {
		t.Fatalf("a /8 admin source was accepted")
	}
	requireContains(t, plain(m), "admin_source", "no wider than /16")

	m = press(t, m, "ctrl+u")
	m = press(t, m, "enter")
	requireContains(t, plain(m), "give the address of the machine")

	m = typeText(t, m, "192.168.1.48/29")
	m = press(t, m, "enter")
	if m.phase != phasePlan {
		t.Fatalf("phase %d after a good admin source, want the plan", m.phase)
	}
	if s.Answers.AdminSource != "192.168.1.48/29" || s.State.Answers.AdminSource != "192.168.1.48/29" {
		t.Fatalf("admin source not stored: answers %q, state %+v", s.Answers.AdminSource, s.State.Answers)
	}
	if got := loadState(t, h).Answers; got == nil || got.AdminSource != "192.168.1.48/29" {
		t.Fatalf("state.json does not hold the admin source: %+v", got)
	}
}

func TestFailedVerificationCannotBePassed(t *testing.T) {
	st := sshStep()
	st.failing.Store(true)
	s, h := newTestSession(t, false, "192.168.1.50", st, dockerStep())
	m := press(t, start(t, newTestModel(s, Options{})), "enter", "y")
	if m.phase != phaseVerified {
		t.Fatalf("phase %d, want verification results", m.phase)
	}
	requireContains(t, plain(m), "✗ 1 of 2 checks failed", "You cannot go on", "50-cloud-init.conf is read first")

	for _, k := range []string{"enter", "right", "s", "n", "y"} {
		m = press(t, m, k)
		if m.cur != 0 {
			t.Fatalf("key %q moved past a failed step", k)
		}
	}
	m = press(t, m, "enter")
	requireContains(t, plain(m), "this step has not passed")
	if got := loadState(t, h).Get(0).Status; got != steps.StatusFailed {
		t.Fatalf("state.json says %q, want failed", got)
	}

	// Fixing the cause and retrying is the way on.
	st.failing.Store(false)
	m = press(t, m, "r")
	if m.phase != phaseVerified || !strings.Contains(plain(m), "No changes") {
		t.Fatalf("retry of an applied step should re-plan to no changes and re-verify:\n%s", plain(m))
	}
	m = press(t, m, "enter")
	if m.cur != 1 || m.phase != phasePlan {
		t.Fatalf("after a pass, enter should plan the next step; cur %d phase %d", m.cur, m.phase)
	}
	if got := loadState(t, h).Get(0).Status; got != steps.StatusPassed {
		t.Fatalf("state.json says %q, want passed", got)
	}
}

func TestQuitIsRefusedWhileApplying(t *testing.T) {
	st := sshStep()
	st.gate = make(chan struct{})
	s, _ := newTestSession(t, false, "192.168.1.50", st)
	m := press(t, start(t, newTestModel(s, Options{})), "enter")

	nm, applyCmd := m.Update(keyMsg("y"))
	m = nm.(Model)
	if m.phase != phaseApplying {
		t.Fatalf("phase %d, want applying", m.phase)
	}
	for _, msg := range []tea.Msg{keyMsg("q"), keyMsg("ctrl+c"), quitRequestMsg{}} {
		nm, cmd := m.Update(msg)
		m = nm.(Model)
		if cmd != nil {
			if _, quit := cmd().(tea.QuitMsg); quit {
				t.Fatalf("%v quit while applying", msg)
			}
		}
		requireContains(t, plain(m), "applying; quitting now would leave it half-done")
	}
	close(st.gate)
	m = drive(t, m, applyCmd)
	if m.phase != phaseVerified {
		t.Fatalf("phase %d after apply, want verified", m.phase)
	}
	nm, cmd := m.Update(keyMsg("q"))
	if cmd == nil || !nm.(Model).quitting {
		t.Fatal("q after the apply finished did not quit")
	}
	if _, ok := cmd().(tea.QuitMsg); !ok {
		t.Fatal("q did not return tea.Quit")
	}
}

func TestSignalsAreQuitRequests(t *testing.T) {
	applying := Model{phase: phaseApplying}
	idle := Model{phase: phasePlan}
	for _, c := range []struct {
		m    Model
		in   tea.Msg
		want tea.Msg
	}{
		{applying, tea.InterruptMsg{}, quitRequestMsg{}},
		{applying, tea.QuitMsg{}, quitRequestMsg{}},
		{idle, tea.InterruptMsg{}, quitRequestMsg{}},
		{idle, tea.QuitMsg{}, tea.QuitMsg{}},
		{applying, keyMsg("j"), keyMsg("j")},
	} {
		if got := quitFilter(c.m, c.in); got != c.want {
			t.Errorf("phase %d, %T: got %T, want %T", c.m.phase, c.in, got, c.want)
		}
	}
}

func TestNoColorHasNoEscapes(t *testing.T) {
	st := sshStep()
	st.failing.Store(true)
	s, _ := newTestSession(t, true, "", st, laterStep())
	m := New(s, Options{NoColor: true, DryRun: true, AskAdminSource: "192.168.1.50"})
	m = resize(m, 80, 24)
	check := func(label string) {
		t.Helper()
		if v := m.View().Content; strings.Contains(v, "\x1b") {
			t.Fatalf("%s: NO_COLOR view has escape sequences: %q", label, v)
		}
	}
	check("first screen")
	m = start(t, m)
	for _, k := range []string{"enter", "c", "enter", "?", "y", "enter", "d", "?", "u", "esc"} {
		m = press(t, m, k)
		check("after " + k)
	}
	// The colour variant of the same screen must differ, or the test proves nothing.
	col := m
	col.st = newStyles(false)
	col.help.Styles = col.st.help
	if !strings.Contains(col.View().Content, "\x1b[") {
		t.Fatal("the colour styles render no escape sequences either; the NO_COLOR check is vacuous")
	}
}

func TestEveryScreenFits(t *testing.T) {
	sizes := [][2]int{{80, 24}, {100, 30}, {132, 43}, {60, 18}}
	for _, sz := range sizes {
		w, h := sz[0], sz[1]
		st := sshStep()
		st.failing.Store(true)
		st.risk = "switching passwords off may lock you out if your key does not work " + strings.Repeat("really ", 20)
		st.notes = append(st.notes, strings.Repeat("a-very-long-unbroken-token-", 8))
		st.commands = append(st.commands, "iptables -I DOCKER-USER 1 -s 172.20.0.0/24 -d 192.168.0.0/16 -m conntrack --ctstate NEW -j DROP")
		s, _ := newTestSession(t, false, "", st, dockerStep(), laterStep())
		m := New(s, Options{AskAdminSource: "192.168.1.50"})
		m.explain = func(int) string { return strings.Repeat("Long explanation text. ", 60) }
		m = resize(m, w, h)
		assertFits(t, plain(m), w, h)
		m = start(t, m)
		m = press(t, m, "enter")
		for _, k := range []string{"c", "?", "enter", "esc", "enter", "?"} {
			m = press(t, m, k)
			assertFits(t, plain(m), w, h)
		}
		m = typeText(t, m, "accept")
		m = press(t, m, "enter")
		assertFits(t, plain(m), w, h)
		m = press(t, m, "y")
		for _, k := range []string{"d", "down", "left", "esc", "u", "n", "?"} {
			m = press(t, m, k)
			assertFits(t, plain(m), w, h)
		}
	}
}

func TestRiskMustBeAcceptedByTyping(t *testing.T) {
	st := sshStep()
	st.risk = "Switching passwords off may lock you out."
	s, _ := newTestSession(t, false, "192.168.1.50", st)
	m := press(t, start(t, newTestModel(s, Options{})), "enter")
	if m.phase != phaseRisk {
		t.Fatalf("phase %d, want the risk screen", m.phase)
	}
	requireContains(t, plain(m), "named risk", "Switching passwords off may lock you out.")
	m = press(t, m, "y", "enter")
	if m.phase != phaseRisk || st.applied.Load() != 0 {
		t.Fatal("y and enter accepted a named risk")
	}
	requireContains(t, plain(m), `type the word "accept"`)
	m = press(t, m, "backspace")
	m = typeText(t, m, "accept")
	m = press(t, m, "enter")
	if m.phase != phaseConfirm {
		t.Fatalf("phase %d after accepting, want the confirmation", m.phase)
	}
	m = press(t, m, "y")
	if st.applied.Load() != 1 || m.phase != phaseVerified {
		t.Fatalf("accepted risk did not lead to apply and verify (phase %d)", m.phase)
	}
}

func TestBlockedStepIsRefused(t *testing.T) {
	st := sshStep()
	st.blocked = "no key login has worked yet."
	s, h := newTestSession(t, false, "192.168.1.50", st, dockerStep())
	m := start(t, newTestModel(s, Options{}))
	requireContains(t, plain(m), "! Refused: no key login has worked yet.", "Nothing was changed")
	m = press(t, m, "enter", "y", "s", "right")
	if m.cur != 0 || st.applied.Load() != 0 {
		t.Fatal("a blocked step was applied or passed")
	}
	if got := loadState(t, h).Get(0).Status; got != steps.StatusBlocked {
		t.Fatalf("state.json says %q, want blocked", got)
	}
	st.blocked = ""
	m = press(t, m, "r")
	if m.phase != phasePlan {
		t.Fatalf("retry after the cause was fixed: phase %d, want the plan", m.phase)
	}
}

func TestNotAvailableStepNeverPasses(t *testing.T) {
	s, h := newTestSession(t, false, "192.168.1.50", laterStep(), sshStep())
	m := start(t, newTestModel(s, Options{}))
	requireContains(t, plain(m), "not available yet", "–8")
	m = press(t, m, "enter", "y")
	if m.cur != 0 {
		t.Fatal("enter or y moved past a step that is not available")
	}
	m = press(t, m, "s")
	if m.cur != 1 || m.phase != phasePlan {
		t.Fatalf("s should go on to the next step: cur %d phase %d", m.cur, m.phase)
	}
	// Session records "not available yet" only for the registry's placeholders; a step whose own Plan says
	// so is left pending there. Either way it must never read as passed.
	if got := loadState(t, h).Get(8).Status; got == steps.StatusPassed {
		t.Fatalf("state.json says %q for the unavailable step", got)
	}
	requireContains(t, plain(m), "–8")
}

func TestEmptyPlanGoesStraightToVerification(t *testing.T) {
	st := sshStep()
	s, h := newTestSession(t, false, "192.168.1.50", st)
	p := h.Path(st.path)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(st.want), 0o644); err != nil {
		t.Fatal(err)
	}
	m := start(t, newTestModel(s, Options{}))
	if m.phase != phaseVerified || st.applied.Load() != 0 {
		t.Fatalf("phase %d, applied %d: an empty plan must skip confirm and apply", m.phase, st.applied.Load())
	}
	requireContains(t, plain(m), "No changes", "✓ All 2 checks passed.")
}

func TestRollbackRestoresAndReplans(t *testing.T) {
	st := sshStep()
	st.failing.Store(true)
	s, h := newTestSession(t, false, "192.168.1.50", st)
	m := press(t, start(t, newTestModel(s, Options{})), "enter", "y")
	if _, err := os.Stat(h.Path(st.path)); err != nil {
		t.Fatalf("apply did not write the file: %v", err)
	}
	m = press(t, m, "u")
	requireContains(t, plain(m), "Roll back Step 0?")
	m = press(t, m, "y")
	if _, err := os.Stat(h.Path(st.path)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("rollback left the file in place: %v", err)
	}
	if m.phase != phasePlan {
		t.Fatalf("phase %d after rollback, want a fresh plan", m.phase)
	}
	requireContains(t, plain(m), "Step 0 rolled back: restored /etc/ssh/sshd_config.d/00-openclaw-harden.conf")
	if got := loadState(t, h).Get(0).Status; got != steps.StatusPending {
		t.Fatalf("state.json says %q after rollback, want pending", got)
	}
}

func TestReviewIsReadOnly(t *testing.T) {
	first, second := sshStep(), dockerStep()
	s, _ := newTestSession(t, false, "192.168.1.50", first, second)
	m := press(t, start(t, newTestModel(s, Options{})), "enter", "y", "enter")
	if m.cur != 1 {
		t.Fatalf("cur %d, want the second step", m.cur)
	}
	m = press(t, m, "left")
	requireContains(t, plain(m), "Reviewing Step 0 (read-only): passed", "(✓0)", "[·5]")
	m = press(t, m, "enter", "y", "u", "y", "r")
	if first.applied.Load() != 1 || second.applied.Load() != 0 || m.phase != phasePlan {
		t.Fatal("keys acted on a step under review")
	}
	m = press(t, m, "right")
	if m.reviewing() {
		t.Fatal("→ from the last earlier step should return to the current one")
	}
	m = press(t, m, "left", "esc")
	if m.reviewing() {
		t.Fatal("esc should leave review")
	}
}

func TestApplyLogShowsJournal(t *testing.T) {
	st := sshStep()
	st.failing.Store(true)
	s, _ := newTestSession(t, false, "192.168.1.50", st)
	m := press(t, start(t, newTestModel(s, Options{})), "enter", "y", "d")
	requireContains(t, plain(m), "Log (apply and verify)", "write: /etc/ssh/sshd_config.d/00-openclaw-harden.conf", "run: systemctl reload ssh")
}

func TestDryRunShowsWouldAndWritesNothing(t *testing.T) {
	st := sshStep()
	s, h := newTestSession(t, true, "192.168.1.50", st)
	m := press(t, start(t, newTestModel(s, Options{DryRun: true})), "enter", "y")
	requireContains(t, plain(m), "DRY RUN: nothing is changed", "would write: /etc/ssh/sshd_config.d/00-openclaw-harden.conf", "would run: systemctl reload ssh")
	if _, err := os.Stat(h.Path(st.path)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("dry run wrote the file: %v", err)
	}
	if _, err := os.Stat(filepath.Join(h.StateDir, "state.json")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("dry run wrote state.json: %v", err)
	}
}

func TestDryRunUIRefusesAWritingHost(t *testing.T) {
	st := sshStep()
	s, h := newTestSession(t, false, "192.168.1.50", st)
	m := press(t, start(t, newTestModel(s, Options{DryRun: true})), "enter", "y")
	requireContains(t, plain(m), "Apply failed: refusing to apply")
	if _, err := os.Stat(h.Path(st.path)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the file was written: %v", err)
	}
}

func TestResumeAfterAllPassedReverifies(t *testing.T) {
	st := sshStep()
	s, _ := newTestSession(t, false, "192.168.1.50", st)
	s.State.Set(0, steps.StatusPassed, "", testNow)
	m := newTestModel(s, Options{})
	if m.cur != 0 || !m.recheck {
		t.Fatalf("cur %d recheck %v: a fully passed run should re-verify from Step 0", m.cur, m.recheck)
	}
	requireContains(t, plain(m), "re-verifying")
}

func TestStatusGlyphs(t *testing.T) {
	want := map[steps.Status]string{
		steps.StatusPassed: "✓", steps.StatusFailed: "✗", steps.StatusBlocked: "!", steps.StatusApplying: "…",
		steps.StatusInterrupted: "⟳", steps.StatusPending: "·", steps.StatusUnavailable: "–", steps.StatusApplied: "?",
	}
	for s, g := range want {
		if got := glyphFor(s); got != g {
			t.Errorf("%s: %q, want %q", s, got, g)
		}
	}
}

func TestFailedApplyCannotBePassed(t *testing.T) {
	st := sshStep()
	st.applyErr = errors.New("running \"systemctl reload ssh\" failed: exit status 1\nJob for ssh.service failed")
	s, h := newTestSession(t, false, "192.168.1.50", st, dockerStep())
	m := press(t, start(t, newTestModel(s, Options{})), "enter", "y")
	requireContains(t, plain(m), "✗ Apply failed: running \"systemctl reload ssh\" failed: exit status 1", "marked failed")
	m = press(t, m, "enter")
	if m.cur != 0 {
		t.Fatal("moved past a step whose apply failed")
	}
	if got := loadState(t, h).Get(0).Status; got != steps.StatusFailed {
		t.Fatalf("state.json says %q, want failed", got)
	}
	st.applyErr = nil
	m = press(t, m, "r")
	if m.phase != phaseVerified || !strings.Contains(plain(m), "✓ All 2 checks passed.") {
		t.Fatalf("after the cause is fixed, retry should re-verify:\n%s", plain(m))
	}
}

func TestInterruptedStepIsShownAndReplanned(t *testing.T) {
	s, _ := newTestSession(t, false, "192.168.1.50", sshStep(), dockerStep())
	s.State.Set(0, steps.StatusPassed, "", testNow)
	s.State.Set(5, steps.StatusInterrupted, "the previous run stopped while this step was being applied", testNow)
	m := start(t, newTestModel(s, Options{}))
	if m.cur != 1 || m.phase != phasePlan {
		t.Fatalf("cur %d phase %d: the interrupted step should be planned again", m.cur, m.phase)
	}
	requireContains(t, plain(m), "✓0 [⟳5]", "interrupted")
}

func TestFullHelpListsScrollAndReviewKeys(t *testing.T) {
	s, _ := newTestSession(t, false, "192.168.1.50", sshStep())
	m := start(t, newTestModel(s, Options{}))
	if strings.Contains(plain(m), "pgdn") {
		t.Fatal("short help should stay one line without the pager keys")
	}
	m = press(t, m, "?")
	requireContains(t, plain(m), "pgdn", "page down", "later steps", "esc")
	m = press(t, m, "?")
	if strings.Contains(plain(m), "page down") {
		t.Fatal("? did not close the full help")
	}
}

func TestScrollingRevealsTheRestOfTheDiff(t *testing.T) {
	st := dockerStep()
	s, h := newTestSession(t, false, "192.168.1.50", st)
	seedDaemonJSON(t, h)
	m := start(t, newTestModel(s, Options{}))
	m = resize(m, 80, 14)
	requireContains(t, plain(m), "↓ more below")
	if strings.Contains(plain(m), `"userland-proxy": false`) {
		t.Fatal("the test needs the end of the diff to start hidden")
	}
	for range 20 {
		m = press(t, m, "down")
	}
	requireContains(t, plain(m), `+  "userland-proxy": false`)
	if strings.Contains(plain(m), "↓ more below") {
		t.Fatal("the scroll hint stayed at the bottom")
	}
}

func TestNoStepsGoesToTheFinalScreen(t *testing.T) {
	s, _ := newTestSession(t, false, "192.168.1.50")
	m := start(t, newTestModel(s, Options{}))
	if m.phase != phaseFinal {
		t.Fatalf("phase %d with no steps, want the final screen", m.phase)
	}
	requireContains(t, plain(m), "0 of 0 steps passed", "No audit is available here")
}
