package evolve

import (
	"context"
	"errors"
	"math"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"testing"

	"github.com/evomerge/evomerge/engine/config"
	"github.com/evomerge/evomerge/engine/eval"
	"github.com/evomerge/evomerge/engine/eval/evaltest"
	"github.com/evomerge/evomerge/engine/gguf"
	"github.com/evomerge/evomerge/engine/gguf/synth"
	"github.com/evomerge/evomerge/engine/merge"
)

// standInLoss is evaltest's gradient landscape: the mean over a recipe's
// tensors and models of (c − GradientTarget)², c the task-vector
// coefficients of the tensors of the file at base.
func standInLoss(t *testing.T, r *merge.Recipe, base string, layers int) float64 {
	t.Helper()
	f, err := gguf.Open(base)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var sum float64
	n := 0
	for _, ti := range f.Tensors {
		c, err := r.TaskVectorCoefficients(ti.Name, layers)
		if err != nil {
			t.Fatal(err)
		}
		for _, x := range c {
			sum += (x - evaltest.GradientTarget) * (x - evaltest.GradientTarget)
			n++
		}
	}
	return sum / float64(n)
}

// gradientConfig is testConfig over generated llama models (three
// fine-tunes of the base, which the gradient graph covers) searching task
// arithmetic with the gradient optimiser, weight genes per kind.
func gradientConfig(t *testing.T, gens int) config.Config {
	cfg := testConfig(t)
	base := synth.Spec{Arch: synth.Llama, Layers: 6, Seed: 1}
	for i := range cfg.Models {
		spec := base
		if cfg.Models[i].Name != "base" {
			spec = base.FineTune(uint64(10+i), 0.1)
		}
		if err := spec.Write(cfg.Models[i].Path, cfg.Models[i].Name); err != nil {
			t.Fatal(err)
		}
	}
	cfg.Merge.Techniques = []string{"task_arithmetic"}
	cfg.Merge.WeightGenes = "kinds"
	cfg.Evolution.Optimizer, cfg.Evolution.CMAESTechnique, cfg.Evolution.Generations = "gradient", "task_arithmetic", gens
	cfg.Evolution.Patience = 0
	cfg.Hardware.Workers, cfg.Hardware.Threads = 1, 1
	return cfg
}

// TestGeneGradient: the fitness's derivative in every gene, carried from
// the coefficients' gradient through the genome's decoding, equals the
// central difference of the stand-in's loss over the genome itself (to
// the decoding's 4-digit rounding); genes task arithmetic does not read
// get 0.
func TestGeneGradient(t *testing.T) {
	cfg := gradientConfig(t, 1)
	s, _ := configSpace(t, cfg)
	g := unitOperators(s).neutral("task_arithmetic")
	rng := rand.New(rand.NewPCG(1, 2))
	used := s.Used("task_arithmetic")
	for _, gi := range used {
		g.Genes[gi] = 0.2 + 0.6*rng.Float64()
	}
	r, err := s.Decode(g)
	if err != nil {
		t.Fatal(err)
	}
	// The loss's gradient in the coefficients, as the stand-in gives it.
	d := &eval.GradientReply{}
	f, err := gguf.Open(s.Base)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, ti := range f.Tensors {
		if c, _ := r.TaskVectorCoefficients(ti.Name, s.Layers); c != nil {
			n += len(c)
		}
	}
	for _, ti := range f.Tensors {
		c, _ := r.TaskVectorCoefficients(ti.Name, s.Layers)
		if c == nil {
			continue
		}
		row := make([]float64, len(c))
		for i, x := range c {
			row[i] = 2 * (x - evaltest.GradientTarget) / float64(n)
		}
		d.Tensors, d.D = append(d.Tensors, ti.Name), append(d.D, row)
	}
	f.Close()
	got, err := s.geneGradient(g, d, 1)
	if err != nil {
		t.Fatal(err)
	}
	isUsed := map[int]bool{}
	for _, gi := range used {
		isUsed[gi] = true
	}
	const h = 0.02
	for gi := range g.Genes {
		if !isUsed[gi] {
			if got[gi] != 0 {
				t.Errorf("gene %d, not read by task arithmetic, has derivative %g", gi, got[gi])
			}
			continue
		}
		up, down := g.Clone(), g.Clone()
		up.Genes[gi] += h
		down.Genes[gi] -= h
		ru, _ := s.Decode(up)
		rd, _ := s.Decode(down)
		want := -(standInLoss(t, ru, s.Base, s.Layers) - standInLoss(t, rd, s.Base, s.Layers)) / (2 * h)
		if math.Abs(got[gi]-want) > 0.03*math.Abs(want)+1e-5 {
			t.Errorf("gene %d: ∂F %.6f, central difference %.6f", gi, got[gi], want)
		}
	}
	if _, err := s.geneGradient(g, nil, 1); err == nil {
		t.Error("no gradient accepted")
	}
}

// TestGradientRun: the gradient optimiser through stand-in workers scores
// one centre per generation, records its gradient in the history, and
// descends the stand-in's landscape; a run cancelled after generation 3
// and resumed replays the steps and ends on the uninterrupted run's
// centre; asked for by name where it cannot run, it is a one-line error,
// and "auto" then picks ES.
func TestGradientRun(t *testing.T) {
	run := func(cfg config.Config, opt Options) (*Result, []Event, error) {
		cmd, env := evaltest.Worker(evaltest.Behaviour{})
		opt.PoolOptions = eval.PoolOptions{Command: cmd, Env: env}
		var events []Event
		sink := opt.Sink
		opt.Sink = func(e Event) {
			events = append(events, e)
			if sink != nil {
				sink(e)
			}
		}
		res, err := Run(context.Background(), cfg, opt)
		return res, events, err
	}
	cfg := gradientConfig(t, 8)
	full, _, err := run(cfg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if full.Optimizer != "gradient" || full.Evaluations != 8 {
		t.Fatalf("optimizer %s, %d evaluations; want gradient, 8", full.Optimizer, full.Evaluations)
	}
	recs, err := replayHistory(cfg.Output.Dir)
	if err != nil {
		t.Fatal(err)
	}
	var losses []float64
	for _, rec := range recs {
		if rec.Origin != "gradient" || len(rec.Gradient) != len(rec.Genome.Genes) {
			t.Fatalf("%s: origin %s, %d derivatives for %d genes", rec.ID, rec.Origin, len(rec.Gradient), len(rec.Genome.Genes))
		}
		r, err := merge.ParseRecipe(rec.Recipe)
		if err != nil {
			t.Fatal(err)
		}
		losses = append(losses, standInLoss(t, r, cfg.Models[3].Path, 6))
	}
	t.Logf("stand-in loss of the centres: %.5f … %.5f", losses[0], losses[len(losses)-1])
	if !(losses[len(losses)-1] < 0.5*losses[0]) {
		t.Errorf("the centre did not descend: loss %.5f, then %.5f", losses[0], losses[len(losses)-1])
	}

	// Interrupted after generation 3, then resumed.
	cfg.Output.Dir += "-resumed"
	ctx, cancel := context.WithCancel(context.Background())
	cmd, env := evaltest.Worker(evaltest.Behaviour{})
	_, err = Run(ctx, cfg, Options{PoolOptions: eval.PoolOptions{Command: cmd, Env: env}, Sink: func(e Event) {
		if d, ok := e.(GenerationDone); ok && d.Generation == 3 {
			cancel()
		}
	}})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("interrupted run: %v", err)
	}
	resumed, _, err := run(cfg, Options{Resume: true})
	if err != nil {
		t.Fatal(err)
	}
	if resumed.Best.Key != full.Best.Key || resumed.BestFitness != full.BestFitness {
		t.Errorf("resumed run ends on %s (%.6f), the uninterrupted one on %s (%.6f)", resumed.Best.Key, resumed.BestFitness, full.Best.Key, full.BestFitness)
	}

	// Promotions are not run: the one centre has nobody to be promoted
	// over, and the run says so.
	cfg = gradientConfig(t, 2)
	cfg.Evaluation.RotateWindows, cfg.Evaluation.Promotions = true, 1
	res, events, err := run(cfg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Evaluations != 2 || !loggedPrefix(events, "evaluation.promotions = 1: not used by the gradient optimizer") {
		t.Errorf("gradient with promotions: %d evaluations, want 2 and the promotions' log line", res.Evaluations)
	}

	// Coherence weighted: "gradient" is refused, "auto" is ES.
	cfg = gradientConfig(t, 1)
	cfg.Evaluation.Objectives.Coherence = 0.5
	if _, _, err := run(cfg, Options{}); err == nil || !strings.Contains(err.Error(), "perplexity alone") {
		t.Errorf("gradient with coherence: %v", err)
	}
	cfg.Evolution.Optimizer, cfg.Output.Dir = "auto", filepath.Join(t.TempDir(), "auto")
	res, events, err = run(cfg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if logged := loggedPrefix(events, "optimizer auto: evolution strategy"); res.Optimizer != "es" || !logged {
		t.Errorf("auto with coherence ran %s (logged: %v), want es", res.Optimizer, logged)
	}
}

// loggedPrefix reports whether a Log event's message starts with prefix.
func loggedPrefix(events []Event, prefix string) bool {
	for _, e := range events {
		if l, ok := e.(Log); ok && strings.HasPrefix(l.Message, prefix) {
			return true
		}
	}
	return false
}
