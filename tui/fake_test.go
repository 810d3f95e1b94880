package tui

import (
	"context"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/evomerge/evomerge/engine/config"
	"github.com/evomerge/evomerge/engine/eval"
	"github.com/evomerge/evomerge/engine/evolve"
)

// fakeBackend plays a scripted tournament: the event stream the real
// engine produces (RunStarted, GenerationStarted, progress per candidate,
// CandidateScored with cached and failed ones, GenerationDone, Log,
// Finished), honouring pause and cancellation.
type fakeBackend struct {
	script []evolve.Event
	result *evolve.Result
	delay  time.Duration // between events
	tokens []string      // what Generate streams
	runErr error
	// writeConfig writes each run's configuration into its output
	// directory, as the engine does (a resume reads it).
	writeConfig bool

	mu          sync.Mutex
	runs        int
	cfgs        []config.Config
	resumed     []bool
	materialize []string
	generate    []string
	opts        []eval.GenerateOptions
	done        chan struct{} // closed when a Run returns
}

func newFake(pop, gens int) *fakeBackend {
	script, res := scriptedRun(pop, gens)
	return &fakeBackend{script: script, result: res, done: make(chan struct{}),
		tokens: []string{"Call", " me", " Ishmael", ".", " Some", " years", " ago", "…"}}
}

func (f *fakeBackend) Run(ctx context.Context, cfg config.Config, resume bool, sink evolve.Sink, ctl *evolve.Control) (*evolve.Result, error) {
	f.mu.Lock()
	f.runs++
	f.cfgs = append(f.cfgs, cfg)
	f.resumed = append(f.resumed, resume)
	f.mu.Unlock()
	if f.writeConfig && !resume {
		raw, err := cfg.Encode()
		if err == nil {
			err = os.MkdirAll(cfg.Output.Dir, 0o755)
		}
		if err == nil {
			err = os.WriteFile(filepath.Join(cfg.Output.Dir, "config.toml"), raw, 0o644)
		}
		if err != nil {
			return nil, err
		}
	}
	defer func() {
		f.mu.Lock()
		defer f.mu.Unlock()
		select {
		case <-f.done:
		default:
			close(f.done)
		}
	}()
	paused := false
	for _, ev := range f.script {
		for {
			if err := ctx.Err(); err != nil {
				sink(evolve.Finished{Reason: "cancelled", Err: err})
				return nil, err
			}
			if p := ctl.Paused(); p != paused {
				paused = p
				sink(evolve.Paused{Paused: p})
			}
			if !paused {
				break
			}
			time.Sleep(2 * time.Millisecond)
		}
		if f.delay > 0 {
			time.Sleep(f.delay)
		}
		if rs, ok := ev.(evolve.RunStarted); ok && cfg.Output.Dir != "" {
			rs.OutputDir = cfg.Output.Dir // the engine reports the directory it was given
			ev = rs
		}
		sink(ev)
	}
	return f.result, f.runErr
}

func (f *fakeBackend) runCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.runs
}

func (f *fakeBackend) Materialize(ctx context.Context, recipe string) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.materialize = append(f.materialize, recipe)
	return fmt.Sprintf("/tmp/evomerge-chat-%d.gguf", len(f.materialize)), nil
}

func (f *fakeBackend) Generate(ctx context.Context, model, prompt string, opt eval.GenerateOptions, onText func(string)) (eval.GenerateResult, error) {
	f.mu.Lock()
	f.generate = append(f.generate, model+": "+prompt)
	f.opts = append(f.opts, opt)
	f.mu.Unlock()
	var text strings.Builder
	for i, t := range f.tokens {
		if err := ctx.Err(); err != nil {
			return eval.GenerateResult{Text: text.String(), Tokens: i, StopReason: "length"}, err
		}
		text.WriteString(t)
		onText(t)
	}
	return eval.GenerateResult{Text: text.String(), Tokens: len(f.tokens), PromptTokens: 5, StopReason: "eos",
		TokensPerSecond: 42.5, PromptPerSecond: 300}, nil
}

func (f *fakeBackend) Device() string { return "CPU 16 threads · fake GPU" }

// t0 is the scripted run's start.
var t0 = time.Date(2026, 3, 14, 9, 26, 53, 0, time.UTC)

var fakeTechniques = []string{"ties", "slerp", "linear", "dare_ties", "task_arithmetic", "frankenmerge"}

// scriptedRun builds a realistic event stream of pop candidates over gens
// generations: fitness improves, elites are cached in later generations,
// one candidate fails.
func scriptedRun(pop, gens int) ([]evolve.Event, *evolve.Result) {
	var evs []evolve.Event
	add := func(e evolve.Event) { evs = append(evs, e) }
	sources := []string{"bible", "moby", "sotu", "stories15M"}
	texts := []string{"bible/validation", "moby/validation", "sotu/validation"}
	add(evolve.RunStarted{Optimizer: "ga", Seed: 42, Sources: sources, Base: "stories15M", Techniques: fakeTechniques,
		Genes: 24, Population: pop, Generations: gens, Budget: pop * gens, Texts: texts, OutputDir: "out", Time: t0})
	add(evolve.Log{Level: "info", Message: "resolved 4 models; 2 evaluation workers with 8 threads each", Time: t0.Add(time.Second)})
	evals := 0
	var prev []evolve.CandidateInfo
	var prevFit []float64
	bestFit, bestInfo := math.Inf(-1), evolve.CandidateInfo{}
	var fitOf = map[string]float64{}
	for g := 0; g < gens; g++ {
		var infos []evolve.CandidateInfo
		for c := 0; c < pop; c++ {
			tech := fakeTechniques[(g+c)%len(fakeTechniques)]
			w := []float64{0.2 + 0.1*float64(c%5), 0.5 - 0.05*float64(g), 0.3 + 0.02*float64(c)}
			ci := evolve.CandidateInfo{
				ID: fmt.Sprintf("g%d-c%02d", g, c), Generation: g, Technique: tech,
				Summary: fmt.Sprintf("%s w=[%.2f %.2f %.2f]", tech, w[0], w[1], w[2]),
				Origin:  "initial",
				Key:     fmt.Sprintf("k%d-%d", g, c),
			}
			if g > 0 {
				switch {
				case c < 2:
					// Elites: copies of the best of the last generation.
					p := prev[bestIndex(prevFit, c)]
					ci = p
					ci.ID, ci.Generation, ci.Origin, ci.Parents = fmt.Sprintf("g%d-c%02d", g, c), g, "elite", []string{p.ID}
				case c%2 == 0:
					ci.Origin, ci.Parents = "crossover", []string{prev[c%len(prev)].ID, prev[(c+1)%len(prev)].ID}
				default:
					ci.Origin, ci.Parents = "mutation", []string{prev[(c+2)%len(prev)].ID}
				}
			}
			ci.Recipe = fmt.Sprintf("# %s\nmethod = %q\nbase = \"stories15M\"\n\n[[models]]\nname = \"bible\"\nweight = %.2f\n\n[[models]]\nname = \"moby\"\nweight = %.2f\n\n[[models]]\nname = \"sotu\"\nweight = %.2f\n",
				ci.ID, ci.Technique, w[0], w[1], w[2])
			infos = append(infos, ci)
		}
		add(evolve.GenerationStarted{Generation: g, Candidates: infos})
		var fits []float64
		for c, ci := range infos {
			id := ci.ID
			elite := g > 0 && c < 2
			if elite {
				f := fitOf[ci.Parents[0]]
				fitOf[id] = f
				fits = append(fits, f)
				add(evolve.CandidateScored{Candidate: ci, Scores: scoresFor(f), Fitness: f, Status: evolve.StatusCached, Evaluation: evals})
				continue
			}
			add(evolve.CandidateProgress{ID: id, Status: evolve.StatusMerging, Fraction: 0})
			add(evolve.CandidateProgress{ID: id, Status: evolve.StatusMerging, Fraction: 0.5})
			add(evolve.CandidateProgress{ID: id, Status: evolve.StatusMerging, Fraction: 1})
			for _, fr := range []float64{0, 0.25, 0.5, 0.75, 1} {
				add(evolve.CandidateProgress{ID: id, Status: evolve.StatusEvaluating, Fraction: fr})
			}
			evals++
			if g == 1 && c == 3 {
				add(evolve.CandidateScored{Candidate: ci, Status: evolve.StatusFailed, Err: "worker exited: llama_decode returned -1", Evaluation: evals,
					MergeTime: 1200 * time.Millisecond})
				add(evolve.Log{Level: "warn", Message: "worker 2 restarted after a crash", Time: t0.Add(time.Duration(g*40+c*4) * time.Second)})
				continue
			}
			f := -2.6 + 0.09*float64(g) + 0.013*float64((c*7)%5) - 0.02*float64(c%3)
			fitOf[id] = f
			fits = append(fits, f)
			add(evolve.CandidateScored{Candidate: ci, Scores: scoresFor(f), Fitness: f, Status: evolve.StatusDone, Evaluation: evals,
				MergeTime: time.Duration(900+30*c) * time.Millisecond, EvalTime: time.Duration(3100+70*c) * time.Millisecond})
			if f > bestFit {
				bestFit, bestInfo = f, ci
			}
		}
		lo, hi, sum := math.Inf(1), math.Inf(-1), 0.0
		for _, f := range fits {
			lo, hi, sum = min(lo, f), max(hi, f), sum+f
		}
		add(evolve.GenerationDone{Generation: g, Best: bestFit, GenBest: hi, Mean: sum / float64(len(fits)), Worst: lo,
			BestID: bestInfo.ID, Evaluations: evals, Elapsed: time.Duration(g+1) * 40 * time.Second})
		prev, prevFit = infos, nil
		for _, ci := range infos {
			f, ok := fitOf[ci.ID]
			if !ok {
				f = math.Inf(-1)
			}
			prevFit = append(prevFit, f)
		}
	}
	res := &evolve.Result{OutputDir: "out", Reason: "generations", Best: bestInfo, BestFitness: bestFit,
		BestScores: scoresFor(bestFit), BestModel: "out/best.gguf", BestRecipe: "out/best-recipe.toml",
		Evaluations: evals, Generations: gens, Seed: 42, Optimizer: "ga", Elapsed: time.Duration(gens)*40*time.Second + 5*time.Second,
		Verdict: []evolve.Verdict{{Model: "uniform", Kind: "uniform", Diff: 0.001, Low: -0.004, High: 0.006, Windows: 288, Resamples: 4000}}}
	add(evolve.Finished{Reason: "generations", Best: bestInfo, Fitness: bestFit, Result: res, Elapsed: res.Elapsed})
	return evs, res
}

// bestIndex returns the index of the (rank+1)-th best fitness.
func bestIndex(fits []float64, rank int) int {
	idx := make([]int, len(fits))
	for i := range idx {
		idx[i] = i
	}
	for i := 0; i < len(idx); i++ {
		for j := i + 1; j < len(idx); j++ {
			if fits[idx[j]] > fits[idx[i]] {
				idx[i], idx[j] = idx[j], idx[i]
			}
		}
	}
	return idx[min(rank, len(idx)-1)]
}

func scoresFor(f float64) evolve.Scores {
	l := -f
	return evolve.Scores{MeanLogPPL: l, Perplexity: map[string]float64{
		"bible/validation": math.Exp(l - 0.1), "moby/validation": math.Exp(l + 0.15), "sotu/validation": math.Exp(l - 0.05)}}
}
