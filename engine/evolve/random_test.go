package evolve

import (
	"math"
	"math/rand/v2"
	"testing"
)

// TestRandomSearchIsUniform: random search draws every generation afresh,
// each technique equally often and every gene uniformly on [0,1] (mean
// 1/2, variance 1/12), and learns nothing from tell.
func TestRandomSearchIsUniform(t *testing.T) {
	s := unitSpace(t, "linear", "ties", "dfs")
	r := &randomSearch{op: unitOperators(s), rng: rand.New(rand.NewPCG(11, 12)), size: 10}
	techniques := map[string]int{}
	var n int
	var sum, sumSq float64
	const gens = 300
	for gen := range gens {
		inds := r.ask(gen)
		if len(inds) != 10 {
			t.Fatalf("generation of %d", len(inds))
		}
		for _, ind := range inds {
			if ind.origin != "random" || len(ind.parents) != 0 {
				t.Fatalf("origin %q parents %v", ind.origin, ind.parents)
			}
			techniques[ind.genome.Technique]++
			for _, v := range ind.genome.Genes {
				n++
				sum += v
				sumSq += v * v
			}
		}
		r.tell(gen, inds)
	}
	for _, tech := range s.Techniques {
		if f := float64(techniques[tech]) / (gens * 10); !within(f, 1.0/3, gens*10) {
			t.Errorf("%s drawn in %.4f of genomes, want 1/3", tech, f)
		}
	}
	m := sum / float64(n)
	v := sumSq/float64(n) - m*m
	// Standard errors: √(1/12/n) for the mean, about √(1/180/n) for the variance.
	if math.Abs(m-0.5) > 5*math.Sqrt(1.0/12/float64(n)) || math.Abs(v-1.0/12) > 5*math.Sqrt(1.0/180/float64(n)) {
		t.Errorf("genes have mean %.4f and variance %.5f, want 0.5 and %.5f", m, v, 1.0/12)
	}
	if r.front() != nil {
		t.Error("random search has no Pareto front")
	}
}
