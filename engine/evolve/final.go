package evolve

import (
	"context"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/google/renameio/v2"
	"golang.org/x/sync/errgroup"

	"github.com/evomerge/evomerge/engine/eval"
	"github.com/evomerge/evomerge/engine/merge"
)

// finish writes best.gguf and best-recipe.toml, then compares the best
// model with every source, the base and the uniform average on the
// held-out test texts — the numbers a user should trust, since the search
// never saw those texts.
func (e *engine) finish(ctx context.Context, best *individual, res *Result) error {
	dir := e.cfg.Output.Dir
	rec := e.ledger.lookup(best.key)
	r, err := merge.ParseRecipe(rec.Recipe)
	if err != nil {
		return fmt.Errorf("best recipe: %w", err)
	}
	r.Name = "evomerge best " + best.id
	header := fmt.Sprintf("# evomerge best recipe: candidate %s (%s), fitness %.6f, seed %d\n# Re-run with: evomerge-tui merge %s -o best.gguf\n",
		best.id, rec.Summary, rec.Fitness, e.cfg.Evolution.Seed, filepath.Join(dir, "best-recipe.toml"))
	text, err := r.Encode()
	if err != nil {
		return err
	}
	res.BestRecipe = filepath.Join(dir, "best-recipe.toml")
	if err := renameio.WriteFile(res.BestRecipe, append([]byte(header), text...), 0o644); err != nil {
		return err
	}
	res.BestModel = filepath.Join(dir, "best.gguf")
	e.events.logf("info", "writing %s", res.BestModel)
	plan, err := merge.NewPlan(r, merge.PlanOptions{Codec: e.opt.Codec})
	if err != nil {
		return fmt.Errorf("best recipe: %w", err)
	}
	_, err = plan.Execute(ctx, res.BestModel, merge.ExecOptions{Codec: e.opt.Codec})
	plan.Close()
	if err != nil {
		return fmt.Errorf("writing best.gguf: %w", err)
	}

	tests, err := eval.LoadTexts(e.cfg.Evaluation.TestTexts)
	if err != nil || len(tests) == 0 {
		return err
	}
	t0 := time.Now()
	defer func() { e.final = time.Since(t0) }()
	prompt := eval.DefaultCoherencePrompts()[0]
	if ps := e.cfg.Evaluation.CoherencePrompts; len(ps) > 0 {
		prompt = ps[0]
	}
	v := e.cfg.Evaluation
	cache, err := newHeldOutCache(e.opt.HeldOutCache, tests, fmt.Sprintf("ctx=%d chunks=%d coh=%q/%d prompt=%q", v.Context, v.TestChunks, v.CoherencePrompts, v.CoherenceTokens, prompt), e.ev.reference, buildRevision())
	if err != nil {
		e.events.logf("warn", "held-out cache: %v", err)
	}
	type entry struct {
		name, kind, path string
		key              string // held-out cache key ("": not cached)
	}
	keyOf := func(what string, files ...string) string {
		if cache == nil {
			return ""
		}
		k, err := cache.key(what, files)
		if err != nil {
			e.events.logf("warn", "held-out cache: %v", err)
		}
		return k
	}
	cached := map[string]ModelScore{}
	var models []entry
	for i, src := range e.space.Sources {
		models = append(models, entry{e.space.Names[i], "source", src, keyOf("model", src)})
	}
	if e.space.Base != "" {
		models = append(models, entry{e.space.BaseName, "base", e.space.Base, keyOf("model", e.space.Base)})
	}
	for _, m := range models {
		if ms, ok := cache.load(m.key); ok {
			cached[m.key] = ms
		}
	}
	if e.space.M() > 1 {
		uniform := &merge.Recipe{Method: "linear", OutType: e.space.OutType, TokenizerSource: e.space.TokenizerSource}
		for _, src := range e.space.Sources {
			uniform.Models = append(uniform.Models, merge.ModelRef{Model: src})
		}
		key := keyOf(fmt.Sprintf("uniform out_type=%s tokenizer_source=%s", e.space.OutType, e.space.TokenizerSource), e.space.Sources...)
		path := ""
		if ms, ok := cache.load(key); ok {
			cached[key] = ms
		} else {
			tmp, err := e.scratch.scratchDir()
			if err != nil {
				return err
			}
			path = filepath.Join(tmp, "uniform.gguf")
			defer os.Remove(path)
			if _, _, err := merge.Run(ctx, uniform, path, e.opt.Codec, merge.ExecOptions{Codec: e.opt.Codec}); err != nil {
				return fmt.Errorf("uniform average: %w", err)
			}
		}
		models = append(models, entry{"uniform", "uniform", path, key})
	}
	models = append(models, entry{"best", "best", res.BestModel, ""})
	if e.ev.pool == nil {
		// hardware.workers = 0: best.gguf and the uniform average exist
		// only here, so one local worker compares them.
		if e.ev.pool, err = eval.NewPool(ctx, e.opt.PoolOptions.Sized(1, e.cfg.Hardware.Threads, e.cfg.Hardware.GPULayersN())); err != nil {
			return err
		}
	}
	// The models are scored concurrently, as many at once as there are
	// workers (a model keeps one worker busy), and reported in the order
	// above. The first failure stops the comparison: the others are
	// cancelled and it is the error returned.
	scores := make([]ModelScore, len(models))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(max(1, e.ev.pool.Size()))
	for i, m := range models {
		if ms, ok := cached[m.key]; ok {
			ms.Name, ms.Kind = m.name, m.kind
			e.events.logf("info", "held-out scores of %s from the cache %s", m.name, e.opt.HeldOutCache)
			scores[i] = ms
			continue
		}
		g.Go(func() error {
			e.events.logf("info", "held-out evaluation of %s", m.name)
			ms, err := e.heldOut(gctx, m.name, m.path, tests, prompt)
			if err != nil {
				return fmt.Errorf("held-out evaluation of %s: %w", m.name, err)
			}
			ms.Name, ms.Kind = m.name, m.kind
			if ms.CoherenceError == "" && ms.SampleError == "" {
				if err := cache.store(m.key, ms); err != nil {
					e.events.logf("warn", "held-out cache: %v", err)
				}
			}
			scores[i] = ms
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	res.Comparison = append(res.Comparison, scores...)
	e.verdicts(res)
	return nil
}

// heldOut scores one model (name, for the log) on the test texts (every window up to
// evaluation.test_chunks), its coherence and a greedy sample from prompt.
// The coherence and the sample are reported, not relied on: a failure
// leaves the reason in the score and the log.
func (e *engine) heldOut(ctx context.Context, name, path string, tests []eval.Text, prompt string) (ModelScore, error) {
	reply, err := e.ev.pool.Perplexity(ctx, path, tests, eval.PerplexityOptions{Context: e.cfg.Evaluation.Context, Chunks: e.cfg.Evaluation.TestChunks}, nil)
	if err != nil {
		return ModelScore{}, err
	}
	ms := ModelScore{Perplexity: map[string]float64{}, StdErr: map[string]float64{}, Windows: map[string][]eval.WindowNLL{}}
	var logSum float64
	for _, t := range reply.Texts {
		ms.Perplexity[t.Name] = t.Perplexity
		ms.StdErr[t.Name] = t.StdErr
		ms.Tokens += t.Tokens
		ms.Windows[t.Name] = t.Windows
		logSum += math.Log(t.Perplexity)
	}
	ms.GeoMean = math.Exp(logSum / float64(len(reply.Texts)))
	if coh, err := e.ev.coherence(ctx, path); err == nil {
		ms.Coherence = coh.Score
	} else if ctx.Err() != nil {
		return ModelScore{}, ctx.Err()
	} else {
		ms.CoherenceError = err.Error()
		e.events.logf("warn", "held-out coherence of %s: %v", name, err)
	}
	g, err := e.ev.pool.Generate(ctx, path, prompt, eval.GenerateOptions{SamplingOptions: eval.SamplingOptions{Temperature: 0, RepeatPenalty: 1.1, RepeatLastN: 64}, MaxTokens: 40}, nil)
	switch {
	case err == nil:
		ms.Sample = prompt + strings.TrimRight(g.Text, " \n")
	case ctx.Err() != nil:
		return ModelScore{}, ctx.Err()
	default:
		ms.SampleError = err.Error()
		e.events.logf("warn", "held-out sample of %s: %v", name, err)
	}
	return ms, nil
}

// verdicts compares the best model with the uniform average and with the
// source whose held-out geo-mean perplexity is lowest, and logs them (a
// comparison that cannot be made, for want of per-window scores, is
// logged instead).
func (e *engine) verdicts(res *Result) {
	var best, uniform, source *ModelScore
	for i := range res.Comparison {
		m := &res.Comparison[i]
		switch m.Kind {
		case "best":
			best = m
		case "uniform":
			uniform = m
		case "source":
			if source == nil || m.GeoMean < source.GeoMean {
				source = m
			}
		}
	}
	if best == nil {
		return
	}
	for _, other := range []*ModelScore{uniform, source} {
		if other == nil {
			continue
		}
		v, err := compare(*best, *other, e.cfg.Evolution.Seed)
		if err != nil {
			e.events.logf("warn", "no held-out verdict: %v", err)
			continue
		}
		res.Verdict = append(res.Verdict, v)
		e.events.logf("info", "%s", v)
	}
}
