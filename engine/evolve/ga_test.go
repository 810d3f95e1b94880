package evolve

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/evomerge/evomerge/engine/config"
	"github.com/evomerge/evomerge/engine/evolve/internal/testfunc"
)

// within reports whether an observed frequency is within 5 standard errors
// of probability p over n draws.
func within(freq, p float64, n int) bool {
	return math.Abs(freq-p) <= 5*math.Sqrt(p*(1-p)/float64(n))+1e-12
}

// TestTournamentSelection: the best of k uniform draws (with replacement)
// from n ranked individuals is the one of rank j (1 = worst) with
// probability (j/n)^k − ((j−1)/n)^k; a failed candidate ranks below every
// scored one whatever its fitness.
func TestTournamentSelection(t *testing.T) {
	pop := []*individual{{id: "failed", fitness: 100, failed: true}}
	for f := range 4 {
		pop = append(pop, &individual{id: fmt.Sprintf("f%d", f), fitness: float64(f)})
	}
	rank := map[string]int{"failed": 1, "f0": 2, "f1": 3, "f2": 4, "f3": 5}
	const draws, k = 60000, 3
	rng := rand.New(rand.NewPCG(1, 2))
	count := map[string]int{}
	for range draws {
		count[tournament(rng, pop, k, better).id]++
	}
	n := float64(len(pop))
	for id, j := range rank {
		p := math.Pow(float64(j)/n, k) - math.Pow(float64(j-1)/n, k)
		if freq := float64(count[id]) / draws; !within(freq, p, draws) {
			t.Errorf("%s (rank %d) won %.4f of tournaments, want %.4f", id, j, freq, p)
		}
	}
}

// TestMutate: each continuous gene moves with probability mutationRate by
// N(0, mutationScale); a dfs slot flips with probability min(rate,
// 2/slots); the technique switches to a uniformly drawn one with
// probability techniqueRate.
func TestMutate(t *testing.T) {
	s := unitSpace(t, "linear", "ties", "dfs")
	op := unitOperators(s)
	in, slots := s.offIn(), s.slots()
	g := op.neutral("linear")
	for i := range g.Genes {
		if i < in || i >= in+slots {
			g.Genes[i] = 0.5 // far from the bounds: clamping is negligible at σ = 0.15
		}
	}
	const trials = 4000
	rng := rand.New(rand.NewPCG(3, 4))
	var moved, genes, flipped, slotGenes, switched int
	var sumSq float64
	for range trials {
		c := op.mutate(rng, g)
		if c.Technique != g.Technique {
			switched++
		}
		for i, v := range c.Genes {
			if i >= in && i < in+slots {
				slotGenes++
				if v != g.Genes[i] {
					flipped++
					if v != 1-g.Genes[i] {
						t.Fatalf("slot %d went from %v to %v, not flipped", i-in, g.Genes[i], v)
					}
				}
				continue
			}
			genes++
			if v != g.Genes[i] {
				moved++
				sumSq += (v - g.Genes[i]) * (v - g.Genes[i])
			}
		}
	}
	if f := float64(moved) / float64(genes); !within(f, op.mutationRate, genes) {
		t.Errorf("%.4f of continuous genes moved, want %.4f", f, op.mutationRate)
	}
	if sd := math.Sqrt(sumSq / float64(moved)); math.Abs(sd-op.mutationScale) > 0.02*op.mutationScale {
		t.Errorf("moves have standard deviation %.4f, want %.4f", sd, op.mutationScale)
	}
	flip := min(op.mutationRate, 2/float64(slots))
	if f := float64(flipped) / float64(slotGenes); !within(f, flip, slotGenes) {
		t.Errorf("%.4f of dfs slots flipped, want %.4f", f, flip)
	}
	want := op.techniqueRate * 2 / 3 // a switch draws one of 3 techniques, 2 of them new
	if f := float64(switched) / trials; !within(f, want, trials) {
		t.Errorf("technique changed in %.4f of mutations, want %.4f", f, want)
	}
	if g.Genes[0] != 0.5 {
		t.Error("mutate changed its argument")
	}
}

// TestCrossover: uniform crossover takes each gene from either parent with
// probability one half, and the technique of the first (fitter) parent.
func TestCrossover(t *testing.T) {
	s := unitSpace(t, "linear", "ties")
	op := unitOperators(s)
	a := Genome{Technique: "ties", Genes: make([]float64, s.Len())}
	b := Genome{Technique: "linear", Genes: slices.Repeat([]float64{1}, s.Len())}
	rng := rand.New(rand.NewPCG(5, 6))
	const trials = 2000
	var fromB, total int
	for range trials {
		c := op.crossover(rng, a, b)
		if c.Technique != "ties" {
			t.Fatalf("child technique %s, want the first parent's", c.Technique)
		}
		for _, v := range c.Genes {
			total++
			if v == 1 {
				fromB++
			}
		}
	}
	if f := float64(fromB) / float64(total); !within(f, 0.5, total) {
		t.Errorf("%.4f of genes from the second parent, want 0.5", f)
	}
}

// TestNovel: a child whose recipe was evaluated in this run, or proposed
// earlier in this generation, is mutated again until it is new; when
// nothing new turns up the search gives up after 8 tries rather than spin.
func TestNovel(t *testing.T) {
	s := unitSpace(t, "linear")
	op := unitOperators(s)
	key := func(g Genome) string { return fmt.Sprint(g.Genes) }
	g := op.neutral("linear")
	known := map[string]bool{key(g): true}
	op.known = func(c Genome) bool { return known[key(c)] }
	rng := rand.New(rand.NewPCG(7, 8))
	taken := map[string]bool{}
	c := op.novel(rng, g, taken, key)
	if known[key(c)] || !taken[key(c)] {
		t.Fatalf("novel returned a known genome or did not take it")
	}
	if d := op.novel(rng, c, taken, key); key(d) == key(c) {
		t.Error("a genome proposed earlier in the generation was returned again")
	}
	op.known = func(Genome) bool { return true }
	if got := op.novel(rng, g, map[string]bool{}, key); key(got) == key(g) {
		t.Error("after 8 fruitless tries novel should return the last mutation, not its input")
	}
}

// TestGAGeneration: the GA keeps its elite (never a failed candidate),
// fills the population with children of tournament winners — crossover
// with probability crossoverRate, the fitter parent first — and never
// hands out genes outside [0,1].
func TestGAGeneration(t *testing.T) {
	s := unitSpace(t, "linear", "ties")
	op := unitOperators(s)
	rng := rand.New(rand.NewPCG(9, 10))
	g := &ga{op: op, rng: rng, size: 10, elitism: 2}
	pop := g.ask(0)
	if len(pop) != 10 {
		t.Fatalf("initial population of %d", len(pop))
	}
	byID := map[string]*individual{}
	for i, ind := range pop {
		ind.id = fmt.Sprintf("p%d", i)
		ind.fitness = float64(i)
		byID[ind.id] = ind
	}
	pop[9].failed = true // the highest fitness, but failed
	g.tell(0, pop)
	var crossovers, children int
	for gen := 1; gen <= 200; gen++ {
		next := g.ask(gen)
		if len(next) != 10 {
			t.Fatalf("generation of %d", len(next))
		}
		for i, c := range next[:2] {
			want := pop[8-i]
			if c.origin != "elite" || !slices.Equal(c.parents, []string{want.id}) || !slices.Equal(c.genome.Genes, want.genome.Genes) {
				t.Fatalf("elite %d is %s of %v, want a copy of %s", i, c.origin, c.parents, want.id)
			}
			c.genome.Genes[0] = -1
			if want.genome.Genes[0] == -1 {
				t.Fatal("an elite shares its parent's genes")
			}
		}
		for _, c := range next[2:] {
			children++
			for _, v := range c.genome.Genes {
				if v < 0 || v > 1 {
					t.Fatalf("gene %v outside [0,1]", v)
				}
			}
			switch c.origin {
			case "crossover":
				crossovers++
				a, b := byID[c.parents[0]], byID[c.parents[1]]
				if better(b, a) {
					t.Fatalf("crossover parents %s, %s: the fitter should come first", a.id, b.id)
				}
			case "mutation":
				if len(c.parents) != 1 || byID[c.parents[0]] == nil {
					t.Fatalf("mutation parents %v", c.parents)
				}
			default:
				t.Fatalf("child origin %q", c.origin)
			}
		}
	}
	if f := float64(crossovers) / float64(children); !within(f, op.crossoverRate, children) {
		t.Errorf("%.4f of children from crossover, want %.4f", f, op.crossoverRate)
	}
}

// landscapeRuns runs each optimiser for gens generations of 10 on f over
// the linear weights, for seeds 1-5, and returns the best loss of each run.
func landscapeRuns(t *testing.T, f func([]float64) float64, gens int, optimizers ...string) map[string][]float64 {
	t.Helper()
	s := unitSpace(t, "linear")
	used := s.Used("linear")
	fit := func(g Genome) (float64, []float64) {
		v := -f(genesAt(g, used))
		return v, []float64{v}
	}
	out := map[string][]float64{}
	for _, name := range optimizers {
		for seed := uint64(1); seed <= 5; seed++ {
			ev := config.Default().Evolution
			ev.Optimizer, ev.Seed, ev.Population, ev.CMAESTechnique = name, seed, 10, "linear"
			all := optimise(newOptimizer(ev, unitOperators(s), nil), gens, fit)
			if len(all) != 10*gens {
				t.Fatalf("%s: %d evaluations in %d generations of 10", name, len(all), gens)
			}
			out[name] = append(out[name], -bestOf(all).fitness)
		}
	}
	return out
}

func mean(xs []float64) float64 {
	var s float64
	for _, x := range xs {
		s += x
	}
	return s / float64(len(xs))
}

// center is the optimum of the landscapes over the six linear weights.
var center = []float64{0.3, 0.7, 0.55, 0.2, 0.8, 0.45}

// TestGAOnLandscapes: in 300 evaluations the GA gets within 0.1 of the
// sphere's optimum (loss < 0.01) and beats random search by a wide margin
// on the sphere and on the ill-conditioned ellipsoid.
func TestGAOnLandscapes(t *testing.T) {
	sphere := landscapeRuns(t, testfunc.Sphere{Center: center}.F, 30, "ga", "random")
	t.Logf("sphere, best loss over seeds 1-5: ga %.2e %v, random %.2e", mean(sphere["ga"]), sphere["ga"], mean(sphere["random"]))
	if mean(sphere["ga"]) > 0.01 || mean(sphere["ga"]) > mean(sphere["random"])/4 {
		t.Errorf("GA on the sphere: mean best loss %.2e (random %.2e)", mean(sphere["ga"]), mean(sphere["random"]))
	}
	ell := landscapeRuns(t, testfunc.Ellipsoid{Center: center}.F, 30, "ga", "random")
	t.Logf("ellipsoid: ga %.2e %v, random %.2e", mean(ell["ga"]), ell["ga"], mean(ell["random"]))
	if mean(ell["ga"]) > mean(ell["random"])/2 {
		t.Errorf("GA on the ellipsoid: mean best loss %.2e, random %.2e", mean(ell["ga"]), mean(ell["random"]))
	}
}

// TestLowerMerges: a merge of lower performers is the gene-wise mean of
// two distinct candidates of one technique from the lower half of the
// ranking; a generation has round(merge_lower × population) of them; the
// draw is reproducible from the seed.
func TestLowerMerges(t *testing.T) {
	s := unitSpace(t, "linear", "ties")
	op := unitOperators(s)
	rng := rand.New(rand.NewPCG(3, 4))
	var pop []*individual
	for i := range 10 {
		tech := []string{"linear", "ties"}[i%2]
		pop = append(pop, &individual{id: fmt.Sprintf("g0-c%02d", i), genome: op.randomGenome(rng, tech), fitness: -float64(i)})
	}
	pop[9].failed = true
	ranked := slices.Clone(pop)
	sortByFitness(ranked)
	lowerIDs := map[string]bool{}
	for _, ind := range ranked[5:] {
		lowerIDs[ind.id] = !ind.failed
	}
	byID := map[string]*individual{}
	for _, ind := range pop {
		byID[ind.id] = ind
	}
	g := &ga{op: op, rng: rand.New(rand.NewPCG(9, 9)), size: 10}
	kids := g.lowerMerges(ranked, 200)
	if len(kids) < 150 {
		t.Fatalf("%d of 200 merges made from a lower half with two techniques", len(kids))
	}
	for _, k := range kids {
		a, b := byID[k.parents[0]], byID[k.parents[1]]
		if k.origin != "merge-lower" || a == b || !lowerIDs[a.id] || !lowerIDs[b.id] || a.genome.Technique != b.genome.Technique || k.genome.Technique != a.genome.Technique {
			t.Fatalf("child of %s and %s (%s): parents must be two scored lower-half candidates of its technique", a.id, b.id, k.genome.Technique)
		}
		for i, x := range k.genome.Genes {
			if x != (a.genome.Genes[i]+b.genome.Genes[i])/2 {
				t.Fatalf("gene %d: %v, parents %v and %v", i, x, a.genome.Genes[i], b.genome.Genes[i])
			}
		}
	}
	again := (&ga{op: op, rng: rand.New(rand.NewPCG(9, 9)), size: 10}).lowerMerges(ranked, 200)
	for i := range kids {
		if !slices.Equal(kids[i].parents, again[i].parents) {
			t.Fatal("the same seed merged other parents")
		}
	}

	ev := config.Default().Evolution
	ev.Optimizer, ev.Population, ev.MergeLower = "ga", 10, 0.3
	o := newOptimizer(ev, op, nil).(*ga)
	o.tell(0, pop)
	n := 0
	for _, c := range o.ask(1) {
		if c.origin == "merge-lower" {
			n++
		}
	}
	if n != 3 {
		t.Errorf("%d merges of lower performers in a generation of 10 with merge_lower 0.3, want 3", n)
	}
}

// TestLowerMergesOnLandscapes compares the GA with and without merging
// lower performers on the sphere and the ellipsoid over seeds 1–5 at the
// same budget; both must stay far ahead of random search (the numbers are
// logged: the comparison, not a ranking, is what the test asserts).
func TestLowerMergesOnLandscapes(t *testing.T) {
	for _, lf := range []struct {
		name string
		f    func([]float64) float64
	}{{"sphere", testfunc.Sphere{Center: center}.F}, {"ellipsoid", testfunc.Ellipsoid{Center: center}.F}} {
		s := unitSpace(t, "linear")
		used := s.Used("linear")
		fit := func(g Genome) (float64, []float64) { v := -lf.f(genesAt(g, used)); return v, []float64{v} }
		res := map[float64][]float64{}
		for _, share := range []float64{0, 0.2} {
			for seed := uint64(1); seed <= 5; seed++ {
				ev := config.Default().Evolution
				ev.Optimizer, ev.Seed, ev.Population, ev.MergeLower = "ga", seed, 10, share
				res[share] = append(res[share], -bestOf(optimise(newOptimizer(ev, unitOperators(s), nil), 30, fit)).fitness)
			}
		}
		random := landscapeRuns(t, lf.f, 30, "random")["random"]
		t.Logf("%s, mean best loss over seeds 1-5 in 300 evaluations: GA %.2e, GA with merge_lower 0.2 %.2e, random %.2e",
			lf.name, mean(res[0]), mean(res[0.2]), mean(random))
		if mean(res[0.2]) > mean(random)/2 {
			t.Errorf("%s: GA with merges of lower performers %.2e, random %.2e", lf.name, mean(res[0.2]), mean(random))
		}
	}
}
