package tui

import (
	"strings"

	"charm.land/lipgloss/v2"
	"github.com/charmbracelet/x/ansi"

	"github.com/evomerge/evomerge/themes"
)

// Rendering helpers. Every component renders into an exact rectangle
// (width × height cells) so that the root can stack and join them without
// the layout shifting as content changes.

// fit truncates or pads each line of s to exactly w cells and the block to
// exactly h lines.
func fit(s string, w, h int) string {
	if w <= 0 || h <= 0 {
		return ""
	}
	lines := strings.Split(s, "\n")
	if len(lines) > h {
		lines = lines[:h]
	}
	for len(lines) < h {
		lines = append(lines, "")
	}
	for i, l := range lines {
		lines[i] = fitLine(l, w)
	}
	return strings.Join(lines, "\n")
}

// fitLine truncates (with an ellipsis) or pads one line to w cells.
func fitLine(l string, w int) string {
	if w <= 0 {
		return ""
	}
	lw := lipgloss.Width(l)
	if lw > w {
		l = ansi.Truncate(l, w, "…")
		lw = lipgloss.Width(l)
	}
	if lw < w {
		l += strings.Repeat(" ", w-lw)
	}
	return l
}

// trunc shortens plain text to w cells with an ellipsis.
func trunc(s string, w int) string {
	if w <= 0 {
		return ""
	}
	if lipgloss.Width(s) <= w {
		return s
	}
	return ansi.Truncate(s, w, "…")
}

// padRight pads plain or styled text to w cells (never truncates).
func padRight(s string, w int) string {
	if d := w - lipgloss.Width(s); d > 0 {
		return s + strings.Repeat(" ", d)
	}
	return s
}

// padLeft right-aligns text in w cells.
func padLeft(s string, w int) string {
	if d := w - lipgloss.Width(s); d > 0 {
		return strings.Repeat(" ", d) + s
	}
	return s
}

// panel draws body inside a rounded border of exactly w × h cells with
// title set into the top border and an optional right-aligned note (e.g.
// a mode indicator) in the same line. The focused panel's border is
// highlighted.
func panel(st themes.Styles, title, note, body string, w, h int, focused bool) string {
	if w < 4 || h < 2 {
		return fit(body, w, h)
	}
	bs, ts := st.Border, st.PaneTitle
	if focused {
		bs, ts = st.FocusBorder, st.FocusPaneTitle
	}
	inner := w - 2
	// Top border: ╭─ Title ─────── note ─╮
	title = trunc(title, max(0, inner-4))
	titleW := 0
	if title != "" {
		titleW = lipgloss.Width(title) + 2
	}
	noteW := 0
	if note != "" {
		note = trunc(note, max(0, inner-1-titleW-4))
		if note != "" {
			noteW = lipgloss.Width(note) + 3
		}
	}
	fill := max(0, inner-1-titleW-noteW)
	var b strings.Builder
	b.WriteString(bs.Render("╭─"))
	if title != "" {
		b.WriteString(" " + ts.Render(title) + " ")
	}
	b.WriteString(bs.Render(strings.Repeat("─", fill)))
	if note != "" {
		b.WriteString(" " + st.Muted.Render(note) + " " + bs.Render("─"))
	}
	b.WriteString(bs.Render("╮"))
	b.WriteByte('\n')
	lines := strings.Split(fit(body, inner, h-2), "\n")
	side := bs.Render("│")
	for _, l := range lines {
		b.WriteString(side)
		b.WriteString(l)
		b.WriteString(side)
		b.WriteByte('\n')
	}
	b.WriteString(bs.Render("╰" + strings.Repeat("─", inner) + "╯"))
	return b.String()
}

// bar renders a progress bar of w cells for fraction f in [0,1].
func bar(f float64, w int) string {
	if w <= 0 {
		return ""
	}
	f = min(max(f, 0), 1)
	n := int(f*float64(w) + 0.5)
	return strings.Repeat("█", n) + strings.Repeat("░", w-n)
}

// overlay places box centred over background (both full-screen strings of
// w × h cells), replacing the cells it covers.
func overlay(background, box string, w, h int) string {
	bg := strings.Split(fit(background, w, h), "\n")
	fg := strings.Split(box, "\n")
	bw := 0
	for _, l := range fg {
		bw = max(bw, lipgloss.Width(l))
	}
	bw = min(bw, w)
	top := max(0, (h-len(fg))/2)
	left := max(0, (w-bw)/2)
	for i, l := range fg {
		y := top + i
		if y >= h {
			break
		}
		row := bg[y]
		l = fitLine(l, bw)
		leftPart := ansi.Cut(row, 0, left)
		rightPart := ansi.Cut(row, left+bw, w)
		bg[y] = leftPart + l + rightPart
	}
	return strings.Join(bg, "\n")
}

// wrapLines wraps plain text to w cells, keeping explicit newlines.
func wrapLines(s string, w int) []string {
	if w <= 0 {
		return nil
	}
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if lipgloss.Width(l) <= w {
			out = append(out, l)
			continue
		}
		out = append(out, strings.Split(ansi.Wrap(l, w, " "), "\n")...)
	}
	return out
}
