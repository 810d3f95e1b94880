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

// runStopTimeout is how long Run waits, after the program has ended, for
// a cancelled tournament's backend to return.
const runStopTimeout = 15 * time.Second

// runControl is the tournament in progress as the root model controls it:
// start, pause and resume, the end, cancellation on quit. What the run
// reports (its events) goes to runState.
type runControl struct {
	id      int                // counts runs; messages of an earlier run are dropped
	cancel  context.CancelFunc // nil when no run is in progress
	done    chan struct{}      // closed when the backend has returned
	ctl     *evolve.Control    // pauses and resumes the engine
	ticking bool               // a one-second tick (elapsed time, ETA) is scheduled
}

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

// togglePause pauses or resumes the engine, in a command (Toggle waits
// for the engine's lock).
func (m *model) togglePause() tea.Cmd {
	if !m.rs.phase.active() || m.run.ctl == nil {
		m.status.set("no tournament is running", true)
		return nil
	}
	ctl := m.run.ctl
	return func() tea.Msg { return pauseToggledMsg{paused: ctl.Toggle()} }
}

// pauseToggled folds in the engine's new pause state.
func (m *model) pauseToggled(msg pauseToggledMsg) {
	if m.rs.phase.active() {
		m.rs.paused = msg.paused
	}
}

// applyEvents folds a batch of the current run's events into the run
// state and the log.
func (m *model) applyEvents(msg eventsMsg) {
	if msg.run != m.run.id {
		return
	}
	for _, e := range msg.events {
		m.dash.log.add(m.rs.apply(e)...)
	}
	m.afterRunChange()
}

// ticked keeps the one-second tick going while a run is active.
func (m *model) ticked() tea.Cmd {
	if m.rs.phase.active() {
		return tick()
	}
	m.run.ticking = false
	return nil
}

// start starts a tournament with the current configuration.
func (m *model) start() tea.Cmd {
	if m.rs.phase.active() {
		m.status.set("a tournament is already running", true)
		return nil
	}
	if ps := pureValidate(*m.ctx.cfg); len(ps) > 0 {
		m.conf.problems = ps
		m.conf.message, m.conf.isErr = fmt.Sprintf("the configuration has %d problems: fix them, then %s starts the run",
			len(ps), m.ctx.keys.StartRun.Help().Key), true
		m.conf.sizeForm()
		m.page = pageConfig
		return nil
	}
	m.run.id++
	ctx, cancel := context.WithCancel(m.ctx.base)
	m.run.cancel, m.run.done, m.run.ctl = cancel, make(chan struct{}), &evolve.Control{}
	m.rs = newRunState()
	m.rs.phase = phaseStarting
	m.dash.log.clear()
	m.dash.log.add(logLine{time: m.ctx.now(), level: "info", text: "starting a tournament…"})
	m.afterRunChange()
	cmds := []tea.Cmd{tournamentCmd(ctx, m.ctx.backend, m.ctx.send, m.run.id, cloneConfig(*m.ctx.cfg), m.run.ctl, m.run.done)}
	if !m.run.ticking {
		m.run.ticking = true
		cmds = append(cmds, tick())
	}
	return tea.Batch(cmds...)
}

// tournamentCmd runs tournament id with cfg on the backend. Its events
// reach the program through a relay, in batches (eventsMsg); every event
// is delivered before the command's result, runDoneMsg. done is closed
// when the backend has returned.
func tournamentCmd(ctx context.Context, backend Backend, send *sender, id int, cfg config.Config,
	ctl *evolve.Control, done chan struct{}) tea.Cmd {
	return func() tea.Msg {
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
}

// tick schedules the next one-second tick.
func tick() tea.Cmd {
	return tea.Tick(time.Second, func(t time.Time) tea.Msg { return tickMsg(t) })
}

// cloneConfig copies c deep enough that the run's copy shares no slice
// with the configuration the page edits.
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
	if msg.run != m.run.id {
		return nil
	}
	if m.run.cancel != nil {
		m.run.cancel()
		m.run.cancel = nil
	}
	m.run.ctl = nil
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
	if m.run.cancel != nil {
		m.run.cancel()
	}
	if m.chat.cancel != nil {
		m.chat.cancel()
	}
}

// stopRun cancels the run and waits up to d for the backend to return.
// It is called by Run after the program has ended.
func (m *model) stopRun(d time.Duration) {
	m.cancelRun()
	if m.run.done == nil {
		return
	}
	select {
	case <-m.run.done:
	case <-time.After(d):
	}
}
