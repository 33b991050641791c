package ui

import (
	"fmt"
	"strings"

	"charm.land/lipgloss/v2"
	"github.com/charmbracelet/x/ansi"

	"openclaw-harden/steps"
)

// screen is what the pane shows: fixed lines on top, then the scrollable body.
type screen struct {
	key    string // identifies the screen, so switching screens scrolls back to the top
	top    string
	body   string
	follow bool // a live log: keep the newest line in view
}

// titleLine names the step shown and where it stands.
func (m Model) titleLine(w int) string {
	if m.phase == phaseAsk {
		return m.st.title.Render(clip("Before Step 0: who may administer this VM over SSH?", w))
	}
	i, st := m.shown()
	if st == nil {
		return m.st.title.Render("Done: every step has been through the wizard")
	}
	left := m.st.title.Render(fmt.Sprintf("Step %d · %s", st.ID(), st.Title()))
	right := string(m.status(i))
	if m.recheck {
		right = "re-verifying · " + right
	}
	if m.reviewing() {
		right = "reviewing, read-only · " + right
	}
	return spread(left, m.st.dim.Render(right), w)
}

// screen builds the pane for the current phase at width w. It is pure: Update stores the body in the
// viewport and View draws it.
func (m Model) screen(w int) screen {
	i, st := m.shown()
	key := fmt.Sprintf("%d/%d/%v", m.phase, i, m.details)
	if m.reviewing() {
		return screen{key: "review/" + key, top: m.reviewTop(i, w), body: m.reviewBody(i, w)}
	}
	if st == nil && m.phase != phaseAsk && m.phase != phaseFinal {
		return screen{key: key} // only between "no steps at all" and the final screen
	}
	p := m.plan()
	switch m.phase {
	case phaseAsk:
		return screen{key: key, body: m.askBody(w)}
	case phasePlanning:
		return screen{key: key, top: m.st.busy.Render("Planning: reading the system (nothing is changed)…"),
			body: m.whyView(st.ID(), nil, w)}
	case phasePlan:
		return screen{key: key, body: m.planBody(p, w)}
	case phaseConfirm:
		return screen{key: key, top: m.warningsTop(p, w), body: m.planBody(p, w)}
	case phaseRisk:
		return screen{key: key, body: m.riskBody(p, w)}
	case phaseApplying:
		top := m.st.busy.Render(clip(fmt.Sprintf("Applying Step %d; live log below. Do not quit until it finishes.", st.ID()), w))
		return screen{key: key, top: top, body: m.logView(w), follow: true}
	case phaseWould:
		return screen{key: key, top: m.wouldTop(w), body: m.wouldBody(w)}
	case phaseVerifying:
		top := m.st.busy.Render("Verifying: probing the live system…")
		if m.restarting {
			top = m.st.busy.Render(clip("Restarting Docker (systemctl restart docker), then verifying again…", w))
		}
		return screen{key: key, top: top, body: m.logView(w), follow: true}
	case phaseVerified, phaseConfirmRollback:
		return screen{key: key, top: m.verifyTop(w), body: m.verifyBody(w)}
	case phaseSwitches, phaseConfirming:
		return screen{key: key, body: m.switchesBody(w)}
	case phaseRollingBack:
		top := m.st.busy.Render(clip(fmt.Sprintf("Rolling back Step %d: restoring the files it changed…", st.ID()), w))
		return screen{key: key, top: top, body: m.logView(w), follow: true}
	case phaseBlocked:
		return screen{key: key, top: m.blockedTop(p, w), body: m.planBody(p, w)}
	case phaseUnavailable:
		top := m.st.dim.Render(wrap(fmt.Sprintf("– Step %d is not available yet in this version of openclaw-harden. "+
			"It can never pass: s skips it for now and it stays marked –.", st.ID()), w))
		return screen{key: key, top: top, body: m.whyView(st.ID(), nil, w)}
	case phasePlanError:
		top := m.st.bad.Render(wrap("✗ Planning failed: "+errText(m.planErr), w)) + "\n" +
			wrap("Nothing was changed. Fix the cause, then press r to plan again.", w)
		return screen{key: key, top: top, body: m.whyView(st.ID(), nil, w)}
	case phaseFinal:
		return screen{key: key, top: m.finalTop(w), body: m.auditBody(w)}
	}
	return screen{key: key}
}

// planBody is the main step screen: why, what is there now, and the diff of what will change.
func (m Model) planBody(p steps.Plan, w int) string {
	parts := []string{m.whyView(p.Step, &p, w), m.nowView(p, w), m.planView(p, w)}
	return strings.Join(parts, "\n\n")
}

// whyView is the step's explanation, with the hand-typed commands beside it when the training toggle is on.
func (m Model) whyView(id int, p *steps.Plan, w int) string {
	why := reflow(m.explain(id))
	if why == "" {
		why = "No explanation is recorded for this step."
	}
	if !m.showCmds {
		return m.st.section.Render("Why this step") + "\n" + wrap(why, w)
	}
	const gap = 3
	if w < 60 {
		return m.st.section.Render("Why this step") + "\n" + wrap(why, w) + "\n\n" + m.commandsView(p, w)
	}
	lw := (w - gap) / 2
	rw := w - gap - lw
	left := lipgloss.NewStyle().Width(lw).Render(m.st.section.Render("Why this step") + "\n" + wrap(why, lw))
	right := m.commandsView(p, rw)
	return lipgloss.JoinHorizontal(lipgloss.Top, left, strings.Repeat(" ", gap), right)
}

// commandsView is the training view: what an admin would type by hand for the same plan.
func (m Model) commandsView(p *steps.Plan, w int) string {
	head := m.st.section.Render("By hand, an admin would type")
	if p == nil || len(p.Commands) == 0 {
		return head + "\n" + wrap("No commands for this plan (nothing to change, or not planned yet).", w)
	}
	var b strings.Builder
	b.WriteString(head)
	for _, c := range p.Commands {
		b.WriteString("\n" + hardwrap("$ "+c, w))
	}
	return b.String()
}

// nowView is what is on the system now, as the plan found it.
func (m Model) nowView(p steps.Plan, w int) string {
	var b strings.Builder
	b.WriteString(m.st.section.Render("On this system now"))
	if len(p.Changes) == 0 && len(p.Notes) == 0 {
		b.WriteString("\n" + wrap("Nothing this step manages was found to report.", w))
	}
	for _, c := range p.Changes {
		b.WriteString("\n" + clip(fmt.Sprintf("%s: %s", c.Target, describeNow(c)), w))
	}
	for _, n := range p.Notes {
		b.WriteString("\n" + bullet("• ", n, w))
	}
	return b.String()
}

func describeNow(c steps.Change) string {
	now := "not there yet"
	if c.Before != "" {
		n := strings.Count(strings.TrimSuffix(c.Before, "\n"), "\n") + 1
		now = fmt.Sprintf("present, %d line%s", n, plural(n))
	}
	switch c.Action() {
	case "=":
		return now + "; already as wanted"
	case "+":
		return now + "; will be created"
	case "-":
		return now + "; will be removed"
	}
	return now + "; will change"
}

// warningsTop repeats each change's warning at the moment of decision, where it cannot be scrolled past.
func (m Model) warningsTop(p steps.Plan, w int) string {
	var ws []string
	for _, c := range p.Pending() {
		if c.Warning != "" {
			ws = append(ws, m.st.warn.Render(clip("⚠ "+c.Target+": "+c.Warning, w)))
		}
	}
	return strings.Join(ws, "\n")
}

func (m Model) blockedTop(p steps.Plan, w int) string {
	return m.st.bad.Render(wrap("! Refused: "+p.Blocked, w)) + "\n" +
		wrap("Nothing was changed. Fix the cause, then press r to plan again. The plan it refused is below.", w)
}

func (m Model) reviewTop(i, w int) string {
	st := m.s.Steps[i]
	rec := m.s.Status(st.ID())
	line := fmt.Sprintf("Reviewing Step %d (read-only): %s", st.ID(), m.status(i))
	if !rec.Updated.IsZero() {
		line += " since " + rec.Updated.Format("2006-01-02 15:04 MST")
	}
	if rec.Message != "" {
		line += " · " + rec.Message
	}
	return m.st.dim.Render(wrap(line, w))
}

// reviewBody shows what this run learnt about an earlier step: its plan and its checks, when it has them.
func (m Model) reviewBody(i, w int) string {
	st := m.s.Steps[i]
	p, planned := m.plans[i]
	var pp *steps.Plan
	if planned {
		pp = &p
	}
	parts := []string{m.whyView(st.ID(), pp, w)}
	if planned {
		parts = append(parts, m.nowView(p, w), m.planView(p, w))
	} else {
		parts = append(parts, wrap("Not planned in this run (it had passed before this run started).", w))
	}
	if cs, ok := m.checks[i]; ok {
		parts = append(parts, m.st.section.Render("Verification")+"\n"+m.checksView(cs, w, true))
	}
	return strings.Join(parts, "\n\n")
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// bullet wraps s under a hanging mark, so a long note reads as one item.
func bullet(mark, s string, w int) string {
	mw := ansi.StringWidth(mark)
	pad := strings.Repeat(" ", mw)
	lines := strings.Split(wrap(s, w-mw), "\n")
	for i := range lines {
		if i == 0 {
			lines[i] = mark + lines[i]
		} else {
			lines[i] = pad + lines[i]
		}
	}
	return strings.Join(lines, "\n")
}
