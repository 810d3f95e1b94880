package kernels

import (
	"math"
	"math/rand/v2"
	"testing"
)

func TestSignConsensusHand(t *testing.T) {
	// Element j of the task vectors is column j below.
	tests := []struct {
		name      string
		deltas    [][]float32
		w         []float32
		normalize bool
		want      []float32
	}{
		{
			name: "unit weights",
			deltas: [][]float32{
				{1, 1, 0, -1, 2},
				{2, -1, 0, -2, 3},
				{-4, 0, 0, -3, -1},
			},
			w:         []float32{1, 1, 1},
			normalize: true,
			// col 0: S = −1 → −; keep −4; D = 1 → −4
			// col 1: S = 0 → +; keep 1 (the 0 never matches); D = 1 → 1
			// col 2: all zero: M = 0, D = 0 → 1 → 0
			// col 3: all negative: S = −6; keep all; M = −6, D = 3 → −2
			// col 4: S = 4 → +; keep 2, 3; M = 5, D = 2 → 2.5
			want: []float32{-4, 1, 0, -2, 2.5},
		},
		{
			name: "unit weights, no normalize",
			deltas: [][]float32{
				{1, 1, 0, -1, 2},
				{2, -1, 0, -2, 3},
				{-4, 0, 0, -3, -1},
			},
			w:    []float32{1, 1, 1},
			want: []float32{-4, 1, 0, -6, 5},
		},
		{
			name: "weights before election",
			deltas: [][]float32{
				{1, 1, 2},
				{-2, 2, 3},
				{0, -4, -1},
			},
			w:         []float32{3, 0.5, 1},
			normalize: true,
			// col 0: Δ = (3, −2, 0), S = 1 → +; keep 3; D = 3 → 1
			//        (unweighted, S would be −1 and −2 would win)
			// col 1: Δ = (3, 1, −4), S = 0 → +; keep 3, 1; M = 4, D = 3.5 → 8/7
			// col 2: Δ = (6, 1.5, −1), S = 6.5; keep 6, 1.5; M = 7.5, D = 3.5 → 15/7
			want: []float32{1, 8.0 / 7, 15.0 / 7},
		},
		{
			name:      "negative weight flips the sign",
			deltas:    [][]float32{{1, 2}, {1, 1}},
			w:         []float32{-1, 1},
			normalize: true,
			// col 0: Δ = (−1, 1), S = 0 → +; keep 1 (w = 1); D = 1 → 1
			// col 1: Δ = (−2, 1), S = −1 → −; keep −2 (w = −1); D = −1 → 2
			want: []float32{1, 2},
		},
		{
			name:      "one model",
			deltas:    [][]float32{{-3, 0, 2}},
			w:         []float32{0.5},
			normalize: true,
			// Δ = (−1.5, 0, 1): each elects itself, D = 0.5; 0 → D = 0 → 1.
			want: []float32{-3, 0, 2},
		},
	}
	for _, tt := range tests {
		got := make([]float32, len(tt.want))
		SignConsensus(got, tt.deltas, tt.w, tt.normalize)
		checkClose(t, tt.name, got, to64(tt.want), 1e-7, 0)
	}
}

// refConsensus computes the consensus element by element in float64.
func refConsensus(deltas [][]float32, w []float32, normalize bool) []float64 {
	out := make([]float64, len(deltas[0]))
	for j := range out {
		var s float64
		for i := range deltas {
			s += float64(w[i]) * float64(deltas[i][j])
		}
		sign := 1.0
		if s < 0 {
			sign = -1
		}
		var m, div float64
		for i := range deltas {
			d := float64(w[i]) * float64(deltas[i][j])
			if d != 0 && math.Signbit(d) == math.Signbit(sign) {
				m += d
				div += float64(w[i])
			}
		}
		if normalize {
			if div == 0 {
				div = 1
			}
			m /= div
		}
		out[j] = m
	}
	return out
}

func TestSignConsensusRandom(t *testing.T) {
	// Quarter-integer deltas and dyadic weights: every product and sum is
	// exact in float32, so S = 0 happens often and the election is exact.
	rng := rand.New(rand.NewPCG(31, 32))
	n := 2*blockLen + 77
	for _, w := range [][]float32{{1, 1, 1, 1}, {0.5, 2, -1, 0.25}, {1, 0, 3, 0.5}} {
		deltas := make([][]float32, len(w))
		for i := range deltas {
			deltas[i] = make([]float32, n)
			for j := range deltas[i] {
				deltas[i][j] = float32(rng.IntN(9)-4) / 4
			}
		}
		for _, normalize := range []bool{false, true} {
			got := make([]float32, n)
			SignConsensus(got, deltas, w, normalize)
			checkClose(t, "consensus", got, refConsensus(deltas, w, normalize), 1e-6, 1e-6)
		}
	}
}

func TestSignConsensusNaN(t *testing.T) {
	// A NaN S_j elects −1 (S ≥ 0 is false); a NaN Δ is in no K_j, so
	// only −2 is kept: M = −2, D = 1.
	nan := float32(math.NaN())
	got := make([]float32, 1)
	SignConsensus(got, [][]float32{{nan}, {-2}, {3}}, []float32{1, 1, 1}, true)
	if got[0] != -2 {
		t.Errorf("consensus with a NaN = %v, want -2", got[0])
	}
}
