package evolve

import (
	"math/rand/v2"
	"slices"

	"github.com/evomerge/evomerge/engine/config"
)

// An optimiser proposes a generation of genomes (ask) and learns their
// fitness (tell). Every random draw happens inside ask and tell, in a fixed
// order, so a run is a pure function of its seed and the fitness values —
// which is what makes resuming by replay exact.
//
// Each optimiser lives in a file of its own (ga.go, cmaes.go, es.go,
// gradient.go, nsga2.go, random.go) and shares the variation operators of genome.go. Adding one
// means a file with its type, a case in newOptimizer and its name in
// config.Optimizers; its tests run it on the landscapes of
// internal/testfunc.
type optimizer interface {
	ask(gen int) []*individual // nil: the optimiser has converged
	tell(gen int, inds []*individual)
	front() []*individual // NSGA-II's Pareto front; nil for the others
	close()
}

// A leaderer names its generation's leader (the finalist, see windows.go)
// when that is not simply the best ranked candidate: ES's is its centre.
type leaderer interface {
	leader(inds []*individual) *individual // nil: none was scored
}

// generationSize is the number of candidates a generation of the
// configured optimiser holds: ES's centre and its pairs (population 10
// gives 9), else the population.
func generationSize(ev config.Evolution) int {
	switch ev.Optimizer {
	case "es":
		return 1 + 2*esPairs(ev.Population)
	case "gradient":
		return 1
	}
	return ev.Population
}

// newOptimizer builds the configured optimiser. key is a genome's recipe
// identity, with which the GA and NSGA-II avoid proposing recipes already
// evaluated (see operators.novel).
func newOptimizer(ev config.Evolution, ops *operators, key func(Genome) string) optimizer {
	rng := rand.New(rand.NewPCG(ev.Seed, 0x5eed5eed5eed5eed))
	switch ev.Optimizer {
	case "cmaes":
		return newCMAES(ops, ev.CMAESTechnique, ev.CMAESSigma, ev.Population, ev.Seed)
	case "gradient":
		return newGradientAscent(ops, ev.CMAESTechnique, ev.GradientRate)
	case "es":
		return newES(ops, ev.CMAESTechnique, ev.ESSigma, ev.ESRate, ev.ESRateEnd, ev.Generations, ev.Population, rng)
	case "nsga2":
		return &nsga2{op: ops, rng: rng, size: ev.Population, key: key}
	case "random":
		return &randomSearch{op: ops, rng: rng, size: ev.Population}
	}
	return &ga{op: ops, rng: rng, size: ev.Population, elitism: ev.Elitism, mergeLower: ev.MergeLower, key: key}
}

// better compares scalar fitness; failed candidates lose to everything.
func better(x, y *individual) bool {
	if x.failed != y.failed {
		return !x.failed
	}
	if x.rung != y.rung {
		return x.rung > y.rung
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

func ptrs(in []individual) []*individual {
	out := make([]*individual, len(in))
	for i := range in {
		out[i] = &in[i]
	}
	return out
}
