package evolve

import (
	"context"
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"
)

// Promotion (evaluation.promotions, with rotate_windows): successive
// halving inside a generation. Every candidate is first scored on the
// generation's `chunks` windows per text — cheap, and noisy: with a few
// windows the best-looking recipe is often the luckiest. The best third
// (rounded up) is then promoted: scored on as many fresh windows as it has
// been scored on so far (drawn from the same seeded permutation of the
// pool, see windowPlan.rung), and ranked on all of them together; the best
// third of those again, up to `promotions` times. A promotion is a
// candidate of its own in the history (ID "g3-c04^1": candidate g3-c04 at
// rung 1, its windows in the record), so --resume replays it.
//
// Ranking is by rung first, then fitness on the windows the rung has seen
// (see better): the candidate that survived most promotions leads its
// generation — it becomes the generation's finalist and the GA's first
// elite — on chunks·2^promotions windows per text instead of chunks.
// Measured candidates are compared only on the windows they share, so
// scores from different rungs never mix in one comparison.
//
// The cost per generation is population + Σ promoted; the default budget
// (max_evaluations = 0) counts them (see generationCost).

// bestThird is how many of n contenders a promotion scores: a third,
// rounded up.
func bestThird(n int) int { return (n + 2) / 3 }

// promotedSizes is how many candidates each promotion of a generation of
// n scores: the best third of the rung before.
func promotedSizes(n, promotions int) []int {
	var out []int
	for range promotions {
		n = bestThird(n)
		out = append(out, n)
	}
	return out
}

// generationCost is the evaluations a generation of n candidates takes
// with promotions.
func generationCost(n, promotions int) int {
	c := n
	for _, k := range promotedSizes(n, promotions) {
		c += k
	}
	return c
}

// pooled are a candidate's scores over every window it was scored on, per
// text the mean log-perplexity weighted by the windows of each rung.
type pooled struct {
	scores Scores
	counts map[string]int // windows per text so far
}

func (p *pooled) add(s Scores, windows map[string][]int) {
	if p.counts == nil {
		p.scores = Scores{Perplexity: maps.Clone(s.Perplexity), MeanLogPPL: s.MeanLogPPL,
			Coherence: s.Coherence, TaskAccuracy: s.TaskAccuracy}
		p.counts = map[string]int{}
		for name, w := range windows {
			p.counts[name] = len(w)
		}
		return
	}
	var sum float64
	for name, ppl := range p.scores.Perplexity {
		n, m := float64(p.counts[name]), float64(len(windows[name]))
		if n+m > 0 {
			ppl = math.Exp((n*math.Log(ppl) + m*math.Log(s.Perplexity[name])) / (n + m))
		}
		p.scores.Perplexity[name] = ppl
		p.counts[name] += len(windows[name])
		sum += math.Log(ppl)
	}
	if len(p.scores.Perplexity) > 0 {
		p.scores.MeanLogPPL = sum / float64(len(p.scores.Perplexity))
	}
	// Coherence and task accuracy do not depend on the windows.
	p.scores.Coherence = (p.scores.Coherence + s.Coherence) / 2
	p.scores.TaskAccuracy = (p.scores.TaskAccuracy + s.TaskAccuracy) / 2
}

// promote runs a generation's promotions (see above) after its candidates
// are scored on the generation's windows; inds' fitness becomes the one
// over all their windows and rung the promotions they passed.
func (e *engine) promote(ctx context.Context, gen int, inds []*individual) error {
	n := e.cfg.Evaluation.Promotions
	if e.plan == nil || n == 0 {
		return nil
	}
	base := e.windows
	defer func() { e.windows = base }()
	pools := map[*individual]*pooled{}
	var contenders []*individual
	for _, ind := range inds {
		if rec := e.ledger.lookup(ind.key); !ind.failed && rec != nil {
			p := &pooled{}
			p.add(rec.Scores, rec.Windows)
			pools[ind] = p
			contenders = append(contenders, ind)
		}
	}
	for r := 1; r <= n; r++ {
		sortByFitness(contenders)
		top := contenders[:bestThird(len(contenders))]
		if len(top) == 0 {
			return nil
		}
		w := e.plan.rung(gen, r)
		if w == nil {
			e.events.logf("info", "generation %d: no validation windows left for promotion %d", gen, r)
			return nil
		}
		e.windows = w
		copies := make([]*individual, len(top))
		ids := make([]string, len(top))
		for i, ind := range top {
			copies[i] = &individual{genome: ind.genome, origin: "promotion", parents: []string{ind.id},
				id: fmt.Sprintf("%s^%d", ind.id, r)}
			ids[i] = ind.id
		}
		e.events.logf("info", "generation %d, promotion %d: %s scored on %d more windows per text",
			gen, r, strings.Join(ids, ", "), len(w[e.texts[0]]))
		skipped := len(e.skipped)
		if err := e.evaluateRung(ctx, gen, r, copies); err != nil {
			return err
		}
		var next []*individual
		for i, ind := range top {
			c := copies[i]
			if slices.Contains(e.skipped[skipped:], c.id) {
				continue // the budget is spent: it keeps its rung
			}
			rec := e.ledger.lookup(c.key)
			if c.failed || rec == nil {
				ind.failed = true // scored once, broken on other windows
				continue
			}
			p := pools[ind]
			p.add(rec.Scores, rec.Windows)
			if ind.rung == 0 {
				ind.first = ind.fitness
			}
			ind.fitness, ind.objs = fitness(e.cfg.Evaluation.Objectives, p.scores)
			ind.rung = r
			next = append(next, ind)
		}
		if len(next) == 0 {
			return nil
		}
		contenders = next
	}
	return nil
}
