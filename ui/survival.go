package ui

import (
	"fmt"
	"strings"
	"time"

	tea "charm.land/bubbletea/v2"

	"openclaw-harden/steps"
)

// restartedMsg is a Docker restart the operator asked for, and the verifications that followed it: the
// current step's, and the Survivor step's (Step 4) when that is another one, so its proof is recorded.
type restartedMsg struct {
	gen, idx int
	err      error
	checks   map[int][]steps.Check // by step index
}

// survivorIdx is the index of the step whose survival of a Docker restart and a reboot is tracked (Step 4),
// when the current step is it or Step 5 (which restarts Docker itself); -1 otherwise.
func (m Model) survivorIdx() int {
	if m.cur >= len(m.s.Steps) {
		return -1
	}
	if id := m.s.Steps[m.cur].ID(); id != 4 && id != 5 {
		return -1
	}
	for i, st := range m.s.Steps[:m.cur+1] {
		if _, ok := st.(steps.Survivor); ok {
			return i
		}
	}
	return -1
}

// canRestartDocker: the current step is 4 or 5 with Step 4 tracked, the main package gave the restart, and
// this is not a dry run (a dry run restarts nothing, so it would prove nothing).
func (m Model) canRestartDocker() bool {
	return m.opts.RestartDocker != nil && !m.dry && !m.reviewing() && m.survivorIdx() >= 0
}

// startRestartDocker restarts Docker through the main package's hook, then verifies again; the session
// records what the passing verification proved.
func (m *Model) startRestartDocker() tea.Cmd {
	m.gen++
	m.phase, m.restarting, m.notice = phaseVerifying, true, ""
	s, ctx, gen, idx, sidx, restart := m.s, m.ctx, m.gen, m.cur, m.survivorIdx(), m.opts.RestartDocker
	stop := make(chan struct{})
	run := func() tea.Msg {
		defer close(stop)
		msg := restartedMsg{gen: gen, idx: idx, err: restart(ctx), checks: map[int][]steps.Check{}}
		if sidx != idx {
			msg.checks[sidx] = s.Verify(ctx, s.Steps[sidx])
		}
		msg.checks[idx] = s.Verify(ctx, s.Steps[idx])
		return msg
	}
	return tea.Batch(run, listenJournal(m.journal, stop))
}

func (m Model) restarted(msg restartedMsg) Model {
	for i, cs := range msg.checks {
		m.checks[i] = cs
	}
	m.phase, m.details, m.restarting = phaseVerified, false, false
	if msg.err != nil {
		m.notice = "Docker restart failed: " + firstLine(msg.err.Error()) + "; verified again anyway"
	} else {
		m.notice = "Docker restarted; verified again"
	}
	return m
}

// survivalView says, on Steps 4 and 5, whether Step 4's rules were proven to survive a Docker restart and a
// reboot, and how to prove what was not. It is not a check: it reports what passing verifications saw.
func (m Model) survivalView(w int) string {
	i := m.survivorIdx()
	if i < 0 {
		return ""
	}
	id := m.s.Steps[i].ID()
	sv, ok := m.s.Survival(id)
	if !ok {
		return ""
	}
	lines := []string{m.st.section.Render(clip(fmt.Sprintf("After restarts: Step %d's rules (seen by passing verifications)", id), w))}
	row := func(what string, at *time.Time, how, cmd string) {
		if at != nil {
			lines = append(lines, "  "+m.st.ok.Render("✓")+" "+clip(fmt.Sprintf("%s: survived, proven at %s", what, at.UTC().Format(time.RFC3339)), w-4))
			return
		}
		lines = append(lines, indent(bullet(m.st.warn.Render("?")+" ", what+": never proven. "+how, w-2), 2))
		if cmd != "" {
			lines = append(lines, indent(hardwrap("$ "+cmd, w-4), 4))
		}
	}
	if m.canRestartDocker() {
		row("Docker restart", sv.DockerRestart, "Press x to restart Docker and verify again.", "")
	} else {
		row("Docker restart", sv.DockerRestart, "To prove it, run:", steps.ProveDockerRestart(id))
	}
	row("Reboot", sv.Reboot, "Reboot the VM, then run:", fmt.Sprintf("openclaw-harden verify --step %d", id))
	return strings.Join(lines, "\n")
}
