package evolve

import (
	"context"
	"errors"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/evomerge/evomerge/engine/config"
	"github.com/evomerge/evomerge/engine/dist"
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

// evaluator measures candidates for real. A candidate travels as a job
// on the run's queue (engine/dist) to a host — the local worker pool or a
// joined worker — as its recipe: the host's worker, prepared once with
// the run's sources, merges it into the model it keeps loaded (in place;
// data-flow recipes through a temporary file in the worker) and scores it,
// so no candidate file is written here and nothing is reloaded (see
// eval.Pool.Candidate). A recipe that is just one source model is scored
// from that model's file. Each candidate takes one worker slot for its
// merge and its evaluation together. A result is acknowledged to the
// queue only once its history line is written (recorded).
type evaluator struct {
	cfg       config.Evaluation
	pool      *eval.Pool // the local workers; nil with hardware.workers = 0
	queue     *dist.Coordinator
	texts     []eval.Text
	tasks     []eval.Task
	reference string        // the model coherence is judged against
	slots     chan struct{} // one per local worker; nil when workers join
	wide      int           // candidates in flight when workers join
	tensors   atomic.Int64  // merged tensors the workers reused
	mu        sync.Mutex
	pending   map[string]*dist.Outcome // results not yet recorded, by key
}

// newEvaluator measures on pool alone, or, when remote, on whichever
// hosts join (wide candidates in flight, each host pulling one per free
// slot).
func newEvaluator(cfg config.Evaluation, pool *eval.Pool, texts []eval.Text, tasks []eval.Task, reference string, remote bool, wide int) *evaluator {
	ev := &evaluator{cfg: cfg, pool: pool, texts: texts, tasks: tasks, reference: reference, pending: map[string]*dist.Outcome{}}
	if remote {
		ev.wide = max(1, wide)
	} else {
		ev.slots = make(chan struct{}, pool.Size())
	}
	return ev
}

func (ev *evaluator) parallel() int {
	if ev.slots == nil {
		return ev.wide
	}
	return cap(ev.slots)
}

// sources are the run's sources, the model files at paths (recipes name
// them by path).
func sources(paths []string) []eval.SourceRef {
	var refs []eval.SourceRef
	for _, p := range paths {
		refs = append(refs, eval.SourceRef{Name: p, Path: p})
	}
	return refs
}

// measure scores a candidate on a host: merged and evaluated by a worker,
// or, when it is a source model, evaluated from that model's file.
func (ev *evaluator) measure(ctx context.Context, id string, r *merge.Recipe, rec *Record, progress func(Status, float64)) (Scores, error) {
	progress(StatusQueued, 0)
	if ev.slots != nil {
		select {
		case ev.slots <- struct{}{}:
		case <-ctx.Done():
			return Scores{}, ctx.Err()
		}
		defer func() { <-ev.slots }()
	}
	text, err := r.Encode()
	if err != nil {
		return Scores{}, err
	}
	job := dist.Job{Key: rec.Key, ID: id, Request: ev.request(string(text), rec.Windows)}
	job.Request.Gradient = rec.wantGradient
	if model, direct := directModel(r); direct {
		job.Model = model
		progress(StatusEvaluating, 0)
	} else {
		progress(StatusMerging, 0)
	}
	track := newTextProgress(len(ev.texts), func(f float64) { progress(StatusEvaluating, f) })
	out, err := ev.queue.Submit(ctx, job, func(stage string, done, total int) {
		if stage == eval.ProgressMerge {
			progress(StatusMerging, float64(done)/float64(max(total, 1)))
			return
		}
		track(stage, done, total)
	})
	if err != nil {
		return Scores{}, err
	}
	ev.mu.Lock()
	ev.pending[rec.Key] = out
	ev.mu.Unlock()
	reply := out.Reply
	rec.MergeSec, rec.EvalSec = reply.MergeSeconds, reply.EvalSeconds
	ev.tensors.Add(int64(reply.Kept + reply.CacheHits))
	if out.Kind == dist.KindStart {
		ev.recorded(rec.Key) // nothing to record: the run stops
		return Scores{}, &eval.StartError{Attempts: out.Attempts, Err: errors.New(out.Err)}
	}
	if out.Err != "" {
		return Scores{}, errors.New(out.Err)
	}
	rec.coefGradient = reply.Gradient
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

// request is the worker request that measures every configured objective
// of recipe text, perplexity on the given windows per text (nil: the
// first chunks).
func (ev *evaluator) request(text string, windows map[string][]int) eval.CandidateRequest {
	v := ev.cfg
	req := eval.CandidateRequest{Recipe: text}
	if len(ev.texts) > 0 && v.Objectives.Perplexity > 0 {
		req.Texts = ev.texts
		req.Perplexity = &eval.PerplexityOptions{Context: v.Context, Chunks: v.Chunks, ScoreFrom: v.ScoreFrom, Windows: windows}
	}
	if v.Objectives.Coherence > 0 {
		opt := ev.coherenceOptions()
		req.Coherence = &opt
	}
	if v.Objectives.Tasks > 0 && len(ev.tasks) > 0 {
		req.Tasks = ev.tasks
	}
	return req
}

// recorded acknowledges key's result to the queue: its history line is
// written, so a restarted coordinator need not receive it again.
func (ev *evaluator) recorded(key string) {
	ev.mu.Lock()
	out := ev.pending[key]
	delete(ev.pending, key)
	ev.mu.Unlock()
	if out != nil {
		_ = out.Ack()
	}
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
