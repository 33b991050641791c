package ui

import (
	"strings"

	tea "charm.land/bubbletea/v2"
)

// askBody explains the one answer with no default before anything else happens.
func (m Model) askBody(w int) string {
	intro := "SSH will be allowed only from the admin source: the address (or a small network) of the " +
		"machine you administer this VM from. Everything else on the LAN will be refused."
	var src string
	if m.opts.AskAdminSource != "" {
		src = "You are connected from " + m.opts.AskAdminSource + ", which is proposed below. "
	} else {
		src = "The address you are connected from could not be read, so type it below. "
	}
	if m.dry {
		src += "Press enter to accept; in a dry run it is used for this run only."
	} else {
		src += "Press enter to accept; the answer is kept in state.json."
	}
	parts := []string{wrap(intro, w), wrap(src, w)}
	if m.opts.AnswersPath != "" {
		parts = append(parts, m.st.dim.Render(wrap("Other answers come from "+m.opts.AnswersPath+".", w)))
	}
	if m.askErr != "" {
		parts = append(parts, m.st.errText.Render(wrap(m.askErr, w)))
	}
	parts = append(parts, m.overview(w))
	return strings.Join(parts, "\n\n")
}

func (m Model) updateAsk(k tea.KeyPressMsg) (Model, tea.Cmd) {
	switch k.String() {
	case "ctrl+c":
		return m.quit()
	case "enter":
		v := strings.TrimSpace(m.adminInput.Value())
		if v == "" {
			m.askErr = "admin_source: give the address of the machine you administer this VM from, like 192.168.1.50"
			return m, nil
		}
		a := m.s.Answers
		a.AdminSource = v
		if err := a.Validate("answers"); err != nil {
			m.askErr = err.Error()
			return m, nil
		}
		m.s.Answers = a
		saved := a
		m.s.State.Answers = &saved
		m.askErr, m.saveFirst = "", true
		return m.begin()
	}
	m.adminInput = m.adminInput.Update(k)
	m.askErr = ""
	return m, nil
}
