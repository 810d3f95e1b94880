package tui

import (
	"context"
	"io"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"
	"charm.land/lipgloss/v2"
	"github.com/charmbracelet/x/ansi"

	"github.com/evomerge/evomerge/engine/config"
)

// The clock tests pin: three minutes into the scripted run.
func testClock() time.Time { return t0.Add(3 * time.Minute) }

// harness drives a model the way a program would, without a terminal:
// commands run in goroutines, their messages and those the model's
// sender delivers come back through one channel, and pump feeds them to
// Update until a condition holds.
type harness struct {
	t  *testing.T
	m  *model
	fb *fakeBackend
	ch chan tea.Msg
}

func newHarness(t *testing.T, fb *fakeBackend, w, h int, mod ...func(*Options)) *harness {
	t.Helper()
	hs := newBareHarness(t, fb, w, h, mod...)
	hs.m.Init() // builds the form; its commands (cursor blinks, size requests) are not needed
	return hs
}

// newBareHarness is newHarness without Init: the configuration form is
// not built (building it is most of a harness's cost).
func newBareHarness(t *testing.T, fb *fakeBackend, w, h int, mod ...func(*Options)) *harness {
	t.Helper()
	opt := Options{Backend: fb, Environ: []string{}, Width: w, Height: h, clock: testClock}
	for _, f := range mod {
		f(&opt)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	m := newModel(ctx, opt)
	m.run.ticking = true // no one-second ticks in tests
	hs := &harness{t: t, m: m, fb: fb, ch: make(chan tea.Msg, 4096)}
	m.ctx.send.attach(func(msg tea.Msg) { hs.ch <- msg })
	t.Cleanup(func() { m.stopRun(5 * time.Second) })
	return hs
}

// send feeds msg to Update and runs the resulting command.
func (h *harness) send(msg tea.Msg) {
	h.t.Helper()
	_, cmd := h.m.Update(msg)
	h.run(cmd)
}

// keys presses keys by name.
func (h *harness) keys(names ...string) {
	h.t.Helper()
	for _, n := range names {
		h.send(keyPress(n))
	}
}

// typeText types text into whatever has the focus.
func (h *harness) typeText(s string) {
	for _, k := range typeText(s) {
		h.send(k)
	}
}

// run executes cmd in the background; its messages arrive on h.ch.
func (h *harness) run(cmd tea.Cmd) {
	if cmd == nil {
		return
	}
	go func() {
		msg := cmd()
		if msg == nil {
			return
		}
		if cmds, ok := asCmds(msg); ok {
			for _, c := range cmds {
				h.run(c)
			}
			return
		}
		h.ch <- msg
	}()
}

// asCmds unpacks tea.Batch and tea.Sequence messages (the latter's type
// is unexported, hence reflection).
func asCmds(msg tea.Msg) ([]tea.Cmd, bool) {
	if b, ok := msg.(tea.BatchMsg); ok {
		return b, true
	}
	v := reflect.ValueOf(msg)
	if v.Kind() == reflect.Slice && v.Type().Elem() == reflect.TypeOf((tea.Cmd)(nil)) {
		out := make([]tea.Cmd, v.Len())
		for i := range out {
			out[i] = v.Index(i).Interface().(tea.Cmd)
		}
		return out, true
	}
	return nil, false
}

// pump processes messages until cond holds; it fails the test after
// timeout.
func (h *harness) pump(cond func(m *model) bool, timeout time.Duration) {
	h.t.Helper()
	deadline := time.After(timeout)
	for !cond(h.m) {
		select {
		case msg := <-h.ch:
			if _, ok := msg.(tea.QuitMsg); ok {
				continue
			}
			h.send(msg)
		case <-deadline:
			h.t.Fatalf("condition not met after %s; screen:\n%s", timeout, h.screen())
		}
	}
}

// settle processes messages until none arrives for a while.
func (h *harness) settle() {
	h.t.Helper()
	for {
		select {
		case msg := <-h.ch:
			h.send(msg)
		case <-time.After(150 * time.Millisecond):
			return
		}
	}
}

// screen is the rendered screen without styles.
func (h *harness) screen() string { return ansi.Strip(h.m.render()) }

// playScript feeds the fake's scripted events straight to Update (no
// run command), in batches of n.
func (h *harness) playScript(upTo, n int) {
	evs := h.fb.script[:upTo]
	for len(evs) > 0 {
		k := min(n, len(evs))
		h.send(eventsMsg{run: h.m.run.id, events: evs[:k]})
		evs = evs[k:]
	}
}

// checkGeometry asserts the screen is exactly w × h cells.
func checkGeometry(t *testing.T, s string, w, h int) {
	t.Helper()
	lines := strings.Split(s, "\n")
	if len(lines) != h {
		t.Fatalf("screen has %d lines, want %d:\n%s", len(lines), h, ansi.Strip(s))
	}
	for i, l := range lines {
		if lw := lipgloss.Width(l); lw != w {
			t.Fatalf("line %d is %d cells wide, want %d: %q", i, lw, w, ansi.Strip(l))
		}
	}
}

// lineWith returns the first screen line containing s.
func lineWith(screen, s string) string {
	for _, l := range strings.Split(screen, "\n") {
		if strings.Contains(l, s) {
			return l
		}
	}
	return ""
}

func defaultConfigWithTheme(name string) config.Config {
	c := config.Default()
	c.UI.Theme = name
	return c
}

func ioPipe() (*io.PipeReader, *io.PipeWriter) { return io.Pipe() }

// syncWriter serialises writes (the program writes from its renderer).
type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}

// logHas reports whether the log pane holds a line containing s.
func logHas(m *model, s string) bool {
	for _, l := range m.dash.log.lines {
		if strings.Contains(l.text, s) {
			return true
		}
	}
	return false
}

func teaWindowSize(w, h int) tea.WindowSizeMsg { return tea.WindowSizeMsg{Width: w, Height: h} }
