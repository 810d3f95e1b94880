package evolve

import "math"

// adam is Adam's update (Kingma and Ba) of a point in gene space, climbing
// the fitness: ES feeds it its estimated gradient, the gradient optimiser
// the exact one. Genes stay in [0,1].
type adam struct {
	mom, vel []float64 // the moments
	steps    int
}

// Adam's constants (Kingma and Ba's defaults).
const (
	adamBeta1 = 0.9
	adamBeta2 = 0.999
	adamEps   = 1e-8
)

func newAdam(n int) adam { return adam{mom: make([]float64, n), vel: make([]float64, n)} }

// step moves m along g (the fitness's gradient, or an estimate of it) by
// about rate per gene.
func (a *adam) step(m, g []float64, rate float64) {
	a.steps++
	c1 := 1 - math.Pow(adamBeta1, float64(a.steps))
	c2 := 1 - math.Pow(adamBeta2, float64(a.steps))
	for i := range m {
		a.mom[i] = adamBeta1*a.mom[i] + (1-adamBeta1)*g[i]
		a.vel[i] = adamBeta2*a.vel[i] + (1-adamBeta2)*g[i]*g[i]
		m[i] = clamp01(m[i] + rate*(a.mom[i]/c1)/(math.Sqrt(a.vel[i]/c2)+adamEps))
	}
}
