package evolve

import (
	"cmp"
	"math"
	"math/rand/v2"
	"slices"
)

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
