package tui

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"slices"
	"strings"
	"time"

	"charm.land/bubbles/v2/help"
	"charm.land/bubbles/v2/key"
	tea "charm.land/bubbletea/v2"
	"charm.land/lipgloss/v2"
	"github.com/charmbracelet/colorprofile"

	"github.com/evomerge/evomerge/engine/config"
	"github.com/evomerge/evomerge/engine/evolve"
	"github.com/evomerge/evomerge/engine/format"
	"github.com/evomerge/evomerge/themes"
)

// Options configure Run.
type Options struct {
	// Config is the configuration the first run uses (and the config page
	// starts from). The zero value means config.Default().
	Config config.Config
	// ConfigPath is where the config page saves (default evomerge.toml).
	ConfigPath string
	// Backend runs tournaments, materialises candidates and generates.
	Backend Backend
	// StartRun starts a tournament at once (the CLI's --run on a terminal).
	StartRun bool
	// Input and Output replace the terminal (tests). Nil means stdin/stdout.
	Input  io.Reader
	Output io.Writer
	// Environ replaces os.Environ (NO_COLOR, TERM, COLORTERM are read).
	Environ []string
	// Width and Height set the initial size when Output is not a terminal.
	Width, Height int

	clock   func() time.Time     // tests pin the clock
	profile colorprofile.Profile // tests pin the colour profile
}

// Run opens the workbench and returns when the user quits. A tournament
// still running then is cancelled, and Run waits (up to runStopTimeout)
// for the backend to stop, so that worker processes and temporary files
// are cleaned up before the process exits.
func Run(ctx context.Context, opt Options) error {
	if opt.Backend == nil {
		return errors.New("tui: no backend")
	}
	m := newModel(ctx, opt)
	popts := []tea.ProgramOption{tea.WithContext(ctx)}
	if opt.Input != nil {
		popts = append(popts, tea.WithInput(opt.Input))
	}
	if opt.Output != nil {
		popts = append(popts, tea.WithOutput(opt.Output))
	}
	if opt.Environ != nil {
		popts = append(popts, tea.WithEnvironment(opt.Environ))
	}
	if opt.Width > 0 && opt.Height > 0 {
		popts = append(popts, tea.WithWindowSize(opt.Width, opt.Height))
	}
	if opt.profile != colorprofile.Unknown {
		popts = append(popts, tea.WithColorProfile(opt.profile))
	}
	p := tea.NewProgram(m, popts...)
	m.ctx.send.attach(p.Send)
	final, err := p.Run()
	if fm, ok := final.(*model); ok {
		fm.stopRun(runStopTimeout)
	} else {
		m.stopRun(runStopTimeout)
	}
	if err != nil && !errors.Is(err, tea.ErrProgramKilled) && !errors.Is(err, tea.ErrInterrupted) {
		return fmt.Errorf("workbench: %w", err)
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return nil
}

const runStopTimeout = 15 * time.Second

// page is a top-level screen.
type page int

const (
	pageDashboard page = iota
	pageConfig
	pageChat
)

// model is the root model. It owns all state and routes every message:
// background results arrive as messages (engine event batches, run and
// generation results, saves, exports) and are folded in here; components
// render from it. Update never does IO or waits: anything slow is a
// tea.Cmd, and commands get copies, never the model.
type model struct {
	ctx  *programContext
	page page
	rs   runState
	dash dashboard
	conf configPage
	chat chatPage
	help help.Model

	showHelp    bool
	helpOffset  int
	confirmQuit bool
	startRun    bool

	runID     int
	runCancel context.CancelFunc
	runDone   chan struct{}
	ctl       *evolve.Control

	flash    string
	flashErr bool
	ticking  bool
}

// Messages of the root model.
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
	deviceMsg       string
)

func newModel(base context.Context, opt Options) *model {
	cfg := opt.Config
	if cfg.Output.Dir == "" && len(cfg.Models) == 0 && cfg.Evolution.Optimizer == "" {
		cfg = config.Default()
	}
	env := opt.Environ
	if env == nil {
		env = os.Environ()
	}
	clock := opt.clock
	if clock == nil {
		clock = time.Now
	}
	ctx := &programContext{
		keys:       newKeyMap(),
		cfg:        &cfg,
		configPath: opt.ConfigPath,
		backend:    opt.Backend,
		send:       &sender{},
		now:        clock,
		noColor:    noColor(env),
		base:       base,
		width:      opt.Width,
		height:     opt.Height,
	}
	ctx.setTheme(cfg.UI.Theme)
	m := &model{ctx: ctx, startRun: opt.StartRun, rs: newRunState()}
	m.dash = newDashboard(ctx)
	m.conf = newConfigPage(ctx)
	m.chat = newChatPage(ctx)
	m.help = help.New()
	m.styleHelp()
	m.chat.refreshSources(cfg, &m.rs)
	if ctx.width > 0 && ctx.height > 0 {
		m.resize(ctx.width, ctx.height)
	}
	return m
}

func noColor(env []string) bool {
	for _, e := range env {
		if v, ok := strings.CutPrefix(e, "NO_COLOR="); ok && v != "" {
			return true
		}
	}
	return false
}

func (m *model) styleHelp() {
	st := m.ctx.styles
	m.help.Styles = help.Styles{ShortKey: st.HelpKey, ShortDesc: st.HelpDesc, ShortSeparator: st.HelpSep,
		Ellipsis: st.HelpSep, FullKey: st.HelpKey, FullDesc: st.HelpDesc, FullSeparator: st.HelpSep}
}

// Init builds the config form, asks the backend for its device, and
// starts the tournament when asked to.
func (m *model) Init() tea.Cmd {
	cmds := []tea.Cmd{m.conf.reset(*m.ctx.cfg, m.ctx.configPath), m.chat.input.Focus()}
	if dr, ok := m.ctx.backend.(DeviceReporter); ok {
		cmds = append(cmds, func() tea.Msg { return deviceMsg(dr.Device()) })
	}
	if m.startRun {
		cmds = append(cmds, func() tea.Msg { return startRunMsg{} })
	}
	return tea.Batch(cmds...)
}

// Update routes a message.
func (m *model) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	switch msg := msg.(type) {
	case tea.WindowSizeMsg:
		m.resize(msg.Width, msg.Height)
		return m, nil
	case tea.KeyPressMsg:
		return m, m.key(msg)
	case eventsMsg:
		if msg.run != m.runID {
			return m, nil
		}
		for _, e := range msg.events {
			m.dash.log.add(m.rs.apply(e)...)
		}
		m.afterRunChange()
		return m, nil
	case runDoneMsg:
		return m, m.finishRun(msg)
	case startRunMsg:
		return m, m.start()
	case pauseToggledMsg:
		if m.rs.phase.active() {
			m.rs.paused = msg.paused
		}
		return m, nil
	case tickMsg:
		if m.rs.phase.active() {
			return m, tick()
		}
		m.ticking = false
		return m, nil
	case deviceMsg:
		m.ctx.device = string(msg)
		return m, nil
	case exportedMsg:
		if msg.err != nil {
			m.setFlash(msg.err.Error(), true)
		} else {
			m.setFlash(fmt.Sprintf("exported %d files to %s", len(msg.files), dirOf(msg.files)), false)
		}
		return m, nil
	case configCheckedMsg:
		m.conf.checked(msg)
		return m, nil
	case configSavedMsg:
		return m, m.configSaved(msg)
	case chatTextMsg, materializedMsg, generatedMsg:
		return m, m.chat.handle(msg)
	}
	// Anything else belongs to the form (its internal messages) or to a
	// text input (cursor messages).
	return m, m.forward(msg)
}

// forward passes a message the root does not know to the children: a
// paste to the field that has the focus, anything else (the form's own
// messages, cursor messages) to the form and the text inputs.
func (m *model) forward(msg tea.Msg) tea.Cmd {
	switch msg.(type) {
	case tea.PasteMsg, tea.PasteStartMsg, tea.PasteEndMsg:
		var cmd tea.Cmd
		switch {
		case m.showHelp || m.confirmQuit:
		case m.page == pageConfig:
			cmd = m.conf.update(msg)
		case m.page == pageChat && m.chat.typing():
			m.chat.input, cmd = m.chat.input.Update(msg)
		case m.page == pageDashboard && m.dash.log.filtering:
			m.dash.log.input, cmd = m.dash.log.input.Update(msg)
		}
		return cmd
	}
	cmd := m.conf.update(msg)
	var c2, c3 tea.Cmd
	m.chat.input, c2 = m.chat.input.Update(msg)
	m.dash.log.input, c3 = m.dash.log.input.Update(msg)
	return tea.Batch(cmd, c2, c3)
}

func dirOf(files []string) string {
	if len(files) == 0 {
		return "."
	}
	i := strings.LastIndexAny(files[0], `/\`)
	if i < 0 {
		return "."
	}
	return files[0][:i]
}

func (m *model) setFlash(s string, isErr bool) { m.flash, m.flashErr = s, isErr }

// resize lays every page out for a terminal of w × h cells.
func (m *model) resize(w, h int) {
	m.ctx.width, m.ctx.height = w, h
	bh := m.bodyHeight()
	m.dash.resize(w, bh, &m.rs)
	m.conf.resize(w, bh)
	m.chat.resize(w, bh)
	m.help.SetWidth(w)
}

// bodyHeight is what is left between the tab bar and the status and hint
// bars.
func (m *model) bodyHeight() int { return max(1, m.ctx.height-3) }

// afterRunChange refreshes everything derived from the run state.
func (m *model) afterRunChange() {
	m.dash.sync(&m.rs)
	m.chat.refreshSources(*m.ctx.cfg, &m.rs)
}

// typing reports whether the focused element takes text, in which case
// only F-keys, ctrl-keys and esc keep their global meaning.
func (m *model) typing() bool {
	switch m.page {
	case pageConfig:
		return true
	case pageChat:
		return m.chat.typing()
	}
	return m.dash.typing()
}

// key routes a key press.
func (m *model) key(msg tea.KeyPressMsg) tea.Cmd {
	k := m.ctx.keys
	if m.confirmQuit {
		switch {
		case key.Matches(msg, k.ConfirmYes), key.Matches(msg, k.ForceQuit):
			m.confirmQuit = false
			m.cancelRun()
			return tea.Quit
		case key.Matches(msg, k.ConfirmNo):
			m.confirmQuit = false
		}
		return nil
	}
	if m.showHelp {
		switch {
		case key.Matches(msg, k.Help), key.Matches(msg, k.Back), key.Matches(msg, k.Quit):
			m.showHelp = false
		case key.Matches(msg, k.Down):
			m.helpOffset++
		case key.Matches(msg, k.Up):
			m.helpOffset = max(0, m.helpOffset-1)
		case key.Matches(msg, k.PageDown):
			m.helpOffset += max(1, m.bodyHeight()-4)
		case key.Matches(msg, k.PageUp):
			m.helpOffset = max(0, m.helpOffset-max(1, m.bodyHeight()-4))
		case key.Matches(msg, k.ForceQuit):
			m.showHelp = false
			return m.requestQuit()
		}
		return nil
	}
	m.flash = ""

	// Keys that work everywhere, even while typing.
	switch s := msg.String(); s {
	case "ctrl+c":
		return m.requestQuit()
	case "f1":
		return m.switchPage(pageDashboard)
	case "f2":
		return m.switchPage(pageConfig)
	case "f3":
		return m.switchPage(pageChat)
	case "f5":
		return m.start()
	case "f6":
		return m.export()
	case "f7":
		return m.togglePause()
	case "f8":
		if m.page == pageDashboard {
			m.dash.zoom = !m.dash.zoom
			m.dash.applyLayout(&m.rs)
		}
		return nil
	case "f9":
		return m.cycleTheme()
	case "f10":
		m.showHelp, m.helpOffset = true, 0
		return nil
	}

	// The focused page first.
	switch m.page {
	case pageConfig:
		switch {
		case key.Matches(msg, k.Back):
			return m.switchPage(pageDashboard)
		case key.Matches(msg, k.Save):
			return m.conf.submit()
		}
		return m.conf.update(msg)
	case pageChat:
		if cmd, ok := m.chat.update(msg); ok {
			return cmd
		}
	case pageDashboard:
		if cmd, ok := m.dash.update(msg, &m.rs); ok {
			return cmd
		}
		if key.Matches(msg, k.ChatWith) {
			if c := m.dash.table.selected(); c != nil {
				cmd := m.switchPage(pageChat)
				if c.scored && c.info.Recipe != "" && c.status != evolve.StatusFailed {
					return tea.Batch(cmd, m.chat.selectKey("cand:"+c.info.ID))
				}
				m.setFlash(c.info.ID+" has no scored recipe yet: pick another model", true)
				return cmd
			}
			return m.switchPage(pageChat)
		}
	}
	if m.typing() {
		return nil
	}

	// Global letter keys.
	switch {
	case key.Matches(msg, k.Dashboard):
		return m.switchPage(pageDashboard)
	case key.Matches(msg, k.Config):
		return m.switchPage(pageConfig)
	case key.Matches(msg, k.Chat):
		return m.switchPage(pageChat)
	case key.Matches(msg, k.Help):
		m.showHelp, m.helpOffset = true, 0
	case key.Matches(msg, k.Quit):
		return m.requestQuit()
	case key.Matches(msg, k.Theme):
		return m.cycleTheme()
	case key.Matches(msg, k.Pause):
		return m.togglePause()
	case key.Matches(msg, k.StartRun):
		return m.start()
	case key.Matches(msg, k.Export):
		return m.export()
	}
	return nil
}

func (m *model) switchPage(p page) tea.Cmd {
	m.page = p
	if p == pageChat {
		m.chat.refreshSources(*m.ctx.cfg, &m.rs)
		return m.chat.setFocus(m.chat.focus)
	}
	return nil
}

func (m *model) requestQuit() tea.Cmd {
	if m.rs.phase.active() {
		m.confirmQuit = true
		return nil
	}
	m.cancelRun()
	return tea.Quit
}

func (m *model) cycleTheme() tea.Cmd {
	m.ctx.setTheme(themes.Next(m.ctx.theme.Name))
	m.styleHelp()
	styleTextInput(m.ctx, &m.dash.log.input)
	styleTextInput(m.ctx, &m.chat.input)
	m.dash.chart.rebuild()
	if m.conf.form != nil {
		m.conf.form.WithTheme(huhTheme(m.ctx.theme, false))
	}
	m.setFlash("theme: "+m.ctx.theme.Name, false)
	return nil
}

func (m *model) togglePause() tea.Cmd {
	if !m.rs.phase.active() || m.ctl == nil {
		m.setFlash("no tournament is running", true)
		return nil
	}
	ctl := m.ctl
	return func() tea.Msg { return pauseToggledMsg{paused: ctl.Toggle()} }
}

// start starts a tournament with the current configuration.
func (m *model) start() tea.Cmd {
	if m.rs.phase.active() {
		m.setFlash("a tournament is already running", true)
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
		m.setFlash("run failed: "+msg.err.Error(), true)
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

// export snapshots the data and writes it in a command.
func (m *model) export() tea.Cmd {
	dir := m.rs.started.OutputDir
	if dir == "" {
		dir = m.ctx.cfg.Output.Dir
	}
	if len(m.rs.order) == 0 {
		m.setFlash("nothing to export yet: no candidates seen", true)
		return nil
	}
	d := snapshotExport(&m.rs, dir, m.render(), m.ctx.now())
	m.setFlash("exporting…", false)
	return exportCmd(d)
}

func (m *model) configSaved(msg configSavedMsg) tea.Cmd {
	m.conf.saved(msg)
	*m.ctx.cfg = msg.cfg
	m.ctx.configPath = msg.path
	if msg.cfg.UI.Theme != m.ctx.theme.Name {
		m.ctx.setTheme(msg.cfg.UI.Theme)
		m.styleHelp()
		styleTextInput(m.ctx, &m.dash.log.input)
		styleTextInput(m.ctx, &m.chat.input)
		m.dash.chart.rebuild()
		if m.conf.form != nil {
			m.conf.form.WithTheme(huhTheme(m.ctx.theme, false))
		}
	}
	m.chat.refreshSources(msg.cfg, &m.rs)
	return nil
}

// View renders the screen.
func (m *model) View() tea.View {
	v := tea.NewView(m.render())
	v.AltScreen = true
	v.WindowTitle = m.title()
	return v
}

func (m *model) title() string {
	t := "evomerge"
	switch m.rs.phase {
	case phaseRunning, phaseStarting:
		t += fmt.Sprintf(" — generation %d, %d evaluations", max(0, m.rs.curGen), m.rs.evaluations)
		if m.rs.paused {
			t += " (paused)"
		}
	case phaseFinished:
		t += " — finished"
	case phaseFailed:
		t += " — failed"
	}
	return t
}

// render draws the whole screen as a string of exactly width × height
// cells.
func (m *model) render() string {
	w, h := m.ctx.width, m.ctx.height
	if w <= 0 || h <= 0 {
		return "starting…"
	}
	if h < 8 || w < 40 {
		return fit("evomerge: the terminal is too small ("+fmt.Sprint(w, "×", h)+"); 80×24 or more, please.", w, h)
	}
	var body string
	switch m.page {
	case pageConfig:
		body = m.conf.view()
	case pageChat:
		body = m.chat.view()
	default:
		body = m.dash.view(&m.rs)
	}
	bh := m.bodyHeight()
	if m.showHelp {
		body = m.helpView(w, bh)
	}
	body = fit(body, w, bh)
	screen := m.tabBar(w) + "\n" + body + "\n" + m.statusBar(w) + "\n" + m.hintBar(w)
	if m.confirmQuit {
		screen = overlay(screen, m.confirmView(), w, h)
	}
	return screen
}

func (m *model) tabBar(w int) string {
	st := m.ctx.styles
	tabs := []struct {
		p    page
		name string
	}{{pageDashboard, "1 Dashboard"}, {pageConfig, "2 Config"}, {pageChat, "3 Chat"}}
	var parts []string
	for _, t := range tabs {
		if t.p == m.page && !m.showHelp {
			parts = append(parts, st.ActiveTab.Render(t.name))
		} else {
			parts = append(parts, st.Tab.Render(t.name))
		}
	}
	if m.showHelp {
		parts = append(parts, st.ActiveTab.Render("? Help"))
	}
	left := st.Accent.Render(" evomerge ") + strings.Join(parts, "")
	right := m.badge() + st.Muted.Render("  theme "+m.ctx.theme.Name+" ")
	gap := w - lipgloss.Width(left) - lipgloss.Width(right)
	if gap < 1 {
		return fitLine(left+" "+m.badge(), w)
	}
	return left + strings.Repeat(" ", gap) + right
}

// badge is the run's state in a word or two.
func (m *model) badge() string {
	st := m.ctx.styles
	switch m.rs.phase {
	case phaseStarting:
		return st.Info.Render("… starting")
	case phaseRunning:
		if m.rs.paused {
			return st.Warn.Render("‖ paused")
		}
		return st.Info.Render("● running")
	case phaseFinished:
		if f := m.rs.finished; f != nil && f.Reason != "" {
			return st.Good.Render("✓ finished (" + f.Reason + ")")
		}
		return st.Good.Render("✓ finished")
	case phaseFailed:
		return st.Bad.Render("✗ failed")
	}
	return st.Muted.Render("○ idle")
}

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
		segs = append(segs, "best "+format.Fitness(rs.best))
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

// hintBar shows the keys that matter here.
func (m *model) hintBar(w int) string {
	k := m.ctx.keys
	hb := func(keys, desc string) key.Binding {
		return key.NewBinding(key.WithKeys(keys), key.WithHelp(keys, desc))
	}
	var bs []key.Binding
	switch {
	case m.confirmQuit:
		bs = []key.Binding{hb("y", "quit and stop the run"), hb("n", "keep running")}
	case m.showHelp:
		bs = []key.Binding{hb("↑/↓", "scroll"), hb("esc", "close help")}
	case m.page == pageConfig:
		bs = []key.Binding{hb("enter", "next"), hb("shift+tab", "back"), hb("ctrl+s", "save"), hb("esc", "dashboard"), hb("F3", "chat"), hb("F10", "help"), hb("ctrl+c", "quit")}
	case m.page == pageChat && m.chat.typing():
		bs = []key.Binding{hb("enter", "send"), hb("esc", "stop / leave prompt"), hb("tab", "models"), hb("pgup", "scroll"), hb("ctrl+l", "clear"), hb("F1", "dashboard"), hb("F10", "help")}
	case m.page == pageChat:
		bs = []key.Binding{hb("tab", "next"), hb("↑/↓", "choose"), hb("-/+", "adjust"), hb("enter", "prompt"), hb("1", "dashboard"), hb("?", "help"), hb("q", "quit")}
	case m.dash.log.filtering:
		bs = []key.Binding{hb("enter", "apply filter"), hb("esc", "clear filter")}
	default:
		bs = []key.Binding{k.NextPane, hb("enter", "details"), hb("p", "pause"), hb("r", "run"), hb("e", "export"),
			hb("t", "theme"), hb("z", "zoom"), hb("c", "chat"), hb("2", "config"), hb("?", "help"), hb("q", "quit")}
	}
	h := m.help
	h.SetWidth(w - 1)
	return fitLine(" "+h.ShortHelpView(bs), w)
}

// helpView lists every key, by screen, scrolled by helpOffset.
func (m *model) helpView(w, h int) string {
	st := m.ctx.styles
	var lines []string
	keyW := 12
	for _, sec := range m.ctx.keys.fullHelp() {
		lines = append(lines, st.Accent.Render(sec.title))
		for _, b := range sec.bindings {
			hp := b.Help()
			lines = append(lines, "  "+st.HelpKey.Render(padRight(hp.Key, keyW))+" "+st.Text.Render(hp.Desc))
		}
		lines = append(lines, "")
	}
	lines = append(lines, st.Muted.Render("The F-keys and ctrl-keys also work while a text field has the focus."))
	cols := 1
	colW := w - 2
	if w >= 150 {
		cols, colW = 2, (w-4)/2
	}
	inner := h - 2
	if cols == 2 {
		half := (len(lines) + 1) / 2
		// Break at a section boundary near the middle.
		for i := half; i < len(lines); i++ {
			if lines[i] == "" {
				half = i + 1
				break
			}
		}
		left := fit(strings.Join(lines[:half], "\n"), colW, inner)
		right := fit(strings.Join(lines[half:], "\n"), colW, inner)
		return panel(st, "Keys", "esc closes", lipgloss.JoinHorizontal(lipgloss.Top, left, "  ", right), w, h, true)
	}
	off := min(m.helpOffset, max(0, len(lines)-inner))
	end := min(len(lines), off+inner)
	note := "esc closes"
	if len(lines) > inner {
		note = fmt.Sprintf("↑/↓ scroll %d–%d of %d · esc closes", off+1, end, len(lines))
	}
	return panel(st, "Keys", note, strings.Join(lines[off:end], "\n"), w, h, true)
}

func (m *model) confirmView() string {
	st := m.ctx.styles
	body := st.Bold.Render("A tournament is running.") + "\n" +
		"Quit and stop it? Candidates being merged or evaluated\n" +
		"are cancelled; the engine cleans up before the exit.\n\n" +
		st.HelpKey.Render("y") + st.Muted.Render(" quit   ") + st.HelpKey.Render("n") + st.Muted.Render(" keep running")
	return st.Dialog.Render(body)
}
