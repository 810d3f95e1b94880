package evolve

import (
	"context"
	"math"
	"sync"
	"sync/atomic"
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

// WindowScoreFunc scores a candidate recipe on the given validation
// windows per text (nil: the configured first chunks), in place of merging
// and evaluating it (see SearchWindows).
type WindowScoreFunc func(ctx context.Context, r *merge.Recipe, windows map[string][]int) (Scores, error)

func (f WindowScoreFunc) measure(ctx context.Context, _ string, r *merge.Recipe, rec *Record, progress func(Status, float64)) (Scores, error) {
	progress(StatusEvaluating, 0)
	t0 := time.Now()
	s, err := f(ctx, r, rec.Windows)
	rec.EvalSec = time.Since(t0).Seconds()
	return s, err
}

func (WindowScoreFunc) parallel() int { return 1 }

// evaluator measures candidates for real, on the worker pool. A candidate
// travels to a worker as its recipe: the worker, prepared once with the
// run's sources, merges it into the model it keeps loaded (in place; data-
// flow recipes through a temporary file in the worker) and scores it, so
// no candidate file is written here and nothing is reloaded (see
// eval.Pool.Candidate). A recipe that is just one source model is scored
// from that model's file. Each candidate takes one worker slot for its
// merge and its evaluation together.
type evaluator struct {
	cfg       config.Evaluation
	pool      *eval.Pool
	texts     []eval.Text
	tasks     []eval.Task
	reference string        // the model coherence is judged against
	slots     chan struct{} // one per worker
	tensors   atomic.Int64  // merged tensors the workers reused
}

func newEvaluator(cfg config.Evaluation, pool *eval.Pool, texts []eval.Text, tasks []eval.Task, reference string) *evaluator {
	return &evaluator{cfg: cfg, pool: pool, texts: texts, tasks: tasks, reference: reference,
		slots: make(chan struct{}, pool.Size())}
}

func (ev *evaluator) parallel() int { return ev.pool.Size() }

// prepare tells the workers the run's sources, the model files at paths
// (recipes name them by path), with req's template and caches.
func (ev *evaluator) prepare(ctx context.Context, req eval.PrepareRequest, paths []string) (eval.PrepareReply, error) {
	for _, p := range paths {
		req.Sources = append(req.Sources, eval.SourceRef{Name: p, Path: p})
	}
	return ev.pool.Prepare(ctx, req)
}

// measure scores a candidate: merged and evaluated by a worker, or, when
// it is a source model, evaluated from that model's file.
func (ev *evaluator) measure(ctx context.Context, _ string, r *merge.Recipe, rec *Record, progress func(Status, float64)) (Scores, error) {
	progress(StatusQueued, 0)
	select {
	case ev.slots <- struct{}{}:
	case <-ctx.Done():
		return Scores{}, ctx.Err()
	}
	defer func() { <-ev.slots }()
	if model, direct := directModel(r); direct {
		t0 := time.Now()
		defer func() { rec.EvalSec = time.Since(t0).Seconds() }()
		progress(StatusEvaluating, 0)
		return ev.scoreModel(ctx, model, ev.texts, ev.cfg.Chunks, rec.Windows, func(f float64) { progress(StatusEvaluating, f) })
	}
	return ev.candidate(ctx, r, rec, progress)
}

// candidate has a worker merge and score recipe r.
func (ev *evaluator) candidate(ctx context.Context, r *merge.Recipe, rec *Record, progress func(Status, float64)) (Scores, error) {
	text, err := r.Encode()
	if err != nil {
		return Scores{}, err
	}
	v := ev.cfg
	req := eval.CandidateRequest{Recipe: string(text)}
	if len(ev.texts) > 0 && v.Objectives.Perplexity > 0 {
		req.Texts = ev.texts
		req.Perplexity = &eval.PerplexityOptions{Context: v.Context, Chunks: v.Chunks, Windows: rec.Windows}
	}
	if v.Objectives.Coherence > 0 {
		opt := ev.coherenceOptions()
		req.Coherence = &opt
	}
	if v.Objectives.Tasks > 0 && len(ev.tasks) > 0 {
		req.Tasks = ev.tasks
	}
	track := newTextProgress(len(ev.texts), func(f float64) { progress(StatusEvaluating, f) })
	progress(StatusMerging, 0)
	reply, err := ev.pool.Candidate(ctx, req, func(stage string, done, total int) {
		if stage == eval.ProgressMerge {
			progress(StatusMerging, float64(done)/float64(max(total, 1)))
			return
		}
		track(stage, done, total)
	})
	rec.MergeSec, rec.EvalSec = reply.MergeSeconds, reply.EvalSeconds
	ev.tensors.Add(int64(reply.Kept + reply.CacheHits))
	if err != nil {
		return Scores{}, err
	}
	var s Scores
	if reply.Perplexity != nil {
		s.Perplexity = map[string]float64{}
		for _, t := range reply.Perplexity.Texts {
			s.Perplexity[t.Name] = t.Perplexity
			s.MeanLogPPL += math.Log(t.Perplexity) / float64(len(reply.Perplexity.Texts))
		}
	}
	if reply.Coherence != nil {
		s.Coherence = reply.Coherence.Score
	}
	if reply.Tasks != nil {
		s.TaskAccuracy = reply.Tasks.Accuracy
	}
	return s, nil
}

// reused is the number of merged tensors the workers reused rather than
// computed.
func (ev *evaluator) reused() int { return int(ev.tensors.Load()) }

// newTextProgress turns per-text progress (text name, windows done, total)
// into the fraction of all n texts done.
func newTextProgress(n int, progress func(float64)) func(text string, done, total int) {
	var mu sync.Mutex
	fractions := map[string]float64{}
	return func(text string, d, t int) {
		mu.Lock()
		fractions[text] = float64(d) / float64(max(t, 1))
		var sum float64
		for _, x := range fractions {
			sum += x
		}
		mu.Unlock()
		if progress != nil {
			progress(sum / float64(max(n, 1)))
		}
	}
}

// scoreModel measures every configured objective of one model file,
// perplexity on the given windows per text (nil: the first chunks).
func (ev *evaluator) scoreModel(ctx context.Context, model string, texts []eval.Text, chunks int, windows map[string][]int, progress func(float64)) (Scores, error) {
	v := ev.cfg
	var s Scores
	if len(texts) > 0 && (v.Objectives.Perplexity > 0 || chunks != v.Chunks) {
		reply, err := ev.pool.Perplexity(ctx, model, texts, eval.PerplexityOptions{Context: v.Context, Chunks: chunks, Windows: windows},
			newTextProgress(len(texts), progress))
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
	return ev.pool.Coherence(ctx, model, ev.coherenceOptions())
}

// coherenceOptions are the configured coherence settings, judged by the
// reference model.
func (ev *evaluator) coherenceOptions() eval.CoherenceOptions {
	opt := eval.DefaultCoherence()
	if len(ev.cfg.CoherencePrompts) > 0 {
		opt.Prompts = ev.cfg.CoherencePrompts
	}
	opt.MaxTokens = ev.cfg.CoherenceTokens
	opt.Reference = ev.reference
	return opt
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
