package merge

import (
	"math"

	"github.com/evomerge/evomerge/kernels"
)

// sce is SCE (Wan et al. 2024, FuseChat): select the elements where the
// models disagree most, calculate each model's weight from its task
// vector's squared magnitude, erase the entries that oppose the elected
// sign. The semantics are mergekit's implemented ones (sce.py), for each
// tensor with δ_i = x_i − B and n models:
//
//	select (select_topk < 1): v_j = variance over the models of δ_ij
//	    (population), nz = #{j : v_j ≠ 0}, k = ⌊nz·select_topk⌋ with the
//	    product taken in float32 as torch does (nz is a tensor there);
//	    every δ_i keeps the k elements of largest v_j, ties broken by
//	    position, and is zero elsewhere (k = 0 or select_topk ≤ 0: zero).
//	calculate: m_i = mean_j δ_ij², w_i = m_i / Σ m (1/n when Σ m < 1e-6)
//	erase: s_j = +1 if Σ_i δ_ij ≥ 0, else −1; K_j = {i : sign(δ_ij) = s_j}
//	out_j = B_j + Σ_{i∈K_j} w_i·δ_ij / max(Σ_{i∈K_j} w_i, 1e-6)
//
// mergekit's int8_mask only changes the type of its masks, so it is not a
// parameter here. The weights, sums and the variance are computed in
// float64.
type sce struct{}

func init() { mustRegister(Technique{Order: 140, Method: sce{}}) }

func (sce) Name() string { return "sce" }

func (sce) Doc() string {
	return "SCE: keep the elements where the task vectors differ most, weigh each by its mean square, elect signs"
}

func (sce) Params() []ParamSpec {
	topk := fractionParam("select_topk", Global, 1,
		"fraction of the elements with non-zero variance across the models to keep (1 keeps all)")
	topk.Gene = GeneT
	return []ParamSpec{topk}
}

func (sce) Base() BaseUse { return BaseRequired }

func (sce) Models() (min, max int) { return 1, 0 }

// sceWeightSumMin: below this sum of mean squares mergekit weighs the
// models equally; sceDivisorMin is its clamp of the erased weight sum.
const sceWeightSumMin, sceDivisorMin = 1e-6, 1e-6

// Merge computes SCE as described at the top of the file.
func (m sce) Merge(in *Input, out []float32) error {
	if err := checkInput(m, in, out); err != nil {
		return err
	}
	r := paramReader{m: m, in: in}
	topk := r.global("select_topk")
	if r.err != nil {
		return r.err
	}
	n := len(in.Models)
	deltas := make([][]float32, n)
	for i, x := range in.Models {
		deltas[i] = in.temp(len(out))
		kernels.Sub(deltas[i], x, in.Base)
	}
	if topk < 1 {
		sceSelect(in, deltas, topk)
	}
	w := sceWeights(deltas)
	for j := range out {
		var s float64
		for _, d := range deltas {
			s += float64(d[j])
		}
		var num, den float64
		for i, d := range deltas {
			if v := float64(d[j]); (s >= 0 && v > 0) || (s < 0 && v < 0) {
				num += w[i] * v
				den += w[i]
			}
		}
		out[j] = float32(float64(in.Base[j]) + num/max(den, sceDivisorMin))
	}
	return nil
}

// sceSelect zeroes, in every task vector, the elements outside the top k
// by variance across the models.
func sceSelect(in *Input, deltas [][]float32, topk float64) {
	size := len(deltas[0])
	v := in.temp(size)
	nz := 0
	for j := range v {
		var mean float64
		for _, d := range deltas {
			mean += float64(d[j])
		}
		mean /= float64(len(deltas))
		var ss float64
		for _, d := range deltas {
			e := float64(d[j]) - mean
			ss += e * e
		}
		v[j] = float32(ss / float64(len(deltas)))
		if v[j] != 0 {
			nz++
		}
	}
	k := 0
	if topk > 0 {
		k = int(float32(nz) * float32(topk))
	}
	// The k largest variances are all non-zero (k ≤ nz): keep those and
	// zero the rest of v, then v ≠ 0 is the mask. SparsifyMagnitude keeps
	// ⌊d·size⌋ entries; d is the smallest fraction that means k.
	d := float64(k) / float64(size)
	for kernels.FractionCount(d, size) < k {
		d = math.Nextafter(d, 2)
	}
	kernels.SparsifyMagnitude(v, d)
	for j, vj := range v {
		if vj == 0 {
			for _, dl := range deltas {
				dl[j] = 0
			}
		}
	}
}

// sceWeights are the models' mean squares, normalised to sum to 1 (equal
// when they sum to less than sceWeightSumMin).
func sceWeights(deltas [][]float32) []float64 {
	w := make([]float64, len(deltas))
	var sum float64
	for i, d := range deltas {
		w[i] = kernels.Dot(d, d) / float64(len(d))
		sum += w[i]
	}
	for i := range w {
		if math.Abs(sum) < sceWeightSumMin {
			w[i] = 1 / float64(len(w))
		} else {
			w[i] /= sum
		}
	}
	return w
}
