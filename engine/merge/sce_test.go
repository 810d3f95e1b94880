package merge

import (
	"math"
	"math/rand/v2"
	"sort"
	"testing"
)

// sceReference is SCE written from mergekit's sce.py in plain float64, one
// step at a time, with a sort for the top k (ties by position), so it
// shares no code with the method.
func sceReference(base []float32, models [][]float32, topk float64) []float64 {
	n, size := len(models), len(base)
	tv := make([][]float64, n)
	for i, x := range models {
		tv[i] = make([]float64, size)
		for j := range x {
			tv[i][j] = float64(x[j]) - float64(base[j])
		}
	}
	if topk < 1 {
		variance := make([]float64, size)
		nonzero := 0
		for j := range variance {
			mean := 0.0
			for i := range tv {
				mean += tv[i][j]
			}
			mean /= float64(n)
			for i := range tv {
				variance[j] += (tv[i][j] - mean) * (tv[i][j] - mean)
			}
			variance[j] /= float64(n)
			if float32(variance[j]) != 0 {
				nonzero++
			}
		}
		k := 0
		if topk > 0 {
			k = int(float32(nonzero) * float32(topk)) // torch: int64 tensor × float → float32
		}
		order := make([]int, size)
		for j := range order {
			order[j] = j
		}
		sort.SliceStable(order, func(a, b int) bool {
			return float32(variance[order[a]]) > float32(variance[order[b]])
		})
		keep := make([]bool, size)
		for _, j := range order[:k] {
			keep[j] = true
		}
		for i := range tv {
			for j := range tv[i] {
				if !keep[j] {
					tv[i][j] = 0
				}
			}
		}
	}
	weights := make([]float64, n)
	sum := 0.0
	for i := range tv {
		for _, v := range tv[i] {
			weights[i] += v * v
		}
		weights[i] /= float64(size)
		sum += weights[i]
	}
	for i := range weights {
		if math.Abs(sum) < 1e-6 {
			weights[i] = 1 / float64(n)
		} else {
			weights[i] /= sum
		}
	}
	out := make([]float64, size)
	for j := range out {
		elected := 0.0
		for i := range tv {
			elected += tv[i][j]
		}
		sign := 1.0
		if elected < 0 {
			sign = -1
		}
		var merged, divisor float64
		for i := range tv {
			if tv[i][j]*sign > 0 {
				merged += tv[i][j] * weights[i]
				divisor += weights[i]
			}
		}
		out[j] = float64(base[j]) + merged/math.Max(divisor, 1e-6)
	}
	return out
}

func f32s(xs ...float64) []float32 {
	out := make([]float32, len(xs))
	for i, x := range xs {
		out[i] = float32(x)
	}
	return out
}

// TestSCEByHand: small cases worked out in the comments.
func TestSCEByHand(t *testing.T) {
	cases := []struct {
		name   string
		base   []float32
		models [][]float32
		topk   float64
		want   []float64
	}{{
		// δ1 = (1, −2, 3, ½), δ2 = (3, 2, −1, ½): mean squares 14.25/4 both,
		// so w = (½, ½). Σδ = (4, 0, 2, 1) elects + everywhere (0 elects +).
		// out = ((½+3/2)/1, ½·2/½, ½·3/½, (¼+¼)/1) = (2, 2, 3, ½).
		name: "no selection", base: f32s(0, 0, 0, 0),
		models: [][]float32{f32s(1, -2, 3, 0.5), f32s(3, 2, -1, 0.5)}, topk: 1,
		want: []float64{2, 2, 3, 0.5},
	}, {
		// B = 1, δ1 = (1, −2, 3.5, ½), δ2 = (3, 2, −1, ½): variances
		// (1, 4, 5.0625, 0), nz = 3, k = ⌊3·½⌋ = 1 keeps element 2 only:
		// δ1 = (0, 0, 3.5, 0), δ2 = (0, 0, −1, 0). Σδ_2 = 2.5 elects +, only
		// δ1 survives: out_2 = 1 + w1·3.5/w1 = 4.5; elsewhere 1 + 0/1e-6 = 1.
		name: "top 1 of 3 by variance", base: f32s(1, 1, 1, 1),
		models: [][]float32{f32s(2, -1, 4.5, 1.5), f32s(4, 3, 0, 1.5)}, topk: 0.5,
		want: []float64{1, 1, 4.5, 1},
	}, {
		// δ1 = (1e−4, 1e−4), δ2 = (3e−4, −1e−4): mean squares sum to 6e−8 <
		// 1e−6, so w = (½, ½) (by the mean squares, element 0 would be
		// 2.67e−4). out = ((½e−4 + 3/2e−4)/1, ½e−4/½) = (2e−4, 1e−4).
		name: "tiny task vectors weigh equally", base: f32s(0, 0),
		models: [][]float32{f32s(1e-4, 1e-4), f32s(3e-4, -1e-4)}, topk: 1,
		want: []float64{2e-4, 1e-4},
	}, {
		// select_topk 0 keeps nothing: the base.
		name: "select nothing", base: f32s(0.5, -0.25),
		models: [][]float32{f32s(1, 2), f32s(3, -4)}, topk: 0,
		want: []float64{0.5, -0.25},
	}}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := call(t, "sce", c.base, c.models, map[string]float64{"select_topk": c.topk}, nil)
			if err != nil {
				t.Fatal(err)
			}
			for j := range got {
				if math.Abs(float64(got[j])-c.want[j]) > 1e-6*math.Max(1, math.Abs(c.want[j])) {
					t.Errorf("element %d = %v, want %v", j, got[j], c.want[j])
				}
			}
		})
	}
}

// TestSCEMatchesReference: random tensors of 2–4 models, every select_topk
// regime, against sceReference.
func TestSCEMatchesReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(31, 32))
	for _, n := range []int{1, 2, 3, 4} {
		for _, topk := range []float64{1, 0.9, 0.5, 0.29, 0.01, 0} {
			base := randTensor(rng, 1000, 0.1)
			models := make([][]float32, n)
			for i := range models {
				models[i] = around(rng, base, 0.05)
			}
			// Some elements where every model agrees (zero variance).
			for j := 0; j < len(base); j += 7 {
				for i := range models {
					models[i][j] = models[0][j]
				}
			}
			got, err := call(t, "sce", base, models, map[string]float64{"select_topk": topk}, nil)
			if err != nil {
				t.Fatal(err)
			}
			want := sceReference(base, models, topk)
			for j := range got {
				if d := math.Abs(float64(got[j]) - want[j]); d > 2e-6*math.Max(1, math.Abs(want[j])) {
					t.Fatalf("%d models, select_topk %g: element %d = %v, want %v", n, topk, j, got[j], want[j])
				}
			}
		}
	}
}

func TestSCEChecksItsInput(t *testing.T) {
	base := f32s(0, 0)
	models := [][]float32{f32s(1, 2)}
	for _, c := range []struct {
		name string
		base []float32
		topk float64
	}{{"no base", nil, 1}, {"select_topk above 1", base, 1.5}, {"negative select_topk", base, -0.1}} {
		if _, err := call(t, "sce", c.base, models, map[string]float64{"select_topk": c.topk}, nil); err == nil {
			t.Errorf("%s accepted", c.name)
		}
	}
}
