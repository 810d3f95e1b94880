package tui

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	tea "charm.land/bubbletea/v2"
	"charm.land/huh/v2"
	"charm.land/lipgloss/v2"
	"github.com/google/renameio/v2"

	"github.com/evomerge/evomerge/engine/config"
)

// configPage embeds the configuration form. The form is a child model:
// every message is forwarded to it and its State checked afterwards (the
// standalone submit/cancel commands are nil when embedded). A completed
// form ignores input, so after each save a new form is built over the same
// draft. Saving validates everything (including the file checks the
// field validators skip) in a command, then writes the TOML atomically.
type configPage struct {
	ctx      *programContext
	draft    *draft
	form     *huh.Form
	problems config.Problems // from the last full check
	message  string
	isErr    bool
	checking bool
	w, h     int
}

// configCheckedMsg reports a full check of a configuration that failed.
type configCheckedMsg struct {
	problems config.Problems
	err      error
}

// configSavedMsg reports a configuration written to path.
type configSavedMsg struct {
	cfg  config.Config
	path string
}

func newConfigPage(ctx *programContext) configPage {
	return configPage{ctx: ctx}
}

// reset starts editing cfg (to be saved to path) in a new form.
func (p *configPage) reset(cfg config.Config, path string) tea.Cmd {
	if path == "" {
		path = "evomerge.toml"
	}
	p.draft = newDraft(cfg, path)
	return p.rebuild()
}

// rebuild builds a new form over the current draft.
func (p *configPage) rebuild() tea.Cmd {
	p.form = buildForm(p.draft, formOptions{theme: p.ctx.theme, save: true, embedded: true})
	p.sizeForm()
	return p.form.Init()
}

func (p *configPage) resize(w, h int) {
	p.w, p.h = w, h
	p.sizeForm()
}

func (p *configPage) formWidth() int {
	if p.w >= 100 {
		return p.w - problemsWidth - 1
	}
	return p.w
}

const problemsWidth = 38

func (p *configPage) sizeForm() {
	if p.form == nil || p.w == 0 {
		return
	}
	h := p.h - 2 // header line and message line
	if p.w < 100 {
		h -= min(len(p.problems), 3)
	}
	p.form.WithWidth(max(20, p.formWidth()-2)).WithHeight(max(6, h))
}

// update forwards msg to the form and submits it when it completes.
func (p *configPage) update(msg tea.Msg) tea.Cmd {
	if p.form == nil {
		return nil
	}
	m, cmd := p.form.Update(msg)
	if f, ok := m.(*huh.Form); ok {
		p.form = f
	}
	switch p.form.State {
	case huh.StateCompleted:
		return tea.Batch(cmd, p.submit())
	case huh.StateAborted:
		return tea.Batch(cmd, p.rebuild())
	}
	return cmd
}

// submit converts the draft and, when it converts, checks and saves it in
// a command.
func (p *configPage) submit() tea.Cmd {
	if p.draft == nil {
		return nil
	}
	cfg, err := p.draft.config()
	var ce *config.Error
	if errors.As(err, &ce) {
		p.problems = ce.Problems
		p.message, p.isErr = fmt.Sprintf("%d problems: fix the fields marked below", len(ce.Problems)), true
		return p.rebuild()
	}
	p.checking = true
	p.message, p.isErr = "checking…", false
	path := strings.TrimSpace(p.draft.savePath)
	return tea.Batch(p.rebuild(), checkAndSaveCmd(cfg, path))
}

// checkAndSaveCmd validates cfg fully (this stats the files it names) and
// writes it to path when it is valid.
func checkAndSaveCmd(cfg config.Config, path string) tea.Cmd {
	return func() tea.Msg {
		if ps := cfg.Validate(); len(ps) > 0 {
			return configCheckedMsg{problems: ps}
		}
		if err := writeConfig(path, cfg); err != nil {
			return configCheckedMsg{err: err}
		}
		return configSavedMsg{cfg: cfg, path: path}
	}
}

// writeConfig writes cfg as TOML to path, atomically.
func writeConfig(path string, cfg config.Config) error {
	data, err := cfg.Encode()
	if err != nil {
		return fmt.Errorf("encoding the configuration: %w", err)
	}
	head := "# evomerge configuration, written by evomerge-tui.\n# evomerge.toml.example documents every key.\n\n"
	if dir := filepath.Dir(path); dir != "." {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return fmt.Errorf("saving the configuration: %w", err)
		}
	}
	if err := renameio.WriteFile(path, append([]byte(head), data...), 0o644); err != nil {
		return fmt.Errorf("saving the configuration: %w", err)
	}
	return nil
}

// checked handles the result of a failed full check.
func (p *configPage) checked(msg configCheckedMsg) {
	p.checking = false
	if msg.err != nil {
		p.problems = nil
		p.message, p.isErr = msg.err.Error(), true
		return
	}
	p.problems = msg.problems
	p.message, p.isErr = fmt.Sprintf("not saved: %d problems", len(msg.problems)), true
	p.sizeForm()
}

// saved handles a successful save.
func (p *configPage) saved(msg configSavedMsg) {
	p.checking = false
	p.problems = nil
	p.message, p.isErr = "saved to "+msg.path+"; the next run uses it", false
	p.sizeForm()
}

// view renders the page in w × h cells: a header, the form, and the
// problems of the last check beside (or above) it.
func (p *configPage) view() string {
	st := p.ctx.styles
	w, h := p.w, p.h
	path := "evomerge.toml"
	if p.draft != nil {
		path = p.draft.savePath
	}
	hints := []string{"editing " + path}
	for _, b := range p.ctx.keys.configHints() {
		hints = append(hints, b.Help().Key+" "+b.Help().Desc)
	}
	header := st.Accent.Render("Configuration") + st.Muted.Render("  "+strings.Join(hints, " · "))
	msg := ""
	if p.message != "" {
		if p.isErr {
			msg = st.Bad.Render(p.message)
		} else {
			msg = st.Good.Render(p.message)
		}
	}
	formView := ""
	if p.form != nil {
		formView = p.form.View()
	}
	var probs []string
	for _, pr := range p.problems {
		probs = append(probs, st.Bad.Render("• ")+st.Bold.Render(pr.Key)+" "+pr.Msg)
	}
	if w >= 100 {
		fw := p.formWidth()
		body := fit(formView, fw, h-2)
		side := st.Muted.Render("Last check: no problems")
		if len(probs) > 0 {
			side = strings.Join(wrapAll(probs, problemsWidth-2), "\n")
		} else if p.message == "" {
			side = st.Muted.Render("Problems found on save appear here; field rules show next to each field.")
			side = strings.Join(wrapLines(side, problemsWidth-2), "\n")
		}
		sideP := panel(st, "Problems", "", side, problemsWidth, h-2, false)
		return fit(header+"\n"+msg+"\n"+lipgloss.JoinHorizontal(lipgloss.Top, body, " ", sideP), w, h)
	}
	top := header + "\n" + msg
	if len(probs) > 0 {
		shown := probs[:min(3, len(probs))]
		if len(probs) > 3 {
			shown[2] = st.Bad.Render(fmt.Sprintf("• … and %d more (widen the terminal to see all)", len(probs)-2))
		}
		top += "\n" + strings.Join(shown, "\n")
	}
	return fit(top+"\n"+formView, w, h)
}

func wrapAll(lines []string, w int) []string {
	var out []string
	for _, l := range lines {
		out = append(out, strings.Split(lipgloss.NewStyle().Width(w).Render(l), "\n")...)
	}
	return out
}
