package evolve

import (
	"bytes"
	"context"
	"errors"
	"hash/fnv"
	"math"
	"path/filepath"
	"slices"
	"sync"
	"testing"

	"github.com/evomerge/evomerge/engine/config"
	"github.com/evomerge/evomerge/engine/merge"
)

func TestWindowPlan(t *testing.T) {
	avail := map[string]int{"bible": 40, "moby": 25}
	p, _, err := newWindowPlan(42, avail, 6, 8)
	if err != nil {
		t.Fatal(err)
	}
	for name, n := range avail {
		all := append(slices.Clone(p.pick[name]), p.pool[name]...)
		slices.Sort(all)
		if len(p.pick[name]) != 8 || len(all) != n || slices.Compact(all)[n-1] != n-1 || all[0] != 0 {
			t.Errorf("%s: pick %v and pool %v do not split 0..%d", name, p.pick[name], p.pool[name], n-1)
		}
	}
	again, _, _ := newWindowPlan(42, avail, 6, 8)
	other, _, _ := newWindowPlan(43, avail, 6, 8)
	if windowsKey(again.pick) != windowsKey(p.pick) || windowsKey(again.generation(3)) != windowsKey(p.generation(3)) {
		t.Error("the same seed divides the windows differently")
	}
	if windowsKey(other.pick) == windowsKey(p.pick) {
		t.Error("another seed holds back the same windows")
	}
	seen := map[string]bool{}
	for gen := range 5 {
		w := p.generation(gen)
		seen[windowsKey(w)] = true
		for name, ws := range w {
			if len(ws) != 6 || !slices.IsSorted(ws) || len(slices.Compact(slices.Clone(ws))) != 6 {
				t.Errorf("generation %d %s: %v, want 6 distinct sorted windows", gen, name, ws)
			}
			for _, x := range ws {
				if !slices.Contains(p.pool[name], x) {
					t.Errorf("generation %d %s: window %d is not in the selection pool", gen, name, x)
				}
			}
		}
	}
	if len(seen) != 5 {
		t.Errorf("5 generations drew %d distinct window sets", len(seen))
	}
	// Short texts: a third held back, the rest drawn from (all of it when
	// smaller than chunks); a text of 2 windows holds none back, and the
	// final pick is then skipped.
	for _, c := range []struct{ n, pick, pool int }{{12, 5, 7}, {10, 3, 7}, {8, 2, 6}, {2, 0, 2}} {
		small, notes, err := newWindowPlan(1, map[string]int{"x": c.n}, 6, 5)
		if err != nil {
			t.Fatal(err)
		}
		if len(small.pick["x"]) != c.pick || len(small.pool["x"]) != c.pool || len(small.generation(0)["x"]) != min(6, c.pool) {
			t.Errorf("%d windows: %d held back, pool %d, generation %d; want %d, %d, %d", c.n, len(small.pick["x"]), len(small.pool["x"]),
				len(small.generation(0)["x"]), c.pick, c.pool, min(6, c.pool))
		}
		if (len(notes) > 0) != (c.n < 11) || small.canPick() != (c.pick > 0) {
			t.Errorf("%d windows: notes %q, canPick %v", c.n, notes, small.canPick())
		}
	}
	if _, _, err := newWindowPlan(1, map[string]int{"x": 0}, 6, 8); err == nil {
		t.Error("a text without windows was accepted")
	}
}

// windowLandscape scores a recipe per window: the landscape's loss plus a
// per-recipe, per-window deviation of ±0.3 (the luck of a recipe on a
// window), so a fitness on few fixed windows can be fitted. calls notes
// every window set asked for.
type windowLandscape struct {
	mu    sync.Mutex
	calls []map[string][]int
	// fixed, when set, are the windows scored when none are asked for
	// (a run that does not rotate them: the first chunks).
	fixed map[string][]int
}

func (l *windowLandscape) nll(r *merge.Recipe, text string, w int) float64 {
	s, _ := landscape(context.Background(), r)
	enc, _ := r.Encode()
	if len(r.Models) > 0 {
		// The luck of a recipe, not of the test's temporary directory.
		enc = bytes.ReplaceAll(enc, []byte(filepath.Dir(r.Models[0].Model)), nil)
	}
	h := fnv.New64a()
	h.Write(enc)
	h.Write([]byte{byte(w), byte(w >> 8)})
	h.Write([]byte(text))
	return s.MeanLogPPL + 0.6*(float64(h.Sum64()%1000)/1000-0.5)
}

func (l *windowLandscape) score(_ context.Context, r *merge.Recipe, windows map[string][]int) (Scores, error) {
	l.mu.Lock()
	l.calls = append(l.calls, windows)
	l.mu.Unlock()
	if windows == nil {
		windows = l.fixed
	}
	if windows == nil {
		return Scores{}, errors.New("no windows asked for")
	}
	s := Scores{Perplexity: map[string]float64{}}
	for text, ws := range windows {
		var sum float64
		for _, w := range ws {
			sum += l.nll(r, text, w)
		}
		s.Perplexity[text] = math.Exp(sum / float64(len(ws)))
		s.MeanLogPPL += sum / float64(len(ws)) / float64(len(windows))
	}
	return s, nil
}

// TestRotatedWindowsSearch: with rotate_windows every candidate is scored
// on its generation's windows, drawn from the selection pool and recorded
// in history.jsonl; the best is picked among the finalists on the
// held-back windows; a resumed run reaches the same pick.
func TestRotatedWindowsSearch(t *testing.T) {
	cfg := testConfig(t)
	cfg.Merge.Techniques = []string{"linear", "ties"}
	cfg.Evolution.Population = 8
	cfg.Evolution.Generations = 5
	cfg.Evolution.Patience = 0
	cfg.Evaluation.RotateWindows = true
	cfg.Evaluation.Chunks = 4
	cfg.Evaluation.PickWindows = 10
	cfg.Evaluation.Finalists = 3
	avail := map[string]int{"bible": 50, "moby": 45, "sotu": 40}
	l := &windowLandscape{}
	res, err := SearchWindows(context.Background(), cfg, Options{Windows: avail}, l.score)
	if err != nil {
		t.Fatal(err)
	}
	plan, _, _ := newWindowPlan(cfg.Evolution.Seed, avail, 4, 10)
	recs, err := replayHistory(cfg.Output.Dir)
	if err != nil {
		t.Fatal(err)
	}
	gens := map[int]bool{}
	for _, r := range recs {
		if r.Status == StatusFailed && r.Windows == nil {
			continue
		}
		if want := plan.generation(r.Generation); windowsKey(r.Windows) != windowsKey(want) {
			t.Errorf("%s: scored on %v, want generation %d's %v", r.ID, r.Windows, r.Generation, want)
		}
		gens[r.Generation] = true
	}
	if len(gens) != 5 {
		t.Errorf("records of %d generations, want 5", len(gens))
	}
	if windowsKey(res.PickWindows) != windowsKey(plan.pick) {
		t.Errorf("pick windows %v, want %v", res.PickWindows, plan.pick)
	}
	pickCalls := 0
	for _, c := range l.calls {
		if windowsKey(c) == windowsKey(plan.pick) {
			pickCalls++
		}
	}
	if len(res.Finalists) == 0 || len(res.Finalists) > 3 || pickCalls != len(res.Finalists) {
		t.Fatalf("%d finalists, %d scored on the held-back windows; want 1–3, all", len(res.Finalists), pickCalls)
	}
	best := res.Finalists[0]
	for _, f := range res.Finalists {
		if f.PickFitness > best.PickFitness {
			best = f
		}
	}
	if res.Best.Key != best.Key {
		t.Errorf("best %s, but finalist %s scored best on the held-back windows", res.Best.ID, best.ID)
	}

	// Interrupted after generation 2 and resumed: the same pick.
	resumed := resumedAfter(t, cfg, avail, 2)
	if resumed.Best.Key != res.Best.Key || len(resumed.Finalists) != len(res.Finalists) || resumed.Evaluations != res.Evaluations {
		t.Errorf("resumed: best %s of %d finalists after %d evaluations; uninterrupted %s of %d after %d",
			resumed.Best.ID, len(resumed.Finalists), resumed.Evaluations, res.Best.ID, len(res.Finalists), res.Evaluations)
	}
}

// TestRotatedWindowsHonest: on a landscape where every recipe has its own
// luck on each window (±0.3 around its true loss), a search scoring 4
// fixed windows per text reports a best fitness flattered by the luck it
// selected for; with rotated windows and the final pick on held-back
// windows, the winner's pick fitness is close to its true loss (seeds
// 1–6, the same evaluation budget). The true losses of the two winners are
// logged.
func TestRotatedWindowsHonest(t *testing.T) {
	avail := map[string]int{"bible": 60, "moby": 60, "sotu": 60}
	trueLoss := func(res *Result) float64 {
		r, err := merge.ParseRecipe(res.Best.Recipe)
		if err != nil {
			t.Fatal(err)
		}
		s, _ := landscape(context.Background(), r)
		return s.MeanLogPPL
	}
	var fixedLoss, rotatedLoss, fixedOptimism, rotatedOptimism []float64
	for seed := uint64(1); seed <= 6; seed++ {
		cfg := testConfig(t)
		cfg.Merge.Techniques = []string{"linear", "ties"}
		cfg.Evolution.Population = 10
		cfg.Evolution.Generations = 8
		cfg.Evolution.Patience = 0
		cfg.Evolution.Seed = seed
		cfg.Evaluation.Chunks = 4
		first := map[string][]int{}
		for name := range avail {
			first[name] = []int{0, 1, 2, 3}
		}
		res, err := SearchWindows(context.Background(), cfg, Options{Windows: avail}, (&windowLandscape{fixed: first}).score)
		if err != nil {
			t.Fatal(err)
		}
		l := trueLoss(res)
		fixedLoss, fixedOptimism = append(fixedLoss, l), append(fixedOptimism, l+res.BestFitness)
		cfg.Output.Dir += "-rotated"
		cfg.Evaluation.RotateWindows = true
		res, err = SearchWindows(context.Background(), cfg, Options{Windows: avail}, (&windowLandscape{}).score)
		if err != nil {
			t.Fatal(err)
		}
		var pick float64
		for _, f := range res.Finalists {
			if f.Key == res.Best.Key {
				pick = f.PickFitness
			}
		}
		l = trueLoss(res)
		rotatedLoss, rotatedOptimism = append(rotatedLoss, l), append(rotatedOptimism, l+pick)
	}
	t.Logf("over seeds 1-6: fixed windows: true loss %.4f, reported better by %.4f; rotated with a held-back pick: true loss %.4f, reported better by %.4f",
		mean(fixedLoss), mean(fixedOptimism), mean(rotatedLoss), mean(rotatedOptimism))
	if mean(fixedOptimism) < 0.05 || math.Abs(mean(rotatedOptimism)) > mean(fixedOptimism)/2 {
		t.Errorf("reported fitness flattered by %.4f with fixed windows and %.4f with the held-back pick", mean(fixedOptimism), mean(rotatedOptimism))
	}
}

// resumedAfter runs cfg's windowed search on the per-window landscape
// until generation gen is done, cancels it there, resumes it and returns
// the resumed run's result.
func resumedAfter(t *testing.T, cfg config.Config, avail map[string]int, gen int) *Result {
	t.Helper()
	cfg.Output.Dir += "-resumed"
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	_, err := SearchWindows(ctx, cfg, Options{Windows: avail, Sink: func(e Event) {
		if d, ok := e.(GenerationDone); ok && d.Generation == gen {
			cancel()
		}
	}}, (&windowLandscape{}).score)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("interrupted run: %v", err)
	}
	res, err := SearchWindows(context.Background(), cfg, Options{Windows: avail, Resume: true}, (&windowLandscape{}).score)
	if err != nil {
		t.Fatal(err)
	}
	return res
}
