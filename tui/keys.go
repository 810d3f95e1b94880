package tui

import (
	"unicode/utf8"

	"charm.land/bubbles/v2/key"
	"charm.land/huh/v2"
)

// keyMap is every binding of the workbench and the only place a key is
// named. The routers match key presses against these bindings
// (key.Matches), never against key names; the help screen lists them
// (fullHelp) and the hint bar shows the ones that act on the focused
// element (model.ShortHelp), relabelled shorter where the bar is crowded.
// keys_test.go holds the two directions together: every key the help or
// the hint bar shows does something where it is shown, and every key that
// does something is shown.
//
// A key that types no text (the F-keys, ctrl+c) keeps its global meaning
// while a text field has the focus, so that a script driving the binary
// through tmux send-keys can reach every screen from anywhere.
type keyMap struct {
	// Global.
	Dashboard, Config, Chat key.Binding
	Help, Quit, ForceQuit   key.Binding
	Theme, Pause, StartRun  key.Binding
	ResumeRun, Export, Zoom key.Binding
	// Moving around.
	NextPane, PrevPane    key.Binding
	Up, Down              key.Binding
	PageUp, PageDown      key.Binding
	Top, Bottom           key.Binding
	Open, Back            key.Binding
	ConfirmYes, ConfirmNo key.Binding
	// Dashboard.
	AllGens, Sort, ChatWith  key.Binding
	Follow, Wrap, Filter     key.Binding
	ApplyFilter, ClearFilter key.Binding
	// Config page. Save is the page's; the form (huh) matches its own
	// keys, and FormNext, FormPrev and FormToggle are huh's bindings,
	// taken from its default key map so that the help tells what the form
	// does.
	Save                           key.Binding
	FormNext, FormPrev, FormToggle key.Binding
	// Chat page.
	Send, Stop, ClearChat, Decrease, Increase key.Binding
}

func newKeyMap() keyMap {
	b := func(keys []string, k, desc string) key.Binding {
		return key.NewBinding(key.WithKeys(keys...), key.WithHelp(k, desc))
	}
	form := huh.NewDefaultKeyMap()
	return keyMap{
		Dashboard: b([]string{"1", "f1"}, "1/F1", "dashboard"),
		Config:    b([]string{"2", "f2"}, "2/F2", "configuration"),
		Chat:      b([]string{"3", "f3"}, "3/F3", "chat with a model"),
		Help:      b([]string{"?", "f10"}, "?/F10", "all keys"),
		Quit:      b([]string{"q"}, "q", "quit (asks while a run is active)"),
		ForceQuit: b([]string{"ctrl+c"}, "ctrl+c", "quit from anywhere (asks while a run is active)"),
		Theme:     b([]string{"t", "f9"}, "t/F9", "next theme"),
		Pause:     b([]string{"p", "f7"}, "p/F7", "pause / resume the engine"),
		StartRun:  b([]string{"r", "f5"}, "r/F5", "start a tournament (in a new run-<time> directory)"),
		ResumeRun: b([]string{"R", "f4"}, "R/F4", "resume the last run (finished or interrupted)"),
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
		ConfirmYes: b([]string{"y", "Y", "enter"}, "y", "yes"),
		ConfirmNo:  b([]string{"n", "N", "esc"}, "n", "no"),

		AllGens:     b([]string{"a"}, "a", "all generations / current"),
		Sort:        b([]string{"s"}, "s", "sort by fitness / by id"),
		ChatWith:    b([]string{"c"}, "c", "chat with the selected candidate"),
		Follow:      b([]string{"f"}, "f", "log: follow new lines"),
		Wrap:        b([]string{"w"}, "w", "log: wrap long lines"),
		Filter:      b([]string{"/"}, "/", "log: filter (enter applies, esc clears)"),
		ApplyFilter: b([]string{"enter"}, "enter", "apply the log filter"),
		ClearFilter: b([]string{"esc"}, "esc", "clear the log filter"),

		Save:       b([]string{"ctrl+s"}, "ctrl+s", "validate and save the configuration"),
		FormNext:   relabel(form.Input.Next, "enter/tab", "next field; after the last page: validate and save"),
		FormPrev:   relabel(form.Input.Prev, "shift+tab", "previous field"),
		FormToggle: relabel(form.MultiSelect.Toggle, "space/x", "toggle a technique"),

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

// fullHelp lists every key, by screen; the help screen renders it.
func (k keyMap) fullHelp() []helpSection {
	return []helpSection{
		{"Everywhere", []key.Binding{k.Dashboard, k.Config, k.Chat, k.Help, k.Theme, k.Pause, k.StartRun, k.ResumeRun, k.Export, k.Quit, k.ForceQuit}},
		{"Dashboard", []key.Binding{k.NextPane, k.PrevPane, k.Up, k.Down, k.PageUp, k.PageDown, k.Top, k.Bottom, k.Open, k.Back, k.Zoom, k.AllGens, k.Sort, k.ChatWith}},
		{"Log pane", []key.Binding{k.Follow, k.Wrap, k.Filter}},
		{"Configuration", []key.Binding{k.FormNext, k.FormPrev, k.FormToggle, k.Save,
			relabel(k.Back, "esc", "back to the dashboard (edits are kept)")}},
		{"Chat", []key.Binding{
			relabel(k.NextPane, "tab", "models → settings → prompt"),
			relabel(k.PrevPane, "shift+tab", "prompt → settings → models"),
			either("↑/↓", "choose a model or a setting", k.Up, k.Down),
			relabel(k.Top, "g/home", "first model"), relabel(k.Bottom, "G/end", "last model"),
			k.Decrease, k.Increase, k.Send, k.Stop,
			either("pgup/pgdn", "scroll the conversation", k.PageUp, k.PageDown), k.ClearChat,
		}},
		{"Dialogs", []key.Binding{k.ConfirmYes, k.ConfirmNo}},
	}
}

// configHints are the configuration page's keys, as its header and the
// hint bar show them.
func (k keyMap) configHints() []key.Binding {
	return []key.Binding{relabel(k.FormNext, "enter", "next"), relabel(k.FormPrev, "shift+tab", "back"),
		relabel(k.Save, "ctrl+s", "save"), relabel(k.Back, "esc", "dashboard")}
}

// ShortHelp is the hint bar: the keys that act on what has the focus
// (help.KeyMap).
func (m *model) ShortHelp() []key.Binding {
	k := m.ctx.keys
	switch {
	case m.confirmQuit:
		return []key.Binding{relabel(k.ConfirmYes, "y", "quit and stop the run"), relabel(k.ConfirmNo, "n", "keep running")}
	case m.showHelp:
		return []key.Binding{either("↑/↓", "scroll", k.Up, k.Down), relabel(k.Back, "esc", "close help")}
	case m.page == pageConfig:
		return append(k.configHints(), anywhere(k.Chat, "F3", "chat"), anywhere(k.Help, "F10", "help"),
			relabel(k.ForceQuit, "ctrl+c", "quit"))
	case m.page == pageChat && m.chat.typing():
		return []key.Binding{relabel(k.Send, "enter", "send"), relabel(k.Stop, "esc", "stop / leave prompt"),
			relabel(k.NextPane, "tab", "models"), relabel(k.PageUp, "pgup", "scroll"), relabel(k.ClearChat, "ctrl+l", "clear"),
			anywhere(k.Dashboard, "F1", "dashboard"), anywhere(k.Help, "F10", "help")}
	case m.page == pageChat:
		bs := []key.Binding{relabel(k.NextPane, "tab", "next"), either("↑/↓", "choose", k.Up, k.Down)}
		if m.chat.focus == chatSettings {
			bs = append(bs, either("-/+", "adjust", k.Decrease, k.Increase))
		}
		return append(bs, relabel(k.Open, "enter", "prompt"), relabel(k.Dashboard, "1", "dashboard"),
			relabel(k.Help, "?", "help"), relabel(k.Quit, "q", "quit"))
	case m.dash.log.filtering:
		return []key.Binding{relabel(k.ApplyFilter, "enter", "apply filter"), relabel(k.ClearFilter, "esc", "clear filter")}
	}
	bs := []key.Binding{k.NextPane}
	switch {
	case m.dash.focus == paneTable:
		bs = append(bs, relabel(k.Open, "enter", "details"))
	case m.dash.canGoBack():
		bs = append(bs, relabel(k.Back, "esc", "back"))
	}
	return append(bs, relabel(k.Pause, "p", "pause"), relabel(k.StartRun, "r", "run"), relabel(k.Export, "e", "export"),
		relabel(k.Theme, "t", "theme"), relabel(k.Zoom, "z", "zoom"), relabel(k.ChatWith, "c", "chat"),
		relabel(k.Config, "2", "config"), relabel(k.Help, "?", "help"), relabel(k.Quit, "q", "quit"))
}

// FullHelp is every binding, grouped by screen (help.KeyMap); the help
// screen renders the same groups with their titles.
func (m *model) FullHelp() [][]key.Binding {
	var groups [][]key.Binding
	for _, s := range m.ctx.keys.fullHelp() {
		groups = append(groups, s.bindings)
	}
	return groups
}

// relabel is b with another label: the hint bar and the help screen
// describe some keys in their own words.
func relabel(b key.Binding, keys, desc string) key.Binding {
	b.SetHelp(keys, desc)
	return b
}

// either is one entry for several bindings (↑/↓): all their keys under
// one label.
func either(keys, desc string, bs ...key.Binding) key.Binding {
	var ks []string
	for _, b := range bs {
		ks = append(ks, b.Keys()...)
	}
	return key.NewBinding(key.WithKeys(ks...), key.WithHelp(keys, desc))
}

// anywhere is b restricted to its keys that type no text: those keep
// their meaning while a text field has the focus.
func anywhere(b key.Binding, keys, desc string) key.Binding {
	var ks []string
	for _, s := range b.Keys() {
		if !typesText(s) {
			ks = append(ks, s)
		}
	}
	return key.NewBinding(key.WithKeys(ks...), key.WithHelp(keys, desc))
}

// typesText reports whether the key named s (as key.Binding and
// tea.KeyPressMsg.String spell it) types text into a focused field: a
// single character or space, not a named key such as f1, enter or ctrl+c.
func typesText(s string) bool { return s == "space" || utf8.RuneCountInString(s) == 1 }
