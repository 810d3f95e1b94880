package evolve

import (
	"math/rand/v2"
	"slices"
)

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
