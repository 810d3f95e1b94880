package tui

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	tea "charm.land/bubbletea/v2"

	"github.com/evomerge/evomerge/engine/config"
	"github.com/evomerge/evomerge/engine/evolve"
)

const runStopTimeout = 15 * time.Second

// Messages of run control.
type (
	startRunMsg struct{}
	eventsMsg   struct {
		run    int
		events []evolve.Event
	}
	runDoneMsg struct {
		run int
		res *evolve.Result
		err error
	}
	pauseToggledMsg struct{ paused bool }
	tickMsg         time.Time
)

func (m *model) togglePause() tea.Cmd {
	if !m.rs.phase.active() || m.ctl == nil {
		m.status.set("no tournament is running", true)
		return nil
	}
	ctl := m.ctl
	return func() tea.Msg { return pauseToggledMsg{paused: ctl.Toggle()} }
}

// start starts a tournament with the current configuration.
func (m *model) start() tea.Cmd {
	if m.rs.phase.active() {
		m.status.set("a tournament is already running", true)
		return nil
	}
	if ps := pureValidate(*m.ctx.cfg); len(ps) > 0 {
		m.conf.problems = ps
		m.conf.message, m.conf.isErr = fmt.Sprintf("the configuration has %d problems: fix them, then r (or F5) starts the run", len(ps)), true
		m.conf.sizeForm()
		m.page = pageConfig
		return nil
	}
	m.runID++
	ctx, cancel := context.WithCancel(m.ctx.base)
	ctl := &evolve.Control{}
	done := make(chan struct{})
	m.runCancel, m.runDone, m.ctl = cancel, done, ctl
	m.rs = newRunState()
	m.rs.phase = phaseStarting
	m.dash.log.clear()
	m.dash.log.add(logLine{time: m.ctx.now(), level: "info", text: "starting a tournament…"})
	m.afterRunChange()
	cfg := cloneConfig(*m.ctx.cfg)
	id, backend, send := m.runID, m.ctx.backend, m.ctx.send
	run := func() tea.Msg {
		defer close(done)
		r := newRelay(&eventBatcher{}, send.Send, func(items []any) tea.Msg {
			evs := make([]evolve.Event, 0, len(items))
			for _, it := range items {
				if e, ok := it.(evolve.Event); ok {
					evs = append(evs, e)
				}
			}
			return eventsMsg{run: id, events: evs}
		}, 50*time.Millisecond)
		res, err := backend.Run(ctx, cfg, func(e evolve.Event) { r.push(e) }, ctl)
		r.close() // every event is delivered before runDoneMsg
		return runDoneMsg{run: id, res: res, err: err}
	}
	cmds := []tea.Cmd{run}
	if !m.ticking {
		m.ticking = true
		cmds = append(cmds, tick())
	}
	return tea.Batch(cmds...)
}

func tick() tea.Cmd {
	return tea.Tick(time.Second, func(t time.Time) tea.Msg { return tickMsg(t) })
}

func cloneConfig(c config.Config) config.Config {
	c.Models = slices.Clone(c.Models)
	c.Merge.Techniques = slices.Clone(c.Merge.Techniques)
	c.Evaluation.Texts = slices.Clone(c.Evaluation.Texts)
	c.Evaluation.TestTexts = slices.Clone(c.Evaluation.TestTexts)
	c.Evaluation.CoherencePrompts = slices.Clone(c.Evaluation.CoherencePrompts)
	return c
}

// finishRun folds in the end of a run.
func (m *model) finishRun(msg runDoneMsg) tea.Cmd {
	if msg.run != m.runID {
		return nil
	}
	if m.runCancel != nil {
		m.runCancel()
		m.runCancel = nil
	}
	m.ctl = nil
	if msg.res != nil && m.rs.result == nil {
		m.rs.result = msg.res
	}
	switch {
	case m.rs.phase.active() && msg.err != nil && errors.Is(msg.err, context.Canceled):
		m.rs.phase = phaseFinished
		m.dash.log.add(logLine{level: "warn", text: "run cancelled"})
	case msg.err != nil && m.rs.phase != phaseFailed:
		m.rs.phase = phaseFailed
		m.rs.runErr = msg.err
		m.dash.log.add(logLine{level: "error", text: "run failed: " + msg.err.Error()})
		m.status.set("run failed: "+msg.err.Error(), true)
	case m.rs.phase.active():
		m.rs.phase = phaseFinished
	}
	m.rs.paused = false
	m.afterRunChange()
	return nil
}

// cancelRun cancels a running tournament (without waiting).
func (m *model) cancelRun() {
	if m.runCancel != nil {
		m.runCancel()
	}
	if m.chat.cancel != nil {
		m.chat.cancel()
	}
}

// stopRun cancels the run and waits up to d for the backend to return.
// It is called by Run after the program has ended.
func (m *model) stopRun(d time.Duration) {
	m.cancelRun()
	if m.runDone == nil {
		return
	}
	select {
	case <-m.runDone:
	case <-time.After(d):
	}
}
