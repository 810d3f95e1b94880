package merge

// breadcrumbs_ties: breadcrumbs pruning with TIES sign election.
// One row of the task-arithmetic table; the math is in taskarith.go.
func init() {
	mustRegister(Technique{Order: 110, Method: taskArith{
		name:      "breadcrumbs_ties",
		doc:       "breadcrumbs pruning with TIES sign election",
		sparsify:  sparsifyOutliers,
		consensus: true,
		normalize: false,
		rescale:   false,
	}})
}
