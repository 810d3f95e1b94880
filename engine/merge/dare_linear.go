package merge

// dare_linear (DARE without sign election): random pruning, rescaled to the
// original L1 norm, weighted sum.
// One row of the task-arithmetic table; the math is in taskarith.go.
func init() {
	mustRegister(Technique{Order: 90, Method: taskArith{
		name:      "dare_linear",
		doc:       "DARE random pruning, weighted sum of task vectors",
		sparsify:  sparsifyRandom,
		consensus: false,
		normalize: false,
		rescale:   true,
	}})
}
