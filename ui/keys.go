package ui

import "charm.land/bubbles/v2/key"

// keyMap is deliberately small: an operator hardening a server over SSH should not have to learn a pager.
// The viewport's own pager keys (d, u, b, f, space) are not used because d, u and b mean other things here.
type keyMap struct {
	Up, Down, PageUp, PageDown key.Binding
	Prev, Next, Esc            key.Binding
	Enter, Yes, No             key.Binding
	Commands                   key.Binding
	Retry, Details, Rollback   key.Binding
	Skip, Confirm              key.Binding
	RestartDocker              key.Binding
	Help, Quit                 key.Binding
}

func newKeyMap() keyMap {
	return keyMap{
		Up:            key.NewBinding(key.WithKeys("up", "k"), key.WithHelp("↑/k", "scroll up")),
		Down:          key.NewBinding(key.WithKeys("down", "j"), key.WithHelp("↓/j", "scroll down")),
		PageUp:        key.NewBinding(key.WithKeys("pgup"), key.WithHelp("pgup", "page up")),
		PageDown:      key.NewBinding(key.WithKeys("pgdown", "space"), key.WithHelp("pgdn", "page down")),
		Prev:          key.NewBinding(key.WithKeys("left", "h"), key.WithHelp("←", "earlier steps")),
		Next:          key.NewBinding(key.WithKeys("right", "l"), key.WithHelp("→", "later steps")),
		Esc:           key.NewBinding(key.WithKeys("esc"), key.WithHelp("esc", "back")),
		Enter:         key.NewBinding(key.WithKeys("enter"), key.WithHelp("enter", "continue")),
		Yes:           key.NewBinding(key.WithKeys("y"), key.WithHelp("y", "yes")),
		No:            key.NewBinding(key.WithKeys("n"), key.WithHelp("n", "no")),
		Commands:      key.NewBinding(key.WithKeys("c"), key.WithHelp("c", "by-hand commands")),
		Retry:         key.NewBinding(key.WithKeys("r"), key.WithHelp("r", "retry")),
		Details:       key.NewBinding(key.WithKeys("d"), key.WithHelp("d", "details")),
		Rollback:      key.NewBinding(key.WithKeys("u"), key.WithHelp("u", "roll back")),
		Skip:          key.NewBinding(key.WithKeys("s"), key.WithHelp("s", "skip (not passed)")),
		Confirm:       key.NewBinding(key.WithKeys("o"), key.WithHelp("o", "confirm on the node")),
		RestartDocker: key.NewBinding(key.WithKeys("x"), key.WithHelp("x", "restart Docker, verify again")),
		Help:          key.NewBinding(key.WithKeys("?"), key.WithHelp("?", "all keys")),
		Quit:          key.NewBinding(key.WithKeys("q", "ctrl+c"), key.WithHelp("q", "quit")),
	}
}

// with returns a copy of b whose help text fits the screen it is shown on ("enter" means "next step" on one
// screen and "verify" on another); the keys themselves never change meaning between screens.
func with(b key.Binding, desc string) key.Binding {
	b.SetHelp(b.Help().Key, desc)
	return b
}

// helpKeys is the help.KeyMap for one screen: only keys that do something there are listed.
type helpKeys struct {
	short []key.Binding
	full  [][]key.Binding
}

func (h helpKeys) ShortHelp() []key.Binding  { return h.short }
func (h helpKeys) FullHelp() [][]key.Binding { return h.full }

// without drops from bs the keys the other help columns already list, so full help names each key once.
func without(bs []key.Binding, others [][]key.Binding) []key.Binding {
	listed := map[string]bool{}
	for _, col := range others {
		for _, b := range col {
			listed[b.Help().Key] = true
		}
	}
	var out []key.Binding
	for _, b := range bs {
		if !listed[b.Help().Key] {
			out = append(out, b)
		}
	}
	return out
}
