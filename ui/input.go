package ui

import (
	"strings"
	"unicode"

	tea "charm.land/bubbletea/v2"
	"charm.land/lipgloss/v2"
	"github.com/charmbracelet/x/ansi"
)

// field is a one-line text field. bubbles' textinput would pull a clipboard module this project does not
// carry, and the wizard needs only typing, editing and paste.
type field struct {
	prompt string
	limit  int
	value  []rune
	pos    int
	style  lipgloss.Style // of the prompt
}

func newField(prompt string, limit int, style lipgloss.Style) field {
	return field{prompt: prompt, limit: limit, style: style}
}

func (f field) Value() string { return string(f.value) }

func (f *field) SetValue(s string) {
	f.value = nil
	f.insert(s)
}

func (f *field) Reset() { f.value, f.pos = nil, 0 }

func (f *field) insert(s string) {
	for _, r := range s {
		if !unicode.IsPrint(r) || (f.limit > 0 && len(f.value) >= f.limit) {
			continue
		}
		f.value = append(f.value[:f.pos], append([]rune{r}, f.value[f.pos:]...)...)
		f.pos++
	}
}

// Update edits the field; keys it does not know are ignored.
func (f field) Update(msg tea.Msg) field {
	switch msg := msg.(type) {
	case tea.PasteMsg:
		f.insert(strings.TrimSpace(msg.Content))
	case tea.KeyPressMsg:
		switch msg.String() {
		case "backspace", "ctrl+h":
			if f.pos > 0 {
				f.value = append(f.value[:f.pos-1], f.value[f.pos:]...)
				f.pos--
			}
		case "delete", "ctrl+d":
			if f.pos < len(f.value) {
				f.value = append(f.value[:f.pos], f.value[f.pos+1:]...)
			}
		case "left", "ctrl+b":
			f.pos = max(f.pos-1, 0)
		case "right", "ctrl+f":
			f.pos = min(f.pos+1, len(f.value))
		case "home", "ctrl+a":
			f.pos = 0
		case "end", "ctrl+e":
			f.pos = len(f.value)
		case "ctrl+u":
			f.value, f.pos = append([]rune(nil), f.value[f.pos:]...), 0
		default:
			if msg.Text != "" && msg.Mod&(tea.ModCtrl|tea.ModAlt) == 0 {
				f.insert(msg.Text)
			}
		}
	}
	return f
}

func (f field) View() string { return f.style.Render(f.prompt) + string(f.value) }

// Cursor is the terminal cursor's column in View's output.
func (f field) Cursor() int {
	return ansi.StringWidth(f.prompt) + ansi.StringWidth(string(f.value[:f.pos]))
}
