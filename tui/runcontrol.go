package tui

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
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
	// givenDir: the next run writes to the output directory as given (the
	// run --run starts), not to a directory of its own under it.
	givenDir bool
	usedDirs map[string]bool // the directories runs started here wrote to
}

// Where runs write. A run started in the workbench writes to a directory
// of its own, <output.dir>/run-<start time> (as `make run` names runs), so
// that a second run never meets a first one's history; the run --run
// starts writes to output.dir as given. Resume (R) continues a run in its
// own directory with its own configuration: the run the dashboard shows,
// or, before the workbench has run any, the newest one under output.dir.

// Messages of run control.
type (
	startRunMsg struct{}
	// resumeFoundMsg carries the run to resume, or why there is none.
	resumeFoundMsg struct {
		cfg config.Config
		err error
	}
	eventsMsg struct {
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
	cfg := cloneConfig(*m.ctx.cfg)
	if m.run.givenDir {
		m.run.givenDir = false
	} else {
		cfg.Output.Dir = m.nextRunDir(cfg.Output.Dir)
	}
	return m.launch(cfg, false, "starting a tournament in "+cfg.Output.Dir+"…")
}

// nextRunDir is a new run's directory under base, named for the time; a
// name an earlier run of this workbench took gets a number.
func (m *model) nextRunDir(base string) string {
	name := "run-" + m.ctx.now().Format("20060102-150405")
	dir := filepath.Join(base, name)
	for i := 2; m.run.usedDirs[dir]; i++ {
		dir = filepath.Join(base, fmt.Sprintf("%s-%d", name, i))
	}
	if m.run.usedDirs == nil {
		m.run.usedDirs = map[string]bool{}
	}
	m.run.usedDirs[dir] = true
	return dir
}

// resume looks for the run to resume, in a command (it reads the disk).
func (m *model) resume() tea.Cmd {
	if m.rs.phase.active() {
		m.status.set("a tournament is already running", true)
		return nil
	}
	shown, current := m.rs.started.OutputDir, cloneConfig(*m.ctx.cfg)
	m.status.set("looking for a run to resume…", false)
	return func() tea.Msg {
		cfg, err := resumeConfig(shown, current)
		return resumeFoundMsg{cfg: cfg, err: err}
	}
}

// resumeFound starts the run found, or says why there is none.
func (m *model) resumeFound(msg resumeFoundMsg) tea.Cmd {
	if msg.err != nil {
		m.status.set(msg.err.Error(), true)
		m.dash.log.add(logLine{time: m.ctx.now(), level: "warn", text: msg.err.Error()})
		return nil
	}
	if m.rs.phase.active() {
		m.status.set("a tournament is already running", true)
		return nil
	}
	m.status.clear()
	m.run.givenDir = false
	return m.launch(msg.cfg, true, "resuming "+msg.cfg.Output.Dir+"…")
}

// resumeConfig is the configuration that resumes dir — the run shown, or
// when none is, the newest run under the current configuration's output
// directory: the run's own config.toml (a resumed run is the run it was),
// with the current hardware and, when the current configuration asks for
// more, its generations and evaluation budget (a finished run goes on).
func resumeConfig(dir string, current config.Config) (config.Config, error) {
	if dir == "" {
		var err error
		if dir, err = newestRun(current.Output.Dir); err != nil {
			return config.Config{}, err
		}
	}
	cfg, err := config.Load(filepath.Join(dir, "config.toml"))
	if err != nil {
		return config.Config{}, fmt.Errorf("cannot resume %s: %w", dir, err)
	}
	cfg.Output.Dir = dir
	cfg.Hardware = current.Hardware
	cfg.Evolution.Generations = max(cfg.Evolution.Generations, current.Evolution.Generations)
	if cfg.Evolution.MaxEvaluations > 0 {
		cfg.Evolution.MaxEvaluations = max(cfg.Evolution.MaxEvaluations, current.Evolution.MaxEvaluations)
	}
	return cfg, nil
}

// newestRun is the run directory under base (run-<time>, by name, which
// orders by time; or base itself) that was started last.
func newestRun(base string) (string, error) {
	entries, err := os.ReadDir(base)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("looking for a run to resume: %w", err)
	}
	for i := len(entries) - 1; i >= 0; i-- {
		e := entries[i]
		if dir := filepath.Join(base, e.Name()); e.IsDir() && strings.HasPrefix(e.Name(), "run-") && exists(filepath.Join(dir, "config.toml")) {
			return dir, nil
		}
	}
	if exists(filepath.Join(base, "config.toml")) {
		return base, nil
	}
	return "", fmt.Errorf("no run to resume: none since the workbench opened, and %s holds none (r starts one)", base)
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// launch starts run cfg (resuming its directory when resume).
func (m *model) launch(cfg config.Config, resume bool, line string) tea.Cmd {
	m.run.id++
	ctx, cancel := context.WithCancel(m.ctx.base)
	m.run.cancel, m.run.done, m.run.ctl = cancel, make(chan struct{}), &evolve.Control{}
	m.rs = newRunState()
	m.rs.phase = phaseStarting
	m.dash.log.clear()
	m.dash.log.add(logLine{time: m.ctx.now(), level: "info", text: line})
	m.afterRunChange()
	cmds := []tea.Cmd{tournamentCmd(ctx, m.ctx.backend, m.ctx.send, m.run.id, cfg, resume, m.run.ctl, m.run.done)}
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
func tournamentCmd(ctx context.Context, backend Backend, send *sender, id int, cfg config.Config, resume bool,
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
		res, err := backend.Run(ctx, cfg, resume, func(e evolve.Event) { r.push(e) }, ctl)
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
	case msg.err != nil && errors.Is(msg.err, context.Canceled):
		// Cancelled, not failed (the engine's Finished may have come first).
		if m.rs.phase.active() {
			m.rs.phase = phaseFinished
			m.dash.log.add(logLine{level: "warn", text: "run cancelled"})
		}
	case msg.err != nil && m.rs.phase != phaseFailed:
		m.rs.phase = phaseFailed
		m.rs.runErr = msg.err
		m.dash.log.add(logLine{level: "error", text: "run failed: " + msg.err.Error()})
		m.status.set("run failed: "+msg.err.Error(), true)
	case m.rs.phase.active():
		m.rs.phase = phaseFinished
	}
	if m.rs.phase == phaseFailed {
		k := m.ctx.keys
		m.dash.log.add(logLine{level: "info", text: fmt.Sprintf("%s starts a new run in a directory of its own; %s resumes this one from its history",
			k.StartRun.Help().Key, k.ResumeRun.Help().Key)})
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
