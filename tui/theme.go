package tui

import (
	"charm.land/bubbles/v2/help"
	tea "charm.land/bubbletea/v2"

	"github.com/evomerge/evomerge/themes"
)

func (m *model) styleHelp() {
	st := m.ctx.styles
	m.help.Styles = help.Styles{ShortKey: st.HelpKey, ShortDesc: st.HelpDesc, ShortSeparator: st.HelpSep,
		Ellipsis: st.HelpSep, FullKey: st.HelpKey, FullDesc: st.HelpDesc, FullSeparator: st.HelpSep}
}

func (m *model) cycleTheme() tea.Cmd {
	m.ctx.setTheme(themes.Next(m.ctx.theme.Name))
	m.styleHelp()
	styleTextInput(m.ctx, &m.dash.log.input)
	styleTextInput(m.ctx, &m.chat.input)
	m.dash.chart.rebuild()
	if m.conf.form != nil {
		m.conf.form.WithTheme(huhTheme(m.ctx.theme, false))
	}
	m.setFlash("theme: "+m.ctx.theme.Name, false)
	return nil
}
