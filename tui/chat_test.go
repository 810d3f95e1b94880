package tui

import (
	"strings"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"
)

func TestChatWithTheBestCandidate(t *testing.T) {
	fb := newFake(6, 3)
	h := newHarness(t, fb, 100, 30)
	h.playScript(len(fb.script), 40)
	h.keys("3")
	if h.m.page != pageChat || !h.m.chat.typing() {
		t.Fatal("3 did not open the chat with the prompt focused")
	}
	// Models: the sources, the written best model, the best so far, candidates.
	labels := []string{}
	for _, s := range h.m.chat.sources {
		labels = append(labels, s.label)
	}
	joined := strings.Join(labels, "|")
	for _, want := range []string{"bible", "stories15M (base)", "best model (written)", "best so far: " + h.m.rs.bestID} {
		if !strings.Contains(joined, want) {
			t.Fatalf("models %v lack %q", labels, want)
		}
	}
	// Choose "best so far" and raise the temperature.
	h.keys("esc") // prompt → model list
	for h.m.chat.sources[h.m.chat.cursor].label != "best so far: "+h.m.rs.bestID {
		h.keys("down")
	}
	h.keys("tab") // settings
	h.keys("+", "+")
	h.keys("down", "down", "down", "down", "down") // max tokens
	h.keys("-")
	if h.m.chat.opt.Temperature != 0.9 || h.m.chat.opt.MaxTokens != 112 {
		t.Fatalf("settings: temperature %v, max tokens %d", h.m.chat.opt.Temperature, h.m.chat.opt.MaxTokens)
	}
	h.keys("tab") // prompt
	h.typeText("Call me")
	h.keys("enter")
	if !h.m.chat.busy || !strings.Contains(h.screen(), "merging best so far") {
		t.Fatalf("not merging:\n%s", h.screen())
	}
	h.pump(func(m *model) bool { return !m.chat.busy }, 5*time.Second)
	s := h.screen()
	for _, want := range []string{"▸ best so far: " + h.m.rs.bestID, "Call me", "Call me Ishmael. Some years ago…", "8 tokens · 42.5 tok/s · stopped by eos"} {
		if !strings.Contains(s, want) {
			t.Errorf("chat lacks %q:\n%s", want, s)
		}
	}
	if len(fb.materialize) != 1 || !strings.Contains(fb.materialize[0], "# "+h.m.rs.bestID) {
		t.Fatalf("materialised %v", fb.materialize)
	}
	if len(fb.generate) != 1 || fb.generate[0] != "/tmp/evomerge-chat-1.gguf: Call me" || fb.opts[0].Temperature != 0.9 || fb.opts[0].MaxTokens != 112 {
		t.Fatalf("generated %v with %+v", fb.generate, fb.opts)
	}
	// A second prompt to the same candidate reuses the merged model.
	h.typeText("again")
	h.keys("enter")
	h.pump(func(m *model) bool { return !m.chat.busy }, 5*time.Second)
	if len(fb.materialize) != 1 || len(fb.generate) != 2 || len(h.m.chat.turns) != 2 {
		t.Fatalf("materialised %d, generated %d, turns %d", len(fb.materialize), len(fb.generate), len(h.m.chat.turns))
	}
	// A source is generated from directly.
	h.keys("esc", "g")
	h.keys("enter") // model list: enter focuses the prompt
	h.typeText("In the beginning")
	h.keys("enter")
	h.pump(func(m *model) bool { return !m.chat.busy }, 5*time.Second)
	if fb.generate[2] != "zoo:bible: In the beginning" {
		t.Fatalf("generated %v", fb.generate)
	}
	h.keys("ctrl+l")
	if len(h.m.chat.turns) != 0 {
		t.Fatal("ctrl+l did not clear")
	}
}

func TestChatFromTheDashboardSelection(t *testing.T) {
	fb := newFake(6, 3)
	h := newHarness(t, fb, 80, 24)
	h.playScript(len(fb.script), 40)
	h.keys("j", "j")
	id := h.m.dash.table.selectedID
	h.keys("c")
	if h.m.page != pageChat || h.m.chat.selKey != "cand:"+id || !h.m.chat.typing() {
		t.Fatalf("page %v, selected %q, want cand:%s", h.m.page, h.m.chat.selKey, id)
	}
	if !strings.Contains(h.screen(), id) {
		t.Fatalf("chat does not show %s:\n%s", id, h.screen())
	}
	// While typing, letters are text: q does not quit, 1 does not switch.
	h.typeText("q1")
	if h.m.chat.input.Value() != "q1" || h.m.page != pageChat || h.m.confirmQuit {
		t.Fatalf("typing: %q page %v", h.m.chat.input.Value(), h.m.page)
	}
	// F1 works while typing.
	h.keys("f1")
	if h.m.page != pageDashboard {
		t.Fatal("F1 did not switch")
	}
}

func TestChatStop(t *testing.T) {
	fb := newFake(2, 1)
	fb.tokens = make([]string, 5000)
	for i := range fb.tokens {
		fb.tokens[i] = " word"
	}
	h := newHarness(t, fb, 100, 30)
	h.keys("3")
	h.typeText("go on")
	// Generate blocks only on cancellation; the fake streams fast, so stop
	// right after sending.
	_, cmd := h.m.Update(keyPress("enter"))
	h.keys("esc")
	h.run(cmd)
	h.pump(func(m *model) bool { return !m.chat.busy }, 5*time.Second)
	st := h.m.chat.turns[0].status
	if !strings.HasPrefix(st, "stopped after") {
		t.Fatalf("status %q", st)
	}
}

func TestPasteGoesToTheFocusedField(t *testing.T) {
	h := newHarness(t, newFake(2, 1), 100, 30)
	h.keys("3")
	h.send(tea.PasteMsg{Content: "pasted prompt"})
	if h.m.chat.input.Value() != "pasted prompt" {
		t.Fatalf("chat input %q", h.m.chat.input.Value())
	}
	if h.m.conf.draft.models != formatModels(h.m.ctx.cfg.Models) {
		t.Fatal("the paste also reached the configuration form")
	}
}
