package tui

import (
	"fmt"
	"strings"

	"charm.land/bubbles/v2/key"
	tea "charm.land/bubbletea/v2"
	"charm.land/lipgloss/v2"
)

// The overlays: the help screen (every key, by screen) over the page, and
// the quit confirmation over everything while a tournament runs. An open
// overlay takes every key press; keys it does not bind do nothing.

// requestQuit quits, or asks first while a tournament is running.
func (m *model) requestQuit() tea.Cmd {
	if m.rs.phase.active() {
		m.confirmQuit = true
		return nil
	}
	m.cancelRun()
	return tea.Quit
}

// confirmKey handles a key while the quit confirmation is open.
func (m *model) confirmKey(msg tea.KeyPressMsg) (tea.Cmd, bool) {
	k := m.ctx.keys
	switch {
	case key.Matches(msg, k.ConfirmYes, k.ForceQuit):
		m.confirmQuit = false
		m.cancelRun()
		return tea.Quit, true
	case key.Matches(msg, k.ConfirmNo):
		m.confirmQuit = false
		return nil, true
	}
	return nil, false
}

// openHelp shows the help screen from its top.
func (m *model) openHelp() { m.showHelp, m.helpOffset = true, 0 }

// helpKey handles a key while the help screen is open: it scrolls, and
// closes with esc, ? or q; ctrl+c still quits.
func (m *model) helpKey(msg tea.KeyPressMsg) (tea.Cmd, bool) {
	k := m.ctx.keys
	page := max(1, m.bodyHeight()-4)
	switch {
	case key.Matches(msg, k.Help, k.Back, k.Quit):
		m.showHelp = false
	case key.Matches(msg, k.Down):
		m.helpOffset++
	case key.Matches(msg, k.Up):
		m.helpOffset = max(0, m.helpOffset-1)
	case key.Matches(msg, k.PageDown):
		m.helpOffset += page
	case key.Matches(msg, k.PageUp):
		m.helpOffset = max(0, m.helpOffset-page)
	case key.Matches(msg, k.ForceQuit):
		m.showHelp = false
		return m.requestQuit(), true
	default:
		return nil, false
	}
	return nil, true
}

// helpView lists every key, by screen, scrolled by helpOffset.
func (m *model) helpView(w, h int) string {
	st := m.ctx.styles
	var lines []string
	keyW := 12
	for _, sec := range m.ctx.keys.fullHelp() {
		lines = append(lines, st.Accent.Render(sec.title))
		for _, b := range sec.bindings {
			hp := b.Help()
			lines = append(lines, "  "+st.HelpKey.Render(padRight(hp.Key, keyW))+" "+st.Text.Render(hp.Desc))
		}
		lines = append(lines, "")
	}
	lines = append(lines, st.Muted.Render("The F-keys and ctrl-keys also work while a text field has the focus."))
	closes := m.ctx.keys.Back.Help().Key + " closes"
	cols := 1
	colW := w - 2
	if w >= 150 {
		cols, colW = 2, (w-4)/2
	}
	inner := h - 2
	if cols == 2 {
		half := (len(lines) + 1) / 2
		// Break at a section boundary near the middle.
		for i := half; i < len(lines); i++ {
			if lines[i] == "" {
				half = i + 1
				break
			}
		}
		left := fit(strings.Join(lines[:half], "\n"), colW, inner)
		right := fit(strings.Join(lines[half:], "\n"), colW, inner)
		return panel(st, "Keys", closes, lipgloss.JoinHorizontal(lipgloss.Top, left, "  ", right), w, h, true)
	}
	off := min(m.helpOffset, max(0, len(lines)-inner))
	end := min(len(lines), off+inner)
	note := closes
	if len(lines) > inner {
		note = fmt.Sprintf("↑/↓ scroll %d–%d of %d · %s", off+1, end, len(lines), closes)
	}
	return panel(st, "Keys", note, strings.Join(lines[off:end], "\n"), w, h, true)
}

// confirmView is the quit confirmation's box.
func (m *model) confirmView() string {
	st, k := m.ctx.styles, m.ctx.keys
	body := st.Bold.Render("A tournament is running.") + "\n" +
		"Quit and stop it? Candidates being merged or evaluated\n" +
		"are cancelled; the engine cleans up before the exit.\n\n" +
		st.HelpKey.Render(k.ConfirmYes.Help().Key) + st.Muted.Render(" quit   ") +
		st.HelpKey.Render(k.ConfirmNo.Help().Key) + st.Muted.Render(" keep running")
	return st.Dialog.Render(body)
}
