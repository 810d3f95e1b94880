package tui

import (
	"fmt"
	"runtime"
	"strings"
	"time"

	"charm.land/lipgloss/v2"
)

// statusBar shows the run's figures; segments that do not fit are left
// out from the right.
func (m *model) statusBar(w int) string {
	st := m.ctx.styles
	rs := &m.rs
	now := m.ctx.now()
	el := rs.elapsed(now)
	segs := []string{}
	if rs.started.Generations > 0 {
		segs = append(segs, fmt.Sprintf("gen %d · %d/%d done", max(rs.curGen, 0), len(rs.gens), rs.started.Generations))
	}
	if b := rs.budget(); b > 0 || rs.evaluations > 0 {
		if b > 0 {
			segs = append(segs, fmt.Sprintf("evals %d/%d", rs.evaluations, b))
		} else {
			segs = append(segs, fmt.Sprintf("evals %d", rs.evaluations))
		}
	}
	if rs.phase != phaseIdle {
		segs = append(segs, "elapsed "+fmtDuration(el))
	}
	if rs.phase.active() && rs.evaluations > 0 && el > 0 {
		if b := rs.budget(); b > rs.evaluations {
			per := el / time.Duration(rs.evaluations)
			segs = append(segs, "ETA "+fmtDuration(per*time.Duration(b-rs.evaluations)))
		}
	}
	if rs.evaluations > 0 && el >= time.Second {
		segs = append(segs, fmt.Sprintf("%.1f eval/min", float64(rs.evaluations)/el.Minutes()))
	}
	if rs.bestID != "" {
		segs = append(segs, "best "+fmtFit(rs.best))
	}
	segs = append(segs, m.deviceText())
	// A message (flash) takes precedence: segments make room for it.
	flash := ""
	if m.flash != "" {
		flash = trunc(m.flash, max(0, w*2/3))
	}
	room := w - 1
	if flash != "" {
		room -= lipgloss.Width(flash) + 3
	}
	sep := " │ "
	line := " "
	for _, s := range segs {
		next := line + s
		if line != " " {
			next = line + sep + s
		}
		if lipgloss.Width(next) > room {
			break
		}
		line = next
	}
	if flash != "" {
		style := st.StatusKey
		if m.flashErr {
			style = st.Bad
		}
		gap := max(1, w-lipgloss.Width(line)-lipgloss.Width(flash)-1)
		return fitLine(st.StatusBar.Render(line+strings.Repeat(" ", gap))+style.Render(flash)+st.StatusBar.Render(" "), w)
	}
	return st.StatusBar.Render(padRight(line, w))
}

func (m *model) deviceText() string {
	if m.ctx.device != "" {
		return m.ctx.device
	}
	h := m.ctx.cfg.Hardware
	threads := h.Threads
	if threads == 0 {
		threads = runtime.NumCPU()
	}
	s := fmt.Sprintf("CPU %d threads", threads)
	if h.GPULayers != "" && h.GPULayers != "0" {
		s += " · GPU layers " + h.GPULayers
	}
	return s + fmt.Sprintf(" · %d workers", max(1, h.Workers))
}
