package kernels

import "math"

// SignConsensus is TIES sign election and disjoint merge. For every element
// j, with the weighted task vectors Δ_ij = w_i·δ_ij (rounded to float32):
//
//	S_j = Σ_i Δ_ij                      (summed in model order)
//	s_j = +1 if S_j ≥ 0, else −1        (S_j = 0 elects +)
//	K_j = {i : sign(Δ_ij) = s_j}        (Δ_ij = 0 is in no K_j)
//	M_j = Σ_{i∈K_j} Δ_ij,  D_j = Σ_{i∈K_j} w_i, D_j = 0 → 1
//	dst_j = M_j / D_j if normalize, else M_j
//
// A NaN S_j elects −1 and a NaN Δ_ij is in no K_j (as torch's comparisons).
func SignConsensus(dst []float32, deltas [][]float32, w []float32, normalize bool) {
	var elected [blockLen]float32 // s_j
	var div [blockLen]float32
	for lo := 0; lo < len(dst); lo += blockLen {
		hi := min(lo+blockLen, len(dst))
		d := dst[lo:hi]
		// S_j, accumulated in d.
		clear(d)
		for i, delta := range deltas {
			Axpy(d, delta[lo:hi], w[i])
		}
		for j, s := range d {
			elected[j] = math.Float32frombits(one | ^maskIf(s >= 0)&signBit) // ±1
		}
		// M_j in d, D_j in div. Branch-free (maskIf): the signs are
		// data-dependent and a branch would mispredict half the time.
		clear(d)
		clear(div[:len(d)])
		el, q := elected[:len(d)], div[:len(d)]
		for i, delta := range deltas {
			wi := w[i]
			wBits := math.Float32bits(wi)
			x := delta[lo:hi]
			x = x[:len(d)]
			for j, v := range x {
				dv := float32(wi * v)
				in := maskIf(dv*el[j] > 0) // same sign, non-zero, not NaN
				d[j] += math.Float32frombits(math.Float32bits(dv) & in)
				q[j] += math.Float32frombits(wBits & in)
			}
		}
		if normalize {
			for j, q := range q {
				if q == 0 {
					q = 1
				}
				d[j] /= q
			}
		}
	}
}

const (
	signBit = 1 << 31
	one     = 0x3f80_0000 // the bits of float32 1.0
)
