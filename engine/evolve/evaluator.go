package evolve

import (
	"context"
	"math"
	"os"
	"sync"
	"time"

	"github.com/evomerge/evomerge/engine/config"
	"github.com/evomerge/evomerge/engine/eval"
	"github.com/evomerge/evomerge/engine/merge"
)

// A measurer produces the scores of one candidate recipe and notes in rec
// how long merging and evaluating took. Run measures with an evaluator
// (merge, then the worker pool); Search with its ScoreFunc.
type measurer interface {
	measure(ctx context.Context, id string, r *merge.Recipe, rec *Record, progress func(Status, float64)) (Scores, error)
	// parallel is how many candidates are evaluated at once; the scheduler
	// keeps one more in flight, so a merge overlaps an evaluation.
	parallel() int
}

// ScoreFunc scores a candidate recipe in place of merging and evaluating
// it (see Search).
type ScoreFunc func(ctx context.Context, r *merge.Recipe) (Scores, error)

func (f ScoreFunc) measure(ctx context.Context, _ string, r *merge.Recipe, rec *Record, progress func(Status, float64)) (Scores, error) {
	progress(StatusEvaluating, 0)
	t0 := time.Now()
	s, err := f(ctx, r)
	rec.EvalSec = time.Since(t0).Seconds()
	return s, err
}

func (ScoreFunc) parallel() int { return 1 }

// evaluator measures candidates for real: it merges each into the
// materialiser's scratch directory (a source model alone is read from its
// file) and scores it on the worker pool. Merging is not limited by the
// pool; evaluating takes one of its slots, so evaluation time excludes
// queueing.
type evaluator struct {
	cfg       config.Evaluation
	pool      *eval.Pool
	texts     []eval.Text
	tasks     []eval.Task
	reference string // the model coherence is judged against
	mat       *materialiser
	slots     chan struct{} // one per worker
}

func newEvaluator(cfg config.Evaluation, pool *eval.Pool, texts []eval.Text, tasks []eval.Task, reference string, mat *materialiser) *evaluator {
	return &evaluator{cfg: cfg, pool: pool, texts: texts, tasks: tasks, reference: reference, mat: mat,
		slots: make(chan struct{}, pool.Size())}
}

func (ev *evaluator) parallel() int { return ev.pool.Size() }

// measure merges a candidate (unless it is a source model) and evaluates it.
func (ev *evaluator) measure(ctx context.Context, id string, r *merge.Recipe, rec *Record, progress func(Status, float64)) (Scores, error) {
	model, direct := directModel(r)
	if !direct {
		path, took, err := ev.mat.candidate(ctx, id, r, func(f float64) { progress(StatusMerging, f) })
		if path != "" {
			defer os.Remove(path)
		}
		if took > 0 {
			rec.MergeSec = took.Seconds()
		}
		if err != nil {
			return Scores{}, err
		}
		model = path
	}
	progress(StatusQueued, 1)
	select {
	case ev.slots <- struct{}{}:
	case <-ctx.Done():
		return Scores{}, ctx.Err()
	}
	defer func() { <-ev.slots }()
	t0 := time.Now()
	defer func() { rec.EvalSec = time.Since(t0).Seconds() }()
	progress(StatusEvaluating, 0)
	return ev.scoreModel(ctx, model, ev.texts, ev.cfg.Chunks, func(f float64) { progress(StatusEvaluating, f) })
}

// scoreModel measures every configured objective of one model file.
func (ev *evaluator) scoreModel(ctx context.Context, model string, texts []eval.Text, chunks int, progress func(float64)) (Scores, error) {
	v := ev.cfg
	var s Scores
	if len(texts) > 0 && (v.Objectives.Perplexity > 0 || chunks != v.Chunks) {
		total := float64(len(texts))
		done := map[string]float64{}
		var mu sync.Mutex
		reply, err := ev.pool.Perplexity(ctx, model, texts, eval.PerplexityOptions{Context: v.Context, Chunks: chunks},
			func(text string, d, t int) {
				mu.Lock()
				done[text] = float64(d) / float64(max(t, 1))
				var sum float64
				for _, x := range done {
					sum += x
				}
				mu.Unlock()
				if progress != nil {
					progress(sum / total)
				}
			})
		if err != nil {
			return s, err
		}
		s.Perplexity = map[string]float64{}
		for _, t := range reply.Texts {
			s.Perplexity[t.Name] = t.Perplexity
			s.MeanLogPPL += math.Log(t.Perplexity) / float64(len(reply.Texts))
		}
	}
	if v.Objectives.Coherence > 0 {
		c, err := ev.coherence(ctx, model)
		if err != nil {
			return s, err
		}
		s.Coherence = c.Score
	}
	if v.Objectives.Tasks > 0 && len(ev.tasks) > 0 {
		t, err := ev.pool.Tasks(ctx, model, ev.tasks)
		if err != nil {
			return s, err
		}
		s.TaskAccuracy = t.Accuracy
	}
	return s, nil
}

func (ev *evaluator) coherence(ctx context.Context, model string) (eval.CoherenceResult, error) {
	opt := eval.DefaultCoherence()
	if len(ev.cfg.CoherencePrompts) > 0 {
		opt.Prompts = ev.cfg.CoherencePrompts
	}
	opt.MaxTokens = ev.cfg.CoherenceTokens
	opt.Reference = ev.reference
	return ev.pool.Coherence(ctx, model, opt)
}

// fitness combines the scores: F = −w_ppl·mean(ln ppl) + w_coh·coherence
// + w_tasks·accuracy. The objective vector (all maximised) holds each
// weighted objective separately, for NSGA-II.
func fitness(o config.Objectives, s Scores) (float64, []float64) {
	var f float64
	var objs []float64
	if o.Perplexity > 0 {
		f -= o.Perplexity * s.MeanLogPPL
		objs = append(objs, -s.MeanLogPPL)
	}
	if o.Coherence > 0 {
		f += o.Coherence * s.Coherence
		objs = append(objs, s.Coherence)
	}
	if o.Tasks > 0 {
		f += o.Tasks * s.TaskAccuracy
		objs = append(objs, s.TaskAccuracy)
	}
	return f, objs
}
