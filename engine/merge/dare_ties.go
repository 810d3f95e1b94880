package merge

// dare_ties (DARE, Yu et al. 2024, with TIES sign election): random pruning,
// rescaled to the original L1 norm.
// One row of the task-arithmetic table; the math is in taskarith.go.
func init() {
	mustRegister(Technique{Order: 80, Aliases: []string{"dare"}, Method: taskArith{
		name:      "dare_ties",
		doc:       "DARE random pruning with TIES sign election",
		sparsify:  sparsifyRandom,
		consensus: true,
		normalize: false,
		rescale:   true,
	}})
}
