package tui

import (
	"fmt"
	"strings"

	tea "charm.land/bubbletea/v2"
	"charm.land/lipgloss/v2"
)

func (m *model) requestQuit() tea.Cmd {
	if m.rs.phase.active() {
		m.confirmQuit = true
		return nil
	}
	m.cancelRun()
	return tea.Quit
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
		return panel(st, "Keys", "esc closes", lipgloss.JoinHorizontal(lipgloss.Top, left, "  ", right), w, h, true)
	}
	off := min(m.helpOffset, max(0, len(lines)-inner))
	end := min(len(lines), off+inner)
	note := "esc closes"
	if len(lines) > inner {
		note = fmt.Sprintf("↑/↓ scroll %d–%d of %d · esc closes", off+1, end, len(lines))
	}
	return panel(st, "Keys", note, strings.Join(lines[off:end], "\n"), w, h, true)
}

func (m *model) confirmView() string {
	st := m.ctx.styles
	body := st.Bold.Render("A tournament is running.") + "\n" +
		"Quit and stop it? Candidates being merged or evaluated\n" +
		"are cancelled; the engine cleans up before the exit.\n\n" +
		st.HelpKey.Render("y") + st.Muted.Render(" quit   ") + st.HelpKey.Render("n") + st.Muted.Render(" keep running")
	return st.Dialog.Render(body)
}
