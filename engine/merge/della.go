package merge

// della (DELLA-merging, Deep et al. 2024): per-row magnitude-ranked random
// pruning, rescaled, with TIES sign election.
// One row of the task-arithmetic table; the math is in taskarith.go.
func init() {
	mustRegister(Technique{Order: 120, Method: taskArith{
		name:      "della",
		doc:       "DELLA: magnitude-ranked random pruning with TIES sign election",
		sparsify:  sparsifyMagPrune,
		consensus: true,
		normalize: true,
		rescale:   true,
	}})
}
