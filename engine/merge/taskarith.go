package merge

import (
	"math"

	"github.com/evomerge/evomerge/kernels"
)

// The task-arithmetic family (task_arithmetic, ties, dare_*, breadcrumbs*,
// della*): one implementation, configured by a row of the table in the
// notes. Each method's file only registers its row.
//
//	δ_i = x_i − B
//	δ'_i = sparsify(δ_i, d_i), rescaled to ‖δ_i‖₁ when rescale
//	Δ_i = w_i·δ'_i
//	consensus: mixed = kernels.SignConsensus (normalised per element)
//	otherwise: mixed = Σ Δ_i, divided by Σ w_i when normalize (|Σ w| < 1e-8 → 1)
//	out = B + λ·mixed

// sparsifier is step 2 of the family.
type sparsifier int

const (
	sparsifyNone      sparsifier = iota
	sparsifyMagnitude            // TIES: top k by |δ|
	sparsifyRandom               // DARE: Bernoulli(d)
	sparsifyOutliers             // breadcrumbs: drop top γ and bottom 1−d−γ
	sparsifyMagPrune             // DELLA: per-row rank-dependent Bernoulli
)

// taskArith is one row of the family's table.
type taskArith struct {
	name, doc string
	sparsify  sparsifier
	consensus bool // TIES sign election
	normalize bool // default of normalize
	rescale   bool // default of rescale (random and magprune only)
}

func (m taskArith) Name() string { return m.name }
func (m taskArith) Doc() string  { return m.doc }

func (m taskArith) Base() BaseUse { return BaseRequired }

func (m taskArith) Models() (min, max int) { return 1, 0 }

// rescalable reports whether the method has the rescale parameter.
func (m taskArith) rescalable() bool {
	return m.sparsify == sparsifyRandom || m.sparsify == sparsifyMagPrune
}

func (m taskArith) Params() []ParamSpec {
	w := weightParam("weight of the model's task vector")
	if !m.normalize {
		w.Gene = GeneTaskWeight // the weights scale the task vectors as they are
	}
	ps := []ParamSpec{w}
	if m.sparsify != sparsifyNone {
		density := fractionParam("density", PerModel, 1, "fraction of the task vector to keep")
		density.Gene = GeneDensity
		ps = append(ps, density)
	}
	switch m.sparsify {
	case sparsifyOutliers:
		ps = append(ps, fractionParam("gamma", PerModel, 0.01, "fraction of largest-magnitude entries to drop"))
	case sparsifyMagPrune:
		ps = append(ps, fractionParam("epsilon", PerModel, 0.15,
			"spread of the keep probability: (density−epsilon) for the smallest entry of a row to (density+epsilon) for the largest"))
	}
	ps = append(ps,
		ParamSpec{Name: "lambda", Scope: Global, Default: 1, Min: math.Inf(-1), Max: math.Inf(1),
			Doc: "scale of the merged task vector", Gene: GeneLambda},
		boolParam("normalize", m.normalize, "divide the merged task vector by the sum of the weights"))
	if m.rescalable() {
		ps = append(ps, boolParam("rescale", m.rescale,
			"scale each sparsified task vector back to its original L1 norm"))
	}
	return ps
}

// taskArithParams are the resolved parameters of one Merge call.
type taskArithParams struct {
	weight, density, gamma, epsilon []float64
	lambda                          float64
	normalize, rescale              bool
}

func (m taskArith) params(in *Input) (taskArithParams, error) {
	r := paramReader{m: m, in: in}
	var p taskArithParams
	p.weight = r.perModel("weight")
	if m.sparsify != sparsifyNone {
		p.density = r.perModel("density")
	}
	switch m.sparsify {
	case sparsifyOutliers:
		p.gamma = r.perModel("gamma")
	case sparsifyMagPrune:
		p.epsilon = r.perModel("epsilon")
	}
	p.lambda = r.global("lambda")
	p.normalize = r.flag("normalize")
	if m.rescalable() {
		p.rescale = r.flag("rescale")
	}
	return p, r.err
}

// taskVector writes δ'_i, model i's sparsified task vector, to delta.
func (m taskArith) taskVector(delta []float32, in *Input, p *taskArithParams, i int) {
	kernels.Sub(delta, in.Models[i], in.Base)
	if m.sparsify == sparsifyNone || p.density[i] >= 1 {
		return
	}
	var before float64
	if p.rescale {
		before = kernels.L1(delta)
	}
	seed := kernels.SubSeed(in.Seed, uint64(i))
	switch m.sparsify {
	case sparsifyMagnitude:
		kernels.SparsifyMagnitude(delta, p.density[i])
	case sparsifyRandom:
		kernels.SparsifyRandom(delta, p.density[i], seed)
	case sparsifyOutliers:
		kernels.SparsifyOutliers(delta, p.density[i], p.gamma[i])
	case sparsifyMagPrune:
		kernels.SparsifyMagPrune(delta, tensorRowLen(in, len(delta)), p.density[i], p.epsilon[i], seed)
	}
	if p.rescale {
		kernels.RescaleL1(delta, before)
	}
}

// taDivisorMin: without consensus, mergekit treats |Σ w| below this as 1.
const taDivisorMin = 1e-8

// Merge computes out = B + λ·mixed as described at the top of the file.
func (m taskArith) Merge(in *Input, out []float32) error {
	if err := checkInput(m, in, out); err != nil {
		return err
	}
	p, err := m.params(in)
	if err != nil {
		return err
	}
	if m.consensus {
		// The election needs every Δ_i at once.
		deltas := make([][]float32, len(in.Models))
		for i := range deltas {
			deltas[i] = in.temp(len(out))
			m.taskVector(deltas[i], in, &p, i)
		}
		kernels.SignConsensus(out, deltas, float32s(p.weight), p.normalize)
		kernels.AddScaled(out, in.Base, float32(p.lambda))
		return nil
	}
	// mixed = Σ w_i·δ'_i / divisor is linear: accumulate one model at a
	// time, out = B + Σ (λ·w_i/divisor)·δ'_i (taskArithCoefs, fused.go).
	copy(out, in.Base)
	var delta []float32
	for i, c := range taskArithCoefs(&p) {
		if m.sparsify == sparsifyNone || p.density[i] >= 1 {
			kernels.AxpyDiff(out, in.Models[i], in.Base, c)
			continue
		}
		if delta == nil {
			delta = in.temp(len(out))
		}
		m.taskVector(delta, in, &p, i)
		kernels.Axpy(out, delta, c)
	}
	return nil
}
