package merge

import (
	"math"

	"github.com/evomerge/evomerge/kernels"
)

// karcher is mergekit's "karcher": the Riemannian (Karcher) mean of the
// models' directions with equal weights, scaled to their mean norm.
type karcher struct{}

func init() { mustRegister(Technique{Order: 50, Method: karcher{}}) }

func (karcher) Name() string { return "karcher" }

func (karcher) Doc() string {
	return "Karcher mean on the hypersphere of the models, equal weights, scaled to the mean norm"
}

func (karcher) Params() []ParamSpec {
	return []ParamSpec{
		{Name: "max_iter", Scope: Global, Default: 10, Min: 0, Max: 1000, Doc: "iterations of the mean (an integer)"},
		{Name: "tol", Scope: Global, Default: 1e-5, Min: 0, Max: 1, Doc: "convergence tolerance"},
	}
}

func (karcher) Base() BaseUse { return BaseIgnored }

func (karcher) Models() (min, max int) { return 1, 0 }

// Merge computes the mean with kernels.KarcherCoefficients.
func (m karcher) Merge(in *Input, out []float32) error {
	if err := checkInput(m, in, out); err != nil {
		return err
	}
	r := paramReader{m: m, in: in}
	maxIter := r.global("max_iter")
	tol := r.global("tol")
	if r.err != nil {
		return r.err
	}
	if maxIter != math.Trunc(maxIter) {
		return methodError(m, in, "max_iter = %g is not an integer", maxIter)
	}
	n := len(in.Models)
	if n == 1 {
		copy(out, in.Models[0])
		return nil
	}
	g := make([]float64, n*n)
	kernels.Gram(g, in.Models, nil)
	a := kernels.KarcherCoefficients(g, int(maxIter), tol)
	kernels.WeightedSum(out, in.Models, float32s(a))
	return nil
}
