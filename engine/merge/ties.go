package merge

// ties (TIES-merging, Yadav et al. 2023): magnitude pruning, sign election,
// disjoint mean.
// One row of the task-arithmetic table; the math is in taskarith.go.
func init() {
	mustRegister(Technique{Order: 70, Method: taskArith{
		name:      "ties",
		doc:       "TIES: magnitude-pruned task vectors, sign election, disjoint mean",
		sparsify:  sparsifyMagnitude,
		consensus: true,
		normalize: true,
		rescale:   false,
	}})
}
