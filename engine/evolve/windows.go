package evolve

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"maps"
	"math"
	"math/rand/v2"
	"slices"
	"strings"

	"github.com/evomerge/evomerge/engine/eval"
	"github.com/evomerge/evomerge/engine/merge"
)

// Rotated fitness windows (evaluation.rotate_windows). A fitness measured
// on the same few windows in every generation is fitted by the search:
// the winner is the recipe that suits those thousand tokens. With
// rotation, each validation text's windows are split once, by the run's
// seed, into windows held back for the final pick and a selection pool;
// each generation scores all its candidates on `chunks` windows per text
// drawn afresh from the pool (seeded by the run's seed and the
// generation), so candidates of one generation — elites re-scored
// alongside their challengers — are compared on the same windows, and no
// fixed windows decide the run. A candidate's record key includes its
// window set, so a recipe met again in a later generation is scored on
// that generation's windows (that is how elites keep being tested), and
// history.jsonl records the windows every score is on, so --resume replays
// exactly. The best candidate of each generation is a finalist; the last
// `finalists` distinct ones are scored on the held-back windows, which no
// selection ever saw, and the best there is the run's best.

// windowPlan is a run's division of its validation windows.
type windowPlan struct {
	seed   uint64
	chunks int
	pool   map[string][]int // per text: the windows selection draws from
	pick   map[string][]int // per text: held back for the final pick
}

// newWindowPlan divides available windows per text (the count each text
// holds) into the pick set and the selection pool. A text too short for
// pick windows besides a generation's chunks holds back a third of its
// windows instead (none when it has fewer than 3); notes say so.
func newWindowPlan(seed uint64, available map[string]int, chunks, pick int) (*windowPlan, []string, error) {
	p := &windowPlan{seed: seed, chunks: chunks, pool: map[string][]int{}, pick: map[string][]int{}}
	var notes []string
	for _, name := range slices.Sorted(maps.Keys(available)) {
		n := available[name]
		if n < 1 {
			return nil, nil, fmt.Errorf("validation text %s has no window of the configured context", name)
		}
		k := pick
		if n < pick+chunks {
			k = n / 3
			notes = append(notes, fmt.Sprintf("validation text %s has %d windows, too few for evaluation.pick_windows = %d besides %d per generation: %d held back for the final pick",
				name, n, pick, chunks, k))
		}
		perm := textRNG(seed, "pick", name).Perm(n)
		p.pick[name] = slices.Sorted(slices.Values(perm[:k]))
		p.pool[name] = slices.Sorted(slices.Values(perm[k:]))
	}
	return p, notes, nil
}

// canPick reports whether every text holds windows back for the final
// pick.
func (p *windowPlan) canPick() bool {
	for _, w := range p.pick {
		if len(w) == 0 {
			return false
		}
	}
	return len(p.pick) > 0
}

// generation returns the windows generation gen scores, per text: chunks
// drawn from the pool without replacement (all of it when smaller), in
// increasing order.
func (p *windowPlan) generation(gen int) map[string][]int { return p.rung(gen, 0) }

// rung returns the windows of promotion r of generation gen (r = 0: the
// generation's own), per text: the next stretch of the same seeded
// permutation of the pool, as many windows as rungs 0 … r−1 hold together
// (chunks, then chunks, 2·chunks, …), so a candidate promoted r times has
// been scored on chunks·2^r distinct windows. Nil when the pool of some
// text has no windows left for rung r.
func (p *windowPlan) rung(gen, r int) map[string][]int {
	lo, hi := 0, p.chunks
	if r > 0 {
		lo, hi = p.chunks<<(r-1), p.chunks<<r
	}
	out := map[string][]int{}
	for name, pool := range p.pool {
		if p.chunks >= len(pool) {
			if r > 0 {
				return nil
			}
			out[name] = slices.Clone(pool)
			continue
		}
		if lo >= len(pool) {
			return nil
		}
		perm := textRNG(p.seed, fmt.Sprintf("generation %d", gen), name).Perm(len(pool))
		w := make([]int, 0, hi-lo)
		for _, i := range perm[lo:min(hi, len(pool))] {
			w = append(w, pool[i])
		}
		slices.Sort(w)
		out[name] = w
	}
	return out
}

// textRNG is a generator for one purpose and text, from the run's seed.
func textRNG(seed uint64, purpose, text string) *rand.Rand {
	h := fnv.New64a()
	fmt.Fprintf(h, "%s\x00%s", purpose, text)
	return rand.New(rand.NewPCG(seed, h.Sum64()))
}

// windowsKey is the canonical text of a window set, part of record keys.
func windowsKey(w map[string][]int) string {
	if len(w) == 0 {
		return ""
	}
	var b strings.Builder
	for _, name := range slices.Sorted(maps.Keys(w)) {
		fmt.Fprintf(&b, "%s:%v;", name, w[name])
	}
	return b.String()
}

// Finalist is a candidate of the final pick and its fitness on the
// held-back validation windows.
type Finalist struct {
	ID          string  `json:"id"`
	Key         string  `json:"key"`
	Fitness     float64 `json:"fitness"`      // on its generation's windows
	PickFitness float64 `json:"pick_fitness"` // on the held-back windows
	PickScores  Scores  `json:"pick_scores"`
	Err         string  `json:"error,omitempty"`
}

// pickFinal scores the last evaluation.finalists distinct recipes among
// the generations' best on the held-back windows and returns the best
// there (nil when none could be scored), noting them in res. A finalist
// that fails is noted and passed over; cancellation and workers that
// cannot start end the run.
func (e *engine) pickFinal(ctx context.Context, gbest []*individual, res *Result) (*individual, error) {
	var finalists []*individual
	seen := map[string]bool{}
	for i := len(gbest) - 1; i >= 0 && len(finalists) < e.cfg.Evaluation.Finalists; i-- {
		rec := e.ledger.lookup(gbest[i].key)
		if rec == nil || seen[rec.Recipe] {
			continue
		}
		seen[rec.Recipe] = true
		finalists = append(finalists, gbest[i])
	}
	res.PickWindows = e.plan.pick
	// The finalists are scored concurrently (as many at once as the
	// measurer evaluates), then compared in their order.
	picked := make([]Finalist, len(finalists))
	idx := make([]int, len(finalists))
	for i := range idx {
		idx[i] = i
	}
	err := dispatch(ctx, e.opt.Control, e.measurer.parallel(), idx, func(i int) error {
		ind := finalists[i]
		rec := e.ledger.lookup(ind.key)
		picked[i] = Finalist{ID: ind.id, Key: ind.key, Fitness: ind.fitness}
		r, err := merge.ParseRecipe(rec.Recipe)
		var scores Scores
		if err == nil {
			// The pick is not a record of the history (a resumed run
			// scores the finalists again), but it travels the queue as a
			// job of its own, with a key of its own.
			pick := &Record{ID: ind.id, Key: ind.key + "/pick", Windows: e.plan.pick}
			e.events.logf("info", "final pick: scoring %s (%s) on the held-back validation windows", ind.id, rec.Summary)
			scores, err = e.measurer.measure(ctx, ind.id, r, pick, func(Status, float64) {})
			if e.ev != nil {
				e.ev.recorded(pick.Key)
			}
		}
		var noWorkers *eval.StartError
		if errors.As(err, &noWorkers) {
			return err
		}
		if err != nil {
			if ctx.Err() == nil {
				picked[i].Err = err.Error()
				e.events.logf("warn", "final pick: %s failed: %v", ind.id, err)
			}
			return nil
		}
		picked[i].PickScores = scores
		picked[i].PickFitness, _ = fitness(e.cfg.Evaluation.Objectives, scores)
		return nil
	})
	if err != nil {
		return nil, err
	}
	var best *individual
	bestFit := math.Inf(-1)
	for i, f := range picked {
		if f.Err == "" && f.PickFitness > bestFit {
			best, bestFit = finalists[i], f.PickFitness
		}
	}
	res.Finalists = append(res.Finalists, picked...)
	if best != nil {
		e.events.logf("info", "final pick: %s, fitness %.4f on %d held-back windows per text", best.id, bestFit, e.cfg.Evaluation.PickWindows)
	}
	return best, nil
}
