package merge

import (
	"math"
	"math/rand/v2"
	"testing"
)

// sin(π/8), sin(π/4), sin(3π/8)
var (
	s8  = math.Sin(math.Pi / 8)
	s4  = math.Sqrt2 / 2
	s38 = math.Sin(3 * math.Pi / 8)
)

func TestSlerpMethod(t *testing.T) {
	base := []float32{1, 0}
	x := [][]float32{{0, 2}}
	at := func(tv float64) map[string]float64 { return map[string]float64{"t": tv} }
	// θ = 90°, t = ½: sin 45°·(1, 0) + sin 45°·(0, 2).
	checkNear(t, "t=0.5", mustCall(t, "slerp", base, x, at(0.5), nil), []float64{s4, 2 * s4}, 1e-6)
	// t = ¼: sin 67.5°·(1, 0) + sin 22.5°·(0, 2).
	checkNear(t, "t=0.25", mustCall(t, "slerp", base, x, at(0.25), nil), []float64{s38, 2 * s8}, 1e-6)

	rng := rand.New(rand.NewPCG(2, 2))
	b := randTensor(rng, 1000, 1)
	for name, m := range map[string][]float32{
		"random":        randTensor(rng, 1000, 1),
		"colinear":      scaled(b, 3),
		"anti-parallel": scaled(b, -0.5),
		"identical":     scaled(b, 1),
	} {
		checkBits(t, name+" t=0 is the base", mustCall(t, "slerp", b, [][]float32{m}, at(0), nil), b)
		checkBits(t, name+" t=1 is the model", mustCall(t, "slerp", b, [][]float32{m}, at(1), nil), m)
	}
	// Colinear: lerp. (1−0.3)·b + 0.3·3b = 1.6·b.
	got := mustCall(t, "slerp", b, [][]float32{scaled(b, 3)}, at(0.3), nil)
	want := make([]float64, len(b))
	for i, v := range b {
		want[i] = 1.6 * float64(v)
	}
	checkNear(t, "colinear lerp", got, want, 1e-6)
}

func scaled(x []float32, k float32) []float32 {
	out := make([]float32, len(x))
	for i, v := range x {
		out[i] = k * v
	}
	return out
}

// refNuSlerp is mergekit's nuslerp of two float64 vectors.
func refNuSlerp(v0, v1 []float64, t float64) []float64 {
	var d, n0, n1 float64
	for i := range v0 {
		d += v0[i] * v1[i]
		n0 += v0[i] * v0[i]
		n1 += v1[i] * v1[i]
	}
	c := math.Max(-1, math.Min(1, d/(math.Max(math.Sqrt(n0), 1e-7)*math.Max(math.Sqrt(n1), 1e-7))))
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

func TestNuSlerpMethod(t *testing.T) {
	x := [][]float32{{1, 0}, {0, 1}}
	w := perModel(2, map[string][]float64{"weight": {1, 3}})
	// t = 3/(1+3) = ¾, θ = 90°: (sin 22.5°, sin 67.5°).
	checkNear(t, "no base", mustCall(t, "nuslerp", nil, x, nil, w), []float64{s8, s38}, 1e-6)
	// With a base, the task vectors (1,0), (0,1) are interpolated and
	// the base (1, 1) added back.
	b := []float32{1, 1}
	xb := [][]float32{{2, 1}, {1, 2}}
	checkNear(t, "base", mustCall(t, "nuslerp", b, xb, nil, w), []float64{1 + s8, 1 + s38}, 1e-6)
	// Weights summing to 0: t = ½.
	z := perModel(2, map[string][]float64{"weight": {1, -1}})
	checkNear(t, "Σw = 0", mustCall(t, "nuslerp", nil, x, nil, z), []float64{s4, s4}, 1e-6)
	// Default weights 1, 1: t = ½.
	checkNear(t, "default weights", mustCall(t, "nuslerp", nil, x, nil, nil), []float64{s4, s4}, 1e-6)

	// Flatten, rows and mergekit's row_wise on a [cols=2, rows=3] tensor.
	rng := rand.New(rand.NewPCG(3, 3))
	v0, v1 := randTensor(rng, 6, 1), randTensor(rng, 6, 1)
	m, _ := Lookup("nuslerp")
	run := func(global map[string]float64) []float32 {
		out := make([]float32, 6)
		in := &Input{Tensor: "t", Shape: []uint64{2, 3}, Models: [][]float32{v0, v1},
			Global: global, ModelParams: perModel(2, map[string][]float64{"weight": {2, 1}})}
		if err := m.Merge(in, out); err != nil {
			t.Fatal(err)
		}
		return out
	}
	f64 := func(idx []int, v []float32) []float64 {
		out := make([]float64, len(idx))
		for k, i := range idx {
			out[k] = float64(v[i])
		}
		return out
	}
	const tv = 1.0 / 3 // 1/(2+1)
	assemble := func(groups [][]int) []float64 {
		want := make([]float64, 6)
		for _, idx := range groups {
			for k, v := range refNuSlerp(f64(idx, v0), f64(idx, v1), tv) {
				want[idx[k]] = v
			}
		}
		return want
	}
	checkNear(t, "flatten", run(nil), assemble([][]int{{0, 1, 2, 3, 4, 5}}), 1e-5)
	// Contiguous rows of 2 (mergekit's dim −1).
	checkNear(t, "rows", run(map[string]float64{"nuslerp_flatten": 0}), assemble([][]int{{0, 1}, {2, 3}, {4, 5}}), 1e-5)
	// row_wise: vectors along the outer dimension (3): elements c, c+2, c+4.
	checkNear(t, "row_wise", run(map[string]float64{"nuslerp_flatten": 0, "nuslerp_row_wise": 1}), assemble([][]int{{0, 2, 4}, {1, 3, 5}}), 1e-5)
	// Flatten wins over row_wise, as in mergekit.
	checkNear(t, "flatten+row_wise", run(map[string]float64{"nuslerp_row_wise": 1}), assemble([][]int{{0, 1, 2, 3, 4, 5}}), 1e-5)
}

func TestMultiSlerpMethod(t *testing.T) {
	// Orthogonal (3, 0) and (0, 4), equal weights: direction (1, 1)/√2,
	// mean norm 3.5.
	x := [][]float32{{3, 0}, {0, 4}}
	k := 3.5 / math.Sqrt2
	checkNear(t, "no base", mustCall(t, "multislerp", nil, x, nil, nil), []float64{k, k}, 1e-6)
	// The same task vectors around a base (1, −1).
	b := []float32{1, -1}
	xb := [][]float32{{4, -1}, {1, 3}}
	checkNear(t, "base", mustCall(t, "multislerp", b, xb, nil, nil), []float64{1 + k, -1 + k}, 1e-6)
	// Weights are normalised: (2, 2) is the same as (1, 1).
	w := perModel(2, map[string][]float64{"weight": {2, 2}})
	checkNear(t, "weights normalised", mustCall(t, "multislerp", nil, x, nil, w), []float64{k, k}, 1e-6)
	// One model is returned unchanged.
	checkBits(t, "one model", mustCall(t, "multislerp", nil, x[:1], nil, nil), x[0])
	// Antipodal pair, equal weights: the directions cancel; mergekit falls
	// back to the weighted sum ½·a + ½·(−a) = 0 for two models.
	anti := [][]float32{{1, 2}, {-1, -2}}
	checkNear(t, "antipodal pair", mustCall(t, "multislerp", nil, anti, nil, nil), []float64{0, 0}, 1e-7)
	// ... and fails for more.
	if _, err := call(t, "multislerp", nil, [][]float32{{1, 2}, {-1, -2}, {0, 0}}, nil, nil); err == nil {
		t.Error("three cancelling models: no error")
	}
	z := perModel(2, map[string][]float64{"weight": {1, -1}})
	if _, err := call(t, "multislerp", nil, x, nil, z); err == nil {
		t.Error("weights summing to 0 with normalize_weights: no error")
	}
}

func TestKarcherMethod(t *testing.T) {
	x := [][]float32{{3, 0}, {0, 4}}
	k := 3.5 / math.Sqrt2
	checkNear(t, "two orthogonal", mustCall(t, "karcher", nil, x, nil, nil), []float64{k, k}, 1e-6)
	// A base, if passed, is ignored (recipes list it among the models).
	checkNear(t, "base ignored", mustCall(t, "karcher", []float32{9, 9}, x, nil, nil), []float64{k, k}, 1e-6)
	checkBits(t, "one model", mustCall(t, "karcher", nil, x[:1], nil, nil), x[0])
	// Identical directions: the mean direction is that direction, scaled
	// by the mean norm: (1, 2)·(1 + 3)/2.
	same := [][]float32{{1, 2}, {3, 6}}
	checkNear(t, "same direction", mustCall(t, "karcher", nil, same, nil, nil), []float64{2, 4}, 1e-6)
}
