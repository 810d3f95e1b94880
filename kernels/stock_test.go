package kernels

import (
	"math"
	"math/rand/v2"
	"testing"
)

func TestGramHand(t *testing.T) {
	// Base (1, 1); task vectors δ1 = (1, 0), δ2 = (0, 1), δ3 = (1, 1).
	base := []float32{1, 1}
	xs := [][]float32{{2, 1}, {1, 2}, {2, 2}}
	g := make([]float64, 9)
	Gram(g, xs, base)
	want := []float64{
		1, 0, 1,
		0, 1, 1,
		1, 1, 2,
	}
	for i := range want {
		if g[i] != want[i] {
			t.Fatalf("Gram = %v, want %v", g, want)
		}
	}
	// cos12 = 0, cos13 = cos23 = 1/√2: mean = √2/3.
	if got, want := MeanPairCosine(g, 3), math.Sqrt2/3; !(math.Abs(got-want) <= 1e-15) {
		t.Errorf("MeanPairCosine = %v, want %v", got, want)
	}
	// Without a base: plain dot products.
	Gram(g[:4], xs[:2], nil) // (2,1)·(2,1) = 5, (2,1)·(1,2) = 4, (1,2)·(1,2) = 5
	for i, w := range []float64{5, 4, 4, 5} {
		if g[i] != w {
			t.Fatalf("Gram without base = %v", g[:4])
		}
	}
}

func TestMeanPairCosineEdges(t *testing.T) {
	tests := []struct {
		name string
		g    []float64
		want float64
	}{
		// δ2 = 0 (a model identical to the base): its cosines are 0/1e-6 = 0.
		{"zero vector", []float64{4, 0, 0, 0}, 0},
		// Anti-parallel: cos = −1.
		{"anti-parallel", []float64{1, -2, -2, 4}, -1},
		// Rounding above 1 is clamped: 2.0000001/(1·2) → 1.
		{"clamped", []float64{1, 2.0000001, 2.0000001, 4}, 1},
		{"clamped below", []float64{1, -2.0000001, -2.0000001, 4}, -1},
		// Norm product below 1e-6 uses 1e-6: g12 = 1e-8, norms 1e-4·1e-4 = 1e-8 → 1e-8/1e-6.
		{"tiny norms", []float64{1e-8, 1e-8, 1e-8, 1e-8}, 0.01},
	}
	for _, tt := range tests {
		if got := MeanPairCosine(tt.g, 2); !(math.Abs(got-tt.want) <= 1e-12) {
			t.Errorf("%s: %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestModelStockRatio(t *testing.T) {
	tests := []struct {
		cos  float64
		n    int
		want float64
	}{
		{0.5, 2, 2.0 / 3}, // 2·0.5/(1 + 0.5)
		{0, 3, 0},         // orthogonal task vectors: stay at the base
		{1, 3, 1},         // identical directions: 3/(1 + 2) = 1
		{0.2, 4, 0.5},     // 0.8/(1 + 0.6)
		{-0.25, 2, -2.0 / 3},
	}
	for _, tt := range tests {
		if got := ModelStockRatio(tt.cos, tt.n); !(math.Abs(got-tt.want) <= 1e-15) {
			t.Errorf("ModelStockRatio(%v, %d) = %v, want %v", tt.cos, tt.n, got, tt.want)
		}
	}
	if got := ModelStockDenominator(-0.5, 3); got != 0 {
		t.Errorf("denominator at cos = −1/(N−1) = %v, want 0", got)
	}
}

func TestGramRandom(t *testing.T) {
	rng := rand.New(rand.NewPCG(41, 42))
	n := 3001
	base := randVec(rng, n, 1)
	xs := [][]float32{randVec(rng, n, 1), randVec(rng, n, 1), randVec(rng, n, 1)}
	g := make([]float64, 9)
	Gram(g, xs, base)
	for i := range xs {
		for k := range xs {
			var want float64
			for j := range n {
				want += float64(xs[i][j]-base[j]) * float64(xs[k][j]-base[j])
			}
			if !(math.Abs(g[i*3+k]-want) <= 1e-9*max(1, math.Abs(want))) {
				t.Errorf("g[%d,%d] = %v, want %v", i, k, g[i*3+k], want)
			}
		}
	}
}
