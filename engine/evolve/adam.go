package evolve

import "math"

// centre is a point in the genes of one technique, moved by Adam — the
// state ES and the gradient optimiser share: ES feeds step its estimate of
// the fitness's gradient, the gradient optimiser the exact one. It starts
// at the technique's neutral genome (the uniform average); genes stay in
// [0,1], and the ones the technique does not read stay neutral.
type centre struct {
	used []int // the genes searched (the technique's)
	base Genome
	m    []float64 // the centre, over used
	adam adam
}

func newCentre(op *operators, technique string) centre {
	c := centre{used: op.space.Used(technique), base: op.neutral(technique)}
	c.m = make([]float64, len(c.used))
	for i, gi := range c.used {
		c.m[i] = c.base.Genes[gi]
	}
	c.adam = newAdam(len(c.used))
	return c
}

// genome is the technique's neutral genome with the used genes at
// m + s·eps (eps nil: the centre itself), clamped to [0,1].
func (c *centre) genome(s float64, eps []float64) Genome {
	g := c.base.Clone()
	for i, gi := range c.used {
		x := c.m[i]
		if eps != nil {
			x += s * eps[i]
		}
		g.Genes[gi] = clamp01(x)
	}
	return g
}

// step moves the centre along g, over used.
func (c *centre) step(g []float64, rate float64) { c.adam.step(c.m, g, rate) }

// adam is Adam's update (Kingma and Ba) of a point in gene space, climbing
// the fitness. Genes stay in [0,1].
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
