package kernels

import (
	"math"
	"math/rand/v2"
	"testing"
)

func TestWeightedSumHand(t *testing.T) {
	xs := [][]float32{{1, 2, 0}, {3, 4, -8}, {-1, 0.5, 2}}
	tests := []struct {
		w    []float32
		want []float32
	}{
		// [0.5·1 + 0.25·3 + 2·(−1), 0.5·2 + 0.25·4 + 2·0.5, 0 + 0.25·(−8) + 2·2]
		{[]float32{0.5, 0.25, 2}, []float32{-0.75, 3, 2}},
		// weights of zero and a negative weight: −(1, 2, 0)
		{[]float32{-1, 0, 0}, []float32{-1, -2, 0}},
	}
	for _, tt := range tests {
		got := make([]float32, 3)
		WeightedSum(got, xs, tt.w)
		checkExact(t, "WeightedSum", got, tt.want)
	}
	got := []float32{7, 7}
	WeightedSum(got, nil, nil)
	checkExact(t, "WeightedSum of nothing", got, []float32{0, 0})
}

func TestWeightedSumRandom(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	// Lengths around and across blockLen.
	for _, n := range []int{1, 7, blockLen - 1, blockLen, 3*blockLen + 5} {
		xs := [][]float32{randVec(rng, n, 1), randVec(rng, n, 2), randVec(rng, n, 0.5), randVec(rng, n, 1)}
		w := []float32{0.3, -1.25, 2, 0.125}
		want := make([]float64, n)
		for i, x := range xs {
			for j, v := range x {
				want[j] += float64(w[i]) * float64(v)
			}
		}
		got := make([]float32, n)
		WeightedSum(got, xs, w)
		checkClose(t, "WeightedSum", got, want, 1e-5, 1)
	}
}

func TestElementwise(t *testing.T) {
	x := []float32{1, -2, 3.5}
	b := []float32{0.5, 1, -0.5}

	d := []float32{1, 1, 1}
	Axpy(d, x, 2) // 1 + 2·x
	checkExact(t, "Axpy", d, []float32{3, -3, 8})

	d = []float32{1, 1, 1}
	AxpyDiff(d, x, b, 2) // 1 + 2·(x − b) = 1 + 2·(0.5, −3, 4)
	checkExact(t, "AxpyDiff", d, []float32{2, -5, 9})

	d = make([]float32, 3)
	Sub(d, x, b)
	checkExact(t, "Sub", d, []float32{0.5, -3, 4})

	d = []float32{2, 2, 2}
	AddScaled(d, b, -0.5) // b − 0.5·2
	checkExact(t, "AddScaled", d, []float32{-0.5, 0, -1.5})

	d = make([]float32, 3)
	Lerp(d, x, b, 0.25) // 0.75·x + 0.25·b
	checkExact(t, "Lerp", d, []float32{0.875, -1.25, 2.5})
}

func TestDotNorm(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for _, n := range []int{0, 1, 3, 4, 1001} {
		a, b := randVec(rng, n, 1), randVec(rng, n, 1)
		want := dot64(to64(a), to64(b))
		if got := Dot(a, b); !(math.Abs(got-want) <= 1e-12*max(1, math.Abs(want))) {
			t.Errorf("Dot n=%d = %v, want %v", n, got, want)
		}
		if got, want := Norm(a), norm64(to64(a)); !(math.Abs(got-want) <= 1e-12*max(1, want)) {
			t.Errorf("Norm n=%d = %v, want %v", n, got, want)
		}
	}
}

func TestSlerpHand(t *testing.T) {
	const r = 0.70710678118654752 // sin 45° = cos 45°
	tests := []struct {
		name   string
		v0, v1 []float32
		t      float64
		want   []float64
	}{
		// θ = 90°: c0 = c1 = sin 45°/sin 90°.
		{"orthogonal units", []float32{1, 0}, []float32{0, 1}, 0.5, []float64{r, r}},
		// Same angle, unnormalised tensors are combined: (2r, 3r).
		{"orthogonal 2,3", []float32{2, 0}, []float32{0, 3}, 0.5, []float64{2 * r, 3 * r}},
		// θ = 90°, t = 1/3: c0 = sin 60°, c1 = sin 30°.
		{"t=1/3", []float32{1, 0}, []float32{0, 1}, 1.0 / 3, []float64{math.Sqrt(3) / 2, 0.5}},
		// Colinear (dot = 1 > 0.9995): lerp 0.75·(1,2) + 0.25·(2,4).
		{"colinear", []float32{1, 2}, []float32{2, 4}, 0.25, []float64{1.25, 2.5}},
		// Anti-parallel (dot = −1, |dot| > 0.9995): lerp 0.5·(1,2) + 0.5·(−3,−6).
		{"anti-parallel", []float32{1, 2}, []float32{-3, -6}, 0.5, []float64{-1, -2}},
		// Zero v0 stays unnormalised, dot = 0, θ = 90°: r·(3,4).
		{"zero v0", []float32{0, 0}, []float32{3, 4}, 0.5, []float64{3 * r, 4 * r}},
		// Both zero: zero.
		{"both zero", []float32{0, 0}, []float32{0, 0}, 0.3, []float64{0, 0}},
		// ‖v0‖ = 1e-9 ≤ 1e-8 is not normalised: v1 = (1, 1) is, so
		// d = 1e-9/√2 ≈ 0, θ ≈ 90°, out ≈ r·v0 + r·v1. (Normalising v0 too
		// would give θ = 45° and c = sin 22.5°/sin 45° ≈ 0.54.)
		{"tiny v0", []float32{1e-9, 0}, []float32{1, 1}, 0.5, []float64{r * (1 + 1e-9), r}},
	}
	for _, tt := range tests {
		got := make([]float32, len(tt.v0))
		Slerp(got, tt.v0, tt.v1, tt.t)
		checkClose(t, tt.name, got, tt.want, 1e-6, 1e-12)
	}
}

// TestSlerpThreshold checks both sides of |dot| = 0.9995 with unit
// vectors at angle φ: slerp keeps the midpoint on the unit circle, lerp
// gives the chord midpoint, of norm cos(φ/2).
func TestSlerpThreshold(t *testing.T) {
	for _, tc := range []struct {
		cos  float64
		lerp bool
	}{
		{0.9993, false}, {0.9994, false}, {0.99955, true}, {0.9997, true},
		{-0.9993, false}, {-0.9997, true},
	} {
		sin := math.Sqrt(1 - tc.cos*tc.cos)
		v0 := []float32{1, 0}
		v1 := []float32{float32(tc.cos), float32(sin)}
		got := make([]float32, 2)
		Slerp(got, v0, v1, 0.5)
		norm := math.Hypot(float64(got[0]), float64(got[1]))
		want := 1.0
		if tc.lerp {
			want = math.Sqrt((1 + tc.cos) / 2) // cos(φ/2)
		}
		if !(math.Abs(norm-want) <= 1e-6) {
			t.Errorf("cos φ = %v: |midpoint| = %.7f, want %.7f (lerp=%v)", tc.cos, norm, want, tc.lerp)
		}
	}
}

func TestSlerpEndpointsExact(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	v0, v1 := randVec(rng, 999, 1), randVec(rng, 999, 3)
	colinear := make([]float32, len(v0))
	for i, v := range v0 {
		colinear[i] = 2 * v
	}
	for _, pair := range [][2][]float32{{v0, v1}, {v0, colinear}} {
		got := make([]float32, len(v0))
		Slerp(got, pair[0], pair[1], 0)
		checkExact(t, "Slerp t=0", got, pair[0])
		Slerp(got, pair[0], pair[1], 1)
		checkExact(t, "Slerp t=1", got, pair[1])
	}
}

func TestSlerpRandom(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	n := 2000
	base := randVec(rng, n, 1)
	for _, tc := range []struct {
		name  string
		noise float64 // v1 = base·k + noise: small noise is nearly colinear
		k     float32
	}{
		{"independent", 10, 1}, {"correlated", 0.5, 1}, {"just past the threshold", 0.02, 1},
		{"near colinear", 0.001, 1}, {"anticorrelated", 0.5, -1},
	} {
		v1 := randVec(rng, n, tc.noise)
		for i := range v1 {
			v1[i] += tc.k * base[i]
		}
		for _, tv := range []float64{0, 0.1, 0.5, 0.9, 1} {
			want := refSlerp(to64(base), to64(v1), tv)
			got := make([]float32, n)
			Slerp(got, base, v1, tv)
			checkClose(t, tc.name, got, want, 1e-5, 0.05)
		}
	}
}

func TestSlerpAliasing(t *testing.T) {
	v0, v1 := []float32{1, 0, 2}, []float32{0, 1, -1}
	want := make([]float32, 3)
	Slerp(want, v0, v1, 0.3)
	got := append([]float32(nil), v0...)
	Slerp(got, got, v1, 0.3)
	checkExact(t, "Slerp into v0", got, want)
}

func TestNuSlerpHand(t *testing.T) {
	const r = 0.70710678118654752
	tests := []struct {
		name   string
		v0, v1 []float32
		t      float64
		want   []float64
	}{
		{"orthogonal", []float32{1, 0}, []float32{0, 1}, 0.5, []float64{r, r}},
		// sin θ = sin π ≈ 1.2e-16 < 1e-8: lerp 0.75·(1,0) + 0.25·(−1,0).
		{"anti-parallel", []float32{1, 0}, []float32{-1, 0}, 0.25, []float64{0.5, 0}},
		// cos θ = 1 exactly, θ = 0: lerp.
		{"colinear", []float32{1, 1}, []float32{2, 2}, 0.5, []float64{1.5, 1.5}},
		// A zero vector: cos θ = 0, θ = 90°, out = r·v1.
		{"zero", []float32{0, 0}, []float32{3, 4}, 0.5, []float64{3 * r, 4 * r}},
		// ‖v0‖ = 1e-8 is clamped to 1e-7: cos θ = 1e-8/(1e-7·√2) = 0.1/√2,
		// not 1/√2; c0 = c1 = sin(θ/2)/sin θ = 1/(2 cos(θ/2)).
		{"norm clamp", []float32{1e-8, 0}, []float32{1, 1}, 0.5, func() []float64 {
			c := 1 / (2 * math.Cos(math.Acos(0.1/math.Sqrt2)/2))
			return []float64{c * (1 + 1e-8), c}
		}()},
	}
	for _, tt := range tests {
		got := make([]float32, len(tt.v0))
		NuSlerp(got, tt.v0, tt.v1, tt.t)
		checkClose(t, tt.name, got, tt.want, 1e-6, 1e-12)
	}
}

func TestNuSlerpRowsColumnsHand(t *testing.T) {
	const r = 0.70710678118654752
	// Two rows of two. Rows: row 0 (1,1)/(0,2) at 45°, row 1 (0,1)/(1,2).
	// Columns: col 0 = (1,0)/(0,1) orthogonal, col 1 = (1,1)/(2,2) colinear.
	v0 := []float32{1, 1, 0, 1}
	v1 := []float32{0, 2, 1, 2}
	got := make([]float32, 4)
	NuSlerpColumns(got, v0, v1, 2, 0.5)
	// col 0 → r·(1,0) + r·(0,1); col 1 → lerp ½(1,1) + ½(2,2).
	checkClose(t, "columns", got, []float64{r, 1.5, r, 1.5}, 1e-6, 1e-12)

	NuSlerpRows(got, v0, v1, 2, 0.5)
	want := append(refNuSlerpVec([]float64{1, 1}, []float64{0, 2}, 0.5),
		refNuSlerpVec([]float64{0, 1}, []float64{1, 2}, 0.5)...)
	checkClose(t, "rows", got, want, 1e-6, 1e-12)
	// Row 0 by hand: θ = 45°, c0 = c1 = sin 22.5°/sin 45°.
	c := math.Sin(math.Pi/8) / r
	if !closeTo(got[0], c, 1e-6, 0) || !closeTo(got[1], 3*c, 1e-6, 0) {
		t.Fatalf("row 0 = %v, want (%v, %v)", got[:2], c, 3*c)
	}
}

func TestNuSlerpRandom(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 10))
	const rows, cols = 13, 37
	v0 := randVec(rng, rows*cols, 1)
	v1 := randVec(rng, rows*cols, 1)
	for i := range v1 {
		v1[i] += 0.5 * v0[i]
	}
	for _, tv := range []float64{0, 0.25, 0.8, 1} {
		got := make([]float32, rows*cols)
		NuSlerp(got, v0, v1, tv)
		checkClose(t, "flat", got, refNuSlerpVec(to64(v0), to64(v1), tv), 1e-5, 0.05)

		NuSlerpRows(got, v0, v1, cols, tv)
		want := make([]float64, 0, rows*cols)
		for r := range rows {
			want = append(want, refNuSlerpVec(to64(v0[r*cols:(r+1)*cols]), to64(v1[r*cols:(r+1)*cols]), tv)...)
		}
		checkClose(t, "rows", got, want, 1e-5, 0.05)

		NuSlerpColumns(got, v0, v1, cols, tv)
		want = make([]float64, rows*cols)
		for c := range cols {
			a, b := make([]float64, rows), make([]float64, rows)
			for r := range rows {
				a[r], b[r] = float64(v0[r*cols+c]), float64(v1[r*cols+c])
			}
			for r, v := range refNuSlerpVec(a, b, tv) {
				want[r*cols+c] = v
			}
		}
		checkClose(t, "columns", got, want, 1e-5, 0.05)
	}
}
