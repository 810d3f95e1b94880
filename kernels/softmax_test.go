package kernels

import (
	"math"
	"math/rand/v2"
	"testing"
)

// logSoftmaxRef is LogSoftmaxAt in plain float64 math.Exp: the value the
// kernel approximates.
func logSoftmaxRef(logits []float32, tok int) float64 {
	m := math.Inf(-1)
	for _, l := range logits {
		m = max(m, float64(l))
	}
	var s float64
	for _, l := range logits {
		s += math.Exp(float64(l) - m)
	}
	return float64(logits[tok]) - m - math.Log(s)
}

// logSoftmaxScalar is LogSoftmaxAt without the assembly: the same lanes
// and order in Go.
func logSoftmaxScalar(logits []float32, tok int) float64 {
	m := logits[0]
	for _, l := range logits {
		if l > m {
			m = l
		}
	}
	var s [8]float64
	for i, l := range logits {
		s[i%8] += float64(expf(l - m))
	}
	sum := ((s[0] + s[4]) + (s[1] + s[5])) + ((s[2] + s[6]) + (s[3] + s[7]))
	return float64(logits[tok]-m) - math.Log(sum)
}

func TestExpf(t *testing.T) {
	check := func(x float32) {
		got, want := float64(expf(x)), math.Exp(float64(x))
		if x < -87 {
			if got > 1.7e-38 {
				t.Fatalf("expf(%v) = %v, want at most e^-87 below -87", x, got)
			}
			return
		}
		// One constant for ln 2 costs precision as |x| grows; what matters
		// is the error next to the sum's e^0 = 1.
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

func TestLogSoftmaxAt(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for _, n := range append(testLengths[1:], 32000, 151936) {
		for _, scale := range []float64{0.01, 3, 30} {
			logits := make([]float32, n)
			for i := range logits {
				logits[i] = float32(rng.NormFloat64()*scale + 5)
			}
			tok := rng.IntN(n)
			got := LogSoftmaxAt(logits, tok)
			if want := logSoftmaxScalar(logits, tok); math.Float64bits(got) != math.Float64bits(want) {
				t.Fatalf("n=%d scale %v: %v, the scalar lanes give %v", n, scale, got, want)
			}
			if want := logSoftmaxRef(logits, tok); math.Abs(got-want) > 1e-6*max(1, math.Abs(want)) {
				t.Fatalf("n=%d scale %v: %v, float64 math gives %v", n, scale, got, want)
			}
			if m := MaxOf(logits); m != slicesMax(logits) {
				t.Fatalf("n=%d: MaxOf %v, want %v", n, m, slicesMax(logits))
			}
		}
	}
	// Known values: equal logits, and a dominant one.
	if got := LogSoftmaxAt([]float32{1000, 1000}, 0); math.Abs(got-math.Log(0.5)) > 1e-12 {
		t.Errorf("two equal logits: %v, want log ½", got)
	}
	eq := make([]float32, 1000)
	if got := LogSoftmaxAt(eq, 999); math.Abs(got+math.Log(1000)) > 1e-12 {
		t.Errorf("1000 equal logits: %v, want −log 1000", got)
	}
	eq[17] = 200
	if got := LogSoftmaxAt(eq, 17); got != 0 {
		t.Errorf("a logit 200 above 999 others: %v, want 0 (e^−200 is below −87's clamp)", got)
	}
}

func slicesMax(x []float32) float32 {
	m := x[0]
	for _, v := range x {
		m = max(m, v)
	}
	return m
}

func BenchmarkLogSoftmax(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 2))
	logits := make([]float32, 32000)
	for i := range logits {
		logits[i] = float32(rng.NormFloat64() * 4)
	}
	b.SetBytes(int64(len(logits) * 4))
	b.Run("kernel", func(b *testing.B) {
		for b.Loop() {
			LogSoftmaxAt(logits, 7)
		}
	})
	b.Run("scalar", func(b *testing.B) {
		for b.Loop() {
			logSoftmaxScalar(logits, 7)
		}
	})
}
