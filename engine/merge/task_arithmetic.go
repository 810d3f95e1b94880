package merge

// task_arithmetic (Ilharco et al. 2023): B + λ·Σ w_i·δ_i.
// One row of the task-arithmetic table; the math is in taskarith.go.
func init() {
	mustRegister(Technique{Order: 60, Method: taskArith{
		name:      "task_arithmetic",
		doc:       "sum of weighted task vectors added to the base",
		sparsify:  sparsifyNone,
		consensus: false,
		normalize: false,
		rescale:   false,
	}})
}
