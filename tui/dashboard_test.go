package tui

import (
	"strings"
	"testing"
	"time"

	"github.com/evomerge/evomerge/engine/eval"
	"github.com/evomerge/evomerge/engine/evolve"
)

func TestDashboardFollowsTheEventStream(t *testing.T) {
	fb := newFake(8, 5)
	h := newHarness(t, fb, 100, 30)
	s := h.screen()
	if !strings.Contains(s, "no run yet: r starts a tournament") || !strings.Contains(s, "○ idle") {
		t.Fatalf("idle dashboard:\n%s", s)
	}

	// Three quarters of the run, in small batches as the relay delivers them.
	h.playScript(len(fb.script)*3/4, 7)
	rs := &h.m.rs
	if rs.phase != phaseRunning || rs.curGen != 3 || len(rs.gens) != 3 {
		t.Fatalf("phase %v, generation %d, %d generations done", rs.phase, rs.curGen, len(rs.gens))
	}
	if rs.evaluations != 24 || rs.budget() != 40 {
		t.Fatalf("evaluations %d of %d", rs.evaluations, rs.budget())
	}
	if got := rs.cands["g1-c03"]; got.status != evolve.StatusFailed || got.err == "" {
		t.Fatalf("g1-c03: %+v", got)
	}
	if got := rs.cands["g3-c00"]; got.status != evolve.StatusCached {
		t.Fatalf("elite g3-c00 is %s, want cached", got.status)
	}
	s = h.screen()
	for _, want := range []string{
		"Fitness", "━ best", "Population", "generation 3 · 6/8 done",
		"g3-c04", "cached", "queued", // rows of the current generation
		"gen 3 · 3/5 done", "evals 24/40", "elapsed 3m00s", "ETA 2m00s", "8.0 eval/min", // status bar
		"generation 2 done: best -2.3880", // log
		"● running",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("screen lacks %q", want)
		}
	}
	if l := lineWith(s, "g3-c04"); !strings.HasPrefix(strings.TrimLeft(l, "│"), "*") {
		t.Errorf("best candidate not marked: %q", l)
	}
	if t.Failed() {
		t.Log("\n" + s)
	}

	// A candidate in progress shows its progress bar.
	h.send(eventsMsg{events: []evolve.Event{evolve.CandidateProgress{ID: "g3-c06", Status: evolve.StatusEvaluating, Fraction: 0.5}}})
	if l := lineWith(h.screen(), "g3-c06"); !strings.Contains(l, "eval ██░░  50%") {
		t.Errorf("progress row: %q", l)
	}

	// The rest of the run.
	h.send(eventsMsg{events: fb.script[len(fb.script)*3/4:]})
	s = h.screen()
	if rs.phase != phaseFinished || !strings.Contains(s, "✓ finished (generations)") {
		t.Fatalf("not finished:\n%s", s)
	}
	if !strings.Contains(s, "run finished (generations) after 3m25s: best g4-c07") {
		t.Errorf("finish log line missing:\n%s", s)
	}
	if !strings.Contains(s, "held-out verdict: best − uniform") {
		t.Errorf("verdict log line missing:\n%s", s)
	}
}

func TestCandidateDetailsAndLineage(t *testing.T) {
	fb := newFake(8, 5)
	h := newHarness(t, fb, 80, 24)
	h.playScript(len(fb.script), 50)
	h.keys("s", "g") // by fitness, first row: the best
	if c := h.m.dash.table.selected(); c == nil || c.info.ID != h.m.rs.bestID {
		t.Fatalf("selected %v, best %s", c, h.m.rs.bestID)
	}
	h.keys("a", "g") // all generations, first row
	h.keys("j", "j")
	sel := h.m.dash.table.selected().info.ID
	h.keys("enter")
	if !h.m.dash.detailsOpen || h.m.dash.focus != paneDetails {
		t.Fatal("enter did not open the details")
	}
	s := h.screen()
	c := h.m.rs.cands[sel]
	for _, want := range []string{"Candidate " + sel, "Lineage", "─ " + c.info.Parents[0], "origin " + c.info.Origin} {
		if !strings.Contains(s, want) {
			t.Errorf("details lack %q:\n%s", want, s)
		}
	}
	// Scroll to the recipe.
	h.keys("G")
	if s := h.screen(); !strings.Contains(s, "weight = ") {
		t.Errorf("recipe not reachable by scrolling:\n%s", s)
	}
	h.keys("esc")
	if h.m.dash.detailsOpen || h.m.dash.focus != paneTable {
		t.Fatal("esc did not close the details")
	}
}

func TestLineageTree(t *testing.T) {
	rs := newRunState()
	info := func(id string, parents ...string) evolve.CandidateInfo {
		return evolve.CandidateInfo{ID: id, Technique: "ties", Parents: parents, Origin: "crossover"}
	}
	rs.apply(evolve.GenerationStarted{Generation: 0, Candidates: []evolve.CandidateInfo{info("a"), info("b")}})
	rs.apply(evolve.GenerationStarted{Generation: 1, Candidates: []evolve.CandidateInfo{info("c", "a", "b")}})
	rs.apply(evolve.GenerationStarted{Generation: 2, Candidates: []evolve.CandidateInfo{info("d", "c", "a"), info("e", "zz")}})
	var got []string
	for _, n := range rs.lineage("d", 5) {
		s := n.prefix + n.id
		if n.repeat {
			s += " (repeat)"
		}
		got = append(got, s)
	}
	want := []string{"d", "├─ c", "│  ├─ a", "│  └─ b", "└─ a (repeat)"}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("lineage:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if n := rs.lineage("e", 5); len(n) != 2 || n[1].known {
		t.Fatalf("unknown parent: %+v", n)
	}
	if n := rs.lineage("d", 1); n[len(n)-1].id != "a" || !strings.Contains(n[2].prefix, "└─") && !n[2].more {
		t.Fatalf("depth limit: %+v", n)
	}
}

func TestWideLayoutShowsDetailsBesideTheTable(t *testing.T) {
	fb := newFake(8, 5)
	h := newHarness(t, fb, 200, 60)
	h.playScript(len(fb.script), 50)
	if !h.m.dash.isWide() {
		t.Fatal("200×60 is not wide")
	}
	first := h.m.dash.details.id
	h.keys("j")
	if h.m.dash.details.id == first || h.m.dash.details.id != h.m.dash.table.selectedID {
		t.Fatalf("details do not follow the selection: %s vs %s", h.m.dash.details.id, h.m.dash.table.selectedID)
	}
	s := h.screen()
	for _, want := range []string{"Fitness", "Population", "Candidate " + h.m.dash.table.selectedID, "Log", "origin"} {
		if !strings.Contains(s, want) {
			t.Errorf("wide screen lacks %q", want)
		}
	}
	// tab visits the four panes.
	seen := map[pane]bool{}
	for range 4 {
		h.keys("tab")
		seen[h.m.dash.focus] = true
	}
	if len(seen) != 4 {
		t.Fatalf("tab visited %v", seen)
	}
}

func TestZoomShowsOnlyTheFocusedPane(t *testing.T) {
	fb := newFake(8, 5)
	h := newHarness(t, fb, 80, 24)
	h.playScript(len(fb.script), 50)
	h.keys("shift+tab") // table → chart
	if h.m.dash.focus != paneChart {
		t.Fatalf("focus %v", h.m.dash.focus)
	}
	h.keys("z")
	s := h.screen()
	if !strings.Contains(s, "Fitness") || strings.Contains(s, "Population") || strings.Contains(s, "─ Log") {
		t.Fatalf("zoomed chart:\n%s", s)
	}
	if strings.Count(s, "⠀")+strings.Count(s, "⣀")+strings.Count(s, "⠉") == 0 && !strings.ContainsAny(s, "⡀⢀⠁⠂⠄⠈⠐⠠⣿") {
		t.Errorf("no braille in the zoomed chart:\n%s", s)
	}
	h.keys("esc")
	if h.m.dash.zoom {
		t.Fatal("esc did not unzoom")
	}
}

func TestLogFollowWrapFilter(t *testing.T) {
	fb := newFake(8, 5)
	h := newHarness(t, fb, 80, 24)
	h.playScript(len(fb.script), 50)
	h.keys("tab") // table → log
	if h.m.dash.focus != paneLog {
		t.Fatalf("focus %v", h.m.dash.focus)
	}
	if !strings.Contains(h.screen(), "run finished (generations)") {
		t.Fatal("following log does not show the last line")
	}
	h.keys("k", "k", "k")
	if h.m.dash.log.follow {
		t.Fatal("scrolling up did not stop following")
	}
	h.keys("G")
	if !h.m.dash.log.follow {
		t.Fatal("G did not resume following")
	}
	h.keys("w")
	if !h.m.dash.log.wrap || !strings.Contains(h.screen(), "follow · wrap") {
		t.Fatal("wrap not shown")
	}
	h.keys("/")
	if !h.m.typing() {
		t.Fatal("filter input not focused")
	}
	h.typeText("crash")
	h.keys("enter")
	s := h.screen()
	if h.m.dash.log.filter != "crash" || !strings.Contains(s, "worker 2 restarted after a crash") || strings.Contains(s, "generation 1 done") {
		t.Fatalf("filter:\n%s", s)
	}
	// q typed in the filter is text, not quit.
	h.keys("/")
	h.typeText("q")
	if h.m.dash.log.input.Value() != "crashq" {
		t.Fatalf("filter input %q", h.m.dash.log.input.Value())
	}
	h.keys("esc")
	if h.m.dash.log.filter != "" || h.m.typing() {
		t.Fatal("esc did not clear the filter")
	}
}

func TestEveryScreenFitsEverySize(t *testing.T) {
	sizes := [][2]int{{80, 24}, {100, 30}, {120, 40}, {200, 60}, {60, 20}, {40, 8}}
	for _, sz := range sizes {
		fb := newFake(10, 4)
		h := newHarness(t, fb, sz[0], sz[1])
		check := func(what string) {
			t.Helper()
			s := h.m.render()
			checkGeometry(t, s, sz[0], sz[1])
			if t.Failed() {
				t.Fatalf("%v %s", sz, what)
			}
		}
		check("idle dashboard")
		h.playScript(len(fb.script)/2, 30)
		check("running dashboard")
		h.keys("enter")
		check("details")
		h.keys("esc", "z")
		check("zoom")
		h.keys("z", "f2")
		check("config")
		h.keys("f3")
		check("chat")
		h.keys("f10")
		check("help")
		h.keys("esc", "f1", "q")
		check("confirm quit")
	}
}

func TestStatusBarETAAndRate(t *testing.T) {
	rs := newRunState()
	rs.apply(evolve.RunStarted{Population: 10, Generations: 4, Budget: 40, Time: t0})
	for i := 1; i <= 10; i++ {
		rs.apply(evolve.CandidateScored{Candidate: evolve.CandidateInfo{ID: "c" + itoa(i)}, Status: evolve.StatusDone, Fitness: float64(i), Evaluation: i})
	}
	if got := rs.elapsed(t0.Add(2 * time.Minute)); got != 2*time.Minute {
		t.Fatalf("elapsed %v", got)
	}
	fb := newFake(2, 1)
	h := newHarness(t, fb, 160, 30)
	h.m.rs = rs
	s := h.screen()
	// 10 evaluations in 3 minutes (the pinned clock): 3.3/min, 30 to go at 18 s each.
	for _, want := range []string{"evals 10/40", "elapsed 3m00s", "ETA 9m00s", "3.3 eval/min", "best 10.0000", "GPU layers auto"} {
		if !strings.Contains(s, want) {
			t.Errorf("status bar lacks %q:\n%s", want, lineWith(s, "evals"))
		}
	}
}

// TestSkippedCandidatesGetAFinalStatus: candidates the spent budget left
// unevaluated show as skipped, not queued; the generation counts them as
// finished; they never become the best and sort with the failed.
func TestSkippedCandidatesGetAFinalStatus(t *testing.T) {
	fb := newFake(2, 1)
	h := newHarness(t, fb, 100, 30)
	infos := []evolve.CandidateInfo{
		{ID: "g0-c00", Technique: "ties", Summary: "ties w=[0.5 0.5]"},
		{ID: "g0-c01", Technique: "linear", Summary: "linear w=[0.2 0.8]"},
		{ID: "g0-c02", Technique: "dfs", Summary: "dfs w=[0.1 0.9]"},
	}
	why := "not evaluated: the evaluation budget of 1 is spent"
	h.send(eventsMsg{events: []evolve.Event{
		evolve.RunStarted{Optimizer: "ga", Population: 3, Generations: 1, Budget: 1, Time: t0},
		evolve.GenerationStarted{Generation: 0, Candidates: infos},
		evolve.CandidateScored{Candidate: infos[0], Scores: scoresFor(-2.5), Fitness: -2.5, Status: evolve.StatusDone, Evaluation: 1},
		evolve.CandidateScored{Candidate: infos[1], Status: evolve.StatusSkipped, Err: why, Evaluation: 1},
		evolve.CandidateScored{Candidate: infos[2], Status: evolve.StatusSkipped, Err: why, Evaluation: 1},
	}})
	rs := &h.m.rs
	if rs.bestID != "g0-c00" {
		t.Errorf("best is %s, want g0-c00 (skipped candidates have no fitness)", rs.bestID)
	}
	s := h.screen()
	for _, id := range []string{"g0-c01", "g0-c02"} {
		if l := lineWith(s, id); !strings.Contains(l, "skipped") || strings.Contains(l, "queued") || strings.Contains(l, "0.0000") {
			t.Errorf("row of %s: %q; want skipped, without a fitness", id, l)
		}
	}
	if !strings.Contains(s, "generation 0 · 3/3 done") {
		t.Errorf("the population pane does not count skipped candidates as finished:\n%s", s)
	}
	rows := rs.rows(false, true)
	if len(rows) != 3 || rows[0].info.ID != "g0-c00" {
		t.Errorf("sorted by fitness, the rows start with %s, want the scored g0-c00", rows[0].info.ID)
	}
}

// TestStatusBarNamesTheRunsDevice: once the run has started, the status
// bar shows where the engine found candidates are evaluated instead of the
// configuration's guess, and the log says it in full — as a warning when a
// GPU sits unused, with the reason.
func TestStatusBarNamesTheRunsDevice(t *testing.T) {
	dev := eval.NewPlacement(eval.Health{Threads: 16, GPULayers: -1,
		Devices:    []eval.Device{{Name: "CPU", Description: "AMD EPYC 7B13", Type: "cpu"}},
		SystemGPUs: []string{"NVIDIA H100 80GB HBM3"}}, eval.ModelInfo{Offloadable: 7}, 2)
	rs := newRunState()
	lines := rs.apply(evolve.RunStarted{Population: 10, Generations: 4, Budget: 40, Time: t0, Device: dev})
	if len(lines) != 2 || lines[1].level != "warn" || lines[1].text != "device: "+dev.String() ||
		!strings.Contains(lines[1].text, "GPU NVIDIA H100 80GB HBM3 present but unused: no GPU backend built") {
		t.Fatalf("log lines %+v: want the device, as a warning naming the unused GPU", lines)
	}
	h := newHarness(t, newFake(2, 1), 160, 30)
	h.m.rs = rs
	if s := h.screen(); !strings.Contains(lineWith(s, "evals"), "CPU · 16 threads · 2 workers · GPU unused") {
		t.Fatalf("status bar %q: want the run's device", lineWith(s, "evals"))
	}
}
