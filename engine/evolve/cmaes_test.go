package evolve

import (
	"slices"
	"testing"
	"time"

	"github.com/evomerge/evomerge/engine/evolve/internal/testfunc"
)

// TestCMAESOnSphere: CMA-ES beats random search at equal evaluations on
// the sphere and keeps improving with a larger budget. (gonum's CmaEsChol
// samples from its adapted Cholesky factor alone, so its spread shrinks
// slowly: ~1e-2 after 1000 evaluations in 6 dimensions, where textbook
// CMA-ES would reach machine precision; these bounds pin today's rate.)
func TestCMAESOnSphere(t *testing.T) {
	f := testfunc.Sphere{Center: center}.F
	short := landscapeRuns(t, f, 30, "cmaes", "random")
	long := landscapeRuns(t, f, 100, "cmaes")
	t.Logf("sphere, best loss over seeds 1-5: cmaes %.2e (300 evaluations), %.2e (1000); random %.2e (300)",
		mean(short["cmaes"]), mean(long["cmaes"]), mean(short["random"]))
	if mean(short["cmaes"]) > 0.7*mean(short["random"]) {
		t.Errorf("CMA-ES %.2e does not beat random search %.2e", mean(short["cmaes"]), mean(short["random"]))
	}
	if mean(long["cmaes"]) > 0.015 || mean(long["cmaes"]) > mean(short["cmaes"])/2 {
		t.Errorf("CMA-ES after 1000 evaluations: %.2e (after 300: %.2e)", mean(long["cmaes"]), mean(short["cmaes"]))
	}
}

// TestCMAESGenomes: CMA-ES varies only the genes its technique reads,
// leaving the others at the technique's neutral values, within [0,1].
func TestCMAESGenomes(t *testing.T) {
	s := unitSpace(t, "ties")
	op := unitOperators(s)
	c := newCMAES(op, "ties", 1.0/6, 8, 1)
	defer c.close()
	used, neutral := s.Used("ties"), op.neutral("ties")
	inds := c.ask(0)
	if len(inds) != 8 {
		t.Fatalf("population of %d, want 8", len(inds))
	}
	for _, ind := range inds {
		if ind.origin != "cmaes" || ind.genome.Technique != "ties" {
			t.Fatalf("origin %s technique %s", ind.origin, ind.genome.Technique)
		}
		var varied bool
		for i, v := range ind.genome.Genes {
			switch {
			case v < 0 || v > 1:
				t.Fatalf("gene %d = %v outside [0,1]", i, v)
			case !slices.Contains(used, i) && v != neutral.Genes[i]:
				t.Fatalf("gene %d, unused by ties, moved from %v to %v", i, neutral.Genes[i], v)
			case slices.Contains(used, i) && v != neutral.Genes[i]:
				varied = true
			}
		}
		if !varied {
			t.Fatal("a sample equals the neutral genome")
		}
	}
}

// TestCMAESStops: a technique without continuous genes leaves CMA-ES
// nothing to search (converged at once), and closing it in the middle of a
// generation — a cancelled run — returns instead of blocking.
func TestCMAESStops(t *testing.T) {
	s := unitSpace(t, "model_stock", "ties")
	if c := newCMAES(unitOperators(s), "model_stock", 1.0/6, 8, 1); c.ask(0) != nil {
		t.Error("CMA-ES over no genes proposed candidates")
	}
	for _, tell := range []bool{false, true} {
		c := newCMAES(unitOperators(s), "ties", 1.0/6, 8, 1)
		inds := c.ask(0)
		if tell {
			for _, ind := range inds {
				ind.fitness = -1
			}
			c.tell(0, inds)
		}
		done := make(chan bool)
		go func() { c.close(); done <- true }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatalf("close after ask (told: %v) blocks", tell)
		}
	}
}
