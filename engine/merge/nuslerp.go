package merge

import (
	"math"

	"github.com/evomerge/evomerge/kernels"
)

// nuslerp is mergekit's "NuSLERP": slerp of two models with the factor
// taken from their weights, optionally of their task vectors, and
// optionally per row or per column instead of over the whole tensor.
type nuslerp struct{}

func init() { mustRegister(Technique{Order: 30, Method: nuslerp{}}) }

func (nuslerp) Name() string { return "nuslerp" }

func (nuslerp) Doc() string {
	return "spherical interpolation of two models (or their task vectors) at t = w2/(w1+w2)"
}

func (nuslerp) Params() []ParamSpec {
	return []ParamSpec{
		weightParam("relative weight: t = w2/(w1+w2)"),
		boolParam("nuslerp_flatten", true, "interpolate each tensor as one flat vector"),
		boolParam("nuslerp_row_wise", false,
			"without flatten: interpolate along mergekit's dim 0 (in GGUF order, the vectors across rows "+
				"for each column) instead of each contiguous row"),
	}
}

func (nuslerp) Base() BaseUse { return BaseOptional }

func (nuslerp) Models() (min, max int) { return 2, 2 }

// nuslerpSumMin: below this |w1+w2| mergekit uses t = 1/2.
const nuslerpSumMin = 1e-6

// Merge computes nuslerp(t; v0, v1) with v_i = x_i, or v_i = x_i − B plus B
// when a base is given. The vectors are the whole tensor (flatten), each
// contiguous row (mergekit's dim −1), or with nuslerp_row_wise each
// vector along mergekit's dim 0, which in ggml order is the outermost
// dimension: the tensor is read as Shape[last] rows of numel/Shape[last]
// and every column of that is one vector.
func (m nuslerp) Merge(in *Input, out []float32) error {
	if err := checkInput(m, in, out); err != nil {
		return err
	}
	r := paramReader{m: m, in: in}
	w1, w2 := r.model(0, "weight"), r.model(1, "weight")
	flatten := r.flag("nuslerp_flatten")
	rowWise := r.flag("nuslerp_row_wise")
	if r.err != nil {
		return r.err
	}
	t := 0.5
	if math.Abs(w1+w2) >= nuslerpSumMin {
		t = w2 / (w1 + w2)
	}
	v0, v1 := in.Models[0], in.Models[1]
	if in.Base != nil {
		d1 := in.temp(len(out))
		kernels.Sub(out, v0, in.Base)
		kernels.Sub(d1, v1, in.Base)
		v0, v1 = out, d1
	}
	n := len(out)
	switch {
	case flatten:
		kernels.NuSlerp(out, v0, v1, t)
	case rowWise:
		outer := n
		if len(in.Shape) > 0 && in.Shape[len(in.Shape)-1] > 0 {
			outer = int(in.Shape[len(in.Shape)-1])
		}
		if outer == 0 || n%outer != 0 {
			return methodError(m, in, "shape %v does not match %d elements", in.Shape, n)
		}
		kernels.NuSlerpColumns(out, v0, v1, n/outer, t)
	default:
		kernels.NuSlerpRows(out, v0, v1, tensorRowLen(in, n), t)
	}
	if in.Base != nil {
		kernels.Axpy(out, in.Base, 1)
	}
	return nil
}
