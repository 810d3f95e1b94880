package evolve

import (
	"math"
	"math/rand/v2"
	"slices"
)

// ga is the generational genetic algorithm: tournament selection, elitism,
// uniform crossover and per-gene mutation with technique switches, and the
// seed's "merging of lower performers": a share (evolution.merge_lower) of
// each new population is the gene-wise mean of two candidates of one
// technique drawn from the lower half of the ranking. Those are recipe-
// space merges of models selection would discard; averaging two of them
// tends toward the middle of what the population explored, which a GA
// driven only by winners stops sampling.
type ga struct {
	op         *operators
	rng        *rand.Rand
	size       int
	elitism    int
	mergeLower float64
	pop        []*individual
	key        func(Genome) string // recipe identity, for novelty
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
	for _, c := range g.lowerMerges(ranked, int(math.Round(g.mergeLower*float64(g.size)))) {
		if len(next) < g.size {
			c.genome = g.op.novel(g.rng, c.genome, taken, g.key)
			next = append(next, c)
		}
	}
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

// lowerMerges makes up to n children, each the gene-wise mean of two
// distinct scored candidates of one technique from the lower half of
// ranked (best first): a random lower candidate, and a random other one
// of its technique there. A technique alone in the lower half gives none.
func (g *ga) lowerMerges(ranked []*individual, n int) []*individual {
	var lower []*individual
	for _, ind := range ranked[len(ranked)/2:] {
		if !ind.failed {
			lower = append(lower, ind)
		}
	}
	var out []*individual
	for range n {
		if len(lower) < 2 {
			break
		}
		a := lower[g.rng.IntN(len(lower))]
		var mates []*individual
		for _, b := range lower {
			if b != a && b.genome.Technique == a.genome.Technique {
				mates = append(mates, b)
			}
		}
		if len(mates) == 0 {
			continue
		}
		b := mates[g.rng.IntN(len(mates))]
		child := Genome{Technique: a.genome.Technique, Genes: make([]float64, len(a.genome.Genes))}
		for i := range child.Genes {
			child.Genes[i] = (a.genome.Genes[i] + b.genome.Genes[i]) / 2
		}
		out = append(out, &individual{genome: child, origin: "merge-lower", parents: []string{a.id, b.id}})
	}
	return out
}

func (g *ga) tell(_ int, inds []*individual) { g.pop = inds }
func (g *ga) front() []*individual           { return nil }
func (g *ga) close()                         {}
