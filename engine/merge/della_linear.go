package merge

// della_linear: DELLA pruning without sign election, weighted sum.
// One row of the task-arithmetic table; the math is in taskarith.go.
func init() {
	mustRegister(Technique{Order: 130, Method: taskArith{
		name:      "della_linear",
		doc:       "DELLA magnitude-ranked random pruning, weighted sum of task vectors",
		sparsify:  sparsifyMagPrune,
		consensus: false,
		normalize: false,
		rescale:   true,
	}})
}
