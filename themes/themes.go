// Package themes holds the workbench's colour themes as plain values.
//
// A Theme is a palette (named colours for roles such as "accent", "good",
// "best line of the fitness chart") and Styles turns a palette into the
// lipgloss styles the TUI renders with. Themes are values built by
// functions: there is no registry or other package state to mutate, so two
// programs (or two tests) can use different themes side by side.
//
// Three themes ship: dark (for dark terminal backgrounds), light (for light
// ones) and high-contrast (pure black/white/yellow, bold, for low vision and
// washed-out projectors). Any theme can be turned monochrome with
// WithoutColor, which is what the TUI does when NO_COLOR is set: colours go,
// and selection and focus are shown with reverse video, bold and underline
// instead, so the screen stays usable without colour.
package themes

import (
	"fmt"
	"image/color"
	"slices"
	"strings"

	"charm.land/lipgloss/v2"
)

// Names of the shipped themes, in the order the theme key cycles through.
const (
	Dark         = "dark"
	Light        = "light"
	HighContrast = "high-contrast"
)

// Names returns the names of the shipped themes in cycling order.
func Names() []string { return []string{Dark, Light, HighContrast} }

// Palette names a colour for each role the interface draws.
type Palette struct {
	Text        color.Color // ordinary text
	Muted       color.Color // secondary text: units, hints, timestamps
	Accent      color.Color // titles, the active tab, keys in the help
	Border      color.Color // pane borders
	FocusBorder color.Color // the focused pane's border
	SelectionBg color.Color // the selected row
	SelectionFg color.Color
	BarBg       color.Color // status bar background
	BarFg       color.Color
	Good        color.Color // done, improvements
	Warn        color.Color // paused, cached, warnings
	Bad         color.Color // failures, errors
	Info        color.Color // running work: merging, evaluating
	Best        color.Color // the fitness chart's three lines
	Mean        color.Color
	Worst       color.Color
}

// Theme is a named palette. Dark tells components that draw their own
// colours (forms) which background to expect. Mono themes carry no colour.
type Theme struct {
	Name    string
	Dark    bool
	Mono    bool
	Palette Palette
}

// ByName returns the shipped theme with the given name.
func ByName(name string) (Theme, error) {
	switch strings.ToLower(strings.TrimSpace(name)) {
	case Dark, "":
		return DarkTheme(), nil
	case Light:
		return LightTheme(), nil
	case HighContrast, "highcontrast", "contrast":
		return HighContrastTheme(), nil
	}
	return Theme{}, fmt.Errorf("unknown theme %q (use %s)", name, strings.Join(Names(), ", "))
}

// Next returns the name of the theme after name in cycling order.
func Next(name string) string {
	names := Names()
	i := slices.Index(names, name)
	return names[(i+1)%len(names)]
}

// DarkTheme suits dark terminal backgrounds.
func DarkTheme() Theme {
	c := lipgloss.Color
	return Theme{Name: Dark, Dark: true, Palette: Palette{
		Text: c("#D8DEE9"), Muted: c("#7B8394"), Accent: c("#88C0D0"),
		Border: c("#4C566A"), FocusBorder: c("#88C0D0"),
		SelectionBg: c("#3B4252"), SelectionFg: c("#ECEFF4"),
		BarBg: c("#2E3440"), BarFg: c("#D8DEE9"),
		Good: c("#A3BE8C"), Warn: c("#EBCB8B"), Bad: c("#BF616A"), Info: c("#81A1C1"),
		Best: c("#A3BE8C"), Mean: c("#88C0D0"), Worst: c("#D08770"),
	}}
}

// LightTheme suits light terminal backgrounds.
func LightTheme() Theme {
	c := lipgloss.Color
	return Theme{Name: Light, Dark: false, Palette: Palette{
		Text: c("#24292F"), Muted: c("#6E7781"), Accent: c("#0550AE"),
		Border: c("#AFB8C1"), FocusBorder: c("#0969DA"),
		SelectionBg: c("#DDF4FF"), SelectionFg: c("#0A3069"),
		BarBg: c("#EAEEF2"), BarFg: c("#24292F"),
		Good: c("#1A7F37"), Warn: c("#9A6700"), Bad: c("#CF222E"), Info: c("#0969DA"),
		Best: c("#1A7F37"), Mean: c("#0969DA"), Worst: c("#BC4C00"),
	}}
}

// HighContrastTheme uses the 16 basic ANSI colours at full intensity, so it
// keeps its contrast on any terminal and under any palette remapping.
func HighContrastTheme() Theme {
	c := lipgloss.Color
	return Theme{Name: HighContrast, Dark: true, Palette: Palette{
		Text: c("15"), Muted: c("7"), Accent: c("11"),
		Border: c("15"), FocusBorder: c("11"),
		SelectionBg: c("11"), SelectionFg: c("0"),
		BarBg: c("15"), BarFg: c("0"),
		Good: c("10"), Warn: c("11"), Bad: c("9"), Info: c("14"),
		Best: c("10"), Mean: c("14"), Worst: c("13"),
	}}
}

// WithoutColor returns t with every colour removed (NO_COLOR). The name is
// kept so that cycling themes still reports which one is selected.
func (t Theme) WithoutColor() Theme {
	t.Mono = true
	t.Palette = Palette{}
	return t
}

// Styles are the lipgloss styles the TUI renders with, derived from a Theme.
type Styles struct {
	Text, Muted, Accent, Bold  lipgloss.Style
	Good, Warn, Bad, Info      lipgloss.Style
	Best, Mean, Worst          lipgloss.Style
	Border, FocusBorder        lipgloss.Style // border characters of panes
	PaneTitle, FocusPaneTitle  lipgloss.Style
	Selected                   lipgloss.Style // the selected row of a list
	Header                     lipgloss.Style // table headers
	Tab, ActiveTab             lipgloss.Style
	StatusBar, StatusKey       lipgloss.Style
	HelpKey, HelpDesc, HelpSep lipgloss.Style
	Dialog                     lipgloss.Style // confirmation and help overlays
	Match                      lipgloss.Style // filter matches in the log
	InputPrompt, Placeholder   lipgloss.Style
}

// Styles builds the style set of t.
func (t Theme) Styles() Styles {
	p := t.Palette
	n := lipgloss.NewStyle
	fg := func(c color.Color) lipgloss.Style {
		if t.Mono || c == nil {
			return n()
		}
		return n().Foreground(c)
	}
	s := Styles{
		Text:   fg(p.Text),
		Muted:  fg(p.Muted),
		Accent: fg(p.Accent).Bold(true),
		Bold:   n().Bold(true),
		Good:   fg(p.Good),
		Warn:   fg(p.Warn),
		Bad:    fg(p.Bad).Bold(true),
		Info:   fg(p.Info),
		Best:   fg(p.Best).Bold(true),
		Mean:   fg(p.Mean),
		Worst:  fg(p.Worst),

		Border:         fg(p.Border),
		FocusBorder:    fg(p.FocusBorder).Bold(true),
		PaneTitle:      fg(p.Text).Bold(true),
		FocusPaneTitle: fg(p.FocusBorder).Bold(true),
		Header:         fg(p.Muted).Bold(true),
		Tab:            fg(p.Muted).Padding(0, 1),
		ActiveTab:      fg(p.Accent).Bold(true).Padding(0, 1).Underline(true),
		HelpKey:        fg(p.Accent).Bold(true),
		HelpDesc:       fg(p.Muted),
		HelpSep:        fg(p.Border),
		Match:          fg(p.Warn).Bold(true).Underline(true),
		InputPrompt:    fg(p.Accent).Bold(true),
	}
	s.Placeholder = s.Muted
	s.Dialog = n().Border(lipgloss.RoundedBorder()).Padding(0, 2)
	if t.Mono {
		s.Selected = n().Reverse(true)
		s.StatusBar = n().Reverse(true)
		s.StatusKey = n().Reverse(true).Bold(true)
		s.FocusPaneTitle = n().Bold(true).Underline(true)
		s.Best = n().Bold(true)
		s.Bad = n().Bold(true)
		return s
	}
	s.Selected = n().Background(p.SelectionBg).Foreground(p.SelectionFg).Bold(true)
	s.StatusBar = n().Background(p.BarBg).Foreground(p.BarFg)
	s.StatusKey = n().Background(p.BarBg).Foreground(p.Accent).Bold(true)
	s.Dialog = s.Dialog.BorderForeground(p.FocusBorder)
	return s
}
