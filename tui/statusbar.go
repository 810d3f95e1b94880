package tui

import (
	"fmt"
	"runtime"
	"strings"
	"time"

	"charm.land/lipgloss/v2"

	"github.com/evomerge/evomerge/engine/format"
)

// statusBar is the line under the page: the run's figures (generation,
// evaluations, elapsed time, ETA, rate, best fitness, device) and the
// message the last action left (a flash: "exported 4 files to out",
// "no tournament is running"). The message takes precedence: figures that
// do not fit beside it are left out from the right. A key press clears
// the message.
type statusBar struct {
	ctx   *programContext
	msg   string
	isErr bool
}

// set shows msg, as an error when isErr.
func (s *statusBar) set(msg string, isErr bool) { s.msg, s.isErr = msg, isErr }

// clear removes the message.
func (s *statusBar) clear() { s.msg, s.isErr = "", false }

// view renders the bar for the run rs in exactly w cells.
func (s *statusBar) view(rs *runState, w int) string {
	st := s.ctx.styles
	now := s.ctx.now()
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
		segs = append(segs, "best "+format.Fitness(rs.best))
	}
	segs = append(segs, s.deviceText(rs))
	// A message (flash) takes precedence: segments make room for it.
	flash := ""
	if s.msg != "" {
		flash = trunc(s.msg, max(0, w*2/3))
	}
	room := w - 1
	if flash != "" {
		room -= lipgloss.Width(flash) + 3
	}
	sep := " │ "
	line := " "
	for _, seg := range segs {
		next := line + seg
		if line != " " {
			next = line + sep + seg
		}
		if lipgloss.Width(next) > room {
			break
		}
		line = next
	}
	if flash != "" {
		style := st.StatusKey
		if s.isErr {
			style = st.Bad
		}
		gap := max(1, w-lipgloss.Width(line)-lipgloss.Width(flash)-1)
		return fitLine(st.StatusBar.Render(line+strings.Repeat(" ", gap))+style.Render(flash)+st.StatusBar.Render(" "), w)
	}
	return st.StatusBar.Render(padRight(line, w))
}

// deviceText is where the run's candidates are evaluated, as the engine
// found out when the run started; before that, the backend's description
// or, until it reports one, what the configuration asks for.
func (s *statusBar) deviceText(rs *runState) string {
	if rs.started.Device.Workers > 0 {
		return rs.started.Device.Short()
	}
	if s.ctx.device != "" {
		return s.ctx.device
	}
	h := s.ctx.cfg.Hardware
	threads := h.Threads
	if threads == 0 {
		threads = runtime.NumCPU()
	}
	d := fmt.Sprintf("CPU %d threads", threads)
	if h.GPULayers != "" && h.GPULayers != "0" {
		d += " · GPU layers " + h.GPULayers
	}
	return d + fmt.Sprintf(" · %d workers", max(1, h.Workers))
}
