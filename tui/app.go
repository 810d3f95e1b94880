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
// are cleaned up before the process exits. When the last tournament
// failed, Run returns its error.
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
		m = fm
	}
	m.stopRun(runStopTimeout)
	if err != nil && !errors.Is(err, tea.ErrProgramKilled) && !errors.Is(err, tea.ErrInterrupted) {
		return fmt.Errorf("workbench: %w", err)
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if m.rs.phase == phaseFailed && m.rs.runErr != nil {
		// The screen is gone: the reason goes to the caller (the exit
		// status and stderr), as a headless run's would.
		return fmt.Errorf("the tournament failed: %w", m.rs.runErr)
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
// tea.Cmd, and commands get copies, never the model; what they find comes
// back as a message, so state changes only in Update. The model is one
// type across files by concern (see the package documentation).
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

	run    runControl
	status statusBar
}

// deviceMsg carries the backend's description of its CPU/GPU.
type deviceMsg string

// newModel builds the root model and its components, themed and sized.
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
	m := &model{ctx: ctx, startRun: opt.StartRun, rs: newRunState()}
	m.run.givenDir = opt.StartRun
	m.dash = newDashboard(ctx)
	m.conf = newConfigPage(ctx)
	m.chat = newChatPage(ctx)
	m.help = help.New()
	m.status = statusBar{ctx: ctx}
	m.applyTheme(cfg.UI.Theme)
	m.chat.refreshSources(cfg, &m.rs)
	if ctx.width > 0 && ctx.height > 0 {
		m.resize(ctx.width, ctx.height)
	}
	return m
}

// noColor reports whether NO_COLOR is set (and not empty) in env.
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
		cmd, _ := m.handleKey(msg)
		return m, cmd
	case eventsMsg:
		m.applyEvents(msg)
		return m, nil
	case runDoneMsg:
		return m, m.finishRun(msg)
	case startRunMsg:
		return m, m.start()
	case resumeFoundMsg:
		return m, m.resumeFound(msg)
	case pauseToggledMsg:
		m.pauseToggled(msg)
		return m, nil
	case tickMsg:
		return m, m.ticked()
	case deviceMsg:
		m.ctx.device = string(msg)
		return m, nil
	case exportedMsg:
		if msg.err != nil {
			m.status.set(msg.err.Error(), true)
		} else {
			m.status.set(fmt.Sprintf("exported %d files to %s", len(msg.files), dirOf(msg.files)), false)
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

// dirOf is the directory of the first of files ("." when none has one).
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

// typing reports whether the focused element takes text: then a key
// that types text goes to it, and only the keys that type none (F-keys,
// ctrl-keys, enter, esc, tab) can mean something else.
func (m *model) typing() bool {
	switch m.page {
	case pageConfig:
		return true
	case pageChat:
		return m.chat.typing()
	}
	return m.dash.typing()
}

// handleKey routes a key press. An open overlay takes every key. Then a
// key that types no text keeps its global meaning (F1 leaves a text
// field); then the page, and on it the focused element, has the key; a
// key the page leaves is global unless a text field has the focus. bound
// reports whether a binding of the key map matched: a key typed into a
// text field or passed to the form is not bound (keys_test.go checks the
// help and the hint bar against it).
func (m *model) handleKey(msg tea.KeyPressMsg) (cmd tea.Cmd, bound bool) {
	switch {
	case m.confirmQuit:
		return m.confirmKey(msg)
	case m.showHelp:
		return m.helpKey(msg)
	}
	m.status.clear()
	if !typesText(msg.String()) {
		if cmd, ok := m.globalKey(msg); ok {
			return cmd, true
		}
	}
	if cmd, bound = m.pageKey(msg); bound || m.typing() {
		return cmd, bound
	}
	return m.globalKey(msg)
}

// globalKey handles the bindings that mean the same on every page.
func (m *model) globalKey(msg tea.KeyPressMsg) (tea.Cmd, bool) {
	k := m.ctx.keys
	switch {
	case key.Matches(msg, k.Quit, k.ForceQuit):
		return m.requestQuit(), true
	case key.Matches(msg, k.Dashboard):
		return m.switchPage(pageDashboard), true
	case key.Matches(msg, k.Config):
		return m.switchPage(pageConfig), true
	case key.Matches(msg, k.Chat):
		return m.switchPage(pageChat), true
	case key.Matches(msg, k.Help):
		m.openHelp()
		return nil, true
	case key.Matches(msg, k.Theme):
		return m.cycleTheme(), true
	case key.Matches(msg, k.Pause):
		return m.togglePause(), true
	case key.Matches(msg, k.StartRun):
		return m.start(), true
	case key.Matches(msg, k.ResumeRun):
		return m.resume(), true
	case key.Matches(msg, k.Export):
		return m.export(), true
	case key.Matches(msg, k.Zoom) && m.page == pageDashboard:
		m.dash.toggleZoom(&m.rs)
		return nil, true
	}
	return nil, false
}

// pageKey gives a key to the page on screen.
func (m *model) pageKey(msg tea.KeyPressMsg) (tea.Cmd, bool) {
	k := m.ctx.keys
	switch m.page {
	case pageConfig:
		switch {
		case key.Matches(msg, k.Back):
			return m.switchPage(pageDashboard), true
		case key.Matches(msg, k.Save):
			return m.conf.submit(), true
		}
		return m.conf.update(msg), false // the form's own keys, and typing
	case pageChat:
		return m.chat.update(msg)
	}
	if cmd, bound := m.dash.update(msg, &m.rs); bound || m.dash.typing() {
		return cmd, bound
	}
	if key.Matches(msg, k.ChatWith) {
		return m.chatWithSelected(), true
	}
	return nil, false
}

// chatWithSelected opens the chat with the candidate selected in the
// population table (when it has a scored recipe).
func (m *model) chatWithSelected() tea.Cmd {
	cmd := m.switchPage(pageChat)
	c := m.dash.table.selected()
	if c == nil {
		return cmd
	}
	if c.hasScores() && c.info.Recipe != "" {
		return tea.Batch(cmd, m.chat.selectKey("cand:"+c.info.ID))
	}
	m.status.set(c.info.ID+" has no scored recipe yet: pick another model", true)
	return cmd
}

// switchPage shows page p.
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
		m.status.set("nothing to export yet: no candidates seen", true)
		return nil
	}
	d := snapshotExport(&m.rs, dir, m.render(), m.ctx.now())
	m.status.set("exporting…", false)
	return exportCmd(d)
}

// configSaved makes a saved configuration the one the next run uses.
func (m *model) configSaved(msg configSavedMsg) tea.Cmd {
	m.conf.saved(msg)
	*m.ctx.cfg = msg.cfg
	m.ctx.configPath = msg.path
	if msg.cfg.UI.Theme != m.ctx.theme.Name {
		m.applyTheme(msg.cfg.UI.Theme)
	}
	m.chat.refreshSources(msg.cfg, &m.rs)
	return nil
}
