package evolve

import (
	"fmt"
	"sync"
	"time"
)

// ledger is the run's account of its candidates: the outcome of every
// recipe by key (replayed from history.jsonl on resume, so a replayed
// recipe is never evaluated again), the recipes counted against the
// evaluation budget in this run's timeline, the best candidate so far and
// the cost of the evaluations. The scheduler's goroutines share it; its
// lock guards these fields only and is never held across IO or events.
type ledger struct {
	mu          sync.Mutex
	records     map[string]*Record // by recipe key
	seen        map[string]bool    // keys counted toward the budget in this run
	evaluations int
	budget      int
	best        *individual
	timings     Timings // Merge, Evaluate and CacheHits
}

func newLedger(budget int) *ledger {
	return &ledger{records: map[string]*Record{}, seen: map[string]bool{}, budget: budget}
}

// restore adds replayed records; a later record of a key replaces an
// earlier one.
func (l *ledger) restore(recs []*Record) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, r := range recs {
		l.records[r.Key] = r
	}
}

// size is the number of recipes whose outcome is known.
func (l *ledger) size() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.records)
}

// known reports whether key was counted in this run's timeline.
func (l *ledger) known(key string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.seen[key]
}

// lookup returns key's record (nil if none).
func (l *ledger) lookup(key string) *Record {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.records[key]
}

// claim decides what becomes of a recipe, in candidate order: rec is its
// known outcome (cached) if any; first means this is its first appearance
// in the timeline, which counts it as an evaluation — replayed outcomes
// included, so a resumed run spends its budget exactly as the uninterrupted
// one did. A recipe that would be evaluated when the budget is spent is
// over and not counted. A cached repeat counts as a cache hit.
func (l *ledger) claim(key string) (rec *Record, cached, first, over bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	rec, cached = l.records[key]
	first = !l.seen[key]
	if first && !cached && l.evaluations >= l.budget {
		return nil, false, false, true
	}
	if first {
		l.seen[key] = true
		l.evaluations++
	}
	if cached && !first {
		l.timings.CacheHits++
	}
	return rec, cached, first, false
}

// record stores a fresh outcome and adds its merge and evaluation time.
func (l *ledger) record(rec *Record) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.records[rec.Key] = rec
	l.timings.Merge += time.Duration(rec.MergeSec * float64(time.Second))
	l.timings.Evaluate += time.Duration(rec.EvalSec * float64(time.Second))
}

// offer makes ind the best so far if it scored better than every earlier
// candidate, and returns the evaluations counted so far.
func (l *ledger) offer(ind *individual) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !ind.failed && (l.best == nil || ind.fitness > l.best.fitness ||
		ind.fitness == l.best.fitness && scheduledBefore(ind.id, l.best.id)) {
		l.best = ind
	}
	return l.evaluations
}

// scheduledBefore orders candidate IDs ("g3-c04", "g3-c04^1") by
// generation, then position: of equally fit candidates the best is the
// one scheduled first, whichever result arrived first.
func scheduledBefore(a, b string) bool {
	var ga, ca, gb, cb int
	na, _ := fmt.Sscanf(a, "g%d-c%d", &ga, &ca)
	nb, _ := fmt.Sscanf(b, "g%d-c%d", &gb, &cb)
	if na != 2 || nb != 2 {
		return a < b
	}
	if ga != gb {
		return ga < gb
	}
	if ca != cb {
		return ca < cb
	}
	return a < b
}

// state returns the best candidate so far, the evaluations counted and
// whether they exhaust the budget.
func (l *ledger) state() (best *individual, evaluations int, spent bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.best, l.evaluations, l.evaluations >= l.budget
}

// costs returns the accumulated merge and evaluation times and cache hits.
func (l *ledger) costs() Timings {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.timings
}
