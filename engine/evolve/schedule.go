package evolve

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/evomerge/evomerge/engine/eval"
	"github.com/evomerge/evomerge/engine/merge"
)

// dispatch runs do for each job, in order, at most limit at a time, and
// starts none while ctl is paused. Once ctx is cancelled it starts no more
// jobs; it waits for the started ones and returns ctx's error, else the
// first error a job returned (a failing job does not stop the others).
func dispatch[J any](ctx context.Context, ctl *Control, limit int, jobs []J, do func(J) error) error {
	sem := make(chan struct{}, max(1, limit))
	var wg sync.WaitGroup
	var firstErr error
	var errMu sync.Mutex
	for _, j := range jobs {
		ctl.wait(ctx.Done())
		if ctx.Err() != nil {
			break
		}
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			if err := do(j); err != nil {
				errMu.Lock()
				if firstErr == nil {
					firstErr = err
				}
				errMu.Unlock()
			}
		}()
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return err
	}
	return firstErr
}

// job is one distinct recipe of a generation and the candidates that
// share it (equal keys); the first of them is evaluated for all.
type job struct {
	recipe *merge.Recipe
	inds   []*individual
}

// evaluate scores a generation: cached candidates at once, the others
// through the measurer, one more in flight than it evaluates at once so
// that a merge overlaps an evaluation.
func (e *engine) evaluate(ctx context.Context, gen int, inds []*individual) error {
	return e.evaluateRung(ctx, gen, 0, inds)
}

// evaluateRung scores candidates on the current windows: at rung 0 a
// generation's (named here, announced by GenerationStarted), at a
// promotion's rung the promoted candidates' copies, named by promote.
func (e *engine) evaluateRung(ctx context.Context, gen, rung int, inds []*individual) error {
	var infos []CandidateInfo
	jobs := map[string]*job{}
	var order []string
	for i, ind := range inds {
		if rung == 0 {
			ind.id = fmt.Sprintf("g%d-c%02d", gen, i)
		}
		r, err := e.space.Decode(ind.genome)
		var text []byte
		if err == nil {
			text, err = r.Encode()
		}
		if err != nil {
			ind.failed = true
			ind.key = "invalid-" + ind.id
			e.ledger.record(&Record{ID: ind.id, Generation: gen, Key: ind.key, Technique: ind.genome.Technique, Origin: ind.origin,
				Parents: ind.parents, Genome: ind.genome, Status: StatusFailed, Err: err.Error(), Time: time.Now()})
			infos = append(infos, CandidateInfo{ID: ind.id, Generation: gen, Technique: ind.genome.Technique, Origin: ind.origin, Parents: ind.parents, Summary: err.Error()})
			continue
		}
		ind.key = recipeKey(text, e.keySalt())
		if ind.wantGrad {
			// A score with its gradient is another measurement than one
			// without (the gradient graph's, not llama.cpp's).
			ind.key = recipeKey(text, e.keySalt()+"\x00gradient")
		}
		infos = append(infos, CandidateInfo{ID: ind.id, Generation: gen, Technique: ind.genome.Technique, Origin: ind.origin,
			Parents: ind.parents, Summary: e.space.Summary(ind.genome, r), Recipe: string(text), Key: ind.key})
		if j, ok := jobs[ind.key]; ok {
			j.inds = append(j.inds, ind)
			continue
		}
		jobs[ind.key] = &job{recipe: r, inds: []*individual{ind}}
		order = append(order, ind.key)
	}
	if rung == 0 {
		e.events.emit(GenerationStarted{Generation: gen, Candidates: infos})
	}
	for i, ind := range inds {
		if ind.failed {
			e.events.emit(CandidateScored{Candidate: infos[i], Status: StatusFailed, Err: e.ledger.lookup(ind.key).Err})
		}
	}

	// Resolve cache hits and the budget in candidate order (deterministic).
	var work []*job
	skipped := len(e.skipped)
	for _, key := range order {
		j := jobs[key]
		rec, cached, first, over := e.ledger.claim(key)
		if over {
			e.skip(j.inds, infos)
			continue // over budget: not evaluated
		}
		if cached {
			e.apply(j.inds, rec, gen, infos, first)
			continue
		}
		work = append(work, j)
	}
	if n := len(e.skipped) - skipped; n > 0 {
		e.events.logf("info", "the evaluation budget of %d is spent: %d candidates of generation %d are skipped", e.ledger.budget, n, gen)
	}

	return dispatch(ctx, e.opt.Control, e.measurer.parallel()+1, work, func(j *job) error {
		lead := j.inds[0]
		rec, err := e.score(ctx, gen, lead, j.recipe, infos[slices.Index(inds, lead)])
		if err != nil {
			return err
		}
		e.apply(j.inds, rec, gen, infos, true)
		return nil
	})
}

// skip gives candidates that the spent budget leaves unevaluated their
// final status. They rank below every scored candidate, like failed ones,
// and are not recorded in the history (which holds evaluations); the
// result lists them.
func (e *engine) skip(inds []*individual, infos []CandidateInfo) {
	why := fmt.Sprintf("not evaluated: the evaluation budget of %d is spent", e.ledger.budget)
	for _, ind := range inds {
		ind.failed = true
		e.skipped = append(e.skipped, ind.id)
		_, evaluations, _ := e.ledger.state()
		e.events.emit(CandidateScored{Candidate: infoOf(infos, ind.id), Status: StatusSkipped, Err: why, Evaluation: evaluations})
	}
}

// apply copies a record's outcome to the individuals that share its key
// and reports each.
func (e *engine) apply(inds []*individual, rec *Record, gen int, infos []CandidateInfo, fresh bool) {
	for k, ind := range inds {
		ind.failed = rec.Status == StatusFailed
		ind.fitness, ind.objs, ind.grad = rec.Fitness, rec.Objectives, rec.Gradient
		status := rec.Status
		if k > 0 || !fresh || rec.Generation != gen || rec.ID != ind.id {
			if status == StatusDone {
				status = StatusCached
			}
		}
		n := e.ledger.offer(ind)
		e.events.emit(CandidateScored{Candidate: infoOf(infos, ind.id), Scores: rec.Scores, Fitness: rec.Fitness, Objectives: rec.Objectives,
			Status: status, Err: rec.Err, MergeTime: time.Duration(rec.MergeSec * float64(time.Second)),
			EvalTime: time.Duration(rec.EvalSec * float64(time.Second)), Evaluation: n})
	}
}

// infoOf is candidate id's entry in infos.
func infoOf(infos []CandidateInfo, id string) CandidateInfo {
	if i := slices.IndexFunc(infos, func(ci CandidateInfo) bool { return ci.ID == id }); i >= 0 {
		return infos[i]
	}
	return CandidateInfo{ID: id}
}

// score measures one candidate and records it in the ledger and the
// history. Only cancellation, an evaluation pool that has no worker left
// (*eval.StartError) and a failure to write the history are returned as
// errors; a candidate that cannot be merged or evaluated, or whose scores
// are not finite, is recorded as failed.
func (e *engine) score(ctx context.Context, gen int, ind *individual, r *merge.Recipe, info CandidateInfo) (*Record, error) {
	rec := &Record{ID: ind.id, Generation: gen, Key: ind.key, Technique: ind.genome.Technique, Origin: ind.origin,
		Parents: ind.parents, Summary: info.Summary, Recipe: info.Recipe, Genome: ind.genome, Windows: e.windows, Time: time.Now(),
		wantGradient: ind.wantGrad}
	progress := func(s Status, f float64) { e.events.emit(CandidateProgress{ID: ind.id, Status: s, Fraction: f}) }
	scores, err := e.measurer.measure(ctx, ind.id, r, rec, progress)
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	var noWorkers *eval.StartError
	if errors.As(err, &noWorkers) {
		// Not the candidate's fault: the run cannot go on. Nothing is
		// recorded, so a resumed run evaluates the candidate.
		return nil, err
	}
	// A failure is reported by the candidate's CandidateScored (Err), which
	// every consumer shows; a log line would repeat it.
	switch why := nonFinite(scores); {
	case err != nil:
		rec.Status, rec.Err = StatusFailed, err.Error()
	case why != "":
		rec.Status, rec.Scores = StatusFailed, scores
		rec.Err = why + ": a broken model, ranked below every scored candidate"
	default:
		rec.Status, rec.Scores = StatusDone, scores
		rec.Fitness, rec.Objectives = fitness(e.cfg.Evaluation.Objectives, scores)
		if ind.wantGrad {
			if rec.Gradient, err = e.space.geneGradient(ind.genome, rec.coefGradient, e.cfg.Evaluation.Objectives.Perplexity); err != nil {
				rec.Status, rec.Err = StatusFailed, "gradient: "+err.Error()
			}
		}
	}
	e.ledger.record(rec)
	if err := e.history.append(rec); err != nil {
		return nil, err
	}
	if e.ev != nil {
		e.ev.recorded(rec.Key)
	}
	return rec, nil
}
