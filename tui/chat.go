package tui

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"charm.land/bubbles/v2/key"
	"charm.land/bubbles/v2/textinput"
	tea "charm.land/bubbletea/v2"
	"charm.land/lipgloss/v2"

	"github.com/evomerge/evomerge/engine/config"
	"github.com/evomerge/evomerge/engine/eval"
	"github.com/evomerge/evomerge/engine/format"
)

// chatPage lets the user talk to any model: a configured source, the best
// candidate so far, any candidate seen in the run, or the best model a
// finished run wrote. A candidate is first merged into a temporary GGUF
// (Backend.Materialize, once per candidate), then Backend.Generate streams
// text, which arrives through a relay in coalesced chunks. The sampling
// settings are adjustable; the last chatHistory exchanges are kept.
type chatPage struct {
	ctx     *programContext
	focus   chatFocus
	sources []chatSource
	cursor  int
	selKey  string
	opt     eval.GenerateOptions
	setting int
	input   textinput.Model
	turns   []chatTurn
	gen     int
	busy    bool
	cancel  context.CancelFunc
	genCtx  context.Context
	paths   map[string]string // source key → materialised GGUF
	scroll  int               // transcript lines scrolled up from the bottom
	w, h    int
}

type chatFocus int

const (
	chatModels chatFocus = iota
	chatSettings
	chatPrompt
)

const chatHistory = 12

// chatSource is a model the chat can use.
type chatSource struct {
	key    string // stable identity
	label  string
	detail string
	path   string // GGUF path or hub reference, when the model exists as a file
	recipe string // recipe TOML, for candidates (materialised on demand)
}

// chatTurn is one prompt and its answer.
type chatTurn struct {
	gen    int
	model  string
	source chatSource
	prompt string
	opt    eval.GenerateOptions
	text   string
	status string
	failed bool
	res    *eval.GenerateResult
}

// Messages of the chat.
type (
	chatTextMsg     struct{ items []any }
	materializedMsg struct {
		gen  int
		key  string
		path string
		err  error
	}
	generatedMsg struct {
		gen int
		res eval.GenerateResult
		err error
	}
)

func newChatPage(ctx *programContext) chatPage {
	opt := eval.GenerateOptions{SamplingOptions: eval.DefaultSampling(), MaxTokens: 128}
	return chatPage{ctx: ctx, focus: chatPrompt, opt: opt, paths: map[string]string{},
		input: newTextInput(ctx, "› ", "type a prompt, enter sends")}
}

// refreshSources rebuilds the model list from the configuration and the
// run, keeping the selection.
func (c *chatPage) refreshSources(cfg config.Config, rs *runState) {
	var out []chatSource
	for _, m := range cfg.Models {
		label := m.Name
		if m.Name == cfg.Merge.Base {
			label += " (base)"
		}
		out = append(out, chatSource{key: "src:" + m.Name, label: label, detail: m.Ref(), path: m.Ref()})
	}
	if rs.result != nil && rs.result.BestModel != "" {
		out = append(out, chatSource{key: "result", label: "best model (written)", detail: rs.result.BestModel, path: rs.result.BestModel})
	}
	if b, ok := rs.cands[rs.bestID]; ok && b.info.Recipe != "" {
		out = append(out, chatSource{key: "cand:" + b.info.ID, label: "best so far: " + b.info.ID,
			detail: b.info.Technique + " " + format.Fitness(b.fitness), recipe: b.info.Recipe})
	}
	var cands []*candidate
	for _, id := range rs.order {
		cd := rs.cands[id]
		if cd.hasScores() && cd.info.Recipe != "" && id != rs.bestID {
			cands = append(cands, cd)
		}
	}
	slices.SortStableFunc(cands, func(a, b *candidate) int { return cmp.Compare(b.fitness, a.fitness) })
	for _, cd := range cands[:min(len(cands), 60)] {
		out = append(out, chatSource{key: "cand:" + cd.info.ID, label: cd.info.ID,
			detail: cd.info.Technique + " " + format.Fitness(cd.fitness), recipe: cd.info.Recipe})
	}
	c.sources = out
	c.cursor = 0
	for i, s := range out {
		if s.key == c.selKey {
			c.cursor = i
		}
	}
	if len(out) > 0 {
		c.selKey = out[c.cursor].key
	}
}

// selectKey selects a source (e.g. the candidate chosen on the dashboard)
// and puts the focus on the prompt.
func (c *chatPage) selectKey(k string) tea.Cmd {
	c.selKey = k
	for i, s := range c.sources {
		if s.key == k {
			c.cursor = i
		}
	}
	return c.setFocus(chatPrompt)
}

func (c *chatPage) setFocus(f chatFocus) tea.Cmd {
	c.focus = f
	if f == chatPrompt {
		return c.input.Focus()
	}
	c.input.Blur()
	return nil
}

func (c *chatPage) typing() bool { return c.focus == chatPrompt }

// setting describes one adjustable sampling setting.
type samplingSetting struct {
	name string
	get  func(o *eval.GenerateOptions) string
	step func(o *eval.GenerateOptions, dir int)
}

func clampF(v, lo, hi float64) float64 { return min(max(v, lo), hi) }

func roundF(v float64) float64 { return float64(int64(v*1000+0.5*sign(v))) / 1000 }

func sign(v float64) float64 {
	if v < 0 {
		return -1
	}
	return 1
}

func samplingSettings() []samplingSetting {
	ff := func(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }
	return []samplingSetting{
		{"temperature", func(o *eval.GenerateOptions) string { return ff(o.Temperature) },
			func(o *eval.GenerateOptions, d int) {
				o.Temperature = roundF(clampF(o.Temperature+0.05*float64(d), 0, 5))
			}},
		{"top-k", func(o *eval.GenerateOptions) string {
			if o.TopK == 0 {
				return "off"
			}
			return strconv.Itoa(o.TopK)
		}, func(o *eval.GenerateOptions, d int) { o.TopK = min(max(o.TopK+5*d, 0), 1000) }},
		{"top-p", func(o *eval.GenerateOptions) string { return ff(o.TopP) },
			func(o *eval.GenerateOptions, d int) { o.TopP = roundF(clampF(o.TopP+0.05*float64(d), 0, 1)) }},
		{"min-p", func(o *eval.GenerateOptions) string { return ff(o.MinP) },
			func(o *eval.GenerateOptions, d int) { o.MinP = roundF(clampF(o.MinP+0.01*float64(d), 0, 1)) }},
		{"repeat penalty", func(o *eval.GenerateOptions) string { return ff(o.RepeatPenalty) },
			func(o *eval.GenerateOptions, d int) {
				o.RepeatPenalty = roundF(clampF(o.RepeatPenalty+0.05*float64(d), 0, 3))
			}},
		{"max tokens", func(o *eval.GenerateOptions) string { return strconv.Itoa(o.MaxTokens) },
			func(o *eval.GenerateOptions, d int) { o.MaxTokens = min(max(o.MaxTokens+16*d, 1), 4096) }},
		{"seed", func(o *eval.GenerateOptions) string { return strconv.FormatUint(o.Seed, 10) },
			func(o *eval.GenerateOptions, d int) {
				if d < 0 && o.Seed == 0 {
					return
				}
				o.Seed = uint64(int64(o.Seed) + int64(d))
			}},
	}
}

// update handles a key on the chat page; bound reports whether one of
// its bindings matched. A key typed into the prompt is not bound.
func (c *chatPage) update(msg tea.KeyPressMsg) (cmd tea.Cmd, bound bool) {
	k := c.ctx.keys
	switch {
	case key.Matches(msg, k.NextPane):
		return c.setFocus((c.focus + 1) % 3), true
	case key.Matches(msg, k.PrevPane):
		return c.setFocus((c.focus + 2) % 3), true
	case key.Matches(msg, k.ClearChat):
		if !c.busy {
			c.turns, c.scroll = nil, 0
		}
		return nil, true
	case key.Matches(msg, k.PageUp):
		c.scroll += max(1, c.h/2)
		return nil, true
	case key.Matches(msg, k.PageDown):
		c.scroll = max(0, c.scroll-max(1, c.h/2))
		return nil, true
	}
	switch c.focus {
	case chatPrompt:
		switch {
		case key.Matches(msg, k.Send):
			return c.send(), true
		case key.Matches(msg, k.Stop):
			if c.busy {
				c.stop()
				return nil, true
			}
			return c.setFocus(chatModels), true
		}
		c.input, cmd = c.input.Update(msg)
		return cmd, false
	case chatModels:
		switch {
		case key.Matches(msg, k.Up):
			c.moveSource(-1)
		case key.Matches(msg, k.Down):
			c.moveSource(1)
		case key.Matches(msg, k.Top):
			c.moveSource(-1 << 20)
		case key.Matches(msg, k.Bottom):
			c.moveSource(1 << 20)
		case key.Matches(msg, k.Open):
			return c.setFocus(chatPrompt), true
		case key.Matches(msg, k.Back) && c.busy:
			c.stop()
		default:
			return nil, false
		}
		return nil, true
	case chatSettings:
		ss := samplingSettings()
		switch {
		case key.Matches(msg, k.Up):
			c.setting = max(0, c.setting-1)
		case key.Matches(msg, k.Down):
			c.setting = min(len(ss)-1, c.setting+1)
		case key.Matches(msg, k.Decrease):
			ss[c.setting].step(&c.opt, -1)
		case key.Matches(msg, k.Increase):
			ss[c.setting].step(&c.opt, 1)
		case key.Matches(msg, k.Open):
			return c.setFocus(chatPrompt), true
		case key.Matches(msg, k.Back) && c.busy:
			c.stop()
		default:
			return nil, false
		}
		return nil, true
	}
	return nil, false
}

func (c *chatPage) moveSource(d int) {
	if len(c.sources) == 0 {
		return
	}
	c.cursor = min(max(c.cursor+d, 0), len(c.sources)-1)
	c.selKey = c.sources[c.cursor].key
}

// send starts a generation with the prompt typed.
func (c *chatPage) send() tea.Cmd {
	prompt := strings.TrimSpace(c.input.Value())
	if prompt == "" || c.busy || len(c.sources) == 0 || c.ctx.backend == nil {
		return nil
	}
	src := c.sources[c.cursor]
	c.gen++
	t := chatTurn{gen: c.gen, model: src.label, source: src, prompt: prompt, opt: c.opt}
	c.input.SetValue("")
	c.scroll = 0
	ctx, cancel := context.WithCancel(c.ctx.base)
	c.genCtx, c.cancel, c.busy = ctx, cancel, true
	path := src.path
	if path == "" {
		path = c.paths[src.key]
	}
	var cmd tea.Cmd
	if path != "" {
		t.status = "generating…"
		cmd = generateCmd(ctx, c.ctx.backend, c.ctx.send, c.gen, path, prompt, c.opt)
	} else {
		t.status = "merging " + src.label + " into a temporary model…"
		cmd = materializeCmd(ctx, c.ctx.backend, c.gen, src.key, src.recipe)
	}
	c.turns = append(c.turns, t)
	if len(c.turns) > chatHistory {
		c.turns = c.turns[len(c.turns)-chatHistory:]
	}
	return cmd
}

func (c *chatPage) stop() {
	if c.cancel != nil {
		c.cancel()
	}
	if t := c.current(); t != nil {
		t.status = "stopping…"
	}
}

// current is the turn being generated, if any.
func (c *chatPage) current() *chatTurn {
	if len(c.turns) == 0 {
		return nil
	}
	t := &c.turns[len(c.turns)-1]
	if t.gen != c.gen {
		return nil
	}
	return t
}

func materializeCmd(ctx context.Context, b Backend, gen int, key, recipe string) tea.Cmd {
	return func() tea.Msg {
		p, err := b.Materialize(ctx, recipe)
		if err != nil {
			err = fmt.Errorf("merging the candidate: %w", err)
		}
		return materializedMsg{gen: gen, key: key, path: p, err: err}
	}
}

func generateCmd(ctx context.Context, b Backend, s *sender, gen int, model, prompt string, opt eval.GenerateOptions) tea.Cmd {
	return func() tea.Msg {
		r := newRelay(&textBatcher{}, s.Send, func(items []any) tea.Msg { return chatTextMsg{items: items} }, 33*time.Millisecond)
		res, err := b.Generate(ctx, model, prompt, opt, func(text string) { r.push(textChunk{gen: gen, text: text}) })
		r.close() // every chunk is delivered before generatedMsg
		return generatedMsg{gen: gen, res: res, err: err}
	}
}

// handle processes the chat's own messages.
func (c *chatPage) handle(msg tea.Msg) tea.Cmd {
	switch msg := msg.(type) {
	case chatTextMsg:
		for _, it := range msg.items {
			if ch, ok := it.(textChunk); ok {
				for i := range c.turns {
					if c.turns[i].gen == ch.gen {
						c.turns[i].text += ch.text
					}
				}
			}
		}
	case materializedMsg:
		t := c.current()
		if msg.err == nil {
			c.paths[msg.key] = msg.path
		}
		if t == nil || t.gen != msg.gen {
			return nil
		}
		if msg.err != nil {
			c.finish(t, eval.GenerateResult{}, msg.err)
			return nil
		}
		t.status = "generating…"
		return generateCmd(c.genCtx, c.ctx.backend, c.ctx.send, t.gen, msg.path, t.prompt, t.opt)
	case generatedMsg:
		if t := c.current(); t != nil && t.gen == msg.gen {
			c.finish(t, msg.res, msg.err)
		}
	}
	return nil
}

func (c *chatPage) finish(t *chatTurn, res eval.GenerateResult, err error) {
	c.busy = false
	if c.cancel != nil {
		c.cancel()
		c.cancel = nil
	}
	if t.text == "" && res.Text != "" {
		t.text = res.Text
	}
	r := res
	t.res = &r
	switch {
	case err == nil:
		t.status = fmt.Sprintf("%d tokens · %.1f tok/s · stopped by %s", res.Tokens, res.TokensPerSecond, res.StopReason)
	case errors.Is(err, context.Canceled):
		t.status = fmt.Sprintf("stopped after %d tokens", res.Tokens)
	default:
		t.failed = true
		t.status = "failed: " + err.Error()
	}
}

// resize sets the page size.
func (c *chatPage) resize(w, h int) {
	c.w, c.h = w, h
	c.input.SetWidth(max(1, c.rightWidth()-2-3))
}

func (c *chatPage) leftWidth() int  { return min(max(c.w/3, 26), 40) }
func (c *chatPage) rightWidth() int { return c.w - c.leftWidth() }

// view renders the page in w × h cells.
func (c *chatPage) view() string {
	st := c.ctx.styles
	lw, rw := c.leftWidth(), c.rightWidth()
	ss := samplingSettings()
	setH := min(len(ss)+2, max(3, c.h/2))
	modH := c.h - setH

	// Models.
	var ml []string
	off := max(0, c.cursor-(modH-3))
	for i := off; i < len(c.sources) && len(ml) < modH-2; i++ {
		s := c.sources[i]
		line := trunc(s.label, lw-4)
		if i == c.cursor {
			line = "› " + line
			if c.focus == chatModels {
				line = st.Selected.Render(fitLine(line, lw-2))
			} else {
				line = st.Bold.Render(line)
			}
		} else {
			line = "  " + line
		}
		ml = append(ml, line)
	}
	if len(c.sources) == 0 {
		ml = append(ml, st.Muted.Render("no models configured"))
	}
	note := ""
	if c.cursor < len(c.sources) {
		note = c.sources[c.cursor].detail
	}
	models := panel(st, "Models", trunc(note, lw/2), strings.Join(ml, "\n"), lw, modH, c.focus == chatModels)

	// Settings.
	var sl []string
	for i, s := range ss {
		line := padRight(s.name, 15) + s.get(&c.opt)
		if i == c.setting && c.focus == chatSettings {
			line = st.Selected.Render(fitLine("‹ "+line+" ›", lw-2))
		} else {
			line = "  " + line
		}
		sl = append(sl, line)
	}
	settings := panel(st, "Sampling", "-/+", strings.Join(sl, "\n"), lw, setH, c.focus == chatSettings)

	// Transcript and prompt.
	promptH := 3
	trH := c.h - promptH
	tw := rw - 2
	var tl []string
	for _, t := range c.turns {
		tl = append(tl, st.Accent.Render("▸ "+t.model)+st.Muted.Render(fmt.Sprintf("  (t=%g, seed %d)", t.opt.Temperature, t.opt.Seed)))
		for _, l := range wrapLines(t.prompt, tw) {
			tl = append(tl, st.Bold.Render(l))
		}
		if t.text != "" {
			for _, l := range wrapLines(t.text, tw) {
				tl = append(tl, st.Text.Render(l))
			}
		}
		if t.failed {
			for _, l := range wrapLines(t.status, tw) {
				tl = append(tl, st.Bad.Render(l))
			}
		} else {
			tl = append(tl, st.Muted.Render(trunc(t.status, tw)))
		}
		tl = append(tl, "")
	}
	if len(tl) == 0 {
		tl = []string{st.Muted.Render("Choose a model on the left (tab, ↑/↓), type a prompt below, press enter."),
			st.Muted.Render("Candidates are merged into a temporary model first. esc stops a generation.")}
	}
	inner := trH - 2
	end := max(0, len(tl)-c.scroll)
	start := max(0, end-inner)
	trNote := ""
	if c.scroll > 0 {
		trNote = fmt.Sprintf("scrolled up %d lines (pgdn)", c.scroll)
	}
	transcript := panel(st, "Chat", trNote, strings.Join(tl[start:end], "\n"), rw, trH, false)
	in := c.input
	prompt := panel(st, "Prompt", "", in.View(), rw, promptH, c.focus == chatPrompt)

	left := lipgloss.JoinVertical(lipgloss.Left, models, settings)
	right := lipgloss.JoinVertical(lipgloss.Left, transcript, prompt)
	return fit(lipgloss.JoinHorizontal(lipgloss.Top, left, right), c.w, c.h)
}
