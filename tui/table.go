package tui

import (
	"fmt"
	"slices"
	"strings"

	"charm.land/lipgloss/v2"

	"github.com/evomerge/evomerge/engine/evolve"
	"github.com/evomerge/evomerge/engine/format"
)

// popTable lists candidates: the current generation (or every candidate
// seen, with a), in announced order (or by fitness, with s). The
// selection follows a candidate's ID, so it stays put while rows move.
type popTable struct {
	ctx        *programContext
	all        bool
	byFitness  bool
	rows       []*candidate
	selectedID string
	cursor     int
	offset     int
	height     int // rows visible, set by view
}

// refresh recomputes the rows from the run state.
func (t *popTable) refresh(rs *runState) {
	t.rows = rs.rows(t.all, t.byFitness)
	t.cursor = 0
	for i, c := range t.rows {
		if c.info.ID == t.selectedID {
			t.cursor = i
			break
		}
	}
	if len(t.rows) > 0 {
		t.selectedID = t.rows[t.cursor].info.ID
	}
	t.clampOffset()
}

func (t *popTable) move(delta int) {
	if len(t.rows) == 0 {
		return
	}
	t.cursor = min(max(t.cursor+delta, 0), len(t.rows)-1)
	t.selectedID = t.rows[t.cursor].info.ID
	t.clampOffset()
}

func (t *popTable) selected() *candidate {
	if t.cursor < len(t.rows) {
		return t.rows[t.cursor]
	}
	return nil
}

func (t *popTable) clampOffset() {
	h := max(1, t.height)
	if t.cursor < t.offset {
		t.offset = t.cursor
	}
	if t.cursor >= t.offset+h {
		t.offset = t.cursor - h + 1
	}
	t.offset = max(0, min(t.offset, max(0, len(t.rows)-h)))
}

// column is one table column: a header and a cell renderer.
type column struct {
	title string
	width int // 0 = flexible
	right bool
	cell  func(c *candidate) (text string, style lipgloss.Style)
}

// columns chooses the columns that fit w cells and matter for this run.
func (t *popTable) columns(rs *runState, w int) []column {
	st := t.ctx.styles
	plain := st.Text
	idW := 6
	for _, c := range t.rows {
		idW = max(idW, lipgloss.Width(c.info.ID))
	}
	hasCoh, hasAcc := false, false
	for _, c := range t.rows {
		hasCoh = hasCoh || c.scores.Coherence != 0
		hasAcc = hasAcc || c.scores.TaskAccuracy != 0
	}
	nsga := rs.started.Optimizer == "nsga2"
	cols := []column{
		{title: " ", width: 1, cell: func(c *candidate) (string, lipgloss.Style) {
			if c.info.ID == rs.bestID {
				return "*", st.Best
			}
			return " ", plain
		}},
		{title: "id", width: idW, cell: func(c *candidate) (string, lipgloss.Style) { return c.info.ID, plain }},
		{title: "technique", width: 12, cell: func(c *candidate) (string, lipgloss.Style) { return c.info.Technique, st.Accent }},
		{title: "recipe", width: 0, cell: func(c *candidate) (string, lipgloss.Style) { return c.info.Summary, st.Muted }},
		{title: "fitness", width: 9, right: true, cell: func(c *candidate) (string, lipgloss.Style) {
			if !c.hasScores() {
				return "", plain
			}
			if c.info.ID == rs.bestID {
				return format.Fitness(c.fitness), st.Best
			}
			return format.Fitness(c.fitness), plain
		}},
		{title: "ppl", width: 8, right: true, cell: func(c *candidate) (string, lipgloss.Style) {
			if !c.hasScores() {
				return "", plain
			}
			return format.Perplexity(geoPPL(c.scores)), plain
		}},
	}
	if hasCoh && w >= 90 {
		cols = append(cols, column{title: "coh", width: 5, right: true, cell: func(c *candidate) (string, lipgloss.Style) {
			if !c.hasScores() {
				return "", plain
			}
			return format.Fraction(c.scores.Coherence), plain
		}})
	}
	if hasAcc && w >= 90 {
		cols = append(cols, column{title: "acc", width: 5, right: true, cell: func(c *candidate) (string, lipgloss.Style) {
			if !c.hasScores() {
				return "", plain
			}
			return format.Fraction(c.scores.TaskAccuracy), plain
		}})
	}
	if nsga && w >= 90 {
		cols = append(cols, column{title: "front", width: 5, right: true, cell: func(c *candidate) (string, lipgloss.Style) {
			if !c.hasScores() {
				return "", plain
			}
			return fmt.Sprint(c.rank), plain
		}})
	}
	if w >= 110 {
		cols = append(cols, column{title: "origin", width: 9, cell: func(c *candidate) (string, lipgloss.Style) { return c.info.Origin, st.Muted }})
	}
	cols = append(cols, column{title: "status", width: 14, cell: func(c *candidate) (string, lipgloss.Style) {
		return statusCell(st, c, 14)
	}})
	if w < 60 { // very narrow: drop the recipe summary and technique
		cols = slices.DeleteFunc(cols, func(c column) bool { return c.title == "recipe" || c.title == "technique" })
	}
	return cols
}

// statusCell renders a candidate's status, with its progress while it is
// merging or evaluating.
func statusCell(st stylesT, c *candidate, w int) (string, lipgloss.Style) {
	switch c.status {
	case evolve.StatusMerging, evolve.StatusEvaluating:
		label := "merging"
		if c.status == evolve.StatusEvaluating {
			label = "evaluating"
		}
		if w < 20 { // table cells: short labels leave room for the bar
			label = map[evolve.Status]string{evolve.StatusMerging: "merge", evolve.StatusEvaluating: "eval"}[c.status]
		}
		pct := fmt.Sprintf("%3.0f%%", 100*c.fraction)
		if bw := w - len(label) - len(pct) - 2; bw >= 3 {
			return label + " " + bar(c.fraction, bw) + " " + pct, st.Info
		}
		return label + " " + strings.TrimSpace(pct), st.Info
	case evolve.StatusDone:
		return "done", st.Good
	case evolve.StatusCached:
		return "cached", st.Warn
	case evolve.StatusFailed:
		return "failed", st.Bad
	case evolve.StatusSkipped:
		return "skipped", st.Muted
	case evolve.StatusQueued, "":
		return "queued", st.Muted
	}
	return string(c.status), st.Muted
}

// view renders the table in exactly w × h cells (a header line and rows).
func (t *popTable) view(rs *runState, w, h int, focused bool) string {
	st := t.ctx.styles
	if len(t.rows) == 0 {
		msg := "no candidates yet"
		if rs.phase == phaseIdle {
			msg = "no run yet: r starts a tournament, 2 edits the configuration"
		}
		return fit(st.Muted.Render(msg), w, h)
	}
	cols := t.columns(rs, w)
	fixed := 0
	for _, c := range cols {
		fixed += c.width + 1
	}
	flex := max(4, w-fixed)
	widthOf := func(c column) int {
		if c.width == 0 {
			return flex
		}
		return c.width
	}
	cell := func(text string, c column) string {
		cw := widthOf(c)
		text = trunc(text, cw)
		if c.right {
			return padLeft(text, cw)
		}
		return padRight(text, cw)
	}
	var b strings.Builder
	hdr := make([]string, len(cols))
	for i, c := range cols {
		hdr[i] = cell(c.title, c)
	}
	b.WriteString(st.Header.Render(fitLine(strings.Join(hdr, " "), w)))
	rowsH := max(1, h-1)
	off := t.offset
	if t.cursor >= off+rowsH {
		off = t.cursor - rowsH + 1
	}
	off = max(0, min(off, t.cursor))
	for i := off; i < len(t.rows) && i < off+rowsH; i++ {
		b.WriteByte('\n')
		c := t.rows[i]
		sel := i == t.cursor
		parts := make([]string, len(cols))
		for j, col := range cols {
			text, style := col.cell(c)
			if sel {
				parts[j] = cell(text, col)
			} else {
				parts[j] = style.Render(cell(text, col))
			}
		}
		line := fitLine(strings.Join(parts, " "), w)
		if sel {
			if focused {
				line = st.Selected.Render(line)
			} else {
				line = st.Bold.Render(line)
			}
		}
		b.WriteString(line)
	}
	return fit(b.String(), w, h)
}

// note is the table's summary for the pane border.
func (t *popTable) note(rs *runState) string {
	scope := "generation " + fmt.Sprint(rs.curGen)
	if t.all || rs.curGen < 0 {
		scope = "all generations"
	}
	order := ""
	if t.byFitness {
		order = ", by fitness"
	}
	n := rs.counts()
	done := n[evolve.StatusDone] + n[evolve.StatusCached] + n[evolve.StatusFailed] + n[evolve.StatusSkipped]
	total := len(rs.genIDs[rs.curGen])
	if total == 0 {
		return scope + order
	}
	return fmt.Sprintf("%s%s · %d/%d done", scope, order, done, total)
}
