package ui

import (
	"fmt"
	"strings"

	"github.com/aymanbagabas/go-udiff"

	"openclaw-harden/steps"
)

// finalTop counts the outcome honestly: a step not built yet is not "done", it is listed as not passed.
func (m Model) finalTop(w int) string {
	counts := map[steps.Status]int{}
	for i := range m.s.Steps {
		counts[m.status(i)]++
	}
	n := len(m.s.Steps)
	line := fmt.Sprintf("%d of %d steps passed", counts[steps.StatusPassed], n)
	var rest []string
	for _, s := range []steps.Status{steps.StatusFailed, steps.StatusBlocked, steps.StatusUnavailable, steps.StatusPending} {
		if counts[s] > 0 {
			rest = append(rest, fmt.Sprintf("%d %s", counts[s], s))
		}
	}
	if len(rest) > 0 {
		line += "; " + strings.Join(rest, ", ")
	}
	style := m.st.ok
	if counts[steps.StatusPassed] < n {
		style = m.st.warn
	}
	top := style.Render(wrap(line+".", w))
	if counts[steps.StatusPassed] < n {
		top += "\n" + wrap("Run openclaw-harden again to resume at the first step that has not passed.", w)
	}
	if m.dry {
		top += "\n" + m.st.warn.Render(wrap("Dry run: nothing was changed on this system.", w))
	}
	return top
}

// auditBody is the before/after audit as a diff; the main package reads and renders the snapshots.
func (m Model) auditBody(w int) string {
	head := m.st.section.Render("Audit: baseline → now")
	switch {
	case m.auditErr != nil:
		return head + "\n" + m.st.errText.Render(wrap("Could not read the audit: "+m.auditErr.Error(), w))
	case m.audit == nil:
		return head + "\n" + m.st.busy.Render("Reading the audit snapshots…")
	case m.audit.missing:
		return head + "\n" + wrap("No audit is available here; `openclaw-harden audit diff` compares the snapshots.", w)
	}
	before, after := m.audit.before, m.audit.after
	if !strings.HasSuffix(before, "\n") && before != "" {
		before += "\n"
	}
	if !strings.HasSuffix(after, "\n") && after != "" {
		after += "\n"
	}
	d := udiff.Unified("baseline", "now", before, after)
	if d == "" {
		return head + "\n" + wrap("No differences: the system looks as it did at the baseline.", w)
	}
	return head + "\n" + m.colorDiff(d, w, true)
}
