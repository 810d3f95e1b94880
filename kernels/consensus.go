package kernels

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
		el, q := elected[:len(d)], div[:len(d)]
		signElect(el, d)
		// M_j in d, D_j in q.
		clear(d)
		clear(q)
		for i, delta := range deltas {
			consensusAdd(d, q, delta[lo:hi], el, w[i])
		}
		if normalize {
			divNonZero(d, q)
		}
	}
}

const (
	signBit = 1 << 31
	one     = 0x3f80_0000 // the bits of float32 1.0
)
