package tui

import (
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"charm.land/bubbles/v2/key"
	tea "charm.land/bubbletea/v2"
	"charm.land/huh/v2"
)

// keyPress builds the key message bubbletea delivers for a key name as
// key.Binding spells it ("a", "enter", "shift+tab", "ctrl+s", "f2").
func keyPress(s string) tea.KeyPressMsg {
	named := map[string]rune{
		"enter": tea.KeyEnter, "tab": tea.KeyTab, "esc": tea.KeyEscape, "up": tea.KeyUp, "down": tea.KeyDown,
		"left": tea.KeyLeft, "right": tea.KeyRight, "pgup": tea.KeyPgUp, "pgdown": tea.KeyPgDown,
		"home": tea.KeyHome, "end": tea.KeyEnd, "space": tea.KeySpace, "backspace": tea.KeyBackspace,
		"delete": tea.KeyDelete, "insert": tea.KeyInsert,
		"f1": tea.KeyF1, "f2": tea.KeyF2, "f3": tea.KeyF3, "f4": tea.KeyF4, "f5": tea.KeyF5, "f6": tea.KeyF6,
		"f7": tea.KeyF7, "f8": tea.KeyF8, "f9": tea.KeyF9, "f10": tea.KeyF10, "f11": tea.KeyF11, "f12": tea.KeyF12,
	}
	var mod tea.KeyMod
	for {
		switch {
		case len(s) > 6 && s[:6] == "shift+":
			mod |= tea.ModShift
			s = s[6:]
			continue
		case len(s) > 5 && s[:5] == "ctrl+":
			mod |= tea.ModCtrl
			s = s[5:]
			continue
		case len(s) > 4 && s[:4] == "alt+":
			mod |= tea.ModAlt
			s = s[4:]
			continue
		}
		break
	}
	if c, ok := named[s]; ok {
		return tea.KeyPressMsg{Code: c, Mod: mod}
	}
	r := []rune(s)[0]
	if mod != 0 {
		return tea.KeyPressMsg{Code: r, Mod: mod}
	}
	return tea.KeyPressMsg{Code: r, Text: s}
}

// typeText is a sequence of key presses typing s.
func typeText(s string) []tea.KeyPressMsg {
	var out []tea.KeyPressMsg
	for _, r := range s {
		if r == ' ' {
			out = append(out, tea.KeyPressMsg{Code: tea.KeySpace, Text: " "})
			continue
		}
		out = append(out, tea.KeyPressMsg{Code: r, Text: string(r)})
	}
	return out
}

// keyContext is a state of the workbench in which keys are tried: the
// page, what has the focus, an open overlay.
type keyContext struct {
	name string
	// sections are the help screen's sections that describe this state.
	sections []string
	// form: the state needs the configuration form (building it is most
	// of a workbench's cost, so the others go without).
	form  bool
	setup func(h *harness)
}

var keyContexts = []keyContext{
	{"dashboard, table focused", []string{"Everywhere", "Dashboard", "Log pane"}, false, func(h *harness) {}},
	{"dashboard, details open", []string{"Everywhere", "Dashboard", "Log pane"}, false, func(h *harness) { h.keys("enter") }},
	{"dashboard, log focused", []string{"Everywhere", "Dashboard", "Log pane"}, false, func(h *harness) {
		for h.m.dash.focus != paneLog {
			h.keys("tab")
		}
	}},
	{"dashboard, zoomed", []string{"Everywhere", "Dashboard", "Log pane"}, false, func(h *harness) { h.keys("z") }},
	{"dashboard, log filter open", []string{"Everywhere", "Dashboard", "Log pane"}, false, func(h *harness) { h.keys("/") }},
	{"configuration", []string{"Everywhere", "Configuration"}, true, func(h *harness) { h.keys("2") }},
	{"chat, models", []string{"Everywhere", "Chat"}, false, func(h *harness) { h.keys("3", "esc") }},
	{"chat, settings", []string{"Everywhere", "Chat"}, false, func(h *harness) { h.keys("3", "esc", "tab") }},
	{"chat, prompt", []string{"Everywhere", "Chat"}, false, func(h *harness) { h.keys("3") }},
	{"help screen", nil, false, func(h *harness) { h.keys("?") }}, // it shows every section
	{"quit confirmation", []string{"Everywhere", "Dialogs"}, false, func(h *harness) {
		h.m.rs.phase = phaseRunning
		h.keys("q")
	}},
}

// inContext is a workbench at 80×24 with a finished scripted run played
// in (so the table has candidates and the narrow layout opens details
// over the table), put into state c.
func inContext(t *testing.T, c keyContext) *harness {
	t.Helper()
	h := newBareHarness(t, newFake(6, 3), 80, 24)
	if c.form {
		h.m.Init()
	}
	h.playScript(len(h.fb.script), 100)
	c.setup(h)
	return h
}

// routing is the part of the state that decides where a key goes.
func routing(m *model) string {
	return fmt.Sprint(m.page, m.showHelp, m.confirmQuit, m.rs.phase.active(), m.dash.focus, m.dash.detailsOpen,
		m.dash.zoom, m.dash.log.filtering, m.dash.log.filter != "", m.chat.focus, m.chat.busy)
}

// prober presses keys in state c, one after another on the same
// workbench as long as the routing state stays that of c, on a fresh one
// after a key changed it.
type prober struct {
	t *testing.T
	c keyContext
	h *harness
	// state is c's routing state.
	state string
}

// bound presses the key named s and reports whether a binding matched.
func (p *prober) bound(s string) bool {
	p.t.Helper()
	if p.h == nil {
		p.h = inContext(p.t, p.c)
		p.state = routing(p.h.m)
	}
	_, bound := p.h.m.handleKey(keyPress(s))
	p.h.m.run.done = nil // the command (a run, an export) is not run: nothing to wait for
	if routing(p.h.m) != p.state {
		p.h = nil
	}
	return bound
}

// formBinding reports whether b is one of the configuration form's own
// bindings, which huh matches, not the workbench.
func formBinding(k keyMap, b key.Binding) bool {
	for _, f := range []key.Binding{k.FormNext, k.FormPrev, k.FormToggle} {
		if slices.Equal(f.Keys(), b.Keys()) {
			return true
		}
	}
	return false
}

// checkFormKey presses the form key s on the configuration page and
// waits for the form to act on it: the next or previous field gets the
// focus, or a technique is toggled.
func checkFormKey(t *testing.T, s string) {
	t.Helper()
	k := newKeyMap()
	h := newHarness(t, newFake(2, 1), 80, 24)
	h.keys("2")
	form := func() *huh.Form { return h.m.conf.form }
	focusMoves := func(key string) {
		t.Helper()
		t.Logf("%q must move the form's focus", key)
		before := form().GetFocusedField()
		h.keys(key)
		h.pump(func(*model) bool { return form().GetFocusedField() != before }, 5*time.Second)
	}
	switch {
	case slices.Contains(k.FormNext.Keys(), s):
		focusMoves(s)
	case slices.Contains(k.FormPrev.Keys(), s):
		focusMoves("tab")
		focusMoves(s)
	case slices.Contains(k.FormToggle.Keys(), s):
		var ms *huh.MultiSelect[string]
		for range 40 {
			if f, ok := form().GetFocusedField().(*huh.MultiSelect[string]); ok {
				ms = f
				break
			}
			focusMoves("tab")
		}
		if ms == nil {
			t.Fatal("no multiple choice (techniques) in the configuration form")
		}
		before := slices.Clone(ms.GetValue().([]string))
		t.Logf("%q must toggle a technique", s)
		h.keys(s)
		h.pump(func(*model) bool { return !slices.Equal(ms.GetValue().([]string), before) }, 5*time.Second)
	default:
		t.Fatalf("%q is not a form key", s)
	}
}

// Every key the hint bar shows acts where it is shown.
func TestHintBarKeysAreBound(t *testing.T) {
	k := newKeyMap()
	for _, c := range keyContexts {
		hints := inContext(t, c).m.ShortHelp()
		p := &prober{t: t, c: c}
		if len(hints) == 0 {
			t.Errorf("%s: no hints", c.name)
		}
		for _, b := range hints {
			for _, s := range b.Keys() {
				if formBinding(k, b) {
					checkFormKey(t, s)
					continue
				}
				if !p.bound(s) {
					t.Errorf("%s: the hint bar shows %q (%s) but the key does nothing", c.name, s, b.Help().Desc)
				}
			}
		}
	}
}

// Every key the help screen lists acts on the screens its section names.
func TestHelpScreenKeysAreBound(t *testing.T) {
	k := newKeyMap()
	for _, sec := range k.fullHelp() {
		var where []*prober
		for _, c := range keyContexts {
			if slices.Contains(c.sections, sec.title) {
				where = append(where, &prober{t: t, c: c})
			}
		}
		if len(where) == 0 {
			t.Errorf("help section %q describes no screen the test knows", sec.title)
			continue
		}
		for _, b := range sec.bindings {
			if len(b.Keys()) == 0 {
				t.Errorf("%s: %q has no keys", sec.title, b.Help().Key)
			}
			for _, s := range b.Keys() {
				if formBinding(k, b) {
					checkFormKey(t, s)
					continue
				}
				if !slices.ContainsFunc(where, func(p *prober) bool { return p.bound(s) }) {
					t.Errorf("%s: the help lists %q (%s) but the key does nothing there", sec.title, s, b.Help().Desc)
				}
			}
		}
	}
}

// allKeys are the keys tried for bindings nobody shows: every printable
// ASCII character, the named keys, F1–F12 and ctrl+a…z.
func allKeys() []string {
	var ks []string
	for r := '!'; r <= '~'; r++ {
		ks = append(ks, string(r))
	}
	ks = append(ks, "space", "enter", "tab", "shift+tab", "esc", "backspace", "delete", "insert",
		"up", "down", "left", "right", "pgup", "pgdown", "home", "end")
	for i := 1; i <= 12; i++ {
		ks = append(ks, fmt.Sprintf("f%d", i))
	}
	for r := 'a'; r <= 'z'; r++ {
		ks = append(ks, "ctrl+"+string(r))
	}
	return ks
}

// Every key that acts is shown, in the hint bar or in the help screen's
// sections for that screen.
func TestBoundKeysAreShown(t *testing.T) {
	k := newKeyMap()
	for _, c := range keyContexts {
		shown := map[string]bool{}
		add := func(bs []key.Binding) {
			for _, b := range bs {
				for _, s := range b.Keys() {
					shown[s] = true
				}
			}
		}
		add(inContext(t, c).m.ShortHelp())
		for _, sec := range k.fullHelp() {
			if c.sections == nil || slices.Contains(c.sections, sec.title) {
				add(sec.bindings)
			}
		}
		p := &prober{t: t, c: c}
		for _, s := range allKeys() {
			if p.bound(s) && !shown[s] {
				t.Errorf("%s: %q does something that neither the hint bar nor the help shows", c.name, s)
			}
		}
	}
}

// Every binding of the key map is shown somewhere: none is dead.
func TestEveryBindingIsShown(t *testing.T) {
	k := newKeyMap()
	shown := map[string]bool{}
	for _, sec := range k.fullHelp() {
		for _, b := range sec.bindings {
			shown[strings.Join(b.Keys(), " ")] = true
		}
	}
	for _, c := range keyContexts {
		for _, b := range inContext(t, c).m.ShortHelp() {
			shown[strings.Join(b.Keys(), " ")] = true
		}
	}
	v := reflect.ValueOf(k)
	for i := range v.NumField() {
		b := v.Field(i).Interface().(key.Binding)
		// A binding counts as shown when its keys are, alone or as part
		// of a combined entry (↑/↓).
		found := false
		for s := range shown {
			if strings.Contains(" "+s+" ", " "+strings.Join(b.Keys(), " ")+" ") {
				found = true
				break
			}
		}
		if !found {
			t.Errorf("binding %s (%v) is in the key map but neither the help nor the hint bar shows it", v.Type().Field(i).Name, b.Keys())
		}
	}
}

// A key that types no text acts the same in a text field (F-keys,
// ctrl+c); one that types text is typed.
func TestKeysThatTypeNoTextWorkWhileTyping(t *testing.T) {
	h := newHarness(t, newFake(2, 1), 80, 24)
	h.keys("3") // the chat prompt has the focus
	h.keys("2")
	if h.m.page != pageChat || h.m.chat.input.Value() != "2" {
		t.Fatalf("2 in the prompt: page %v, prompt %q", h.m.page, h.m.chat.input.Value())
	}
	h.keys("f2")
	if h.m.page != pageConfig {
		t.Fatalf("F2 in the prompt: page %v", h.m.page)
	}
}
