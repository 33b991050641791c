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
	if sv := m.survivalView(w); sv != "" {
		parts = append(parts, sv)
	}
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
	if groups := steps.GroupBySource(cs); groups != nil {
		return m.sourceTables(groups, w, full)
	}
	return m.checkList(cs, w, full)
}

// sourceTables shows Step 8's checks under a heading per source (the container, the VM, the LAN host).
// Outside the details view each source is a table: mark, check, what was found; a failed row adds its
// reason below, wrapped. The details view lists each check in full under the same headings.
func (m Model) sourceTables(groups []steps.SourceGroup, w int, full bool) string {
	var out []string
	for _, g := range groups {
		var part []string
		if g.Heading != "" {
			part = append(part, m.st.section.Render(clip(g.Heading, w)))
		}
		if g.NotRun != "" {
			part = append(part, m.st.warn.Render(indent(wrap(g.NotRun, w-2), 2)))
			if g.Hint != "" {
				part = append(part, indent(wrap(g.Hint, w-2), 2))
			}
		}
		if full {
			part = append(part, indent(m.checkList(g.Checks, w-2, true), 2))
		} else {
			part = append(part, m.checkTable(g.Checks, w))
		}
		out = append(out, strings.Join(part, "\n"))
	}
	return strings.Join(out, "\n\n")
}

// checkTable is one row per check: "  ✓ check                      found", columns fitted to w; a failed
// check's reason follows on its own wrapped lines.
func (m Model) checkTable(cs []steps.Check, w int) string {
	const lead = 4 // "  ✓ "
	nameW := 0
	for _, c := range cs {
		nameW = max(nameW, ansiWidth(checkLabel(c)))
	}
	nameW = min(nameW, (w-lead-2)/2)
	gotW := w - lead - nameW - 2
	var out []string
	for _, c := range cs {
		mark := m.st.ok.Render("✓")
		switch {
		case !c.OK:
			mark = m.st.bad.Render("✗")
		case c.Skipped:
			mark = m.st.dim.Render("–")
		}
		name := clip(checkLabel(c), nameW)
		row := "  " + mark + " " + name + strings.Repeat(" ", nameW-ansiWidth(name)+2) + clip(oneLine(c.Got), gotW)
		if c.OK {
			out = append(out, row)
			continue
		}
		out = append(out, m.st.bad.Render(row))
		if c.Reason != "" {
			out = append(out, indent(bullet("why: ", c.Reason, w-6), 6))
		}
	}
	return strings.Join(out, "\n")
}

// checkLabel is the check's name, with its target when the name does not already say it.
func checkLabel(c steps.Check) string {
	if c.Target != "" && !strings.Contains(c.Name, c.Target) {
		return c.Name + " → " + c.Target
	}
	return c.Name
}

// checkList shows each check with what was expected and what was found.
func (m Model) checkList(cs []steps.Check, w int, full bool) string {
	var out []string
	for _, c := range cs {
		mark := m.st.ok.Render("✓")
		switch {
		case !c.OK:
			mark = m.st.bad.Render("✗")
		case c.Skipped:
			mark = m.st.dim.Render("–")
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
