package merge

import (
	"errors"
	"fmt"
)

// ErrNotTaskSum marks a recipe whose tensors are not weighted sums of task
// vectors (see TaskVectorCoefficients).
var ErrNotTaskSum = errors.New("not a weighted sum of task vectors")

// TaskVectorCoefficients returns, for one tensor of a recipe over models
// of the given block count, the coefficient c_i of each model's task
// vector: the tensor merges to base + Σ c_i·(x_i − base). That holds for
// the members of the task-arithmetic family that neither sparsify nor
// elect signs (task_arithmetic) — the coefficients the fused kernels use
// (λ·w_i, divided by Σ w with normalize). Tensors the merge
// copies from the base (rope frequencies and such) give nil. Anything else
// is ErrNotTaskSum. The recipe's models must be plain sources (no
// sub-recipes, slices or layer paths).
//
// It reads only the recipe: a caller that needs the derivative of the
// merge in its parameters (engine/evolve's gradient optimizer) evaluates
// it at nearby parameters, without any model file.
func (r *Recipe) TaskVectorCoefficients(tensor string, layers int) ([]float64, error) {
	m, ok := Lookup(r.Method)
	ta, isTA := m.(taskArith)
	switch {
	case !ok || !isTA || ta.consensus || ta.sparsify != sparsifyNone:
		return nil, fmt.Errorf("%w: merge method %s", ErrNotTaskSum, r.Method)
	case r.Base == "" || len(r.Models) == 0 || len(r.Slices) > 0:
		return nil, fmt.Errorf("%w: %s needs a base and source models", ErrNotTaskSum, r.Method)
	}
	for _, mr := range r.Models {
		if _, sub := r.Sources[mr.Model]; sub {
			return nil, fmt.Errorf("%w: model %s is a sub-recipe", ErrNotTaskSum, mr.Model)
		}
	}
	layer := LayerOf(tensor)
	if layer < 0 && nonBlockRole(tensor) == roleFixed {
		return nil, nil
	}
	global, perModel := resolveParams(m, r.Params, nil, r.Models, tensor, layer, layers)
	p, err := ta.params(&Input{Tensor: tensor, Global: global, ModelParams: perModel, Models: make([][]float32, len(r.Models))})
	if err != nil {
		return nil, err
	}
	c := taskArithCoefs(&p)
	out := make([]float64, len(c))
	for i, x := range c {
		out[i] = float64(x)
	}
	return out, nil
}
