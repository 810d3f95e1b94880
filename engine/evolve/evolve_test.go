package evolve

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"testing"

	"github.com/evomerge/evomerge/engine/config"
	"github.com/evomerge/evomerge/engine/gguf"
	"github.com/evomerge/evomerge/engine/gguf/synth"
	"github.com/evomerge/evomerge/engine/merge"
)

// testConfig is a configuration over four synthetic models: three sources
// and a base, 6 layers each.
func testConfig(t testing.TB) config.Config {
	t.Helper()
	dir := t.TempDir()
	cfg := config.Default()
	cfg.Models = nil
	for i, name := range []string{"a", "b", "c", "base"} {
		p := filepath.Join(dir, name+".gguf")
		if err := (synth.Model{Layers: 6, Type: gguf.TypeF16, Seed: uint64(i + 1)}).Write(p, name); err != nil {
			t.Fatal(err)
		}
		cfg.Models = append(cfg.Models, config.Model{Name: name, Path: p})
	}
	cfg.Merge.Base = "base"
	cfg.Output.Dir = filepath.Join(dir, "out")
	// The search's own tests: fixed windows and a weight gene per layer
	// group (rotated windows and kinds have tests of their own).
	cfg.Evaluation.RotateWindows = false
	cfg.Merge.WeightGenes = "groups"
	// The GA over every technique, CMA-ES and ES on ties: the landscape
	// below has its optimum in ties (ES on task arithmetic, make run's
	// default, is measured on the zoo, not here).
	cfg.Evolution.Optimizer, cfg.Evolution.Generations, cfg.Evolution.CMAESTechnique = "ga", 8, "ties"
	return cfg
}

// target is the landscape's optimum: a ties merge with these weights per
// source, density 0.5 and λ 1.1.
var target = []float64{0.8, 0.3, 0.6}

// landscape scores a recipe by its distance from the target, so the search
// itself can be tested without llama.cpp. Other techniques sit on a
// plateau a little worse than a mediocre ties recipe.
func landscape(_ context.Context, r *merge.Recipe) (Scores, error) {
	loss := 1.0
	if r.Method == "ties" {
		loss = 0
		for i, m := range r.Models {
			for l := range 6 {
				name := "blk.0.attn_q.weight"
				w, _ := m.Params["weight"].At(name, l, 6)
				d, _ := m.Params["density"].At(name, l, 6)
				loss += (w-target[i])*(w-target[i]) + (d-0.5)*(d-0.5)
			}
		}
		lam, _ := r.Params["lambda"].At("x", -1, 6)
		loss = loss/36 + (lam-1.1)*(lam-1.1)
	}
	return Scores{MeanLogPPL: 2 + loss, Perplexity: map[string]float64{"synthetic": math.Exp(2 + loss)}}, nil
}

func runSynthetic(t testing.TB, cfg config.Config, opt Options) *Result {
	t.Helper()
	res, err := Search(context.Background(), cfg, opt, landscape)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// TestSearchBeatsRandom: with the same evaluation budget and seeds (1–10), GA and
// CMA-ES find better recipes than random search.
func TestSearchBeatsRandom(t *testing.T) {
	base := testConfig(t)
	base.Merge.Techniques = []string{"linear", "ties", "task_arithmetic", "dfs"}
	base.Evolution.Population = 10
	base.Evolution.Generations = 100
	base.Evolution.MaxEvaluations = 120
	base.Evolution.Patience = 0
	best := map[string][]float64{}
	for _, optName := range []string{"random", "ga", "cmaes"} {
		for seed := uint64(1); seed <= 10; seed++ {
			cfg := base
			cfg.Evolution.Optimizer = optName
			cfg.Evolution.Seed = seed
			cfg.Output.Dir = filepath.Join(t.TempDir(), optName)
			res := runSynthetic(t, cfg, Options{})
			if res.Evaluations != 120 {
				t.Errorf("%s seed %d: %d evaluations, want 120", optName, seed, res.Evaluations)
			}
			best[optName] = append(best[optName], res.BestFitness)
		}
	}
	mean := func(xs []float64) float64 {
		var s float64
		for _, x := range xs {
			s += x
		}
		return s / float64(len(xs))
	}
	t.Logf("best fitness over seeds 1-10 at 120 evaluations: random %.4f %v, ga %.4f %v, cmaes %.4f %v",
		mean(best["random"]), best["random"], mean(best["ga"]), best["ga"], mean(best["cmaes"]), best["cmaes"])
	if mean(best["ga"]) <= mean(best["random"]) || mean(best["cmaes"]) <= mean(best["random"]) {
		t.Fatal("the optimisers do not beat random search")
	}
}

func readHistory(t testing.TB, dir string) map[string]Record {
	t.Helper()
	f, err := os.Open(filepath.Join(dir, "history.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := map[string]Record{}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<26)
	for sc.Scan() {
		var r Record
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatal(err)
		}
		out[r.Key] = r
	}
	return out
}

// TestResumeEqualsUninterrupted: a run stopped after generation 2 and
// resumed reaches exactly the result of an uninterrupted run.
func TestResumeEqualsUninterrupted(t *testing.T) {
	for _, optName := range []string{"ga", "cmaes", "nsga2"} {
		t.Run(optName, func(t *testing.T) {
			cfg := testConfig(t)
			cfg.Evolution.Optimizer = optName
			cfg.Evolution.Generations = 6
			cfg.Evolution.Patience = 0
			full := runSynthetic(t, cfg, Options{})

			cfg.Output.Dir += "-interrupted"
			ctx, cancel := context.WithCancel(context.Background())
			_, err := Search(ctx, cfg, Options{Sink: func(e Event) {
				if d, ok := e.(GenerationDone); ok && d.Generation == 2 {
					cancel()
				}
			}}, landscape)
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("interrupted run: %v", err)
			}
			if _, err := Search(context.Background(), cfg, Options{}, landscape); err == nil {
				t.Fatal("starting over an existing run without resume was accepted")
			}
			var replayed int
			resumed, err := Search(context.Background(), cfg, Options{Resume: true, Sink: func(e Event) {
				if s, ok := e.(RunStarted); ok {
					replayed = s.Resumed
				}
			}}, landscape)
			if err != nil {
				t.Fatal(err)
			}
			if replayed == 0 {
				t.Error("nothing was replayed")
			}
			if resumed.Best.Key != full.Best.Key || resumed.BestFitness != full.BestFitness || resumed.Evaluations != full.Evaluations {
				t.Fatalf("resumed run differs: best %s %.6f after %d evaluations, uninterrupted %s %.6f after %d",
					resumed.Best.Key, resumed.BestFitness, resumed.Evaluations, full.Best.Key, full.BestFitness, full.Evaluations)
			}
			a, b := readHistory(t, filepath.Dir(cfg.Output.Dir)+"/out"), readHistory(t, cfg.Output.Dir)
			ka, kb := keys(a), keys(b)
			if !slices.Equal(ka, kb) {
				t.Fatalf("histories differ: %d vs %d candidates", len(ka), len(kb))
			}
		})
	}
}

func keys(m map[string]Record) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func TestDecodeEveryTechnique(t *testing.T) {
	cfg := testConfig(t)
	cfg.Merge.Techniques = config.Techniques
	s, paths := configSpace(t, cfg)
	op := &operators{space: s}
	for _, tech := range s.Techniques {
		r, err := s.Decode(op.neutral(tech))
		if err != nil {
			t.Fatalf("%s: %v", tech, err)
		}
		p, err := merge.NewPlan(r, merge.PlanOptions{})
		if err != nil {
			t.Fatalf("%s: neutral genome's recipe does not plan: %v\n%s", tech, err, s.Summary(op.neutral(tech), r))
		}
		p.Close()
		t.Logf("%-16s %s", tech, s.Summary(op.neutral(tech), r))
	}
	// The neutral frankenmerge stacks a's first half and b's second half.
	r, _ := s.Decode(op.neutral("frankenmerge"))
	if got := r.Slices; len(got) != 2 || got[0].Sources[0].Model != paths["a"] || got[0].Sources[0].To != 3 ||
		got[1].Sources[0].Model != paths["b"] || got[1].Sources[0].From != 3 || got[1].Sources[0].To != 6 {
		t.Errorf("neutral frankenmerge %+v", got)
	}
	// The neutral dfs path is a's layers in order, scale 1.
	r, _ = s.Decode(op.neutral("dfs"))
	if len(r.Layers) != 6 || r.Layers[5] != (merge.LayerStep{Model: paths["a"], Layer: 5, Scale: 1}) {
		t.Errorf("neutral dfs %+v", r.Layers)
	}
	// Sources alone are evaluated from their files, whichever the weight
	// genes' layout.
	for _, kinds := range []bool{false, true} {
		s.KindWeights = kinds
		seeds := op.seedGenomes(nil, 4)
		for i, sd := range seeds[:3] {
			r, _ := s.Decode(sd.genome)
			if m, ok := directModel(r); !ok || m != s.Sources[i] || sd.origin != "source" {
				t.Errorf("kinds %v: seed %d is not source %d alone: %v %v", kinds, i, i, m, ok)
			}
		}
		if r, _ := s.Decode(seeds[3].genome); func() bool { _, ok := directModel(r); return ok }() {
			t.Errorf("kinds %v: the uniform average is taken for a source", kinds)
		}
	}
	seeds := op.seedGenomes(nil, 4)
	if r, _ := s.Decode(seeds[3].genome); seeds[3].origin != "uniform" || r.Method != "linear" {
		t.Errorf("seed 3 is not the uniform average")
	}
}

func TestNonDominatedSort(t *testing.T) {
	pop := []*individual{
		{id: "a", objs: []float64{1, 5}}, {id: "b", objs: []float64{2, 4}}, {id: "c", objs: []float64{3, 1}},
		{id: "d", objs: []float64{1, 4}}, {id: "e", objs: []float64{0, 0}}, {id: "f", objs: []float64{9, 9}, failed: true},
	}
	fronts := rankAndCrowd(pop)
	names := func(f []*individual) []string {
		var s []string
		for _, i := range f {
			s = append(s, i.id)
		}
		sort.Strings(s)
		return s
	}
	want := [][]string{{"a", "b", "c"}, {"d"}, {"e"}, {"f"}}
	if len(fronts) != len(want) {
		t.Fatalf("%d fronts", len(fronts))
	}
	for i := range want {
		if !slices.Equal(names(fronts[i]), want[i]) {
			t.Errorf("front %d = %v, want %v", i, names(fronts[i]), want[i])
		}
	}
	// Boundary points of a front are infinitely crowded; b sits between.
	for _, ind := range fronts[0] {
		if (ind.id == "b") == math.IsInf(ind.crowd, 1) {
			t.Errorf("%s crowding %v", ind.id, ind.crowd)
		}
	}
}
