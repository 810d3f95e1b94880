package merge

import (
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

// Shared helpers for the method tests. Expected values are computed by
// hand (arithmetic in comments) or by float64 reference code in these test
// files, never by the kernels under test.

// call runs method name on one tensor. per may be nil (no per-model
// parameters set).
func call(t *testing.T, name string, base []float32, models [][]float32, global map[string]float64, per []map[string]float64) ([]float32, error) {
	t.Helper()
	m, ok := Lookup(name)
	if !ok {
		t.Fatalf("method %q is not registered", name)
	}
	if per == nil {
		per = make([]map[string]float64, len(models))
	}
	n := len(models[0])
	in := &Input{
		Tensor:      "blk.0.test.weight",
		Shape:       []uint64{uint64(n)},
		Base:        base,
		Models:      models,
		Global:      global,
		ModelParams: per,
		Seed:        12345,
	}
	out := make([]float32, n)
	err := m.Merge(in, out)
	return out, err
}

// mustCall is call that fails the test on an error.
func mustCall(t *testing.T, name string, base []float32, models [][]float32, global map[string]float64, per []map[string]float64) []float32 {
	t.Helper()
	out, err := call(t, name, base, models, global, per)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return out
}

// perModel builds per-model parameter maps from name → values.
func perModel(n int, params map[string][]float64) []map[string]float64 {
	out := make([]map[string]float64, n)
	for i := range out {
		out[i] = map[string]float64{}
		for k, vs := range params {
			out[i][k] = vs[i]
		}
	}
	return out
}

func checkNear(t *testing.T, name string, got []float32, want []float64, tol float64) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: len %d, want %d", name, len(got), len(want))
	}
	for i := range got {
		if !(math.Abs(float64(got[i])-want[i]) <= tol*max(1, math.Abs(want[i]))) { // NaN fails
			t.Fatalf("%s: [%d] = %v, want %v\n got %v\nwant %v", name, i, got[i], want[i], got, want)
		}
	}
}

func checkBits(t *testing.T, name string, got, want []float32) {
	t.Helper()
	for i := range got {
		if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
			t.Fatalf("%s: [%d] = %v, want exactly %v", name, i, got[i], want[i])
		}
	}
}

func randTensor(rng *rand.Rand, n int, scale float64) []float32 {
	v := make([]float32, n)
	for i := range v {
		v[i] = float32(rng.NormFloat64() * scale)
	}
	return v
}

// around returns base + noise: a fine-tune-like model.
func around(rng *rand.Rand, base []float32, scale float64) []float32 {
	v := randTensor(rng, len(base), scale)
	for i := range v {
		v[i] += base[i]
	}
	return v
}

func TestRegistry(t *testing.T) {
	want := []string{"breadcrumbs", "breadcrumbs_ties", "dare_linear", "dare_ties", "della", "della_linear",
		"karcher", "linear", "model_stock", "multislerp", "nuslerp", "slerp", "task_arithmetic", "ties"}
	got := Methods()
	for _, name := range want {
		if !slices.Contains(got, name) {
			t.Errorf("method %q not registered (have %v)", name, got)
		}
	}
	for _, name := range got {
		m, _ := Lookup(name)
		if m.Name() != name {
			t.Errorf("%q registered under %q", m.Name(), name)
		}
		if m.Doc() == "" {
			t.Errorf("%s: empty Doc", name)
		}
		if lo, hi := m.Models(); lo < 1 || (hi != 0 && hi < lo) {
			t.Errorf("%s: Models() = %d, %d", name, lo, hi)
		}
		seen := map[string]bool{}
		for _, p := range m.Params() {
			if seen[p.Name] {
				t.Errorf("%s: parameter %s listed twice", name, p.Name)
			}
			seen[p.Name] = true
			if p.Doc == "" {
				t.Errorf("%s.%s: no Doc", name, p.Name)
			}
			if !(p.Min <= p.Max) {
				t.Errorf("%s.%s: range [%v, %v]", name, p.Name, p.Min, p.Max)
			}
			if !p.Required && (p.Default < p.Min || p.Default > p.Max) {
				t.Errorf("%s.%s: default %v outside [%v, %v]", name, p.Name, p.Default, p.Min, p.Max)
			}
			if p.Bool && (p.Min != 0 || p.Max != 1 || (p.Default != 0 && p.Default != 1) || p.Scope != Global) {
				t.Errorf("%s.%s: malformed bool %+v", name, p.Name, p)
			}
		}
	}
}

// TestParamValidation checks that Merge itself rejects bad parameters and
// malformed input, with an error that names the problem.
func TestParamValidation(t *testing.T) {
	b := []float32{0, 0}
	x := [][]float32{{1, 2}, {3, 4}}
	one := [][]float32{{1, 2}}
	tests := []struct {
		name, method string
		base         []float32
		models       [][]float32
		global       map[string]float64
		per          []map[string]float64
		want         string // substring of the error
	}{
		{"density above 1", "ties", b, x, nil, perModel(2, map[string][]float64{"density": {1.5, 0.5}}), "density of model 0 = 1.5 is outside"},
		{"density below 0", "dare_ties", b, x, nil, perModel(2, map[string][]float64{"density": {0.5, -0.1}}), "density of model 1 = -0.1"},
		{"gamma above 1", "breadcrumbs", b, x, nil, perModel(2, map[string][]float64{"gamma": {2, 0}}), "gamma of model 0"},
		{"epsilon above 1", "della", b, x, nil, perModel(2, map[string][]float64{"epsilon": {0.1, 1.1}}), "epsilon of model 1"},
		{"NaN weight", "linear", nil, x, nil, perModel(2, map[string][]float64{"weight": {math.NaN(), 1}}), "not a finite number"},
		{"infinite lambda", "task_arithmetic", b, x, map[string]float64{"lambda": math.Inf(1)}, nil, "lambda = +Inf"},
		{"bool not 0/1", "ties", b, x, map[string]float64{"normalize": 0.5}, nil, "true or false"},
		{"slerp t missing", "slerp", b, one, nil, nil, "t is required"},
		{"slerp t above 1", "slerp", b, one, map[string]float64{"t": 1.5}, nil, "t = 1.5 is outside"},
		{"slerp two models", "slerp", b, x, map[string]float64{"t": 0.5}, nil, "at most 1 models"},
		{"slerp no base", "slerp", nil, one, map[string]float64{"t": 0.5}, nil, "needs a base"},
		{"ties no base", "ties", nil, x, nil, nil, "needs a base"},
		{"nuslerp one model", "nuslerp", nil, one, nil, nil, "at least 2 models"},
		{"model_stock one model", "model_stock", b, one, nil, nil, "at least 2 models"},
		{"length mismatch", "linear", nil, [][]float32{{1, 2}, {3}}, nil, nil, "model 1 has 1 elements"},
		{"base length", "ties", []float32{0}, x, nil, nil, "base has 1 elements"},
		{"karcher max_iter", "karcher", nil, x, map[string]float64{"max_iter": 2.5}, nil, "not an integer"},
	}
	for _, tt := range tests {
		_, err := call(t, tt.method, tt.base, tt.models, tt.global, tt.per)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: error %v, want one containing %q", tt.name, err, tt.want)
			continue
		}
		if !strings.Contains(err.Error(), tt.method+": tensor blk.0.test.weight") {
			t.Errorf("%s: error %q lacks method and tensor context", tt.name, err)
		}
	}
	// Wrong number of parameter sets.
	m, _ := Lookup("linear")
	err := m.Merge(&Input{Tensor: "x", Models: x, ModelParams: nil}, make([]float32, 2))
	if err == nil || !strings.Contains(err.Error(), "parameter sets") {
		t.Errorf("missing ModelParams: %v", err)
	}
}

func TestLinear(t *testing.T) {
	x := [][]float32{{1, 2}, {3, 4}}
	w := perModel(2, map[string][]float64{"weight": {1, 3}})
	// normalize (default): ((1·1 + 3·3)/4, (1·2 + 3·4)/4) = (2.5, 3.5)
	checkNear(t, "normalized", mustCall(t, "linear", nil, x, nil, w), []float64{2.5, 3.5}, 1e-7)
	// (1·1 + 3·3, 1·2 + 3·4) = (10, 14)
	checkNear(t, "plain", mustCall(t, "linear", nil, x, map[string]float64{"normalize": 0}, w), []float64{10, 14}, 1e-7)
	// Default weights 1: the mean (2, 3).
	checkNear(t, "default weights", mustCall(t, "linear", nil, x, nil, nil), []float64{2, 3}, 1e-7)
	// A negative weight with a non-zero sum: (2·1 − 1·3)/1, (2·2 − 1·4)/1.
	neg := perModel(2, map[string][]float64{"weight": {2, -1}})
	checkNear(t, "negative weight", mustCall(t, "linear", nil, x, nil, neg), []float64{-1, 0}, 1e-7)
	// The base is ignored (linear merges only listed models).
	checkNear(t, "base ignored", mustCall(t, "linear", []float32{100, 100}, x, nil, w), []float64{2.5, 3.5}, 1e-7)

	// Σw = 0 with normalize: a clear error, not a division by zero.
	zero := perModel(2, map[string][]float64{"weight": {1, -1}})
	if _, err := call(t, "linear", nil, x, nil, zero); err == nil || !strings.Contains(err.Error(), "sum to 0") {
		t.Errorf("Σw = 0: error %v", err)
	}
	// Without normalize Σw = 0 is fine: (1 − 3, 2 − 4).
	checkNear(t, "Σw = 0 plain", mustCall(t, "linear", nil, x, map[string]float64{"normalize": 0}, zero), []float64{-2, -2}, 1e-7)

	// Random inputs against a float64 reference.
	rng := rand.New(rand.NewPCG(1, 1))
	xs := [][]float32{randTensor(rng, 3000, 1), randTensor(rng, 3000, 1), randTensor(rng, 3000, 1)}
	ws := []float64{0.2, 0.5, 1.3}
	want := make([]float64, 3000)
	for i, x := range xs {
		for j, v := range x {
			want[j] += ws[i] * float64(v) / 2.0
		}
	}
	got := mustCall(t, "linear", nil, xs, nil, perModel(3, map[string][]float64{"weight": ws}))
	checkNear(t, "random", got, want, 1e-5)
}

// TestMergeOverwritesOut: every method writes every element of out and of
// the work buffers it borrows (Input.temp), so the executor may hand it
// recycled ones. Each method runs twice on the same input: into a zeroed
// buffer with fresh work space, and into a NaN-filled buffer with work
// space recycled from NaN-filled buffers; the results must be identical
// and finite.
func TestMergeOverwritesOut(t *testing.T) {
	rng := rand.New(rand.NewPCG(21, 22))
	const rowLen, rows = 16, 8
	base := randTensor(rng, rowLen*rows, 0.1)
	for _, name := range Methods() {
		m, _ := Lookup(name)
		lo, hi := m.Models()
		n := max(lo, 3)
		if hi != 0 {
			n = min(n, hi)
		}
		in := &Input{Tensor: "blk.0.ffn_up.weight", Shape: []uint64{rowLen, rows}, Global: map[string]float64{}, Seed: 9}
		if m.Base() != BaseIgnored {
			in.Base = base
		}
		for range n {
			in.Models = append(in.Models, around(rng, base, 0.05))
			in.ModelParams = append(in.ModelParams, map[string]float64{})
		}
		for _, p := range m.Params() {
			v := p.Default
			if p.Required {
				v = min(max(0.5, p.Min), p.Max)
			}
			if p.Scope == Global {
				in.Global[p.Name] = v
				continue
			}
			for _, mp := range in.ModelParams {
				mp[p.Name] = v
			}
		}
		zeroed := make([]float32, rowLen*rows)
		dirty := make([]float32, rowLen*rows)
		for i := range dirty {
			dirty[i] = float32(math.NaN())
		}
		if err := m.Merge(in, zeroed); err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		in.scratch = &scratch[float32]{}
		for range 4 {
			in.scratch.put(slices.Clone(dirty))
		}
		if err := m.Merge(in, dirty); err != nil {
			t.Errorf("%s (second run): %v", name, err)
			continue
		}
		for i := range zeroed {
			if math.Float32bits(zeroed[i]) != math.Float32bits(dirty[i]) || zeroed[i] != zeroed[i] {
				t.Errorf("%s: element %d is %v into a zeroed buffer, %v into a NaN-filled one", name, i, zeroed[i], dirty[i])
				break
			}
		}
	}
}
