package ui

import (
	"fmt"
	"strings"

	"openclaw-harden/steps"
)

// verifyTop says in one or two lines whether the operator may go on, and why not.
func (m Model) verifyTop(w int) string {
	cs := m.checks[m.cur]
	var lines []string
	if m.noChanges {
		lines = append(lines, wrap("No changes: this step is already as wanted. Re-verified below.", w))
	}
	failed := 0
	for _, c := range cs {
		if !c.OK {
			failed++
		}
	}
	switch {
	case m.applyErr != nil:
		lines = append(lines, m.st.bad.Render(wrap("✗ Apply failed: "+firstLine(m.applyErr.Error()), w)))
		lines = append(lines, wrap("The step is marked failed. Retry, roll back what it changed, or quit and resume later.", w))
	case steps.Passed(cs):
		lines = append(lines, m.st.ok.Render(fmt.Sprintf("✓ All %d check%s passed.", len(cs), plural(len(cs)))))
	case len(cs) == 0:
		lines = append(lines, m.st.bad.Render(wrap("✗ The step reported no checks, and a step with no checks never passes.", w)))
	default:
		lines = append(lines, m.st.bad.Render(wrap(fmt.Sprintf("✗ %d of %d checks failed. You cannot go on until this step passes.", failed, len(cs)), w)))
	}
	if m.dry {
		lines = append(lines, m.st.warn.Render(wrap("Dry run: nothing was applied, so the checks describe the system as it is now.", w)))
	}
	return strings.Join(lines, "\n")
}

// verifyBody lists every check; details adds the apply log (and the dry run's would-list) below it.
func (m Model) verifyBody(w int) string {
	cs := m.checks[m.cur]
	parts := []string{m.checksView(cs, w, m.details)}
	if m.details {
		parts = append(parts, m.st.section.Render("Log (apply and verify)")+"\n"+m.logView(w))
		if len(m.would) > 0 {
			parts = append(parts, m.st.section.Render("Would have run or written (dry run)")+"\n"+m.wouldBody(w))
		}
	}
	return strings.Join(parts, "\n\n")
}

// checksView shows each check with what was expected and what was found. Outside the details view a
// passed check takes one line, so the failures stand out; a failed one always shows its reason.
func (m Model) checksView(cs []steps.Check, w int, full bool) string {
	if len(cs) == 0 {
		return m.st.dim.Render("(no checks ran)")
	}
	var out []string
	for _, c := range cs {
		mark := m.st.ok.Render("✓")
		if !c.OK {
			mark = m.st.bad.Render("✗")
		}
		out = append(out, mark+" "+clip(c.Name, w-2))
		if c.OK && !full {
			out = append(out, m.st.dim.Render(clip("    expected "+oneLine(c.Expect)+" · got "+oneLine(c.Got), w)))
			continue
		}
		out = append(out, checkField("expected", c.Expect, w), checkField("got", c.Got, w))
		if c.Reason != "" {
			out = append(out, checkField("reason", c.Reason, w))
		}
		if full && c.ID != "" {
			out = append(out, m.st.dim.Render(checkField("check", c.ID, w)))
		}
	}
	return strings.Join(out, "\n")
}

// checkField is "    expected  value", wrapped under itself.
func checkField(name, value string, w int) string {
	if value == "" {
		value = "(empty)"
	}
	return indent(bullet(fmt.Sprintf("%-9s", name), value, w-4), 4)
}

func oneLine(s string) string {
	if s == "" {
		return "(empty)"
	}
	return strings.Join(strings.Fields(s), " ")
}
