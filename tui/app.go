package tui

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"charm.land/bubbles/v2/help"
	"charm.land/bubbles/v2/key"
	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/colorprofile"

	"github.com/evomerge/evomerge/engine/config"
	"github.com/evomerge/evomerge/engine/evolve"
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

// deviceMsg carries the backend's description of its CPU/GPU.
type deviceMsg string

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
