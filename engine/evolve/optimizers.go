package evolve

import (
	"cmp"
	"math"
	"math/rand/v2"
	"slices"

	"gonum.org/v1/gonum/mat"
	"gonum.org/v1/gonum/optimize"
)

// An optimiser proposes a generation of genomes (ask) and learns their
// fitness (tell). Every random draw happens inside ask and tell, in a fixed
// order, so a run is a pure function of its seed and the fitness values —
// which is what makes resuming by replay exact.
type optimizer interface {
	ask(gen int) []*individual // nil: the optimiser has converged
	tell(gen int, inds []*individual)
	front() []*individual // NSGA-II's Pareto front; nil for the others
	close()
}

// better compares scalar fitness; failed candidates lose to everything.
func better(x, y *individual) bool {
	if x.failed != y.failed {
		return !x.failed
	}
	return x.fitness > y.fitness
}

func sortByFitness(pop []*individual) {
	slices.SortStableFunc(pop, func(a, b *individual) int {
		switch {
		case better(a, b):
			return -1
		case better(b, a):
			return 1
		}
		return 0
	})
}

// ga is the generational genetic algorithm: tournament selection, elitism,
// uniform crossover and per-gene mutation with technique switches.
type ga struct {
	op      *operators
	rng     *rand.Rand
	size    int
	elitism int
	pop     []*individual
	key     func(Genome) string // recipe identity, for novelty
}

func (g *ga) ask(gen int) []*individual {
	if gen == 0 {
		return ptrs(g.op.seedGenomes(g.rng, g.size))
	}
	next := make([]*individual, 0, g.size)
	ranked := slices.Clone(g.pop)
	sortByFitness(ranked)
	for _, e := range ranked[:min(g.elitism, len(ranked))] {
		if !e.failed {
			next = append(next, &individual{genome: e.genome.Clone(), origin: "elite", parents: []string{e.id}})
		}
	}
	taken := map[string]bool{}
	for len(next) < g.size {
		a := tournament(g.rng, g.pop, g.op.tournamentSize, better)
		child := &individual{origin: "mutation", parents: []string{a.id}}
		genome := a.genome
		if g.rng.Float64() < g.op.crossoverRate {
			b := tournament(g.rng, g.pop, g.op.tournamentSize, better)
			if better(b, a) {
				a, b = b, a
			}
			genome = g.op.crossover(g.rng, a.genome, b.genome)
			child.origin, child.parents = "crossover", []string{a.id, b.id}
		}
		child.genome = g.op.novel(g.rng, g.op.mutate(g.rng, genome), taken, g.key)
		next = append(next, child)
	}
	return next
}

func (g *ga) tell(_ int, inds []*individual) { g.pop = inds }
func (g *ga) front() []*individual           { return nil }
func (g *ga) close()                         {}

// random search draws every genome uniformly (technique and genes), from
// the first generation on: the baseline the other optimisers must beat at
// equal evaluations.
type randomSearch struct {
	op   *operators
	rng  *rand.Rand
	size int
}

func (r *randomSearch) ask(int) []*individual {
	out := make([]*individual, r.size)
	for i := range out {
		t := r.op.space.Techniques[r.rng.IntN(len(r.op.space.Techniques))]
		out[i] = &individual{genome: r.op.randomGenome(r.rng, t), origin: "random"}
	}
	return out
}
func (r *randomSearch) tell(int, []*individual) {}
func (r *randomSearch) front() []*individual    { return nil }
func (r *randomSearch) close()                  {}

func ptrs(in []individual) []*individual {
	out := make([]*individual, len(in))
	for i := range in {
		out[i] = &in[i]
	}
	return out
}

// nsga2 is Deb et al.'s NSGA-II: (μ+λ) selection by non-dominated rank
// then crowding distance, binary tournaments on the same order, the GA's
// variation operators. Objectives are maximised.
type nsga2 struct {
	op   *operators
	rng  *rand.Rand
	size int
	pop  []*individual
	key  func(Genome) string
}

// dominates reports whether a is at least as good as b in every objective
// and better in one. Failed candidates are dominated by everything.
func dominates(a, b *individual) bool {
	if a.failed || b.failed {
		return !a.failed && b.failed
	}
	strictly := false
	for i := range a.objs {
		if a.objs[i] < b.objs[i] {
			return false
		}
		if a.objs[i] > b.objs[i] {
			strictly = true
		}
	}
	return strictly
}

// rankAndCrowd assigns each individual its front and crowding distance.
func rankAndCrowd(pop []*individual) [][]*individual {
	n := len(pop)
	dominatedBy := make([][]int, n)
	count := make([]int, n)
	var fronts [][]*individual
	var current []int
	for i := range pop {
		for j := range pop {
			if i != j && dominates(pop[i], pop[j]) {
				dominatedBy[i] = append(dominatedBy[i], j)
			} else if i != j && dominates(pop[j], pop[i]) {
				count[i]++
			}
		}
		if count[i] == 0 {
			current = append(current, i)
		}
	}
	for rank := 0; len(current) > 0; rank++ {
		var front []*individual
		var next []int
		for _, i := range current {
			pop[i].rank = rank
			front = append(front, pop[i])
			for _, j := range dominatedBy[i] {
				if count[j]--; count[j] == 0 {
					next = append(next, j)
				}
			}
		}
		crowding(front)
		fronts = append(fronts, front)
		current = next
	}
	return fronts
}

func crowding(front []*individual) {
	for _, ind := range front {
		ind.crowd = 0
	}
	if len(front) == 0 || len(front[0].objs) == 0 {
		return
	}
	for m := range front[0].objs {
		slices.SortStableFunc(front, func(a, b *individual) int { return cmp.Compare(a.objs[m], b.objs[m]) })
		lo, hi := front[0].objs[m], front[len(front)-1].objs[m]
		front[0].crowd, front[len(front)-1].crowd = math.Inf(1), math.Inf(1)
		if hi == lo {
			continue
		}
		for i := 1; i < len(front)-1; i++ {
			front[i].crowd += (front[i+1].objs[m] - front[i-1].objs[m]) / (hi - lo)
		}
	}
}

// crowdedBetter is NSGA-II's crowded-comparison operator.
func crowdedBetter(a, b *individual) bool {
	if a.rank != b.rank {
		return a.rank < b.rank
	}
	return a.crowd > b.crowd
}

func (n *nsga2) ask(gen int) []*individual {
	if gen == 0 {
		return ptrs(n.op.seedGenomes(n.rng, n.size))
	}
	out := make([]*individual, 0, n.size)
	taken := map[string]bool{}
	for len(out) < n.size {
		a := tournament(n.rng, n.pop, 2, crowdedBetter)
		child := &individual{origin: "mutation", parents: []string{a.id}}
		genome := a.genome
		if n.rng.Float64() < n.op.crossoverRate {
			b := tournament(n.rng, n.pop, 2, crowdedBetter)
			genome = n.op.crossover(n.rng, a.genome, b.genome)
			child.origin, child.parents = "crossover", []string{a.id, b.id}
		}
		child.genome = n.op.novel(n.rng, n.op.mutate(n.rng, genome), taken, n.key)
		out = append(out, child)
	}
	return out
}

func (n *nsga2) tell(_ int, inds []*individual) {
	combined := append(slices.Clone(n.pop), inds...)
	fronts := rankAndCrowd(combined)
	next := make([]*individual, 0, n.size)
	for _, f := range fronts {
		if len(next)+len(f) <= n.size {
			next = append(next, f...)
			continue
		}
		slices.SortStableFunc(f, func(a, b *individual) int { return cmp.Compare(b.crowd, a.crowd) })
		next = append(next, f[:n.size-len(next)]...)
		break
	}
	n.pop = next
	rankAndCrowd(n.pop) // ranks and distances within the survivors, for the tournaments
}

func (n *nsga2) front() []*individual {
	var f []*individual
	for _, ind := range n.pop {
		if ind.rank == 0 && !ind.failed {
			f = append(f, ind)
		}
	}
	return f
}
func (n *nsga2) close() {}

// cmaes drives gonum's CmaEsChol directly through its optimize.Method
// channels, so each of its iterations is one generation of the engine.
// It searches the continuous genes its technique uses (Space.Used); the
// other genes stay at the technique's neutral values. Genes are clamped to
// [0,1] when decoded.
type cmaes struct {
	op        *operators
	technique string
	used      []int
	base      Genome
	method    *optimize.CmaEsChol
	ops       chan optimize.Task
	results   chan optimize.Task
	pending   []optimize.Task
	asked     bool // a generation was handed out and not yet told
	done      bool
	closed    bool
}

func newCMAES(op *operators, technique string, sigma float64, population int, seed uint64) *cmaes {
	c := &cmaes{op: op, technique: technique, used: op.space.Used(technique), base: op.neutral(technique)}
	if len(c.used) == 0 {
		c.done = true
		return c
	}
	// gonum samples mean + A·z with A the Cholesky factor it adapts: its
	// InitStepSize only scales the evolution paths. The initial spread σ0
	// must therefore be given as InitCholesky = chol(σ0²·I); with the
	// default identity every gene would start with σ = 1, far outside [0,1].
	var chol mat.Cholesky
	diag := make([]float64, len(c.used))
	for i := range diag {
		diag[i] = sigma * sigma
	}
	chol.Factorize(mat.NewDiagDense(len(diag), diag))
	c.method = &optimize.CmaEsChol{InitStepSize: sigma, InitCholesky: &chol, Population: population, Src: rand.NewPCG(seed, 0xc3a5c85c97cb3127)}
	n := c.method.Init(len(c.used), population)
	x0 := make([]float64, len(c.used))
	for i, gi := range c.used {
		x0[i] = c.base.Genes[gi]
	}
	tasks := make([]optimize.Task, n)
	for i := range tasks {
		tasks[i] = optimize.Task{ID: i, Location: &optimize.Location{X: slices.Clone(x0)}}
	}
	c.ops, c.results = make(chan optimize.Task), make(chan optimize.Task)
	go c.method.Run(c.ops, c.results, tasks)
	return c
}

// Population is CMA-ES's λ (gonum's default 4+⌊3 ln n⌋ when 0 was asked).
func (c *cmaes) ask(int) []*individual {
	if c.done {
		return nil
	}
	c.pending = c.pending[:0]
	pop := c.method.Population
	for len(c.pending) < pop {
		t, ok := <-c.ops
		if !ok {
			c.done, c.closed = true, true
			return nil
		}
		switch t.Op {
		case optimize.FuncEvaluation:
			t.Location = &optimize.Location{X: slices.Clone(t.X)}
			c.pending = append(c.pending, t)
		case optimize.MajorIteration:
			c.results <- t // acknowledge; Run then samples the next generation
		case optimize.MethodDone:
			c.finish()
			return nil
		}
	}
	c.asked = true
	out := make([]*individual, len(c.pending))
	for i, t := range c.pending {
		g := c.base.Clone()
		for k, gi := range c.used {
			g.Genes[gi] = clamp01(t.X[k])
		}
		out[i] = &individual{genome: g, origin: "cmaes"}
	}
	return out
}

func (c *cmaes) tell(_ int, inds []*individual) {
	for i, t := range c.pending {
		f := 1e9 // failed candidates: as bad as can be, but finite
		if !inds[i].failed {
			f = -inds[i].fitness
		}
		t.F = f
		c.results <- t
	}
	c.asked = false
}

// finish tells Run to stop and drains it.
func (c *cmaes) finish() {
	if c.closed || c.method == nil {
		c.done = true
		return
	}
	c.done, c.closed = true, true
	c.results <- optimize.Task{Op: optimize.PostIteration}
	close(c.results)
	for range c.ops {
	}
}

func (c *cmaes) front() []*individual { return nil }

// close stops Run wherever it is: waiting for results of a generation that
// will never be told (a cancelled run), or about to report an iteration.
func (c *cmaes) close() {
	if c.closed || c.method == nil {
		return
	}
	if !c.asked {
		<-c.ops // the MajorIteration or MethodDone that follows the last tell
	}
	c.finish()
}
