package tui

import (
	"fmt"
	"slices"
	"strings"

	"github.com/evomerge/evomerge/engine/evolve"
	"github.com/evomerge/evomerge/engine/format"
	"github.com/evomerge/evomerge/themes"
)

type stylesT = themes.Styles

// detailsPane shows one candidate in full: status and progress, scores per
// objective and per text, timings, its lineage (the parents chain as a
// tree) and its recipe. It scrolls.
type detailsPane struct {
	ctx    *programContext
	id     string
	offset int
	height int
	total  int
}

func (d *detailsPane) show(id string) {
	if id != d.id {
		d.id, d.offset = id, 0
	}
}

func (d *detailsPane) scroll(delta int) {
	d.offset = max(0, min(d.offset+delta, d.total-d.height))
}

// The pane's height and line count are set by the dashboard's layout
// (Update), so that rendering reads the model and never writes it.

func (d *detailsPane) lines(rs *runState, w int) []string {
	st := d.ctx.styles
	c, ok := rs.cands[d.id]
	if d.id == "" || !ok {
		return []string{st.Muted.Render("select a candidate in the population table")}
	}
	var out []string
	add := func(s string) { out = append(out, s) }
	kv := func(k, v string) string { return st.Muted.Render(k+" ") + v }

	head := st.Bold.Render(c.info.ID) + "  " + st.Accent.Render(c.info.Technique)
	if c.info.ID == rs.bestID {
		head += "  " + st.Best.Render("* best so far")
	}
	add(head)
	origin := c.info.Origin
	if len(c.info.Parents) > 0 {
		origin += " of " + strings.Join(c.info.Parents, " + ")
	}
	add(kv("generation", fmt.Sprint(c.info.Generation)) + "  " + kv("origin", origin))
	status, style := statusCell(st, c, 24)
	line := kv("status", style.Render(status))
	if c.hasScores() {
		line += "  " + kv("fitness", st.Bold.Render(format.Fitness(c.fitness)))
	}
	add(line)
	if c.mergeTime > 0 || c.evalTime > 0 {
		add(kv("merge", c.mergeTime.Round(1e7).String()) + "  " + kv("evaluation", c.evalTime.Round(1e7).String()))
	}
	switch {
	case c.err != "" && c.status == evolve.StatusSkipped:
		for _, l := range wrapLines(c.err, w) {
			add(st.Muted.Render(l))
		}
	case c.err != "":
		for _, l := range wrapLines("error: "+c.err, w) {
			add(st.Bad.Render(l))
		}
	}
	if c.hasScores() {
		sc := c.scores
		parts := []string{kv("perplexity", format.Perplexity(geoPPL(sc))+" (geo mean)")}
		if sc.Coherence != 0 {
			parts = append(parts, kv("coherence", format.Fraction(sc.Coherence)))
		}
		if sc.TaskAccuracy != 0 {
			parts = append(parts, kv("tasks", format.Fraction(sc.TaskAccuracy)))
		}
		if rs.started.Optimizer == "nsga2" {
			parts = append(parts, kv("front", fmt.Sprint(c.rank)))
		}
		add(strings.Join(parts, "  "))
		names := make([]string, 0, len(sc.Perplexity))
		for n := range sc.Perplexity {
			names = append(names, n)
		}
		slices.Sort(names)
		var per []string
		for _, n := range names {
			per = append(per, fmt.Sprintf("%s %s", n, format.Perplexity(sc.Perplexity[n])))
		}
		if len(per) > 0 {
			for _, l := range wrapLines("  "+strings.Join(per, " · "), w) {
				add(st.Muted.Render(l))
			}
		}
		if len(c.objectives) > 0 {
			obj := make([]string, len(c.objectives))
			for i, o := range c.objectives {
				obj[i] = format.Fitness(o)
			}
			add(kv("objectives", strings.Join(obj, " ")))
		}
	}
	if c.info.Summary != "" {
		for _, l := range wrapLines(c.info.Summary, w) {
			add(st.Text.Render(l))
		}
	}
	add("")
	add(st.Header.Render("Lineage"))
	for _, n := range rs.lineage(c.info.ID, 5) {
		if n.more {
			add(st.Muted.Render(n.prefix + "…"))
			continue
		}
		text := n.prefix + n.id
		if n.known && n.c.info.Technique != "" {
			text += "  " + n.c.info.Technique
		}
		if n.known && n.c.hasScores() {
			text += "  " + format.Fitness(n.c.fitness)
		}
		if n.known && n.c.info.Origin != "" {
			text += "  (" + n.c.info.Origin + ")"
		}
		if n.repeat {
			text += "  ↑ shown above"
		}
		if !n.known {
			text += "  (not seen in this run)"
		}
		if n.level == 0 {
			add(st.Bold.Render(trunc(text, w)))
		} else {
			add(trunc(text, w))
		}
	}
	add("")
	add(st.Header.Render("Recipe"))
	if strings.TrimSpace(c.info.Recipe) == "" {
		add(st.Muted.Render("(no recipe yet)"))
	} else {
		for _, l := range strings.Split(strings.TrimRight(c.info.Recipe, "\n"), "\n") {
			add(l)
		}
	}
	return out
}

// view renders the pane body in w × h cells.
func (d *detailsPane) view(rs *runState, w, h int) string {
	lines := d.lines(rs, w)
	off := max(0, min(d.offset, len(lines)-h))
	end := min(len(lines), off+h)
	return fit(strings.Join(lines[off:end], "\n"), w, h)
}

func (d *detailsPane) note() string {
	if d.total > d.height && d.height > 0 {
		return fmt.Sprintf("%d–%d of %d", d.offset+1, min(d.total, d.offset+d.height), d.total)
	}
	return ""
}
