package evolve

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

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
	var infos []CandidateInfo
	jobs := map[string]*job{}
	var order []string
	for i, ind := range inds {
		ind.id = fmt.Sprintf("g%d-c%02d", gen, i)
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
		infos = append(infos, CandidateInfo{ID: ind.id, Generation: gen, Technique: ind.genome.Technique, Origin: ind.origin,
			Parents: ind.parents, Summary: e.space.Summary(ind.genome, r), Recipe: string(text), Key: ind.key})
		if j, ok := jobs[ind.key]; ok {
			j.inds = append(j.inds, ind)
			continue
		}
		jobs[ind.key] = &job{recipe: r, inds: []*individual{ind}}
		order = append(order, ind.key)
	}
	e.events.emit(GenerationStarted{Generation: gen, Candidates: infos})
	for i, ind := range inds {
		if ind.failed {
			e.events.emit(CandidateScored{Candidate: infos[i], Status: StatusFailed, Err: e.ledger.lookup(ind.key).Err})
		}
	}

	// Resolve cache hits and the budget in candidate order (deterministic).
	var work []*job
	for _, key := range order {
		j := jobs[key]
		rec, cached, first, over := e.ledger.claim(key)
		if over {
			for _, ind := range j.inds {
				ind.failed = true
			}
			continue // over budget: not evaluated
		}
		if cached {
			e.apply(j.inds, rec, gen, infos, first)
			continue
		}
		work = append(work, j)
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

// apply copies a record's outcome to the individuals that share its key
// and reports each.
func (e *engine) apply(inds []*individual, rec *Record, gen int, infos []CandidateInfo, fresh bool) {
	for k, ind := range inds {
		ind.failed = rec.Status == StatusFailed
		ind.fitness, ind.objs = rec.Fitness, rec.Objectives
		status := rec.Status
		if k > 0 || !fresh || rec.Generation != gen || rec.ID != ind.id {
			if status == StatusDone {
				status = StatusCached
			}
		}
		n := e.ledger.offer(ind)
		var info CandidateInfo
		for _, ci := range infos {
			if ci.ID == ind.id {
				info = ci
			}
		}
		e.events.emit(CandidateScored{Candidate: info, Scores: rec.Scores, Fitness: rec.Fitness, Objectives: rec.Objectives,
			Status: status, Err: rec.Err, MergeTime: time.Duration(rec.MergeSec * float64(time.Second)),
			EvalTime: time.Duration(rec.EvalSec * float64(time.Second)), Evaluation: n})
	}
}

// score measures one candidate and records it in the ledger and the
// history. Only cancellation (and a failure to write the history) is
// returned as an error; a candidate that cannot be merged or evaluated is
// recorded as failed.
func (e *engine) score(ctx context.Context, gen int, ind *individual, r *merge.Recipe, info CandidateInfo) (*Record, error) {
	rec := &Record{ID: ind.id, Generation: gen, Key: ind.key, Technique: ind.genome.Technique, Origin: ind.origin,
		Parents: ind.parents, Summary: info.Summary, Recipe: info.Recipe, Genome: ind.genome, Windows: e.windows, Time: time.Now()}
	progress := func(s Status, f float64) { e.events.emit(CandidateProgress{ID: ind.id, Status: s, Fraction: f}) }
	scores, err := e.measurer.measure(ctx, ind.id, r, rec, progress)
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	if err != nil {
		rec.Status, rec.Err = StatusFailed, err.Error()
		e.events.logf("warn", "%s (%s) failed: %v", ind.id, info.Summary, err)
	} else {
		rec.Status, rec.Scores = StatusDone, scores
		rec.Fitness, rec.Objectives = fitness(e.cfg.Evaluation.Objectives, scores)
	}
	e.ledger.record(rec)
	if err := e.history.append(rec); err != nil {
		return nil, err
	}
	return rec, nil
}
