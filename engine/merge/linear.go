package merge

import (
	"math"

	"github.com/evomerge/evomerge/kernels"
)

// linear is the weighted average of the models.
type linear struct{}

func init() { mustRegister(Technique{Order: 10, Method: linear{}}) }

func (linear) Name() string { return "linear" }

func (linear) Doc() string {
	return "weighted sum Σ w_i·x_i, divided by Σ w_i when normalize"
}

func (linear) Params() []ParamSpec {
	return []ParamSpec{
		weightParam("weight of the model in the sum"),
		boolParam("normalize", true, "divide by the sum of the weights"),
	}
}

func (linear) Base() BaseUse { return BaseIgnored }

func (linear) Models() (min, max int) { return 1, 0 }

// linearSumMin is the smallest |Σ w_i| normalize divides by.
const linearSumMin = 1e-8

// Merge computes out = Σ (w_i/Σw)·x_i, or Σ w_i·x_i without normalize.
func (m linear) Merge(in *Input, out []float32) error {
	if err := checkInput(m, in, out); err != nil {
		return err
	}
	r := paramReader{m: m, in: in}
	w := r.perModel("weight")
	normalize := r.flag("normalize")
	if r.err != nil {
		return r.err
	}
	if normalize {
		var sum float64
		for _, v := range w {
			sum += v
		}
		if math.Abs(sum) < linearSumMin {
			return methodError(m, in, "the weights %v sum to %g and normalize divides by that sum: change the weights or set normalize: false", w, sum)
		}
		for i := range w {
			w[i] /= sum
		}
	}
	// Models weighted exactly 0 are left out of the sum: mathematically the
	// same, but 0·x would turn an infinity into NaN and −0 into +0, so a
	// weight-1/weight-0 merge would not reproduce its source bit for bit.
	var xs [][]float32
	var ws []float64
	for i, x := range in.Models {
		if w[i] != 0 {
			xs, ws = append(xs, x), append(ws, w[i])
		}
	}
	if len(xs) == 0 { // only reachable without normalize
		clear(out)
		return nil
	}
	kernels.WeightedSum(out, xs, float32s(ws))
	return nil
}
