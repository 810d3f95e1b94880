package tui

import (
	"fmt"

	"charm.land/bubbles/v2/key"
	tea "charm.land/bubbletea/v2"
	"charm.land/lipgloss/v2"

	"github.com/evomerge/evomerge/engine/format"
)

// pane identifies a dashboard pane.
type pane int

const (
	paneChart pane = iota
	paneTable
	paneDetails
	paneLog
)

func (p pane) String() string {
	return [...]string{"chart", "population", "details", "log"}[p]
}

// dashboard is the run monitor: fitness chart, population table,
// candidate details with lineage, and the log. On wide terminals (at least
// 110 columns and 28 rows) all four show at once; on smaller ones the
// details open over the body with enter. z zooms the focused pane.
type dashboard struct {
	ctx         *programContext
	chart       fitnessChart
	table       popTable
	details     detailsPane
	log         logPane
	focus       pane
	zoom        bool
	detailsOpen bool
	w, h        int
}

func newDashboard(ctx *programContext) dashboard {
	return dashboard{
		ctx:     ctx,
		chart:   fitnessChart{ctx: ctx},
		table:   popTable{ctx: ctx},
		details: detailsPane{ctx: ctx},
		log:     newLogPane(ctx),
		focus:   paneTable,
	}
}

// dashLayout is where the panes go in a body of w × h cells. Heights and
// widths include the panes' borders.
type dashLayout struct {
	wide          bool
	single        pane // the one pane shown, when only one is
	hasSingle     bool
	leftW, rightW int
	chartH        int
	tableH        int
	detailsH      int
	logH          int
}

func (d *dashboard) isWide() bool { return d.w >= 110 && d.h >= 26 }

func (d *dashboard) layout() dashLayout {
	w, h := d.w, d.h
	l := dashLayout{wide: d.isWide()}
	switch {
	case d.zoom:
		l.single, l.hasSingle = d.focus, true
	case d.detailsOpen && !l.wide:
		l.single, l.hasSingle = paneDetails, true
	}
	if l.hasSingle {
		l.leftW = w
		switch l.single {
		case paneChart:
			l.chartH = h
		case paneTable:
			l.tableH = h
		case paneDetails:
			l.detailsH = h
		case paneLog:
			l.logH = h
		}
		return l
	}
	if l.wide {
		l.leftW = w * 58 / 100
		l.rightW = w - l.leftW
		l.chartH = min(max(8, h*45/100), h-6)
		l.tableH = h - l.chartH
		l.detailsH = h / 2
		l.logH = h - l.detailsH
		return l
	}
	l.leftW = w
	l.chartH = min(max(7, h/3), 16)
	l.logH = min(max(5, h/4), 14)
	l.tableH = h - l.chartH - l.logH
	if l.tableH < 5 { // very short terminals: the chart gives way first
		l.chartH = max(0, l.chartH-(5-l.tableH))
		l.tableH = h - l.chartH - l.logH
	}
	return l
}

// resize sets the body size and propagates inner sizes to the panes.
func (d *dashboard) resize(w, h int, rs *runState) {
	d.w, d.h = w, h
	d.applyLayout(rs)
}

func (d *dashboard) applyLayout(rs *runState) {
	l := d.layout()
	cw := l.leftW
	if l.hasSingle {
		cw = d.w
	}
	d.chart.resize(max(0, cw-2), max(0, l.chartH-2))
	d.table.height = max(1, l.tableH-3)
	d.table.clampOffset()
	d.details.height = max(1, l.detailsH-2)
	if rs != nil {
		d.details.total = len(d.details.lines(rs, d.detailsWidth()))
	}
}

func (d *dashboard) detailsWidth() int {
	l := d.layout()
	if l.hasSingle || !l.wide {
		return max(1, d.w-2)
	}
	return max(1, l.rightW-2)
}

func (d *dashboard) logSize() (int, int) {
	l := d.layout()
	w := l.leftW
	if l.wide && !l.hasSingle {
		w = l.rightW
	}
	return max(1, w-2), max(1, l.logH-2)
}

// sync refreshes the panes from the run state after events.
func (d *dashboard) sync(rs *runState) {
	d.table.refresh(rs)
	d.chart.setData(rs.gens, rs.started.Generations)
	if d.isWide() || !d.detailsOpen {
		d.details.show(d.table.selectedID)
	}
	d.details.total = len(d.details.lines(rs, d.detailsWidth()))
}

// visiblePanes lists the panes tab cycles through.
func (d *dashboard) visiblePanes() []pane {
	if d.isWide() {
		return []pane{paneChart, paneTable, paneDetails, paneLog}
	}
	if d.detailsOpen {
		return []pane{paneDetails}
	}
	return []pane{paneChart, paneTable, paneLog}
}

func (d *dashboard) cycleFocus(delta int) {
	ps := d.visiblePanes()
	i := 0
	for j, p := range ps {
		if p == d.focus {
			i = j
		}
	}
	d.focus = ps[(i+delta+len(ps))%len(ps)]
}

// typing reports whether a text field of the dashboard has the keyboard.
func (d *dashboard) typing() bool { return d.log.filtering }

// canGoBack reports whether esc (Back) has something to close: the
// details of a narrow screen, the zoom, a log filter.
func (d *dashboard) canGoBack() bool { return d.detailsOpen || d.zoom || d.log.filter != "" }

// toggleZoom shows the focused pane alone, or all panes again.
func (d *dashboard) toggleZoom(rs *runState) {
	d.zoom = !d.zoom
	d.applyLayout(rs)
}

// update handles a key on the dashboard; bound reports whether one of
// its bindings matched (the root then leaves the key alone). A key typed
// into the log filter is not bound.
func (d *dashboard) update(msg tea.KeyPressMsg, rs *runState) (cmd tea.Cmd, bound bool) {
	k := d.ctx.keys
	if d.log.filtering {
		return d.log.updateFilter(msg)
	}
	lw, lh := d.logSize()
	switch {
	case key.Matches(msg, k.NextPane):
		d.cycleFocus(1)
	case key.Matches(msg, k.PrevPane):
		d.cycleFocus(-1)
	case key.Matches(msg, k.Open) && d.focus == paneTable:
		if c := d.table.selected(); c != nil {
			d.details.show(c.info.ID)
			d.details.offset = 0
			if !d.isWide() {
				d.detailsOpen = true
			}
			d.focus = paneDetails
			d.applyLayout(rs)
		}
	case key.Matches(msg, k.Back):
		switch {
		case d.detailsOpen:
			d.detailsOpen = false
			d.focus = paneTable
			d.details.show(d.table.selectedID)
		case d.zoom:
			d.zoom = false
		case d.log.filter != "":
			d.log.filter = ""
		default:
			return nil, false
		}
		d.applyLayout(rs)
	case key.Matches(msg, k.AllGens):
		d.table.all = !d.table.all
		d.table.refresh(rs)
	case key.Matches(msg, k.Sort):
		d.table.byFitness = !d.table.byFitness
		d.table.refresh(rs)
	case key.Matches(msg, k.Follow):
		d.log.follow = !d.log.follow
		if !d.log.follow {
			d.log.offset = max(0, len(d.log.rows(lw))-lh)
		}
	case key.Matches(msg, k.Wrap):
		d.log.wrap = !d.log.wrap
	case key.Matches(msg, k.Filter):
		return d.log.startFilter(), true
	case key.Matches(msg, k.Up, k.Down, k.PageUp, k.PageDown, k.Top, k.Bottom):
		d.move(msg, rs)
	default:
		return nil, false
	}
	return nil, true
}

// move scrolls or moves the selection of the focused pane.
func (d *dashboard) move(msg tea.KeyPressMsg, rs *runState) {
	k := d.ctx.keys
	delta := 0
	page := 0
	switch d.focus {
	case paneTable:
		page = max(1, d.table.height-1)
	case paneDetails:
		page = max(1, d.details.height-1)
	case paneLog:
		_, h := d.logSize()
		page = max(1, h-1)
	}
	switch {
	case key.Matches(msg, k.Up):
		delta = -1
	case key.Matches(msg, k.Down):
		delta = 1
	case key.Matches(msg, k.PageUp):
		delta = -page
	case key.Matches(msg, k.PageDown):
		delta = page
	case key.Matches(msg, k.Top):
		delta = -1 << 30
	case key.Matches(msg, k.Bottom):
		delta = 1 << 30
	}
	switch d.focus {
	case paneTable:
		d.table.move(delta)
		if d.isWide() {
			d.details.show(d.table.selectedID)
			d.details.total = len(d.details.lines(rs, d.detailsWidth()))
		}
	case paneDetails:
		d.details.scroll(delta)
	case paneLog:
		w, h := d.logSize()
		switch {
		case key.Matches(msg, k.Top):
			d.log.toTop()
		case key.Matches(msg, k.Bottom):
			d.log.toBottom()
		default:
			d.log.scroll(delta, w, h)
		}
	}
}

// view renders the dashboard body in exactly w × h cells.
func (d *dashboard) view(rs *runState) string {
	st := d.ctx.styles
	l := d.layout()
	chartP := func(w, h int) string {
		return panel(st, "Fitness", d.chartNote(rs), d.chart.view(), w, h, d.focus == paneChart)
	}
	tableP := func(w, h int) string {
		body := d.table.view(rs, w-2, h-2, d.focus == paneTable)
		return panel(st, "Population", d.table.note(rs), body, w, h, d.focus == paneTable)
	}
	detailsP := func(w, h int) string {
		title := "Candidate"
		if d.details.id != "" {
			title += " " + d.details.id
		}
		return panel(st, title, d.details.note(), d.details.view(rs, w-2, h-2), w, h, d.focus == paneDetails)
	}
	logP := func(w, h int) string {
		return panel(st, "Log", d.log.note(), d.log.view(w-2, h-2), w, h, d.focus == paneLog)
	}
	if l.hasSingle {
		switch l.single {
		case paneChart:
			return chartP(d.w, d.h)
		case paneTable:
			return tableP(d.w, d.h)
		case paneDetails:
			return detailsP(d.w, d.h)
		default:
			return logP(d.w, d.h)
		}
	}
	if l.wide {
		left := lipgloss.JoinVertical(lipgloss.Left, chartP(l.leftW, l.chartH), tableP(l.leftW, l.tableH))
		right := lipgloss.JoinVertical(lipgloss.Left, detailsP(l.rightW, l.detailsH), logP(l.rightW, l.logH))
		return lipgloss.JoinHorizontal(lipgloss.Top, left, right)
	}
	parts := []string{}
	if l.chartH >= 3 {
		parts = append(parts, chartP(d.w, l.chartH))
	}
	parts = append(parts, tableP(d.w, l.tableH), logP(d.w, l.logH))
	return lipgloss.JoinVertical(lipgloss.Left, parts...)
}

func (d *dashboard) chartNote(rs *runState) string {
	if len(rs.gens) == 0 {
		return ""
	}
	first, last := rs.gens[0], rs.gens[len(rs.gens)-1]
	gain := last.best - first.best
	return fmt.Sprintf("best %s, %s since gen %d", format.Fitness(last.best), format.FitnessChange(gain), first.gen)
}
