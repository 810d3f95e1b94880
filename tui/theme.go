package tui

import (
	"charm.land/bubbles/v2/help"
	tea "charm.land/bubbletea/v2"

	"github.com/evomerge/evomerge/themes"
)

// applyTheme switches to the named theme (an unknown name means the dark
// one; NO_COLOR stays in force) and restyles every component that keeps
// styles of its own: the help renderer, the text inputs, the chart and
// the configuration form. Everything else renders from ctx.styles and
// follows on the next frame. Every theme change goes through here: at
// start, when t cycles, when a saved configuration names another theme.
func (m *model) applyTheme(name string) {
	m.ctx.setTheme(name)
	st := m.ctx.styles
	m.help.Styles = help.Styles{ShortKey: st.HelpKey, ShortDesc: st.HelpDesc, ShortSeparator: st.HelpSep,
		Ellipsis: st.HelpSep, FullKey: st.HelpKey, FullDesc: st.HelpDesc, FullSeparator: st.HelpSep}
	styleTextInput(m.ctx, &m.dash.log.input)
	styleTextInput(m.ctx, &m.chat.input)
	m.dash.chart.rebuild()
	if m.conf.form != nil {
		m.conf.form.WithTheme(huhTheme(m.ctx.theme, false))
	}
}

// cycleTheme switches to the next theme.
func (m *model) cycleTheme() tea.Cmd {
	m.applyTheme(themes.Next(m.ctx.theme.Name))
	m.status.set("theme: "+m.ctx.theme.Name, false)
	return nil
}
