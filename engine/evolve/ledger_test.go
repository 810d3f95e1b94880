package evolve

import "testing"

// TestLedgerClaim: a recipe counts against the budget on its first
// appearance in the timeline, replayed or not; a repeat is a cache hit and
// costs nothing; once the budget is spent a new recipe is refused, while
// known ones are still answered.
func TestLedgerClaim(t *testing.T) {
	l := newLedger(3)
	l.restore([]*Record{{Key: "replayed", Status: StatusDone, Fitness: -1}})
	type want struct {
		cached, first, over bool
		evaluations         int
	}
	for i, step := range []struct {
		key  string
		want want
	}{
		{"replayed", want{cached: true, first: true, evaluations: 1}},
		{"replayed", want{cached: true, evaluations: 1}},
		{"a", want{first: true, evaluations: 2}},
		{"b", want{first: true, evaluations: 3}},
		{"c", want{over: true, evaluations: 3}},
		{"replayed", want{cached: true, evaluations: 3}},
	} {
		rec, cached, first, over := l.claim(step.key)
		_, n, spent := l.state()
		got := want{cached, first, over, n}
		if got != step.want {
			t.Errorf("step %d, claim(%q) = %+v, want %+v", i, step.key, got, step.want)
		}
		if cached != (rec != nil) {
			t.Errorf("step %d: cached %v with record %v", i, cached, rec)
		}
		if spent != (n >= 3) {
			t.Errorf("step %d: spent %v after %d of 3", i, spent, n)
		}
		if step.key == "a" {
			l.record(&Record{Key: "a", Status: StatusDone, MergeSec: 1.5, EvalSec: 2})
		}
	}
	if !l.known("a") || l.known("c") {
		t.Error("known: a counted and c refused")
	}
	if c := l.costs(); c.CacheHits != 2 || c.Merge.Seconds() != 1.5 || c.Evaluate.Seconds() != 2 {
		t.Errorf("costs %+v, want 2 cache hits, 1.5 s merging, 2 s evaluating", c)
	}
	if rec, cached, _, _ := l.claim("a"); !cached || rec.Key != "a" {
		t.Error("a recorded outcome is not answered from the ledger")
	}
}

// TestLedgerBest: the best is the first candidate with the highest
// fitness; failed candidates never are.
func TestLedgerBest(t *testing.T) {
	l := newLedger(10)
	for _, ind := range []*individual{
		{id: "failed", fitness: 5, failed: true}, {id: "a", fitness: -2}, {id: "b", fitness: -1}, {id: "c", fitness: -1}, {id: "d", fitness: -3},
	} {
		l.offer(ind)
	}
	if best, _, _ := l.state(); best == nil || best.id != "b" {
		t.Errorf("best %+v, want b", best)
	}
}
