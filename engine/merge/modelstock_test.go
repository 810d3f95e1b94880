package merge

import (
	"math"
	"math/rand/v2"
	"strings"
	"testing"
)

// refModelStock is model_stock in float64 over spans of span elements.
func refModelStock(base []float32, models [][]float32, span int) []float64 {
	out := make([]float64, len(base))
	n := len(models)
	for lo := 0; lo < len(base); lo += span {
		hi := lo + span
		delta := func(i, j int) float64 { return float64(models[i][j] - base[j]) }
		var sum float64
		pairs := 0
		for i := range n {
			for k := i + 1; k < n; k++ {
				var d, ni, nk float64
				for j := lo; j < hi; j++ {
					d += delta(i, j) * delta(k, j)
					ni += delta(i, j) * delta(i, j)
					nk += delta(k, j) * delta(k, j)
				}
				sum += math.Max(-1, math.Min(1, d/math.Max(math.Sqrt(ni)*math.Sqrt(nk), 1e-6)))
				pairs++
			}
		}
		cos := sum / float64(pairs)
		t := float64(n) * cos / (1 + float64(n-1)*cos)
		for j := lo; j < hi; j++ {
			var mean float64
			for i := range n {
				mean += float64(models[i][j]) / float64(n)
			}
			out[j] = t*mean + (1-t)*float64(base[j])
		}
	}
	return out
}

func TestModelStock(t *testing.T) {
	c := 1 / math.Sqrt2
	tc := 2 * c / (1 + c) // N = 2, cos = 1/√2
	z := []float32{0, 0}
	// Orthogonal task vectors: cos = 0, t = 0: the base.
	checkNear(t, "orthogonal", mustCall(t, "model_stock", z, [][]float32{{1, 0}, {0, 1}}, nil, nil), []float64{0, 0}, 1e-7)
	// cos = 1/√2: t·mean = t·(1, 0.5).
	checkNear(t, "45°", mustCall(t, "model_stock", z, [][]float32{{1, 0}, {1, 1}}, nil, nil), []float64{tc, tc / 2}, 1e-6)
	// A model identical to the base: its cosines are 0, t = 0: the base.
	checkNear(t, "model is base", mustCall(t, "model_stock", []float32{1, 1}, [][]float32{{1, 1}, {3, 5}}, nil, nil), []float64{1, 1}, 1e-7)
	// Parallel task vectors: cos = 1, t = 1: the mean of the models.
	checkNear(t, "parallel", mustCall(t, "model_stock", []float32{1, 1}, [][]float32{{2, 3}, {3, 5}}, nil, nil), []float64{2.5, 4}, 1e-6)
	// Anti-parallel with N = 2: 1 + (N−1)·cos = 0: an error.
	if _, err := call(t, "model_stock", z, [][]float32{{1, 0}, {-2, 0}}, nil, nil); err == nil || !strings.Contains(err.Error(), "opposite directions") {
		t.Errorf("anti-parallel: error %v", err)
	}

	// filter_wise on two rows of two: row 0 orthogonal (t = 0), row 1 at
	// 45° (t = tc, mean (1, 0.5)). Whole tensor: δ1 = (1,0,1,0),
	// δ2 = (0,1,1,1), cos = 1/(√2·√3), mean (½, ½, 1, ½).
	m, _ := Lookup("model_stock")
	x := [][]float32{{1, 0, 1, 0}, {0, 1, 1, 1}}
	run := func(fw float64) []float32 {
		out := make([]float32, 4)
		in := &Input{Tensor: "t", Shape: []uint64{2, 2}, Base: make([]float32, 4), Models: x,
			Global: map[string]float64{"filter_wise": fw}, ModelParams: perModel(2, nil)}
		if err := m.Merge(in, out); err != nil {
			t.Fatal(err)
		}
		return out
	}
	checkNear(t, "filter_wise", run(1), []float64{0, 0, tc, tc / 2}, 1e-6)
	c6 := 1 / math.Sqrt(6)
	t6 := 2 * c6 / (1 + c6)
	checkNear(t, "whole", run(0), []float64{t6 / 2, t6 / 2, t6, t6 / 2}, 1e-6)

	// Random, three and four models, against the float64 reference.
	rng := rand.New(rand.NewPCG(8, 8))
	const cols, rows = 64, 40
	b := randTensor(rng, cols*rows, 1)
	shared := randTensor(rng, cols*rows, 0.05)
	var ms [][]float32
	for range 4 {
		x := around(rng, b, 0.05)
		for j := range x {
			x[j] += shared[j]
		}
		ms = append(ms, x)
	}
	for _, k := range []int{3, 4} {
		for _, fw := range []float64{0, 1} {
			out := make([]float32, cols*rows)
			in := &Input{Tensor: "t", Shape: []uint64{cols, rows}, Base: b, Models: ms[:k],
				Global: map[string]float64{"filter_wise": fw}, ModelParams: perModel(k, nil)}
			if err := m.Merge(in, out); err != nil {
				t.Fatal(err)
			}
			span := cols * rows
			if fw == 1 {
				span = cols
			}
			checkNear(t, "random", out, refModelStock(b, ms[:k], span), 1e-5)
		}
	}
}
