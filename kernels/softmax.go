package kernels

import "math"

// Scoring. Perplexity takes log p(token) under the softmax of a row of
// logits at every scored position: one exponential per vocabulary entry
// (4M per window of 127 positions for a 32k vocabulary), the Go side's
// whole cost. LogSoftmaxAt computes it as llama.cpp does — shifted by the
// row's maximum, exponentials in float32, summed in float64 — with a fixed
// summation order: element i goes to partial sum i mod 8, and the eight
// partial sums are added pairwise. The AVX2 loop (expSumAVX2) is that order
// eight lanes wide, and expf below is its lane, operation for operation, so
// both paths return the same bits.

// LogSoftmaxAt returns log p(tok) under softmax(logits). logits must be
// finite and non-empty.
func LogSoftmaxAt(logits []float32, tok int) float64 {
	m := MaxOf(logits)
	var s [8]float64
	n := simdLen(len(logits))
	if n > 0 {
		expSumAVX2(&s, &logits[0], n, m)
	}
	for i := n; i < len(logits); i++ {
		s[i%8] += float64(expf(logits[i] - m))
	}
	sum := ((s[0] + s[4]) + (s[1] + s[5])) + ((s[2] + s[6]) + (s[3] + s[7]))
	return float64(logits[tok]-m) - math.Log(sum)
}

// MaxOf returns the largest element of x (non-empty, no NaN).
func MaxOf(x []float32) float32 {
	m := x[0]
	n := simdLen(len(x))
	if n > 0 {
		m = maxAVX2(&x[0], n)
	}
	for _, v := range x[n:] {
		if v > m {
			m = v
		}
	}
	return m
}

// expf is e^x in float32 for x ≤ 0 (Cephes' expf: x = n·ln2 + r with
// |r| ≤ ½ln2, a degree-6 polynomial for e^r, and 2^n built in the exponent
// bits), accurate to about one ulp for x > −8; the single-constant n·ln 2
// lets the relative error grow to ~5e−6 further out, where e^x < 3e−4 and
// its absolute error stays below 1e−9. Arguments below −87 are clamped to
// −87 (e^−87 ≈ 1.6e−38, nothing next to the e^0 every such sum contains).
// Every product is rounded before it is added (no FMA), as in the AVX2 lane.
func expf(x float32) float32 {
	x = max(x, -87)
	ni := int32(float32(x*1.44269504088896341) - 0.5) // round to nearest (x ≤ 0)
	r := x - float32(float32(ni)*0.69314718056)
	p := float32(1.9875691500e-4*r) + 1.3981999507e-3
	p = float32(p*r) + 8.3334519073e-3
	p = float32(p*r) + 4.1665795894e-2
	p = float32(p*r) + 1.6666665459e-1
	p = float32(p*r) + 5.0000001201e-1
	p = float32(float32(p*r)*r) + r + 1
	return p * math.Float32frombits(uint32(ni+127)<<23)
}
