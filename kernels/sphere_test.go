package kernels

import (
	"math"
	"math/rand/v2"
	"testing"
)

// refMultiSlerp is mergekit's multislerp on full float64 vectors, tangent
// projection included (the kernel drops it as identically zero; this
// checks that claim).
func refMultiSlerp(vs [][]float64, w []float64, eps float64) []float64 {
	n := len(vs[0])
	norms := make([]float64, len(vs))
	units := make([][]float64, len(vs))
	mean := make([]float64, n)
	for i, v := range vs {
		norms[i] = norm64(v)
		units[i] = make([]float64, n)
		for j := range v {
			units[i][j] = v[j] / (norms[i] + eps)
			mean[j] += w[i] * units[i][j]
		}
	}
	mn := norm64(mean)
	for j := range mean {
		mean[j] /= mn
	}
	tangent := make([]float64, n)
	for i, u := range units {
		d := dot64(u, mean)
		for j := range u {
			tangent[j] += w[i] * (u[j] - d*mean[j])
		}
	}
	tn := norm64(tangent) + eps
	var avg float64
	for i := range vs {
		avg += norms[i] * w[i]
	}
	out := make([]float64, n)
	for j := range out {
		out[j] = avg * (mean[j]*math.Cos(tn) + tangent[j]*math.Sin(tn)/tn)
	}
	return out
}

// refKarcher is mergekit's karcher merge on full float64 vectors (equal
// weights), with the antipodal skip documented on KarcherCoefficients.
func refKarcher(vs [][]float64, maxIter int, tol float64) []float64 {
	n := len(vs[0])
	var units [][]float64
	var scale float64
	for _, v := range vs {
		nv := norm64(v)
		scale += nv / float64(len(vs))
		if nv > tol {
			u := make([]float64, n)
			for j := range v {
				u[j] = v[j] / nv
			}
			units = append(units, u)
		}
	}
	out := make([]float64, n)
	if len(units) == 0 {
		return out
	}
	alpha := 1 / float64(len(units))
	mean := make([]float64, n)
	for _, u := range units {
		for j := range u {
			mean[j] += alpha * u[j]
		}
	}
	mn := norm64(mean)
	for j := range mean {
		mean[j] /= mn
	}
	for range maxIter {
		tangent := make([]float64, n)
		for _, u := range units {
			c := math.Max(-1, math.Min(1, dot64(mean, u)))
			th := math.Acos(c)
			if th < tol || (math.Sin(th) < tol && th > math.Pi/2) {
				continue
			}
			for j := range u {
				tangent[j] += alpha * th / math.Sin(th) * (u[j] - c*mean[j])
			}
		}
		tn := norm64(tangent)
		if tn < tol {
			break
		}
		for j := range mean {
			mean[j] = math.Cos(tn)*mean[j] + math.Sin(tn)*tangent[j]/tn
		}
		un := norm64(mean)
		for j := range mean {
			mean[j] /= un
		}
	}
	for j := range out {
		out[j] = scale * mean[j]
	}
	return out
}

// combine returns Σ a_i·vs[i].
func combine(vs [][]float32, a []float64) []float64 {
	out := make([]float64, len(vs[0]))
	for i, v := range vs {
		for j, x := range v {
			out[j] += a[i] * float64(x)
		}
	}
	return out
}

func gramOf(vs [][]float32) []float64 {
	n := len(vs)
	g := make([]float64, n*n)
	for i := range vs {
		for k := range vs {
			g[i*n+k] = dot64(to64(vs[i]), to64(vs[k]))
		}
	}
	return g
}

func TestMultiSlerpHand(t *testing.T) {
	// Orthogonal (3, 0) and (0, 4), equal weights ½: the mean direction is
	// (1, 1)/√2 and the mean norm 3.5, so the result is 3.5/√2·(1, 1).
	vs := [][]float32{{3, 0}, {0, 4}}
	a, ok := MultiSlerpCoefficients(gramOf(vs), []float64{0.5, 0.5}, 0)
	if !ok {
		t.Fatal("not ok")
	}
	got := combine(vs, a)
	want := 3.5 / math.Sqrt2
	if !(math.Abs(got[0]-want) <= 1e-12) || !(math.Abs(got[1]-want) <= 1e-12) {
		t.Errorf("multislerp = %v, want (%v, %v)", got, want, want)
	}
	// Antipodal with equal weights: the directions cancel.
	if _, ok := MultiSlerpCoefficients(gramOf([][]float32{{1, 2}, {-1, -2}}), []float64{0.5, 0.5}, 1e-8); ok {
		t.Error("antipodal equal-weight vectors reported ok")
	}
}

func TestMultiSlerpRandom(t *testing.T) {
	rng := rand.New(rand.NewPCG(51, 52))
	n := 500
	common := randVec(rng, n, 1)
	var vs [][]float32
	for i := range 4 {
		v := randVec(rng, n, float64(i+1)*0.5)
		for j := range v {
			v[j] += common[j]
		}
		vs = append(vs, v)
	}
	for _, w := range [][]float64{{0.25, 0.25, 0.25, 0.25}, {0.1, 0.6, 0.2, 0.1}, {2, -0.5, 1, 0.5}} {
		for _, eps := range []float64{1e-8, 0.05} {
			a, ok := MultiSlerpCoefficients(gramOf(vs), w, eps)
			if !ok {
				t.Fatal("not ok")
			}
			want := refMultiSlerp([][]float64{to64(vs[0]), to64(vs[1]), to64(vs[2]), to64(vs[3])}, w, eps)
			got := combine(vs, a)
			for j := range want {
				if !(math.Abs(got[j]-want[j]) <= 1e-9*max(1, math.Abs(want[j]))) {
					t.Fatalf("w=%v eps=%v [%d] = %v, want %v", w, eps, j, got[j], want[j])
				}
			}
		}
	}
}

func TestKarcherHand(t *testing.T) {
	// Two orthogonal directions, norms 3 and 4: the Karcher mean of two
	// points is their midpoint on the great circle, (1, 1)/√2, and the
	// scale is the mean norm 3.5.
	vs := [][]float32{{3, 0}, {0, 4}}
	got := combine(vs, KarcherCoefficients(gramOf(vs), 10, 1e-5))
	want := 3.5 / math.Sqrt2
	if !(math.Abs(got[0]-want) <= 1e-9) || !(math.Abs(got[1]-want) <= 1e-9) {
		t.Errorf("karcher = %v, want (%v, %v)", got, want, want)
	}
	// Three directions at 0°, 90°, 180° in a plane, each norm 1: by
	// symmetry the mean is at 90°, (0, 1).
	vs = [][]float32{{1, 0}, {0, 1}, {-1, 0}}
	got = combine(vs, KarcherCoefficients(gramOf(vs), 50, 1e-9))
	if !(math.Abs(got[0]) <= 1e-9) || !(math.Abs(got[1]-1) <= 1e-9) {
		t.Errorf("karcher of 0°, 90°, 180° = %v, want (0, 1)", got)
	}
	// (1, ±0.1) and (−1, 0): the mean starts at (1, 0), where the last is
	// antipodal: its logarithm is undefined and skipped; the other two
	// balance, so the mean stays (1, 0), scaled by the mean norm
	// (2·√1.01 + 1)/3.
	vs = [][]float32{{1, 0.1}, {1, -0.1}, {-1, 0}}
	got = combine(vs, KarcherCoefficients(gramOf(vs), 10, 1e-5))
	scale := (2*math.Sqrt(float64(1+float32(0.1)*float32(0.1))) + 1) / 3
	if !(math.Abs(got[0]-scale) <= 1e-7) || !(math.Abs(got[1]) <= 1e-7) {
		t.Errorf("karcher with an antipode = %v, want (%v, 0)", got, scale)
	}
	// All vectors zero: zero.
	a := KarcherCoefficients(gramOf([][]float32{{0, 0}, {0, 0}}), 10, 1e-5)
	if a[0] != 0 || a[1] != 0 {
		t.Errorf("karcher of zeros: coefficients %v", a)
	}
}

func TestKarcherRandom(t *testing.T) {
	rng := rand.New(rand.NewPCG(53, 54))
	n := 400
	common := randVec(rng, n, 1)
	var vs [][]float32
	var vs64 [][]float64
	for i := range 3 {
		v := randVec(rng, n, float64(i+1))
		for j := range v {
			v[j] += common[j]
		}
		vs = append(vs, v)
		vs64 = append(vs64, to64(v))
	}
	// A zero vector counts in the scale but not in the mean.
	vs = append(vs, make([]float32, n))
	vs64 = append(vs64, make([]float64, n))
	for _, iter := range []int{0, 1, 3, 10, 100} {
		got := combine(vs, KarcherCoefficients(gramOf(vs), iter, 1e-7))
		want := refKarcher(vs64, iter, 1e-7)
		for j := range want {
			if !(math.Abs(got[j]-want[j]) <= 1e-8*max(1, math.Abs(want[j]))) {
				t.Fatalf("iter=%d [%d] = %v, want %v", iter, j, got[j], want[j])
			}
		}
	}
}
