package eval

import (
	"math"
	"math/rand/v2"
	"testing"
)

func TestExpf(t *testing.T) {
	check := func(x float32) {
		got, want := float64(expf(x)), math.Exp(float64(x))
		if x < -87 {
			if got > 1.7e-38 {
				t.Fatalf("expf(%v) = %v, want at most e^-87 below -87", x, got)
			}
			return
		}
		// One constant for ln 2 (to stay inlinable) costs precision as |x|
		// grows; what matters is the error next to the sum's e^0 = 1.
		bound := 3e-7
		if x < -8 {
			bound = 1e-5
		}
		if rel := math.Abs(got-want) / want; rel > bound || math.Abs(got-want) > 1e-7 {
			t.Fatalf("expf(%v) = %v, want %v (relative error %.2g)", x, got, want, rel)
		}
	}
	for _, x := range []float32{0, -1e-9, -0.5, -0.34657359, -1, -10, -86.9, -87, -100, float32(math.Inf(-1))} {
		check(x)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for range 1_000_000 {
		check(-float32(rng.Float64() * 90))
	}
}

func BenchmarkLogSoftmax(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 2))
	logits := make([]float32, 32000)
	for i := range logits {
		logits[i] = float32(rng.NormFloat64() * 4)
	}
	b.SetBytes(int64(len(logits) * 4))
	b.Run("expf", func(b *testing.B) {
		for b.Loop() {
			LogSoftmaxAt(logits, 7)
		}
	})
	b.Run("math.Exp", func(b *testing.B) {
		for b.Loop() {
			m := logits[0]
			for _, l := range logits {
				m = max(m, l)
			}
			var s float64
			for _, l := range logits {
				s += float64(float32(math.Exp(float64(l - m))))
			}
			_ = float64(logits[7]-m) - math.Log(s)
		}
	})
}
