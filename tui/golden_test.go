package tui

import (
	"bytes"
	"context"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/colorprofile"
	"github.com/charmbracelet/x/exp/teatest/v2"
)

// Golden screens, rendered by a real program (teatest) driven by the
// scripted backend. The raw output stream depends on timing, so the golden
// is the final model's rendered view, converted to a pinned colour
// profile: NoTTY (plain text, readable in review) for the layouts, ANSI256
// for one screen so that colours are pinned too. Regenerate with
//
//	go test ./tui -run Golden -update

// goldenApp wraps the root model: once the run has finished (its result
// processed) and the backend's device is known, it presses keys, then
// quits.
type goldenApp struct {
	*model
	keys []string
	done bool
}

func (g *goldenApp) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	_, cmd := g.model.Update(msg)
	if !g.done && g.rs.phase == phaseFinished && g.run.cancel == nil && g.ctx.device != "" {
		g.done = true
		seq := make([]tea.Cmd, 0, len(g.keys)+1)
		for _, k := range g.keys {
			seq = append(seq, func() tea.Msg { return keyPress(k) })
		}
		seq = append(seq, tea.Quit)
		return g, tea.Batch(cmd, tea.Sequence(seq...))
	}
	return g, cmd
}

func runGolden(t *testing.T, w, h int, profile colorprofile.Profile, keys ...string) {
	t.Helper()
	fb := newFake(8, 5)
	// The clock stands just before the scripted run's start (it only
	// stamps the "starting" line: a finished run shows the engine's times).
	clock := func() time.Time { return t0.Add(-time.Second) }
	m := newModel(context.Background(), Options{Backend: fb, StartRun: true, Environ: []string{}, clock: clock})
	t.Cleanup(func() { m.stopRun(5 * time.Second) })
	app := &goldenApp{model: m, keys: keys}
	tm := teatest.NewTestModel(t, app, teatest.WithInitialTermSize(w, h),
		teatest.WithProgramOptions(tea.WithColorProfile(profile)))
	m.ctx.send.attach(tm.GetProgram().Send)
	final, ok := tm.FinalModel(t, teatest.WithFinalTimeout(15*time.Second)).(*goldenApp)
	if !ok {
		t.Fatal("final model is not the app")
	}
	screen := final.render()
	checkGeometry(t, screen, w, h)
	var buf bytes.Buffer
	cw := &colorprofile.Writer{Forward: &buf, Profile: profile}
	if _, err := cw.WriteString(screen); err != nil {
		t.Fatal(err)
	}
	teatest.RequireEqualOutput(t, buf.Bytes())
}

func TestGoldenDashboard80x24(t *testing.T) { runGolden(t, 80, 24, colorprofile.NoTTY) }

func TestGoldenDashboard200x60(t *testing.T) { runGolden(t, 200, 60, colorprofile.NoTTY) }

func TestGoldenDashboard100x30(t *testing.T) { runGolden(t, 100, 30, colorprofile.NoTTY) }

func TestGoldenDashboardColours80x24(t *testing.T) { runGolden(t, 80, 24, colorprofile.ANSI256) }

func TestGoldenDetails80x24(t *testing.T) {
	runGolden(t, 80, 24, colorprofile.NoTTY, "s", "g", "enter")
}

func TestGoldenHighContrastWide(t *testing.T) {
	runGolden(t, 200, 60, colorprofile.ANSI, "t", "t", "a", "s", "g")
}

func TestGoldenConfig80x24(t *testing.T) { runGolden(t, 80, 24, colorprofile.NoTTY, "2") }

func TestGoldenChat80x24(t *testing.T) { runGolden(t, 80, 24, colorprofile.NoTTY, "3", "esc") }

func TestGoldenHelp80x24(t *testing.T) { runGolden(t, 80, 24, colorprofile.NoTTY, "?") }
