package merge

import (
	"math/rand/v2"
	"testing"
)

// Benchmarks on one 4096×4096 float32 tensor (64 MiB) with three models.
// b.SetBytes counts the input tensors read per merge, so MB/s compares
// directly with the baselines over the same inputs:
//
//	go test -run '^$' -bench . -benchtime 5x ./engine/merge
//
// BaselineCopy is a memmove of one tensor; BaselineSum3 and BaselineSum4
// are a plain loop summing the three models (linear's inputs) and the base
// plus the three models (ties' inputs) into the output.

const benchCols, benchRows = 4096, 4096

type benchData struct {
	base   []float32
	models [][]float32
	out    []float32
}

func newBenchData() benchData {
	rng := rand.New(rand.NewPCG(1, 2))
	n := benchCols * benchRows
	d := benchData{base: make([]float32, n), out: make([]float32, n)}
	for j := range d.base {
		d.base[j] = float32(rng.NormFloat64())
	}
	for range 3 {
		x := make([]float32, n)
		for j := range x {
			x[j] = d.base[j] + float32(rng.NormFloat64()*0.01)
		}
		d.models = append(d.models, x)
	}
	return d
}

var benchShared *benchData

func benchInputs(b *testing.B) benchData {
	b.Helper()
	if benchShared == nil {
		d := newBenchData()
		benchShared = &d
	}
	return *benchShared
}

func benchMethod(b *testing.B, name string, withBase bool, per map[string][]float64) {
	benchMethodGlobal(b, name, withBase, nil, per)
}

func benchMethodGlobal(b *testing.B, name string, withBase bool, global map[string]float64, per map[string][]float64) {
	d := benchInputs(b)
	m, ok := Lookup(name)
	if !ok {
		b.Fatalf("no method %s", name)
	}
	in := &Input{Tensor: "blk.0.ffn_up.weight", Shape: []uint64{benchCols, benchRows},
		Models: d.models, ModelParams: perModel(3, per), Global: global, Seed: 7}
	inputs := 3
	if withBase {
		in.Base = d.base
		inputs = 4
	}
	b.SetBytes(int64(inputs * 4 * len(d.out)))
	b.ResetTimer()
	for range b.N {
		if err := m.Merge(in, d.out); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkLinear(b *testing.B) {
	benchMethod(b, "linear", false, map[string][]float64{"weight": {0.5, 0.3, 0.2}})
}

func BenchmarkTies(b *testing.B) {
	benchMethod(b, "ties", true, map[string][]float64{"weight": {0.5, 0.3, 0.2}, "density": {0.3, 0.5, 0.7}})
}

func BenchmarkTaskArithmetic(b *testing.B) {
	benchMethod(b, "task_arithmetic", true, map[string][]float64{"weight": {0.5, 0.3, 0.2}})
}

func BenchmarkDareTies(b *testing.B) {
	benchMethod(b, "dare_ties", true, map[string][]float64{"weight": {0.5, 0.3, 0.2}, "density": {0.3, 0.5, 0.7}})
}

func BenchmarkDella(b *testing.B) {
	benchMethod(b, "della", true, map[string][]float64{"weight": {0.5, 0.3, 0.2}, "density": {0.3, 0.5, 0.7}})
}

func BenchmarkSCE(b *testing.B) {
	benchMethodGlobal(b, "sce", true, map[string]float64{"select_topk": 1}, nil)
}

func BenchmarkSCESelect(b *testing.B) {
	benchMethodGlobal(b, "sce", true, map[string]float64{"select_topk": 0.5}, nil)
}

func BenchmarkBaselineCopy(b *testing.B) {
	d := benchInputs(b)
	b.SetBytes(int64(4 * len(d.out)))
	b.ResetTimer()
	for range b.N {
		copy(d.out, d.models[0])
	}
}

func benchSum(b *testing.B, inputs [][]float32) {
	d := benchInputs(b)
	b.SetBytes(int64(len(inputs) * 4 * len(d.out)))
	b.ResetTimer()
	for range b.N {
		out := d.out
		for j := range out {
			var s float32
			for _, x := range inputs {
				s += x[j]
			}
			out[j] = s
		}
	}
}

func BenchmarkBaselineSum3(b *testing.B) {
	d := benchInputs(b)
	benchSum(b, d.models)
}

func BenchmarkBaselineSum4(b *testing.B) {
	d := benchInputs(b)
	benchSum(b, append([][]float32{d.base}, d.models...))
}
