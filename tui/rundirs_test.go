package tui

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestWorkbenchRunsGetDirectoriesOfTheirOwn: every run started in the
// workbench writes to a new directory under the output directory, named
// for its start as `make run` names runs, so a second run after a finished
// one never meets the first one's history; a run started by --run writes
// to the output directory as given.
func TestWorkbenchRunsGetDirectoriesOfTheirOwn(t *testing.T) {
	for _, tt := range []struct {
		name     string
		startRun bool
		want     []string
	}{
		{"workbench", false, []string{"runs/run-20260314-092953", "runs/run-20260314-092953-2", "runs/run-20260314-092953-3"}},
		{"--run", true, []string{"runs", "runs/run-20260314-092953", "runs/run-20260314-092953-2"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			fb := newFake(2, 1)
			h := newHarness(t, fb, 100, 30, func(o *Options) { o.StartRun = tt.startRun })
			h.m.ctx.cfg.Output.Dir = "runs"
			if tt.startRun {
				h.send(startRunMsg{})
			} else {
				h.keys("r")
			}
			h.pump(func(m *model) bool { return m.rs.phase == phaseFinished && m.run.cancel == nil }, 5*time.Second)
			h.keys("r")
			h.pump(func(m *model) bool { return m.rs.phase == phaseFinished && m.run.cancel == nil && fb.runCount() == 2 }, 5*time.Second)
			h.keys("r")
			h.pump(func(m *model) bool { return m.rs.phase == phaseFinished && m.run.cancel == nil && fb.runCount() == 3 }, 5*time.Second)
			var dirs []string
			for _, c := range fb.cfgs {
				dirs = append(dirs, c.Output.Dir)
			}
			if strings.Join(dirs, " ") != strings.Join(tt.want, " ") {
				t.Fatalf("runs wrote to %v, want %v", dirs, tt.want)
			}
			if h.m.ctx.cfg.Output.Dir != "runs" {
				t.Errorf("the configuration's output directory became %q", h.m.ctx.cfg.Output.Dir)
			}
		})
	}
}

// TestResumeFromTheWorkbench: R resumes the run the dashboard shows —
// interrupted or finished — from its own directory and configuration
// (the hardware and a larger generation count taken from the workbench);
// before any run in the session, the newest run under the output
// directory; with none, it says so.
func TestResumeFromTheWorkbench(t *testing.T) {
	dir := t.TempDir()
	fb := newFake(2, 1)
	fb.writeConfig = true
	h := newHarness(t, fb, 100, 30)
	h.m.ctx.cfg.Output.Dir = dir

	h.keys("R")
	h.pump(func(m *model) bool { return m.status.msg != "" && !strings.Contains(m.status.msg, "looking") }, 5*time.Second)
	if !strings.Contains(h.m.status.msg, "no run to resume") || !strings.Contains(h.m.status.msg, dir) || fb.runCount() != 0 {
		t.Fatalf("R without a run: status %q, %d runs", h.m.status.msg, fb.runCount())
	}

	h.keys("r")
	h.pump(func(m *model) bool { return m.rs.phase == phaseFinished && m.run.cancel == nil }, 5*time.Second)
	first := fb.cfgs[0]
	h.m.ctx.cfg.Evolution.Generations = first.Evolution.Generations + 5
	h.m.ctx.cfg.Evolution.Population = first.Evolution.Population + 2 // not the run's: ignored
	h.m.ctx.cfg.Hardware.Threads = 3
	h.keys("R")
	h.pump(func(m *model) bool { return m.rs.phase == phaseFinished && m.run.cancel == nil && fb.runCount() == 2 }, 5*time.Second)
	got, resumed := fb.cfgs[1], fb.resumed[1]
	if !resumed || got.Output.Dir != first.Output.Dir {
		t.Fatalf("R ran %s (resume %v), want a resume of %s", got.Output.Dir, resumed, first.Output.Dir)
	}
	if got.Evolution.Generations != first.Evolution.Generations+5 || got.Evolution.Population != first.Evolution.Population || got.Hardware.Threads != 3 {
		t.Errorf("resumed with generations %d, population %d, threads %d; want %d, %d (the run's), 3",
			got.Evolution.Generations, got.Evolution.Population, got.Hardware.Threads, first.Evolution.Generations+5, first.Evolution.Population)
	}
	if !logHas(h.m, "resuming "+first.Output.Dir) {
		t.Error("no log line says which run is resumed")
	}

	// A new session finds the newest run under the output directory.
	older := filepath.Join(dir, "run-20260101-000000")
	if err := os.MkdirAll(older, 0o755); err != nil {
		t.Fatal(err)
	}
	raw, _ := first.Encode()
	os.WriteFile(filepath.Join(older, "config.toml"), raw, 0o644)
	fb2 := newFake(2, 1)
	h2 := newHarness(t, fb2, 100, 30)
	h2.m.ctx.cfg.Output.Dir = dir
	h2.keys("R")
	h2.pump(func(m *model) bool { return m.rs.phase == phaseFinished && m.run.cancel == nil && fb2.runCount() == 1 }, 5*time.Second)
	if fb2.cfgs[0].Output.Dir != first.Output.Dir || !fb2.resumed[0] {
		t.Fatalf("a new session resumed %s (resume %v), want the newest run %s", fb2.cfgs[0].Output.Dir, fb2.resumed[0], first.Output.Dir)
	}

	// A run whose configuration no longer loads says why.
	os.WriteFile(filepath.Join(first.Output.Dir, "config.toml"), []byte("[evolution]\npopulation = -1\n"), 0o644)
	h2.keys("R")
	h2.pump(func(m *model) bool { return m.status.isErr }, 5*time.Second)
	if !strings.Contains(h2.m.status.msg, "evolution.population") || fb2.runCount() != 1 {
		t.Errorf("a run whose config.toml is invalid: status %q, %d runs", h2.m.status.msg, fb2.runCount())
	}
}
