package kernels

import (
	"math/rand/v2"
	"slices"
	"testing"
)

// Sparsifier benchmarks on a 4096×4096 task vector, each next to the
// comparison-sort alternative it replaces, so the choice of algorithm is
// measured rather than assumed:
//
//	go test -run '^$' -bench Sparsify -benchtime 3x ./kernels

const benchRowLen, benchRows = 4096, 4096

var benchDelta []float32

func benchTaskVector(b *testing.B) []float32 {
	b.Helper()
	if benchDelta == nil {
		rng := rand.New(rand.NewPCG(1, 1))
		benchDelta = randVec(rng, benchRowLen*benchRows, 0.01)
	}
	return benchDelta
}

func benchSparsify(b *testing.B, f func(x []float32)) {
	src := benchTaskVector(b)
	x := make([]float32, len(src))
	b.SetBytes(int64(4 * len(src)))
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		copy(x, src)
		b.StartTimer()
		f(x)
	}
}

func BenchmarkSparsifyMagnitude(b *testing.B) {
	benchSparsify(b, func(x []float32) { SparsifyMagnitude(x, 0.3) })
}

// BenchmarkSparsifyMagnitudeBySort is the sort alternative: sort a copy of
// the (key, index) pairs, keep the top k.
func BenchmarkSparsifyMagnitudeBySort(b *testing.B) {
	var keys []uint64
	benchSparsify(b, func(x []float32) {
		keys = keys[:0]
		for j, v := range x {
			keys = append(keys, uint64(magKey(v))<<32|uint64(^uint32(j)))
		}
		slices.Sort(keys)
		k := FractionCount(0.3, len(x))
		for _, key := range keys[:len(keys)-k] {
			x[^uint32(key)] = 0
		}
	})
}

func BenchmarkSparsifyOutliers(b *testing.B) {
	benchSparsify(b, func(x []float32) { SparsifyOutliers(x, 0.3, 0.01) })
}

func BenchmarkSparsifyRandom(b *testing.B) {
	benchSparsify(b, func(x []float32) { SparsifyRandom(x, 0.3, 1) })
}

func BenchmarkSparsifyMagPrune(b *testing.B) {
	benchSparsify(b, func(x []float32) { SparsifyMagPrune(x, benchRowLen, 0.3, 0.15, 1) })
}

// BenchmarkRankRowsBySort is the ranking step of MagPrune done with a
// comparison sort per row; BenchmarkRankRowsRadix the radix sort it uses.
func BenchmarkRankRowsBySort(b *testing.B) {
	keys := make([]uint64, benchRowLen)
	benchSparsify(b, func(x []float32) {
		for lo := 0; lo < len(x); lo += benchRowLen {
			for j, v := range x[lo : lo+benchRowLen] {
				keys[j] = uint64(magKey(v))<<32 | uint64(^uint32(j))
			}
			slices.Sort(keys)
		}
	})
}

func BenchmarkRankRowsRadix(b *testing.B) {
	r := newRowRanker(benchRowLen)
	benchSparsify(b, func(x []float32) {
		for lo := 0; lo < len(x); lo += benchRowLen {
			r.rank(x[lo : lo+benchRowLen])
		}
	})
}

func BenchmarkL1Rescale(b *testing.B) {
	benchSparsify(b, func(x []float32) { RescaleL1(x, 2*L1(x)) })
}
