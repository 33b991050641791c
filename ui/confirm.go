package ui

import (
	"fmt"
	"strings"

	tea "charm.land/bubbletea/v2"

	"openclaw-harden/steps"
)

// confirmPrompt names what will change; it never defaults to yes.
func (m Model) confirmPrompt() string {
	p := m.plan()
	q := p.Summary()
	if m.dry {
		q = "Dry run: " + q + " (nothing is written; you will see what would be)"
	}
	return m.st.prompt.Render(q) + "  y apply · n back"
}

func (m Model) rollbackPrompt() string {
	_, st := m.shown()
	return m.st.prompt.Render(fmt.Sprintf("Roll back Step %d? Every file it changed is put back as it was.", st.ID())) + "  y · n"
}

// riskBody is the separate screen for a named risk: the operator has to type a word, so a reflexive enter
// or y cannot accept a lockout.
func (m Model) riskBody(p steps.Plan, w int) string {
	parts := []string{
		m.st.bad.Render("⚠ This step carries a named risk"),
		m.st.warn.Render(wrap(p.Risk, w)),
		wrap("Nothing has been changed yet. Applying anyway is your decision: type accept and press enter "+
			"to take this risk, or press esc to go back to the plan.", w),
	}
	if m.riskErr != "" {
		parts = append(parts, m.st.errText.Render(wrap(m.riskErr, w)))
	}
	return strings.Join(parts, "\n\n")
}

func (m Model) updateRisk(k tea.KeyPressMsg) (Model, tea.Cmd) {
	if k.String() == "enter" {
		if strings.EqualFold(strings.TrimSpace(m.riskInput.Value()), "accept") {
			m.riskOK, m.riskErr = true, ""
			m.phase = phaseConfirm
			return m, nil
		}
		m.riskErr = `type the word "accept" to take this risk, or press esc to go back`
		return m, nil
	}
	m.riskInput = m.riskInput.Update(k)
	m.riskErr = ""
	return m, nil
}

// updateInput routes a paste to whichever text field is on screen.
func (m Model) updateInput(msg tea.Msg) (Model, tea.Cmd) {
	switch m.phase {
	case phaseAsk:
		m.adminInput = m.adminInput.Update(msg)
	case phaseRisk:
		m.riskInput = m.riskInput.Update(msg)
	}
	return m, nil
}

// switchesBody lists what only the operator can see, with the commands that prove each item, so the
// confirmation is a reading of real output rather than a promise.
func (m Model) switchesBody(w int) string {
	c, ok := m.s.Steps[m.cur].(steps.Confirmer)
	if !ok {
		return ""
	}
	parts := []string{m.st.section.Render("Confirm by hand"), wrap("This VM cannot see these from inside. Run each "+
		"command where it says, compare the output with what is expected, and confirm only if every one matches. "+
		"The confirmation is bound to the generated file: change it and you confirm again.", w)}
	for _, x := range c.Confirmations(m.s.Answers) {
		var b strings.Builder
		b.WriteString(m.st.section.Render("• "+x.Name) + "\n")
		for _, cmd := range x.Commands {
			b.WriteString(bullet("  $ ", cmd, w) + "\n")
		}
		b.WriteString(bullet("  expected: ", x.Expect, w))
		parts = append(parts, b.String())
	}
	if m.phase == phaseConfirming {
		parts = append(parts, m.st.busy.Render("Recording the confirmation…"))
	}
	return strings.Join(parts, "\n\n")
}
