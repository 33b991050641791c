package ui

import (
	"image/color"

	"charm.land/bubbles/v2/help"
	"charm.land/lipgloss/v2"
)

// styles is built once per model so NO_COLOR is a property of the model, not of a package global, and tests
// can render both variants side by side.
type styles struct {
	noColor bool

	header, banner, title, section, dim  lipgloss.Style
	ok, bad, warn, busy                  lipgloss.Style
	current                              lipgloss.Style // the step being worked on, in the step list
	prompt, errText, notice              lipgloss.Style
	diffFile, diffHunk, diffAdd, diffDel lipgloss.Style
	help                                 help.Styles
}

// newStyles uses the 16 ANSI colours only: they follow the operator's terminal theme, which matters on the
// light-background consoles of hypervisor web UIs, where hard-coded hex greys vanish.
func newStyles(noColor bool) styles {
	plain := lipgloss.NewStyle()
	if noColor {
		// No bold, reverse or faint either: NO_COLOR users often pipe or screen-read, and any SGR is noise.
		return styles{
			noColor: true,
			header:  plain, banner: plain, title: plain, section: plain, dim: plain,
			ok: plain, bad: plain, warn: plain, busy: plain, current: plain,
			prompt: plain, errText: plain, notice: plain,
			diffFile: plain, diffHunk: plain, diffAdd: plain, diffDel: plain,
			help: help.Styles{
				Ellipsis: plain, ShortKey: plain, ShortDesc: plain, ShortSeparator: plain,
				FullKey: plain, FullDesc: plain, FullSeparator: plain,
			},
		}
	}
	fg := func(c color.Color) lipgloss.Style { return plain.Foreground(c) }
	dim := plain.Faint(true)
	return styles{
		header:   plain.Bold(true),
		banner:   plain.Bold(true).Reverse(true).Foreground(lipgloss.Yellow),
		title:    plain.Bold(true),
		section:  plain.Bold(true).Underline(true),
		dim:      dim,
		ok:       fg(lipgloss.Green),
		bad:      fg(lipgloss.Red).Bold(true),
		warn:     fg(lipgloss.Yellow),
		busy:     fg(lipgloss.Cyan),
		current:  plain.Bold(true),
		prompt:   plain.Bold(true),
		errText:  fg(lipgloss.Red),
		notice:   fg(lipgloss.Yellow),
		diffFile: plain.Bold(true),
		diffHunk: fg(lipgloss.Cyan),
		diffAdd:  fg(lipgloss.Green),
		diffDel:  fg(lipgloss.Red),
		help: help.Styles{
			Ellipsis: dim, ShortKey: plain.Bold(true), ShortDesc: dim, ShortSeparator: dim,
			FullKey: plain.Bold(true), FullDesc: dim, FullSeparator: dim,
		},
	}
}
