package kernels

import (
	"math/rand/v2"
	"testing"
)

// go test -run '^$' -bench Consensus ./kernels
func BenchmarkSignConsensus(b *testing.B) {
	rng := rand.New(rand.NewPCG(2, 2))
	n := benchRowLen * benchRows
	deltas := [][]float32{randVec(rng, n, 1), randVec(rng, n, 1), randVec(rng, n, 1)}
	w := []float32{0.5, 0.3, 0.2}
	dst := make([]float32, n)
	b.SetBytes(int64(3 * 4 * n))
	b.ResetTimer()
	for range b.N {
		SignConsensus(dst, deltas, w, true)
	}
}
