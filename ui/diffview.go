package ui

import (
	"fmt"
	"strings"

	"charm.land/lipgloss/v2"
	"github.com/charmbracelet/x/ansi"

	"openclaw-harden/steps"
)

// planView is the plan as data rendered for a human: one block per change, each with its coloured diff.
// Changes that are already as wanted are listed too, so the operator sees the step looked at them.
func (m Model) planView(p steps.Plan, w int) string {
	var b strings.Builder
	b.WriteString(m.st.section.Render("What will change: " + strings.TrimSuffix(p.Summary(), "?")))
	for _, c := range p.Changes {
		head := fmt.Sprintf("%s %s", c.Action(), c.Target)
		if c.Kind != "" && c.Kind != "file" {
			head += " (" + c.Kind + ")"
		} else if c.Mode != 0 {
			head += fmt.Sprintf(" (mode %04o)", c.Mode.Perm())
		}
		if c.Action() == "=" {
			b.WriteString("\n\n" + clip(head+": already as wanted", w))
			continue
		}
		b.WriteString("\n\n" + m.st.diffFile.Render(clip(head, w)))
		if c.Warning != "" {
			b.WriteString("\n" + m.st.warn.Render(bullet("⚠ ", c.Warning, w)))
		}
		// The target is named just above, so the ---/+++ lines would only repeat it in a narrow terminal.
		b.WriteString("\n" + m.colorDiff(c.Diff(), w, false))
	}
	return b.String()
}

// colorDiff colours a unified diff line by line, wrapping long lines first so every piece of a wrapped
// line keeps the colour of the line it belongs to.
func (m Model) colorDiff(diff string, w int, headers bool) string {
	var out []string
	for _, line := range strings.Split(strings.TrimSuffix(diff, "\n"), "\n") {
		style := lipgloss.NewStyle()
		switch {
		case strings.HasPrefix(line, "--- "), strings.HasPrefix(line, "+++ "):
			if !headers {
				continue
			}
			style = m.st.diffFile
		case strings.HasPrefix(line, "@@"):
			style = m.st.diffHunk
		case strings.HasPrefix(line, "+"):
			style = m.st.diffAdd
		case strings.HasPrefix(line, "-"):
			style = m.st.diffDel
		case strings.HasPrefix(line, `\`): // "\ No newline at end of file"
			style = m.st.dim
		}
		out = append(out, style.Render(continued(line, w)))
	}
	return strings.Join(out, "\n")
}

// continued wraps a long diff line and starts each continuation with the line's diff mark and "…", so a
// wrapped piece can never be read as a line of its own (or as context) in the diff.
func continued(line string, w int) string {
	if w <= 2 || ansi.StringWidth(line) <= w {
		return line
	}
	mark := ""
	if line != "" && strings.ContainsAny(line[:1], "+- ") {
		mark = line[:1]
	}
	first := ansi.Truncate(line, w, "")
	rest := strings.TrimPrefix(line, first)
	pieces := []string{first}
	for _, p := range strings.Split(hardwrap(rest, w-len(mark)-1), "\n") {
		pieces = append(pieces, mark+"…"+p)
	}
	return strings.Join(pieces, "\n")
}
