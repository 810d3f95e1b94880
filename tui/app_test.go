package tui

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"

	"github.com/evomerge/evomerge/engine/evolve"
	"github.com/evomerge/evomerge/engine/export"
	"github.com/evomerge/evomerge/themes"
)

func TestRunStartsAndFinishesThroughTheRelay(t *testing.T) {
	fb := newFake(6, 3)
	h := newHarness(t, fb, 100, 30)
	h.keys("r")
	if !h.m.rs.phase.active() {
		t.Fatal("r did not start a run")
	}
	if !strings.Contains(h.screen(), "starting a tournament") {
		t.Fatalf("no starting line:\n%s", h.screen())
	}
	h.pump(func(m *model) bool { return m.rs.phase == phaseFinished && m.run.cancel == nil }, 5*time.Second)
	rs := &h.m.rs
	if len(rs.gens) != 3 || rs.result == nil || rs.result.BestModel != "out/best.gguf" {
		t.Fatalf("gens %d, result %+v", len(rs.gens), rs.result)
	}
	if fb.runs != 1 || len(fb.cfgs[0].Models) != 4 {
		t.Fatalf("backend runs %d, config %+v", fb.runs, fb.cfgs)
	}
	// Every candidate got its final status although progress was coalesced.
	for id, c := range rs.cands {
		if !c.scored {
			t.Errorf("%s not scored (status %s)", id, c.status)
		}
	}
	// A second run starts afresh.
	h.keys("r")
	h.pump(func(m *model) bool { return m.rs.phase == phaseFinished && m.run.cancel == nil }, 5*time.Second)
	if fb.runs != 2 || h.m.run.id != 2 || len(h.m.rs.gens) != 3 {
		t.Fatalf("second run: runs %d, id %d, gens %d", fb.runs, h.m.run.id, len(h.m.rs.gens))
	}
}

func TestRunErrorIsShown(t *testing.T) {
	fb := newFake(2, 1)
	fb.script = []evolve.Event{evolve.Finished{Reason: "error", Err: errors.New("models[1].path: open moby.gguf: no such file")}}
	fb.result, fb.runErr = nil, errors.New("models[1].path: open moby.gguf: no such file")
	h := newHarness(t, fb, 80, 24)
	h.keys("f5")
	h.pump(func(m *model) bool { return m.rs.phase == phaseFailed && m.run.cancel == nil }, 5*time.Second)
	s := h.screen()
	if !strings.Contains(s, "✗ failed") || !strings.Contains(s, "run failed (error): models[1].path") {
		t.Fatalf("failure not shown:\n%s", s)
	}
	if !logHas(h.m, "r/F5 starts a new run in a directory of its own; R/F4 resumes this one") {
		t.Error("a failed run does not say how to go on")
	}
}

func TestInvalidConfigurationOpensTheForm(t *testing.T) {
	fb := newFake(2, 1)
	h := newHarness(t, fb, 120, 30)
	h.m.ctx.cfg.Evolution.Population = 1
	h.keys("r")
	if h.m.rs.phase.active() || h.m.page != pageConfig || fb.runs != 0 {
		t.Fatalf("phase %v page %v runs %d", h.m.rs.phase, h.m.page, fb.runs)
	}
	if s := h.screen(); !strings.Contains(s, "evolution.population") {
		t.Fatalf("problem not shown:\n%s", s)
	}
}

func TestPauseAndResume(t *testing.T) {
	fb := newFake(6, 3)
	fb.delay = 3 * time.Millisecond
	h := newHarness(t, fb, 100, 30)
	h.keys("r")
	h.pump(func(m *model) bool { return m.rs.curGen >= 1 }, 5*time.Second)
	h.keys("p")
	h.pump(func(m *model) bool { return m.rs.paused }, 5*time.Second)
	if s := h.screen(); !strings.Contains(s, "‖ paused") {
		t.Fatalf("paused badge missing:\n%s", s)
	}
	// While paused nothing progresses.
	h.settle()
	n := h.m.rs.evaluations
	time.Sleep(100 * time.Millisecond)
	h.settle()
	if h.m.rs.evaluations != n {
		t.Fatalf("evaluations went on while paused: %d → %d", n, h.m.rs.evaluations)
	}
	if !logHas(h.m, "engine paused") {
		t.Error("no pause log line")
	}
	h.keys("f7")
	h.pump(func(m *model) bool { return m.rs.phase == phaseFinished }, 5*time.Second)
	if !logHas(h.m, "engine resumed") {
		t.Error("no resume log line")
	}
	// Pausing without a run says so.
	h.keys("p")
	if !strings.Contains(h.screen(), "no tournament is running") {
		t.Error("pause without a run is silent")
	}
}

func TestQuitAsksWhileRunning(t *testing.T) {
	fb := newFake(6, 50)
	fb.delay = 2 * time.Millisecond
	h := newHarness(t, fb, 80, 24)
	h.keys("r")
	h.pump(func(m *model) bool { return m.rs.phase == phaseRunning }, 5*time.Second)
	h.keys("q")
	if !h.m.confirmQuit || !strings.Contains(h.screen(), "A tournament is running.") {
		t.Fatalf("no confirmation:\n%s", h.screen())
	}
	h.keys("n")
	if h.m.confirmQuit || !h.m.rs.phase.active() {
		t.Fatal("n did not keep the run")
	}
	h.keys("ctrl+c")
	if !h.m.confirmQuit {
		t.Fatal("ctrl+c did not ask")
	}
	_, cmd := h.m.Update(keyPress("y"))
	if cmd == nil {
		t.Fatal("y did not quit")
	}
	if _, ok := cmd().(tea.QuitMsg); !ok {
		t.Fatal("y did not return tea.Quit")
	}
	// The run is cancelled; stopRun waits for the backend.
	h.m.stopRun(5 * time.Second)
	select {
	case <-fb.done:
	default:
		t.Fatal("backend still running after quit")
	}
}

func TestQuitWhenIdle(t *testing.T) {
	h := newHarness(t, newFake(2, 1), 80, 24)
	_, cmd := h.m.Update(keyPress("q"))
	if cmd == nil {
		t.Fatal("q did not quit")
	}
	if _, ok := cmd().(tea.QuitMsg); !ok {
		t.Fatal("q did not return tea.Quit")
	}
}

func TestThemesCycleAndNoColor(t *testing.T) {
	h := newHarness(t, newFake(4, 2), 80, 24)
	h.playScript(len(h.fb.script), 100)
	names := []string{h.m.ctx.theme.Name}
	for range 3 {
		h.keys("t")
		names = append(names, h.m.ctx.theme.Name)
	}
	if strings.Join(names, ",") != "dark,light,high-contrast,dark" {
		t.Fatalf("theme cycle %v", names)
	}
	if !strings.Contains(h.screen(), "theme: dark") {
		t.Error("no theme flash")
	}
	if s := h.m.render(); !strings.Contains(s, "\x1b[") {
		t.Error("coloured theme renders without escapes")
	}

	nc := newHarness(t, newFake(4, 2), 80, 24, func(o *Options) { o.Environ = []string{"NO_COLOR=1"} })
	nc.playScript(len(nc.fb.script), 100)
	s := nc.m.render()
	if !nc.m.ctx.theme.Mono {
		t.Fatal("NO_COLOR ignored")
	}
	if strings.Contains(s, "38;2;") || strings.Contains(s, "48;2;") || strings.Contains(s, "38;5;") {
		t.Fatalf("NO_COLOR screen has colours: %q", s[:200])
	}
	if !strings.Contains(s, "\x1b[7m") && !strings.Contains(s, ";7m") {
		t.Error("NO_COLOR selection is not in reverse video")
	}
	nc.keys("t")
	if !nc.m.ctx.theme.Mono || nc.m.ctx.theme.Name != themes.Light {
		t.Fatal("cycling dropped NO_COLOR")
	}
}

func TestThemeFromConfig(t *testing.T) {
	h := newHarness(t, newFake(2, 1), 80, 24, func(o *Options) {
		o.Config = defaultConfigWithTheme("high-contrast")
	})
	if h.m.ctx.theme.Name != themes.HighContrast {
		t.Fatalf("theme %s", h.m.ctx.theme.Name)
	}
}

func TestExportWritesHistoryRecipeAndScreen(t *testing.T) {
	dir := t.TempDir()
	fb := newFake(6, 3)
	for i, e := range fb.script {
		if rs, ok := e.(evolve.RunStarted); ok {
			rs.OutputDir = dir
			fb.script[i] = rs
		}
	}
	h := newHarness(t, fb, 100, 30)
	h.keys("e")
	if !strings.Contains(h.screen(), "nothing to export yet") {
		t.Fatal("empty export not refused")
	}
	h.playScript(len(fb.script), 40)
	h.keys("e")
	h.pump(func(m *model) bool { return strings.HasPrefix(m.status.msg, "exported") }, 5*time.Second)
	if !strings.Contains(h.m.status.msg, "exported 4 files to "+dir) {
		t.Fatalf("flash %q", h.m.status.msg)
	}

	f, err := os.Open(filepath.Join(dir, candidatesCSVFile))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rows, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 1+18 || rows[0][0] != "id" || !slices.Contains(rows[0], "ppl_sotu/validation") {
		t.Fatalf("csv: %d rows, header %v", len(rows), rows[0])
	}

	var recs []export.Candidate
	data, err := os.ReadFile(filepath.Join(dir, candidatesJSONFile))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, &recs); err != nil {
		t.Fatal(err)
	}
	var failed, withRecipe int
	for _, r := range recs {
		if r.Status == "failed" {
			failed++
			if r.Fitness != nil {
				t.Errorf("failed %s has a fitness", r.ID)
			}
		}
		if r.Recipe != "" {
			withRecipe++
		}
	}
	if len(recs) != 18 || failed != 1 || withRecipe != 18 {
		t.Fatalf("json: %d records, %d failed, %d with recipes", len(recs), failed, withRecipe)
	}

	best, err := os.ReadFile(filepath.Join(dir, "tui-best-recipe.toml"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(best), "# best candidate "+h.m.rs.bestID) || !strings.Contains(string(best), "method = ") {
		t.Fatalf("best recipe:\n%s", best)
	}
	screens, _ := filepath.Glob(filepath.Join(dir, "tui-screen-*.txt"))
	if len(screens) != 1 {
		t.Fatalf("screens %v", screens)
	}
	shot, _ := os.ReadFile(screens[0])
	if !strings.Contains(string(shot), "Population") || strings.Contains(string(shot), "\x1b[") {
		t.Fatalf("screen snapshot:\n%s", shot)
	}
	if leftovers, _ := filepath.Glob(filepath.Join(dir, ".*tmp*")); len(leftovers) > 0 {
		t.Fatalf("temporary files left: %v", leftovers)
	}
}

func TestRunEntryPointQuitsAndStopsTheRun(t *testing.T) {
	fb := newFake(6, 200)
	fb.delay = time.Millisecond
	in, inW := ioPipe()
	var out strings.Builder
	errc := make(chan error, 1)
	go func() {
		errc <- Run(context.Background(), Options{Backend: fb, StartRun: true, Input: in, Output: &syncWriter{w: &out},
			Environ: []string{"TERM=dumb"}, Width: 80, Height: 24})
	}()
	for deadline := time.Now().Add(10 * time.Second); fb.runCount() == 0; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the run did not start")
		}
	}
	time.Sleep(50 * time.Millisecond)
	inW.Write([]byte("q"))
	time.Sleep(100 * time.Millisecond)
	inW.Write([]byte("y"))
	select {
	case err := <-errc:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return")
	}
	select {
	case <-fb.done:
	default:
		t.Fatal("backend still running after Run returned")
	}
	if fb.runCount() != 1 {
		t.Fatalf("runs %d", fb.runCount())
	}
}

// TestRunEntryPointReportsAFailedRun: a run that fails (here: no
// evaluation worker could start) shows its reason on screen, and when the
// user quits, Run returns that reason, so the process exits non-zero.
func TestRunEntryPointReportsAFailedRun(t *testing.T) {
	why := errors.New("no evaluation worker could be started (3 attempts); out of memory")
	fb := newFake(2, 1)
	fb.script = []evolve.Event{fb.script[0], evolve.Finished{Reason: "error", Err: why}}
	fb.result, fb.runErr = nil, why
	in, inW := ioPipe()
	var out strings.Builder
	errc := make(chan error, 1)
	go func() {
		errc <- Run(context.Background(), Options{Backend: fb, StartRun: true, Input: in, Output: &syncWriter{w: &out},
			Environ: []string{"TERM=dumb"}, Width: 120, Height: 30})
	}()
	select {
	case <-fb.done:
	case <-time.After(10 * time.Second):
		t.Fatal("the run did not end")
	}
	time.Sleep(200 * time.Millisecond) // the failure reaches the screen
	inW.Write([]byte("q"))
	select {
	case err := <-errc:
		if !errors.Is(err, why) {
			t.Fatalf("Run returned %v, want the run's failure", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return")
	}
}
