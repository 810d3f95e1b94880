package tui

import (
	"strings"

	"charm.land/bubbles/v2/key"
	"charm.land/bubbles/v2/textinput"
	tea "charm.land/bubbletea/v2"
	"charm.land/lipgloss/v2"
)

// logPane keeps the run's log (engine messages and the workbench's own
// summaries). It follows new lines by default (f toggles), wraps long
// lines on request (w), and filters by a case-insensitive substring (/).
// Scrolling up stops following; G (end) follows again.
type logPane struct {
	ctx       *programContext
	lines     []logLine
	follow    bool
	wrap      bool
	filter    string
	filtering bool
	input     textinput.Model
	offset    int // first visible row when not following
}

const maxLogLines = 5000

func newLogPane(ctx *programContext) logPane {
	return logPane{ctx: ctx, follow: true, input: newTextInput(ctx, "/ ", "filter the log")}
}

// newTextInput builds a single-line input in the theme's styles, with a
// steady (non-blinking) cursor so that screens are reproducible.
func newTextInput(ctx *programContext, prompt, placeholder string) textinput.Model {
	ti := textinput.New()
	ti.Prompt = prompt
	ti.Placeholder = placeholder
	styleTextInput(ctx, &ti)
	return ti
}

func styleTextInput(ctx *programContext, ti *textinput.Model) {
	s := textinput.DefaultStyles(ctx.theme.Dark)
	st := ctx.styles
	s.Focused.Prompt, s.Blurred.Prompt = st.InputPrompt, st.Muted
	s.Focused.Text, s.Blurred.Text = st.Text, st.Muted
	s.Focused.Placeholder, s.Blurred.Placeholder = st.Placeholder, st.Placeholder
	s.Cursor.Blink = false
	if ctx.theme.Mono {
		s.Cursor.Color = nil
	} else {
		s.Cursor.Color = ctx.theme.Palette.Accent
	}
	ti.SetStyles(s)
}

func (l *logPane) add(lines ...logLine) {
	l.lines = append(l.lines, lines...)
	if over := len(l.lines) - maxLogLines; over > 0 {
		l.lines = append(l.lines[:0:0], l.lines[over:]...)
		l.offset = max(0, l.offset-over)
	}
}

func (l *logPane) clear() {
	l.lines = nil
	l.offset = 0
}

// startFilter opens the filter input.
func (l *logPane) startFilter() tea.Cmd {
	l.filtering = true
	l.input.SetValue(l.filter)
	l.input.CursorEnd()
	return l.input.Focus()
}

// updateFilter handles a key while the filter input is open: enter
// applies the filter, esc clears it, anything else is typed (not bound).
func (l *logPane) updateFilter(msg tea.KeyPressMsg) (cmd tea.Cmd, bound bool) {
	k := l.ctx.keys
	switch {
	case key.Matches(msg, k.ApplyFilter):
		l.filter = strings.TrimSpace(l.input.Value())
		l.filtering = false
		l.input.Blur()
		l.offset = 0
		return nil, true
	case key.Matches(msg, k.ClearFilter):
		l.filter = ""
		l.filtering = false
		l.input.Blur()
		l.input.SetValue("")
		return nil, true
	}
	l.input, cmd = l.input.Update(msg)
	return cmd, false
}

// rows renders the visible log as display rows of width w.
func (l *logPane) rows(w int) []string {
	st := l.ctx.styles
	needle := strings.ToLower(l.filter)
	var out []string
	for _, ln := range l.lines {
		if needle != "" && !strings.Contains(strings.ToLower(ln.text), needle) {
			continue
		}
		ts := "        "
		if !ln.time.IsZero() {
			ts = ln.time.Format("15:04:05")
		}
		tag, ts2 := "INF", st.Muted
		switch ln.level {
		case "debug":
			tag = "DBG"
		case "warn", "warning":
			tag, ts2 = "WRN", st.Warn
		case "error":
			tag, ts2 = "ERR", st.Bad
		}
		prefix := st.Muted.Render(ts) + " " + ts2.Render(tag) + " "
		pw := 13
		text := ln.text
		if l.wrap && w > pw+8 {
			for i, part := range wrapLines(text, w-pw) {
				p := prefix
				if i > 0 {
					p = strings.Repeat(" ", pw)
				}
				out = append(out, p+highlight(st.Match, part, needle))
			}
			continue
		}
		out = append(out, prefix+highlight(st.Match, trunc(text, max(1, w-pw)), needle))
	}
	return out
}

// highlight marks the case-insensitive occurrences of needle in s.
func highlight(style lipgloss.Style, s, needle string) string {
	if needle == "" {
		return s
	}
	lower := strings.ToLower(s)
	if len(lower) != len(s) { // case folding changed byte lengths: skip marking
		return s
	}
	var b strings.Builder
	for {
		i := strings.Index(lower, needle)
		if i < 0 {
			b.WriteString(s)
			return b.String()
		}
		b.WriteString(s[:i])
		b.WriteString(style.Render(s[i : i+len(needle)]))
		s, lower = s[i+len(needle):], lower[i+len(needle):]
	}
}

// scroll moves the view by delta rows; scrolling stops following, reaching
// the end resumes it.
func (l *logPane) scroll(delta, w, h int) {
	rows := len(l.rows(w))
	maxOff := max(0, rows-h)
	if l.follow {
		l.offset = maxOff
	}
	l.offset = min(max(0, l.offset+delta), maxOff)
	l.follow = l.offset >= maxOff && delta > 0
}

func (l *logPane) toTop() {
	l.follow = false
	l.offset = 0
}

func (l *logPane) toBottom() {
	l.follow = true
}

// view renders the log in w × h cells; the filter input takes the last
// row while it is open.
func (l *logPane) view(w, h int) string {
	st := l.ctx.styles
	bodyH := h
	if l.filtering {
		bodyH = h - 1
	}
	rows := l.rows(w)
	start := l.offset
	if l.follow {
		start = max(0, len(rows)-bodyH)
	}
	start = max(0, min(start, len(rows)-bodyH))
	end := min(len(rows), start+bodyH)
	body := strings.Join(rows[start:end], "\n")
	if len(rows) == 0 {
		body = st.Muted.Render("no log lines")
		if l.filter != "" {
			body = st.Muted.Render("no log lines match “" + l.filter + "” (esc in / clears)")
		}
	}
	body = fit(body, w, bodyH)
	if l.filtering {
		in := l.input // a copy: rendering never changes the model
		in.SetWidth(max(1, w-4))
		body += "\n" + fitLine(in.View(), w)
	}
	return body
}

// note is the pane's mode summary for its border.
func (l *logPane) note() string {
	var parts []string
	if l.follow {
		parts = append(parts, "follow")
	} else {
		parts = append(parts, "paused scroll")
	}
	if l.wrap {
		parts = append(parts, "wrap")
	}
	if l.filter != "" {
		parts = append(parts, "filter “"+l.filter+"”")
	}
	return strings.Join(parts, " · ")
}
