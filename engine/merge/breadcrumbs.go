package merge

// breadcrumbs (Model Breadcrumbs, Davari & Belilovsky 2023): drop the largest
// (γ) and smallest entries of each task vector, weighted sum.
// One row of the task-arithmetic table; the math is in taskarith.go.
func init() {
	mustRegister(Technique{Order: 100, Method: taskArith{
		name:      "breadcrumbs",
		doc:       "breadcrumbs: drop the largest and smallest entries of each task vector, weighted sum",
		sparsify:  sparsifyOutliers,
		consensus: false,
		normalize: false,
		rescale:   false,
	}})
}
