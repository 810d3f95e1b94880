package tui

import (
	"math"
	"strconv"
	"strings"
	"time"

	"charm.land/lipgloss/v2"
	tslc "github.com/NimbleMarkets/ntcharts/v2/linechart/timeserieslinechart"

	"github.com/evomerge/evomerge/engine/format"
)

// fitnessChart draws best-so-far, mean and worst fitness per generation
// with braille lines (ntcharts' time-series line chart, the generation
// number standing in for the time). ntcharts charts do not redraw by
// themselves, so the chart is rebuilt from the (few) points whenever the
// data, the size or the theme change; View only returns the drawn canvas.
type fitnessChart struct {
	ctx   *programContext
	w, h  int
	gens  []genStat
	total int // generations planned
	chart tslc.Model
	drawn bool
}

const (
	setBest  = "best"
	setMean  = "mean"
	setWorst = "worst"
)

func (c *fitnessChart) setData(gens []genStat, total int) {
	c.gens, c.total = gens, total
	c.rebuild()
}

func (c *fitnessChart) resize(w, h int) {
	if w == c.w && h == c.h {
		return
	}
	c.w, c.h = w, h
	c.rebuild()
}

// rebuild draws a fresh chart of the current size from the points.
func (c *fitnessChart) rebuild() {
	c.drawn = false
	ch := c.h - 1 // one line for the legend
	if len(c.gens) == 0 || c.w < 16 || ch < 3 {
		return
	}
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, g := range c.gens {
		for _, v := range []float64{g.best, g.mean, g.worst} {
			if isFinite(v) {
				lo, hi = min(lo, v), max(hi, v)
			}
		}
	}
	if !isFinite(lo) {
		return
	}
	pad := (hi - lo) * 0.08
	if pad == 0 {
		pad = math.Max(math.Abs(hi)*0.05, 0.05)
	}
	lo, hi = lo-pad, hi+pad
	first := c.gens[0].gen
	last := c.gens[len(c.gens)-1].gen
	end := max(last, first+max(1, c.total-1))
	st := c.ctx.styles
	m := tslc.New(c.w, ch,
		tslc.WithTimeRange(time.Unix(int64(first), 0), time.Unix(int64(end), 0)),
		tslc.WithYRange(lo, hi),
		tslc.WithXYSteps(6, 2),
		tslc.WithXLabelFormatter(func(_ int, v float64) string { return strconv.Itoa(int(math.Round(v))) }),
		tslc.WithYLabelFormatter(func(_ int, v float64) string { return strconv.FormatFloat(v, 'f', yDecimals(hi-lo), 64) }),
		tslc.WithAxesStyles(st.Border, st.Muted),
		tslc.WithDataSetStyle(setBest, st.Best),
		tslc.WithDataSetStyle(setMean, st.Mean),
		tslc.WithDataSetStyle(setWorst, st.Worst),
	)
	for _, g := range c.gens {
		t := time.Unix(int64(g.gen), 0)
		if isFinite(g.worst) {
			m.PushDataSet(setWorst, tslc.TimePoint{Time: t, Value: g.worst})
		}
		if isFinite(g.mean) {
			m.PushDataSet(setMean, tslc.TimePoint{Time: t, Value: g.mean})
		}
		if isFinite(g.best) {
			m.PushDataSet(setBest, tslc.TimePoint{Time: t, Value: g.best})
		}
	}
	// Best last, so that it is drawn over the others where they meet.
	m.DrawBrailleDataSets([]string{setWorst, setMean, setBest})
	c.chart = m
	c.drawn = true
}

func yDecimals(span float64) int {
	switch {
	case span >= 10:
		return 1
	case span >= 1:
		return 2
	}
	return 3
}

func isFinite(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }

// view renders the legend and the chart in exactly w × h cells.
func (c *fitnessChart) view() string {
	st := c.ctx.styles
	legend := st.Best.Render("━ best") + "  " + st.Mean.Render("━ mean") + "  " + st.Worst.Render("━ worst")
	if c.ctx.theme.Mono {
		legend = "upper line best · middle mean · lower worst"
	}
	if n := len(c.gens); n > 0 {
		g := c.gens[n-1]
		legend += st.Muted.Render("   gen "+strconv.Itoa(g.gen)+": ") + st.Best.Render(format.Fitness(g.best))
	}
	if !c.drawn {
		msg := "waiting for the first generation…"
		if len(c.gens) > 0 {
			msg = "too small for a chart: z zooms this pane"
		}
		body := legend + "\n" + strings.Repeat("\n", max(0, (c.h-2)/2)) + center(st.Muted.Render(msg), c.w)
		return fit(body, c.w, c.h)
	}
	return fit(legend+"\n"+c.chart.View(), c.w, c.h)
}

// center centres s in w cells.
func center(s string, w int) string {
	d := w - lipgloss.Width(s)
	if d <= 0 {
		return s
	}
	return strings.Repeat(" ", d/2) + s
}
