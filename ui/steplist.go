package ui

import (
	"fmt"
	"strings"

	"charm.land/lipgloss/v2"

	"openclaw-harden/steps"
)

// glyphFor maps a recorded status to the one character the step list shows. "applied" (written but not
// verified yet, e.g. the process died between Apply and Verify) gets its own "?" so it is never mistaken
// for a step still being applied.
func glyphFor(s steps.Status) string {
	switch s {
	case steps.StatusPassed:
		return "✓"
	case steps.StatusFailed:
		return "✗"
	case steps.StatusBlocked:
		return "!"
	case steps.StatusApplying:
		return "…"
	case steps.StatusInterrupted:
		return "⟳"
	case steps.StatusApplied:
		return "?"
	case steps.StatusUnavailable:
		return "–"
	}
	return "·"
}

func legend() []string {
	return []string{"✓ passed", "✗ failed", "! blocked", "… applying", "⟳ interrupted", "? applied, not verified", "· pending", "– not available yet"}
}

// status is what the list shows for step i. A step that cannot be built in this version is shown as such
// even before it was ever planned, so the operator sees from the start which steps cannot pass.
func (m Model) status(i int) steps.Status {
	st := m.s.Steps[i]
	if !steps.Available(st) || m.unavailable[i] {
		return steps.StatusUnavailable
	}
	s := m.s.Status(st.ID()).Status
	if m.dry && (s == steps.StatusApplying || s == steps.StatusApplied) {
		// The session records the attempt, but in a dry run nothing was applied, and the list must not say so.
		return steps.StatusPending
	}
	return s
}

func (m Model) glyph(i int) string {
	s := m.status(i)
	g := glyphFor(s)
	switch s {
	case steps.StatusPassed:
		return m.st.ok.Render(g)
	case steps.StatusFailed, steps.StatusBlocked:
		return m.st.bad.Render(g)
	case steps.StatusApplying, steps.StatusApplied:
		return m.st.busy.Render(g)
	case steps.StatusInterrupted:
		return m.st.warn.Render(g)
	case steps.StatusUnavailable:
		return m.st.dim.Render(g)
	}
	return g
}

// stepStrip is the step list at narrow widths, inside the header line: the current step in [brackets] and
// a reviewed one in (parentheses), so the marks survive NO_COLOR.
func (m Model) stepStrip() string {
	var items []string
	for i, st := range m.s.Steps {
		it := fmt.Sprintf("%s%d", m.glyph(i), st.ID())
		switch {
		case i == m.cur:
			it = m.st.current.Render("[" + it + "]")
		case m.reviewing() && i == m.review:
			it = "(" + it + ")"
		}
		items = append(items, it)
	}
	return strings.Join(items, " ")
}

func (m Model) passedCount() string {
	n := 0
	for i := range m.s.Steps {
		if m.status(i) == steps.StatusPassed {
			n++
		}
	}
	return fmt.Sprintf("%d/%d passed", n, len(m.s.Steps))
}

// stepColumn is the step list at wide widths, with the legend under it.
func (m Model) stepColumn(w, h int) string {
	lines := make([]string, 0, len(m.s.Steps)+4)
	for i, st := range m.s.Steps {
		mark := "  "
		switch {
		case i == m.cur:
			mark = "› "
		case m.reviewing() && i == m.review:
			mark = "» "
		}
		line := clip(fmt.Sprintf("%s%s %d %s", mark, m.glyph(i), st.ID(), st.Title()), w)
		if i == m.cur {
			line = m.st.current.Render(line)
		}
		lines = append(lines, line)
	}
	lines = append(lines, "")
	for _, l := range legend() {
		lines = append(lines, m.st.dim.Render(clip(l, w)))
	}
	return lipgloss.NewStyle().Width(w).Render(fitLines(strings.Join(lines, "\n"), w, h))
}

// overview is the full list on the first screen, before any step runs.
func (m Model) overview(w int) string {
	var b strings.Builder
	b.WriteString(m.st.section.Render("The steps") + "\n")
	for i, st := range m.s.Steps {
		fmt.Fprintf(&b, "  %s %d %s\n", m.glyph(i), st.ID(), clip(st.Title(), w-6))
	}
	return strings.TrimSuffix(b.String(), "\n")
}
