package tui

import (
	"charm.land/bubbles/v2/key"
)

// keyMap is every binding of the workbench. The help overlay (?) lists
// them all, grouped as below; the hint bar shows the ones that matter on
// the current screen. Bindings are chosen so a script driving the real
// binary through tmux send-keys can reach everything: the F-keys and
// ctrl-keys work even while a text field has the focus.
type keyMap struct {
	// Global.
	Dashboard, Config, Chat key.Binding
	Help, Quit, ForceQuit   key.Binding
	Theme, Pause, StartRun  key.Binding
	Export, Zoom            key.Binding
	// Moving around.
	NextPane, PrevPane    key.Binding
	Up, Down              key.Binding
	PageUp, PageDown      key.Binding
	Top, Bottom           key.Binding
	Open, Back            key.Binding
	Left, Right           key.Binding
	ConfirmYes, ConfirmNo key.Binding
	// Dashboard.
	AllGens, Sort, ChatWith key.Binding
	Follow, Wrap, Filter    key.Binding
	// Config page.
	Save key.Binding
	// Chat page.
	Send, Stop, ClearChat, Decrease, Increase key.Binding
}

func newKeyMap() keyMap {
	b := func(keys []string, k, desc string) key.Binding {
		return key.NewBinding(key.WithKeys(keys...), key.WithHelp(k, desc))
	}
	return keyMap{
		Dashboard: b([]string{"1", "f1"}, "1/F1", "dashboard"),
		Config:    b([]string{"2", "f2"}, "2/F2", "configuration"),
		Chat:      b([]string{"3", "f3"}, "3/F3", "chat with a model"),
		Help:      b([]string{"?", "f10"}, "?/F10", "all keys"),
		Quit:      b([]string{"q"}, "q", "quit (asks while a run is active)"),
		ForceQuit: b([]string{"ctrl+c"}, "ctrl+c", "quit from anywhere (asks while a run is active)"),
		Theme:     b([]string{"t", "f9"}, "t/F9", "next theme"),
		Pause:     b([]string{"p", "f7"}, "p/F7", "pause / resume the engine"),
		StartRun:  b([]string{"r", "f5"}, "r/F5", "start a tournament"),
		Export:    b([]string{"e", "f6"}, "e/F6", "export history, best recipe, screen"),
		Zoom:      b([]string{"z", "f8"}, "z/F8", "zoom the focused pane"),

		NextPane:   b([]string{"tab"}, "tab", "next pane"),
		PrevPane:   b([]string{"shift+tab"}, "shift+tab", "previous pane"),
		Up:         b([]string{"up", "k"}, "↑/k", "up"),
		Down:       b([]string{"down", "j"}, "↓/j", "down"),
		PageUp:     b([]string{"pgup", "ctrl+u"}, "pgup", "page up"),
		PageDown:   b([]string{"pgdown", "ctrl+d"}, "pgdn", "page down"),
		Top:        b([]string{"home", "g"}, "g/home", "first"),
		Bottom:     b([]string{"end", "G"}, "G/end", "last"),
		Open:       b([]string{"enter"}, "enter", "open candidate details"),
		Back:       b([]string{"esc"}, "esc", "close / back"),
		Left:       b([]string{"left", "h"}, "←/h", "left"),
		Right:      b([]string{"right", "l"}, "→/l", "right"),
		ConfirmYes: b([]string{"y", "Y", "enter"}, "y", "yes"),
		ConfirmNo:  b([]string{"n", "N", "esc"}, "n", "no"),

		AllGens:  b([]string{"a"}, "a", "all generations / current"),
		Sort:     b([]string{"s"}, "s", "sort by fitness / by id"),
		ChatWith: b([]string{"c"}, "c", "chat with the selected candidate"),
		Follow:   b([]string{"f"}, "f", "log: follow new lines"),
		Wrap:     b([]string{"w"}, "w", "log: wrap long lines"),
		Filter:   b([]string{"/"}, "/", "log: filter (enter applies, esc clears)"),

		Save: b([]string{"ctrl+s"}, "ctrl+s", "validate and save the configuration"),

		Send:      b([]string{"enter"}, "enter", "send the prompt"),
		Stop:      b([]string{"esc"}, "esc", "stop generating / leave the prompt"),
		ClearChat: b([]string{"ctrl+l"}, "ctrl+l", "clear the chat history"),
		Decrease:  b([]string{"-", "left", "h"}, "-/←", "decrease the setting"),
		Increase:  b([]string{"+", "=", "right", "l"}, "+/→", "increase the setting"),
	}
}

// helpSection is one titled group of the full help.
type helpSection struct {
	title    string
	bindings []key.Binding
}

// fullHelp lists every key, by screen; the help overlay renders it and the
// package documentation points at it.
func (k keyMap) fullHelp() []helpSection {
	return []helpSection{
		{"Everywhere", []key.Binding{k.Dashboard, k.Config, k.Chat, k.Help, k.Theme, k.Pause, k.StartRun, k.Export, k.Quit, k.ForceQuit}},
		{"Dashboard", []key.Binding{k.NextPane, k.PrevPane, k.Up, k.Down, k.PageUp, k.PageDown, k.Top, k.Bottom, k.Open, k.Back, k.Zoom, k.AllGens, k.Sort, k.ChatWith}},
		{"Log pane (focused)", []key.Binding{k.Follow, k.Wrap, k.Filter}},
		{"Configuration", []key.Binding{
			key.NewBinding(key.WithKeys("enter"), key.WithHelp("enter/tab", "next field; after the last page: validate and save")),
			key.NewBinding(key.WithKeys("shift+tab"), key.WithHelp("shift+tab", "previous field")),
			key.NewBinding(key.WithKeys("space"), key.WithHelp("space/x", "toggle a technique")),
			k.Save,
			key.NewBinding(key.WithKeys("esc"), key.WithHelp("esc", "back to the dashboard (edits are kept)")),
		}},
		{"Chat", []key.Binding{
			key.NewBinding(key.WithKeys("tab"), key.WithHelp("tab", "models → settings → prompt")),
			key.NewBinding(key.WithKeys("up"), key.WithHelp("↑/↓", "choose a model or a setting")),
			k.Decrease, k.Increase, k.Send, k.Stop, k.ClearChat,
		}},
		{"Dialogs", []key.Binding{k.ConfirmYes, k.ConfirmNo}},
	}
}
