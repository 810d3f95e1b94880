package kernels

import (
	"math"
	"math/rand/v2"
	"testing"
)

// Helpers and float64 reference math for the merge-kernel tests. The
// references are written from the formulas in the doc comments, as plainly
// as possible, and never call the code under test.

func randVec(rng *rand.Rand, n int, scale float64) []float32 {
	v := make([]float32, n)
	for i := range v {
		v[i] = float32(rng.NormFloat64() * scale)
	}
	return v
}

func to64(v []float32) []float64 {
	out := make([]float64, len(v))
	for i, x := range v {
		out[i] = float64(x)
	}
	return out
}

func dot64(a, b []float64) float64 {
	var s float64
	for i := range a {
		s += a[i] * b[i]
	}
	return s
}

func norm64(a []float64) float64 { return math.Sqrt(dot64(a, a)) }

// closeTo reports whether got is within tol of want, relative to
// max(|want|, scale) (scale keeps near-zero entries from demanding
// relative precision they cannot have).
func closeTo(got float32, want, tol, scale float64) bool {
	return math.Abs(float64(got)-want) <= tol*max(math.Abs(want), scale)
}

// checkClose fails t at the first element of got not close to want.
func checkClose(t *testing.T, name string, got []float32, want []float64, tol, scale float64) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: len %d, want %d", name, len(got), len(want))
	}
	for i := range got {
		if !closeTo(got[i], want[i], tol, scale) {
			t.Fatalf("%s: [%d] = %v, want %v (tol %g)", name, i, got[i], want[i], tol)
		}
	}
}

// checkExact fails t unless got and want hold the same bits.
func checkExact(t *testing.T, name string, got, want []float32) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: len %d, want %d", name, len(got), len(want))
	}
	for i := range got {
		if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
			t.Fatalf("%s: [%d] = %v, want exactly %v", name, i, got[i], want[i])
		}
	}
}

// refSlerp is mergekit's slerp on float64 copies.
func refSlerp(v0, v1 []float64, t float64) []float64 {
	n0, n1 := append([]float64(nil), v0...), append([]float64(nil), v1...)
	if nv := norm64(v0); nv > 1e-8 {
		for i := range n0 {
			n0[i] /= nv
		}
	}
	if nv := norm64(v1); nv > 1e-8 {
		for i := range n1 {
			n1[i] /= nv
		}
	}
	d := dot64(n0, n1)
	out := make([]float64, len(v0))
	if math.Abs(d) > 0.9995 {
		for i := range out {
			out[i] = (1-t)*v0[i] + t*v1[i]
		}
		return out
	}
	th := math.Acos(d)
	s0 := math.Sin(th-th*t) / math.Sin(th)
	s1 := math.Sin(th*t) / math.Sin(th)
	for i := range out {
		out[i] = s0*v0[i] + s1*v1[i]
	}
	return out
}

// refNuSlerpVec is mergekit's nuslerp of two vectors.
func refNuSlerpVec(v0, v1 []float64, t float64) []float64 {
	a, b := max(norm64(v0), 1e-7), max(norm64(v1), 1e-7)
	var c float64
	for i := range v0 {
		c += (v0[i] / a) * (v1[i] / b)
	}
	c = math.Max(-1, math.Min(1, c))
	th := math.Acos(c)
	out := make([]float64, len(v0))
	for i := range out {
		if math.Abs(math.Sin(th)) < 1e-8 {
			out[i] = (1-t)*v0[i] + t*v1[i]
		} else {
			out[i] = (math.Sin((1-t)*th)*v0[i] + math.Sin(t*th)*v1[i]) / math.Sin(th)
		}
	}
	return out
}
