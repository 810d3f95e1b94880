package evolve

import (
	"math/rand/v2"
)

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
