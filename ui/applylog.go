package ui

import (
	"fmt"
	"strings"

	tea "charm.land/bubbletea/v2"
)

// journalMsg carries journal lines from the host to Update. done means the operation that was being
// watched has finished and every line it wrote has been delivered.
type journalMsg struct {
	lines []string
	done  bool
	stop  <-chan struct{}
}

// listenJournal waits for the next journal lines, or for stop (closed when the operation returns). It
// ends on its own, so no goroutine outlives the operation it watches.
func listenJournal(ch <-chan string, stop <-chan struct{}) tea.Cmd {
	return func() tea.Msg {
		select {
		case l := <-ch:
			return journalMsg{lines: drain(ch, []string{l}), stop: stop}
		case <-stop:
			return journalMsg{lines: drain(ch, nil), done: true, stop: stop}
		}
	}
}

// drain takes what is already buffered, so a burst of lines costs one message and one redraw.
func drain(ch <-chan string, lines []string) []string {
	for {
		select {
		case l := <-ch:
			lines = append(lines, l)
		default:
			return lines
		}
	}
}

// logView is the live log of the running operation.
func (m Model) logView(w int) string {
	if len(m.log) == 0 {
		return m.st.dim.Render("(no journal lines yet)")
	}
	var out []string
	for _, l := range m.log {
		out = append(out, hardwrap(l, w))
	}
	if n := m.dropped.Load(); n > 0 {
		out = append(out, m.st.warn.Render(wrap(fmt.Sprintf("(%d lines were too fast for the screen; journal.log has them all)", n), w)))
	}
	return strings.Join(out, "\n")
}

func (m Model) wouldTop(w int) string {
	return m.st.banner.Render("DRY RUN: nothing was changed.") + " " +
		clip("Applying would have done this:", w-ansiWidth("DRY RUN: nothing was changed. "))
}

// wouldBody is the dry run's answer to "what would Apply do", taken from the host, which refused each
// write and command itself, rather than from what the step meant to do.
func (m Model) wouldBody(w int) string {
	if len(m.would) == 0 {
		return wrap("Nothing: the host was asked for no write and no command that changes the system.", w)
	}
	var out []string
	for _, l := range m.would {
		out = append(out, bullet("• ", l, w))
	}
	return strings.Join(out, "\n")
}
