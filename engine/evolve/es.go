package evolve

import (
	"math"
	"math/rand/v2"
)

// es is an evolution strategy with antithetic sampling (the natural-
// gradient ES of Wierstra et al. and Salimans et al.) over the continuous
// genes of one technique (evolution.cmaes_technique). It keeps a centre
// genome m; each generation scores the centre and pairs m + σε, m − σε
// (ε standard normal), all on the same windows. Half the fitness
// difference of a pair, divided by σ, estimates the slope of the fitness
// along ε — the windows' difficulty, common to both, cancels — and the
// pairs together estimate its gradient at m; Adam moves m along it.
//
// Where selection keeps the luckiest candidate of each generation, this
// update averages the estimates of every generation, made on the windows
// each drew: with rotated windows it follows the validation texts' loss
// rather than one window set's, and it has only to find a direction, not
// a lucky point. The centre is each generation's leader (its finalist).
type es struct {
	centre
	rng     *rand.Rand
	pairs   int
	sigma   float64
	rate    float64 // Adam's step after generation 0 …
	rateEnd float64 // … and after the last one, linear in between
	gens    int
	eps     [][]float64 // this generation's directions
}

func newES(op *operators, technique string, sigma, rate, rateEnd float64, generations, population int, rng *rand.Rand) *es {
	return &es{centre: newCentre(op, technique), rng: rng,
		pairs: esPairs(population), sigma: sigma, rate: rate, rateEnd: rateEnd, gens: generations}
}

// esPairs is the number of antithetic pairs of a population: the centre
// takes one place, each pair two.
func esPairs(population int) int { return max(1, (population-1)/2) }

// ask returns the centre, then the pairs: centre + σε_k, centre − σε_k.
func (e *es) ask(int) []*individual {
	if len(e.used) == 0 {
		return nil
	}
	out := []*individual{{genome: e.genome(0, nil), origin: "es-centre"}}
	e.eps = e.eps[:0]
	for range e.pairs {
		eps := make([]float64, len(e.used))
		for i := range eps {
			eps[i] = e.rng.NormFloat64()
		}
		e.eps = append(e.eps, eps)
		out = append(out,
			&individual{genome: e.genome(e.sigma, eps), origin: "es+"},
			&individual{genome: e.genome(-e.sigma, eps), origin: "es-"})
	}
	return out
}

// stepSize is Adam's step after generation gen: es_rate at the first,
// es_rate_end at the last, linear in between. A decreasing step lets the
// centre settle where a constant one keeps it wandering by about a step
// around the optimum, pushed by each generation's window noise.
func (e *es) stepSize(gen int) float64 {
	if e.gens <= 1 {
		return e.rate
	}
	f := float64(min(gen, e.gens-1)) / float64(e.gens-1)
	return e.rate + (e.rateEnd-e.rate)*f
}

// tell estimates the gradient from the pairs both of whose members were
// scored and takes an Adam step. The slopes are divided by their spread
// across the pairs, so the step does not depend on the fitness's scale.
func (e *es) tell(gen int, inds []*individual) {
	var slopes []float64
	var dirs [][]float64
	for k, eps := range e.eps {
		plus, minus := inds[1+2*k], inds[2+2*k]
		if plus.failed || minus.failed {
			continue
		}
		slopes = append(slopes, (plus.fitness-minus.fitness)/(2*e.sigma))
		dirs = append(dirs, eps)
	}
	if len(slopes) == 0 {
		return
	}
	var ss float64
	for _, s := range slopes {
		ss += s * s
	}
	scale := math.Sqrt(ss / float64(len(slopes)))
	if scale == 0 {
		return
	}
	g := make([]float64, len(e.m))
	for i := range g {
		for k, s := range slopes {
			g[i] += s / scale * dirs[k][i]
		}
		g[i] /= float64(len(slopes))
	}
	e.step(g, e.stepSize(gen))
}

// leader is the generation's centre, when it was scored.
func (e *es) leader(inds []*individual) *individual {
	if len(inds) > 0 && !inds[0].failed {
		return inds[0]
	}
	return nil
}

func (e *es) front() []*individual { return nil }
func (e *es) close()               {}
