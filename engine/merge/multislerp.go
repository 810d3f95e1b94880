package merge

import (
	"math"

	"github.com/evomerge/evomerge/kernels"
)

// multiSlerp is mergekit's "multislerp": barycentric interpolation of any
// number of models (or task vectors) on the hypersphere.
type multiSlerp struct{}

func init() { mustRegister(Technique{Order: 40, Method: multiSlerp{}}) }

func (multiSlerp) Name() string { return "multislerp" }

func (multiSlerp) Doc() string {
	return "weighted spherical mean of the models (or of their task vectors when a base is given)"
}

func (multiSlerp) Params() []ParamSpec {
	return []ParamSpec{
		weightParam("weight of the model in the mean"),
		boolParam("normalize_weights", true, "divide the weights by their sum"),
		{Name: "eps", Scope: Global, Default: 1e-8, Min: 0, Max: 1, Doc: "numerical guard added to norms"},
	}
}

func (multiSlerp) Base() BaseUse { return BaseOptional }

func (multiSlerp) Models() (min, max int) { return 1, 0 }

// Merge computes the multislerp of v_i = x_i (or x_i − B, adding B back);
// see kernels.MultiSlerpCoefficients. One model is returned as is.
func (m multiSlerp) Merge(in *Input, out []float32) error {
	if err := checkInput(m, in, out); err != nil {
		return err
	}
	r := paramReader{m: m, in: in}
	w := r.perModel("weight")
	normalize := r.flag("normalize_weights")
	eps := r.global("eps")
	if r.err != nil {
		return r.err
	}
	n := len(in.Models)
	if n == 1 {
		copy(out, in.Models[0])
		return nil
	}
	if normalize {
		var sum float64
		for _, v := range w {
			sum += v
		}
		if math.Abs(sum) < linearSumMin {
			return methodError(m, in, "the weights %v sum to %g and normalize_weights divides by that sum", w, sum)
		}
		for i := range w {
			w[i] /= sum
		}
	}
	g := make([]float64, n*n)
	kernels.Gram(g, in.Models, in.Base)
	a, ok := kernels.MultiSlerpCoefficients(g, w, eps)
	if !ok {
		if n != 2 {
			return methodError(m, in, "the weighted directions of the models cancel out (antipodal vectors with balancing weights); change the weights")
		}
		a = w // mergekit's fallback for two models: the weighted sum
	}
	if in.Base == nil {
		kernels.WeightedSum(out, in.Models, float32s(a))
		return nil
	}
	copy(out, in.Base)
	for i, x := range in.Models {
		kernels.AxpyDiff(out, x, in.Base, float32(a[i]))
	}
	return nil
}
