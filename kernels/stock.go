package kernels

import "math"

// DiffDot returns Σ_j (a[j] − base[j])·(b[j] − base[j]): the dot product of
// two task vectors, each difference rounded to float32 and the products
// accumulated in float64. A nil base means zero (the plain dot product).
func DiffDot(a, b, base []float32) float64 {
	if base == nil {
		return Dot(a, b)
	}
	b, base = b[:len(a)], base[:len(a)]
	var s0, s1 float64
	j := 0
	for ; j+2 <= len(a); j += 2 {
		s0 += float64(a[j]-base[j]) * float64(b[j]-base[j])
		s1 += float64(a[j+1]-base[j+1]) * float64(b[j+1]-base[j+1])
	}
	if j < len(a) {
		s0 += float64(a[j]-base[j]) * float64(b[j]-base[j])
	}
	return s0 + s1
}

// Gram fills the n×n matrix g (row-major, n = len(xs)) with
// g[i·n+k] = (x_i − base)·(x_k − base), as DiffDot computes it.
func Gram(g []float64, xs [][]float32, base []float32) {
	n := len(xs)
	for i := range n {
		for k := i; k < n; k++ {
			d := DiffDot(xs[i], xs[k], base)
			g[i*n+k], g[k*n+i] = d, d
		}
	}
}

// cosineNormMin is mergekit's model_stock clamp on ‖δ_i‖·‖δ_k‖.
const cosineNormMin = 1e-6

// MeanPairCosine returns the mean over the pairs i < k of the clamped
// cosine similarity of the vectors whose n×n Gram matrix is g:
//
//	cos_ik = clamp(g_ik / max(√g_ii·√g_kk, 1e-6), −1, 1)
//
// A zero vector (a model identical to the base) has cosine 0 with every
// other. n must be at least 2.
func MeanPairCosine(g []float64, n int) float64 {
	var sum float64
	pairs := 0
	for i := range n {
		for k := i + 1; k < n; k++ {
			norms := math.Sqrt(g[i*n+i]) * math.Sqrt(g[k*n+k])
			sum += min(max(g[i*n+k]/max(norms, cosineNormMin), -1), 1)
			pairs++
		}
	}
	return sum / float64(pairs)
}

// ModelStockRatio is model_stock's interpolation ratio for N fine-tuned
// models whose task vectors have mean pairwise cosine cos:
//
//	t = N·cos / (1 + (N−1)·cos)
//
// The merge is t·mean(x_i) + (1−t)·B. The denominator vanishes at
// cos = −1/(N−1); callers must check it (ModelStockDenominator).
func ModelStockRatio(cos float64, n int) float64 {
	return float64(n) * cos / ModelStockDenominator(cos, n)
}

// ModelStockDenominator returns 1 + (N−1)·cos, the denominator of
// ModelStockRatio.
func ModelStockDenominator(cos float64, n int) float64 {
	return 1 + float64(n-1)*cos
}
