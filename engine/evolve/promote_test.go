package evolve

import (
	"context"
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/evomerge/evomerge/engine/merge"
)

func TestPromotedSizes(t *testing.T) {
	for _, c := range []struct {
		n, promotions int
		want          []int
		cost          int
	}{
		{10, 0, nil, 10},
		{10, 1, []int{4}, 14},
		{10, 2, []int{4, 2}, 16},
		{10, 3, []int{4, 2, 1}, 17},
		{12, 2, []int{4, 2}, 18},
		{1, 2, []int{1, 1}, 3},
	} {
		if got := promotedSizes(c.n, c.promotions); !slices.Equal(got, c.want) {
			t.Errorf("promotedSizes(%d, %d) = %v, want %v", c.n, c.promotions, got, c.want)
		}
		if got := generationCost(c.n, c.promotions); got != c.cost {
			t.Errorf("generationCost(%d, %d) = %d, want %d", c.n, c.promotions, got, c.cost)
		}
	}
}

// TestPlanRungs: a generation's promotions draw windows from its selection
// pool that no earlier rung of the generation used, chunks·2^(r−1) at rung
// r, the same for the same seed; none once the pool is exhausted.
func TestPlanRungs(t *testing.T) {
	avail := map[string]int{"bible": 60, "moby": 40}
	p, _, err := newWindowPlan(7, avail, 4, 8)
	if err != nil {
		t.Fatal(err)
	}
	for gen := range 3 {
		seen := map[string][]int{}
		for r := range 4 {
			w := p.rung(gen, r)
			want := 4
			if r > 1 {
				want = 4 << (r - 1)
			}
			for name, ws := range w {
				if len(ws) != want || !slices.IsSorted(ws) {
					t.Errorf("generation %d rung %d %s: %v, want %d sorted windows", gen, r, name, ws, want)
				}
				for _, x := range ws {
					if slices.Contains(seen[name], x) || !slices.Contains(p.pool[name], x) {
						t.Errorf("generation %d rung %d %s: window %d reused or not in the pool", gen, r, name, x)
					}
				}
				seen[name] = append(seen[name], ws...)
			}
		}
		if windowsKey(p.rung(gen, 0)) != windowsKey(p.generation(gen)) {
			t.Errorf("generation %d: rung 0 is not the generation's windows", gen)
		}
	}
	again, _, _ := newWindowPlan(7, avail, 4, 8)
	if windowsKey(again.rung(2, 2)) != windowsKey(p.rung(2, 2)) {
		t.Error("the same seed draws other promotion windows")
	}
	// moby's pool holds 32 windows: rung 3 needs windows 16..31, rung 4 none.
	if p.rung(0, 3) == nil || p.rung(0, 4) != nil {
		t.Errorf("rung 3: %v, rung 4: %v; want windows, then none", p.rung(0, 3), p.rung(0, 4))
	}
}

// TestPooledScores: a candidate's scores over two rungs are, per text, the
// perplexity of all its windows (each window scores as many tokens).
func TestPooledScores(t *testing.T) {
	w0 := map[string][]int{"a": {1, 2}, "b": {3, 4}}
	w1 := map[string][]int{"a": {5, 6, 7, 8}, "b": {9, 10}}
	var p pooled
	p.add(Scores{Perplexity: map[string]float64{"a": 100, "b": 200}, Coherence: 0.5}, w0)
	p.add(Scores{Perplexity: map[string]float64{"a": 50, "b": 400}, Coherence: 0.5}, w1)
	wantA := math.Exp((2*math.Log(100) + 4*math.Log(50)) / 6)
	wantB := math.Exp((2*math.Log(200) + 2*math.Log(400)) / 4)
	if math.Abs(p.scores.Perplexity["a"]-wantA) > 1e-9 || math.Abs(p.scores.Perplexity["b"]-wantB) > 1e-9 {
		t.Errorf("pooled perplexity a %v b %v, want %v %v", p.scores.Perplexity["a"], p.scores.Perplexity["b"], wantA, wantB)
	}
	if want := (math.Log(wantA) + math.Log(wantB)) / 2; math.Abs(p.scores.MeanLogPPL-want) > 1e-12 {
		t.Errorf("mean log ppl %v, want %v", p.scores.MeanLogPPL, want)
	}
	if p.counts["a"] != 6 || p.counts["b"] != 4 || p.scores.Coherence != 0.5 {
		t.Errorf("counts %v, coherence %v", p.counts, p.scores.Coherence)
	}
}

// TestPromotionSearch: with promotions = 2 each generation's best third is
// scored on fresh windows, then the best third of those on more; the
// history records every rung with its windows; each generation's leader
// passed both promotions and its fitness is the one over all its windows;
// the budget counts the promotions; a resumed run reaches the same result.
func TestPromotionSearch(t *testing.T) {
	avail := map[string]int{"bible": 60, "moby": 60, "sotu": 60}
	cfg := testConfig(t)
	cfg.Merge.Techniques = []string{"linear", "ties"}
	cfg.Evolution.Population = 9
	cfg.Evolution.Generations = 4
	cfg.Evolution.Patience = 1 // rotated windows: nothing stalls
	cfg.Evaluation.Chunks = 4
	cfg.Evaluation.RotateWindows = true
	cfg.Evaluation.PickWindows = 8
	cfg.Evaluation.Promotions = 2
	land := &windowLandscape{}
	var leaders []GenerationDone
	res, err := SearchWindows(context.Background(), cfg, Options{Windows: avail, Sink: func(e Event) {
		if d, ok := e.(GenerationDone); ok {
			leaders = append(leaders, d)
		}
	}}, land.score)
	if err != nil {
		t.Fatal(err)
	}
	if res.Generations != 4 {
		t.Fatalf("%d generations (stopped by %s), want 4: promotions neither stall nor overspend", res.Generations, res.Reason)
	}
	if want := 4 * (9 + 3 + 1); res.Evaluations > want {
		t.Errorf("%d evaluations, more than the budget %d", res.Evaluations, want)
	}
	recs := readHistory(t, cfg.Output.Dir)
	byID := map[string]Record{}
	for _, r := range recs {
		byID[r.ID] = r
	}
	for _, d := range leaders {
		lead := d.BestID
		r1, ok1 := byID[lead+"^1"]
		r2, ok2 := byID[lead+"^2"]
		r0, ok0 := byID[lead]
		if !ok0 || !ok1 || !ok2 {
			t.Errorf("generation %d: leader %s has no record of both promotions", d.Generation, lead)
			continue
		}
		for name, w := range r2.Windows {
			if len(w) != 8 || len(r1.Windows[name]) != 4 || len(r0.Windows[name]) != 4 {
				t.Errorf("%s %s: %d, %d and %d windows at rungs 0-2, want 4, 4, 8", lead, name, len(r0.Windows[name]), len(r1.Windows[name]), len(w))
			}
		}
		var p pooled
		for _, r := range []Record{r0, r1, r2} {
			p.add(r.Scores, r.Windows)
		}
		if math.Abs(-p.scores.MeanLogPPL-d.Best) > 1e-9 {
			t.Errorf("generation %d: leader's fitness %v, want %v over its 16 windows per text", d.Generation, d.Best, -p.scores.MeanLogPPL)
		}
	}
	promotions := 0
	for _, r := range recs {
		if strings.Contains(r.ID, "^") {
			promotions++
		}
	}
	if promotions != 4*(3+1) {
		t.Errorf("%d promotion records, want %d", promotions, 4*(3+1))
	}

	// Interrupted after generation 1 and resumed: the same outcome.
	resumed := resumedAfter(t, cfg, avail, 1)
	if resumed.Best.Recipe != res.Best.Recipe || resumed.Evaluations != res.Evaluations {
		t.Errorf("resumed: best %s after %d evaluations; uninterrupted %s after %d", resumed.Best.ID, resumed.Evaluations, res.Best.ID, res.Evaluations)
	}
}

// TestPromotionHonest: on the landscape with per-window luck, at the same
// evaluation budget, a generation leader promoted twice is reported
// closer to its true loss than one chosen on its generation's windows
// alone — flattered by at most three quarters as much (0.028 against
// 0.050 on seeds 1–6; the true losses are logged: on this landscape, where
// every linear recipe ties, the fewer generations promotion leaves cost
// about as much as the surer choice gains).
func TestPromotionHonest(t *testing.T) {
	avail := map[string]int{"bible": 80, "moby": 80, "sotu": 80}
	trueLoss := func(recipe string) float64 {
		r, err := merge.ParseRecipe(recipe)
		if err != nil {
			t.Fatal(err)
		}
		s, _ := landscape(context.Background(), r)
		return s.MeanLogPPL
	}
	var plain, promoted, plainLuck, promotedLuck []float64
	for seed := uint64(1); seed <= 6; seed++ {
		for _, promotions := range []int{0, 2} {
			cfg := testConfig(t)
			cfg.Output.Dir += "-" + string(rune('0'+promotions))
			cfg.Merge.Techniques = []string{"linear", "ties"}
			cfg.Evolution.Population = 9
			cfg.Evolution.Patience = 0
			cfg.Evolution.Seed = seed
			cfg.Evolution.MaxEvaluations = 104
			cfg.Evolution.Generations = 104 / generationCost(9, promotions)
			cfg.Evaluation.Chunks = 4
			cfg.Evaluation.RotateWindows = true
			cfg.Evaluation.PickWindows = 8
			cfg.Evaluation.Promotions = promotions
			var lastID string
			var lastFit float64
			res, err := SearchWindows(context.Background(), cfg, Options{Windows: avail, Sink: func(e Event) {
				if d, ok := e.(GenerationDone); ok && d.BestID != "" {
					lastID, lastFit = d.BestID, d.Best
				}
			}}, (&windowLandscape{}).score)
			if err != nil {
				t.Fatal(err)
			}
			var leader Record
			for _, r := range readHistory(t, cfg.Output.Dir) {
				if r.ID == lastID {
					leader = r
				}
			}
			l := trueLoss(res.Best.Recipe)
			// How much the last leader's reported fitness flatters it.
			flattery := lastFit + trueLoss(leader.Recipe)
			if promotions == 0 {
				plain, plainLuck = append(plain, l), append(plainLuck, flattery)
			} else {
				promoted, promotedLuck = append(promoted, l), append(promotedLuck, flattery)
			}
		}
	}
	t.Logf("seeds 1-6: true loss %.4f without promotion, %.4f with 2; the last leader's fitness flatters it by %.4f and %.4f",
		mean(plain), mean(promoted), mean(plainLuck), mean(promotedLuck))
	if mean(promotedLuck) > 0.75*mean(plainLuck) {
		t.Errorf("the promoted leader's fitness flatters it by %.4f, the plain one's by %.4f", mean(promotedLuck), mean(plainLuck))
	}
}
