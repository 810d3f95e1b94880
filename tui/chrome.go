package tui

import (
	"fmt"
	"strings"

	tea "charm.land/bubbletea/v2"
	"charm.land/lipgloss/v2"
)

// The screen around the pages: the tab bar with the run's badge and the
// theme, the page (or the help over it), the status bar, the hint bar,
// and the quit confirmation over all of it; the window title.

// bodyHeight is what is left between the tab bar and the status and hint
// bars.
func (m *model) bodyHeight() int { return max(1, m.ctx.height-3) }

// View renders the screen.
func (m *model) View() tea.View {
	v := tea.NewView(m.render())
	v.AltScreen = true
	v.WindowTitle = m.title()
	return v
}

// title is the terminal window's title: the run's progress in words.
func (m *model) title() string {
	t := "evomerge"
	switch m.rs.phase {
	case phaseRunning, phaseStarting:
		t += fmt.Sprintf(" — generation %d, %d evaluations", max(0, m.rs.curGen), m.rs.evaluations)
		if m.rs.paused {
			t += " (paused)"
		}
	case phaseFinished:
		t += " — finished"
	case phaseFailed:
		t += " — failed"
	}
	return t
}

// render draws the whole screen as a string of exactly width × height
// cells.
func (m *model) render() string {
	w, h := m.ctx.width, m.ctx.height
	if w <= 0 || h <= 0 {
		return "starting…"
	}
	if h < 8 || w < 40 {
		return fit("evomerge: the terminal is too small ("+fmt.Sprint(w, "×", h)+"); 80×24 or more, please.", w, h)
	}
	var body string
	switch m.page {
	case pageConfig:
		body = m.conf.view()
	case pageChat:
		body = m.chat.view()
	default:
		body = m.dash.view(&m.rs)
	}
	bh := m.bodyHeight()
	if m.showHelp {
		body = m.helpView(w, bh)
	}
	body = fit(body, w, bh)
	screen := m.tabBar(w) + "\n" + body + "\n" + m.status.view(&m.rs, w) + "\n" + m.hintBar(w)
	if m.confirmQuit {
		screen = overlay(screen, m.confirmView(), w, h)
	}
	return screen
}

// tabBar is the top line: the pages, the run's badge, the theme.
func (m *model) tabBar(w int) string {
	st := m.ctx.styles
	tabs := []struct {
		p    page
		name string
	}{{pageDashboard, "1 Dashboard"}, {pageConfig, "2 Config"}, {pageChat, "3 Chat"}}
	var parts []string
	for _, t := range tabs {
		if t.p == m.page && !m.showHelp {
			parts = append(parts, st.ActiveTab.Render(t.name))
		} else {
			parts = append(parts, st.Tab.Render(t.name))
		}
	}
	if m.showHelp {
		parts = append(parts, st.ActiveTab.Render("? Help"))
	}
	left := st.Accent.Render(" evomerge ") + strings.Join(parts, "")
	right := m.badge() + st.Muted.Render("  theme "+m.ctx.theme.Name+" ")
	gap := w - lipgloss.Width(left) - lipgloss.Width(right)
	if gap < 1 {
		return fitLine(left+" "+m.badge(), w)
	}
	return left + strings.Repeat(" ", gap) + right
}

// badge is the run's state in a word or two.
func (m *model) badge() string {
	st := m.ctx.styles
	switch m.rs.phase {
	case phaseStarting:
		return st.Info.Render("… starting")
	case phaseRunning:
		if m.rs.paused {
			return st.Warn.Render("‖ paused")
		}
		return st.Info.Render("● running")
	case phaseFinished:
		if f := m.rs.finished; f != nil && f.Reason != "" {
			return st.Good.Render("✓ finished (" + f.Reason + ")")
		}
		return st.Good.Render("✓ finished")
	case phaseFailed:
		return st.Bad.Render("✗ failed")
	}
	return st.Muted.Render("○ idle")
}

// hintBar shows the keys that act on what has the focus (ShortHelp),
// as many as fit.
func (m *model) hintBar(w int) string {
	h := m.help
	h.SetWidth(w - 1)
	return fitLine(" "+h.View(m), w)
}
