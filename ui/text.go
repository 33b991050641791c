package ui

import (
	"strings"

	"github.com/charmbracelet/x/ansi"
)

// clip cuts a single line to w cells, marking the cut, so nothing ever spills past the terminal edge.
func clip(s string, w int) string {
	if w <= 0 {
		return ""
	}
	return ansi.Truncate(s, w, "…")
}

// wrap word-wraps prose to w cells, breaking words only when a single word is longer than the line.
func wrap(s string, w int) string {
	if w <= 0 {
		return s
	}
	return ansi.Wrap(s, w, "")
}

// hardwrap breaks lines that must be shown whole (diff lines, commands, log lines) at exactly w cells.
func hardwrap(s string, w int) string {
	if w <= 0 {
		return s
	}
	return ansi.Hardwrap(s, w, true)
}

// reflow joins the hard line breaks inside each paragraph of the embedded Markdown, so the text wraps to
// the terminal instead of to the width the author's editor had.
func reflow(s string) string {
	paras := strings.Split(strings.TrimSpace(s), "\n\n")
	for i, p := range paras {
		paras[i] = strings.Join(strings.Fields(p), " ")
	}
	return strings.Join(paras, "\n\n")
}

// indent prefixes every line with n spaces.
func indent(s string, n int) string {
	pad := strings.Repeat(" ", n)
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		if l != "" {
			lines[i] = pad + l
		}
	}
	return strings.Join(lines, "\n")
}

// spread puts left and right on one line of w cells. When they do not fit, left is cut: the right-hand
// side carries the status and the DRY RUN banner, which must stay visible.
func spread(left, right string, w int) string {
	rw := ansi.StringWidth(right)
	if right == "" || rw+2 > w {
		return clip(left, w)
	}
	left = clip(left, w-rw-1)
	return left + strings.Repeat(" ", w-ansi.StringWidth(left)-rw) + right
}

// fitLines makes s exactly h lines, each at most w cells: the last line of defence for 80×24.
func fitLines(s string, w, h int) string {
	if h <= 0 {
		return ""
	}
	lines := strings.Split(s, "\n")
	if len(lines) > h {
		lines = lines[:h]
	}
	for i, l := range lines {
		if ansi.StringWidth(l) > w {
			l = clip(l, w)
		}
		// Padding the viewport adds is invisible and only makes copied text and golden files ragged.
		lines[i] = strings.TrimRight(l, " ")
	}
	for len(lines) < h {
		lines = append(lines, "")
	}
	return strings.Join(lines, "\n")
}

func height(s string) int {
	if s == "" {
		return 0
	}
	return strings.Count(s, "\n") + 1
}

func ansiWidth(s string) int { return ansi.StringWidth(s) }
