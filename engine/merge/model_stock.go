package merge

import (
	"math"

	"github.com/evomerge/evomerge/kernels"
)

// modelStock is Model Stock (Jang et al. 2024): move from the base towards
// the average of the fine-tuned models by a ratio set by how well their
// task vectors agree.
type modelStock struct{}

func init() { mustRegister(Technique{Order: 150, Method: modelStock{}}) }

func (modelStock) Name() string { return "model_stock" }

func (modelStock) Doc() string {
	return "base + t·(mean of the models − base), t from the mean pairwise cosine of the task vectors"
}

func (modelStock) Params() []ParamSpec {
	return []ParamSpec{boolParam("filter_wise", false, "compute t for each row instead of the whole tensor")}
}

func (modelStock) Base() BaseUse { return BaseRequired }

func (modelStock) Models() (min, max int) { return 2, 0 }

// stockDenominatorMin is the smallest |1 + (N−1)·cos| Merge divides by.
const stockDenominatorMin = 1e-6

// Merge computes, over the whole tensor or each row (filter_wise),
//
//	cos = mean_{i<k} cos(δ_i, δ_k), t = N·cos/(1 + (N−1)·cos)
//	out = t·mean(x_i) + (1−t)·B
//
// (kernels.MeanPairCosine, kernels.ModelStockRatio). When the denominator
// vanishes (task vectors pointing away from each other, cos = −1/(N−1))
// it returns an error where mergekit would produce infinities.
func (m modelStock) Merge(in *Input, out []float32) error {
	if err := checkInput(m, in, out); err != nil {
		return err
	}
	r := paramReader{m: m, in: in}
	filterWise := r.flag("filter_wise")
	if r.err != nil {
		return r.err
	}
	n := len(in.Models)
	span := len(out)
	if filterWise {
		span = tensorRowLen(in, len(out))
	}
	g := make([]float64, n*n)
	models := make([][]float32, n)
	inputs := make([][]float32, n+1) // base, then the models
	w := make([]float32, n+1)
	for lo := 0; lo < len(out); lo += span {
		hi := lo + span
		for i, x := range in.Models {
			models[i] = x[lo:hi]
			inputs[i+1] = models[i]
		}
		inputs[0] = in.Base[lo:hi]
		kernels.Gram(g, models, inputs[0])
		cos := kernels.MeanPairCosine(g, n)
		if den := kernels.ModelStockDenominator(cos, n); math.Abs(den) < stockDenominatorMin {
			return methodError(m, in, "mean cosine of the task vectors is %g, so t = N·cos/(1+(N−1)·cos) divides by %g "+
				"(elements %d to %d): the models pull in opposite directions from the base", cos, den, lo, hi)
		}
		t := kernels.ModelStockRatio(cos, n)
		w[0] = float32(1 - t)
		for i := 1; i <= n; i++ {
			w[i] = float32(t / float64(n))
		}
		kernels.WeightedSum(out[lo:hi], inputs, w)
	}
	return nil
}
