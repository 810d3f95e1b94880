package kernels

import (
	"math"
	"math/rand/v2"
	"testing"
)

// Conversion throughput on 1M weights drawn like a model's (normal, σ 0.02,
// so a few per mille are half-precision subnormals). SetBytes counts the
// float32 side, so MB/s compares decode with encode.
//
//	go test -run '^$' -bench F16 ./kernels

const benchConvLen = 1 << 20

func benchWeights() ([]float32, []byte) {
	rng := rand.New(rand.NewPCG(5, 6))
	f := make([]float32, benchConvLen)
	for i := range f {
		f[i] = float32(rng.NormFloat64() * 0.02)
	}
	h := make([]byte, 2*len(f))
	EncodeF16(h, f)
	return f, h
}

func BenchmarkDecodeF16(b *testing.B) {
	f, h := benchWeights()
	b.SetBytes(int64(4 * len(f)))
	for b.Loop() {
		DecodeF16(f, h)
	}
}

func BenchmarkEncodeF16(b *testing.B) {
	f, h := benchWeights()
	b.SetBytes(int64(4 * len(f)))
	for b.Loop() {
		EncodeF16(h, f)
	}
}

// BenchmarkCopyF32 is the baseline: decoding float32 (a load and a store
// per value).
func BenchmarkCopyF32(b *testing.B) {
	f, _ := benchWeights()
	raw := make([]byte, 4*len(f))
	EncodeF32(raw, f)
	b.SetBytes(int64(4 * len(f)))
	for b.Loop() {
		DecodeF32(f, raw)
	}
}

var sinkBool bool

func BenchmarkFiniteCheck(b *testing.B) {
	f, _ := benchWeights()
	b.SetBytes(int64(4 * len(f)))
	for b.Loop() {
		ok := true
		for _, v := range f {
			if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
				ok = false
			}
		}
		sinkBool = ok
	}
}
