package merge

import "github.com/evomerge/evomerge/kernels"

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
	idx, ws, err := linearTerms(m, in) // fused.go: shared with the fused path
	if err != nil {
		return err
	}
	if len(idx) == 0 { // only reachable without normalize
		clear(out)
		return nil
	}
	xs := make([][]float32, len(idx))
	for k, i := range idx {
		xs[k] = in.Models[i]
	}
	kernels.WeightedSum(out, xs, ws)
	return nil
}
