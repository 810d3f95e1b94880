package merge

import (
	"math"
	"math/rand/v2"
	"sort"
	"testing"
)

// taRow is one method of mergekit's task-arithmetic family as mergekit
// implements it (its generalized_task_arithmetic.py: which sparsification,
// whether a sign consensus, the defaults of normalize and rescale; the
// method table in docs/methods.md states the same), written down here
// as the expectation.
type taRow struct {
	sparsify             string // "", "magnitude", "random", "outliers", "magprune"
	consensus, normalize bool   // normalize: its default
	rescale              bool   // its default (random and magprune only)
}

var notesTable = map[string]taRow{
	"task_arithmetic":  {"", false, false, false},
	"ties":             {"magnitude", true, true, false},
	"dare_ties":        {"random", true, false, true},
	"dare_linear":      {"random", false, false, true},
	"breadcrumbs":      {"outliers", false, false, false},
	"breadcrumbs_ties": {"outliers", true, false, false},
	"della":            {"magprune", true, true, true},
	"della_linear":     {"magprune", false, false, true},
}

func TestTaskArithTable(t *testing.T) {
	for name, row := range notesTable {
		m, ok := Lookup(name)
		if !ok {
			t.Fatalf("%s not registered", name)
		}
		if m.Base() != BaseRequired {
			t.Errorf("%s: base %v, want required", name, m.Base())
		}
		norm, _ := Spec(m, "normalize")
		if (norm.Default == 1) != row.normalize {
			t.Errorf("%s: normalize defaults to %v", name, norm.Default)
		}
		resc, has := Spec(m, "rescale")
		random := row.sparsify == "random" || row.sparsify == "magprune"
		if has != random || (has && (resc.Default == 1) != row.rescale) {
			t.Errorf("%s: rescale spec %v (present %v)", name, resc, has)
		}
		if _, has := Spec(m, "density"); has != (row.sparsify != "") {
			t.Errorf("%s: density present = %v", name, has)
		}
		if g, has := Spec(m, "gamma"); has != (row.sparsify == "outliers") || (has && g.Default != 0.01) {
			t.Errorf("%s: gamma %v present = %v", name, g, has)
		}
		if e, has := Spec(m, "epsilon"); has != (row.sparsify == "magprune") || (has && e.Default != 0.15) {
			t.Errorf("%s: epsilon %v present = %v", name, e, has)
		}
		if l, _ := Spec(m, "lambda"); l.Default != 1 || l.Scope != Global {
			t.Errorf("%s: lambda %v", name, l)
		}
	}
}

// refRanks returns indices from highest to lowest |δ|, ties by index.
func refRanks(d []float64) []int {
	idx := make([]int, len(d))
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(a, b int) bool { return math.Abs(d[idx[a]]) > math.Abs(d[idx[b]]) })
	return idx
}

// refSparsify is the deterministic sparsifiers, by sorting.
func refSparsify(kind string, d []float64, density, gamma float64) []float64 {
	if kind == "" || density >= 1 {
		return d
	}
	n := len(d)
	k := int(math.Floor(density * float64(n)))
	from := 0
	if kind == "outliers" {
		from = min(int(math.Floor(gamma*float64(n))), n-k)
	}
	out := make([]float64, n)
	for r, i := range refRanks(d) {
		if r >= from && r < from+k {
			out[i] = d[i]
		}
	}
	return out
}

type taParams struct {
	w, density, gamma []float64
	lambda            float64
	normalize         bool
}

// refTaskArith is the family's formula (notes, steps 1-5) in float64, with
// the task vectors rounded to float32 as the engine computes them.
func refTaskArith(row taRow, base []float32, models [][]float32, p taParams) []float64 {
	n := len(base)
	deltas := make([][]float64, len(models))
	for i, x := range models {
		d := make([]float64, n)
		for j := range d {
			d[j] = float64(x[j] - base[j])
		}
		deltas[i] = refSparsify(row.sparsify, d, p.density[i], p.gamma[i])
	}
	out := make([]float64, n)
	for j := range out {
		var mixed, div float64
		if row.consensus {
			var s float64
			for i := range deltas {
				s += p.w[i] * deltas[i][j]
			}
			for i := range deltas {
				v := p.w[i] * deltas[i][j]
				if (s >= 0 && v > 0) || (s < 0 && v < 0) {
					mixed += v
					div += p.w[i]
				}
			}
			if div == 0 {
				div = 1
			}
		} else {
			for i := range deltas {
				mixed += p.w[i] * deltas[i][j]
				div += p.w[i]
			}
			if math.Abs(div) < 1e-8 {
				div = 1
			}
		}
		if p.normalize {
			mixed /= div
		}
		out[j] = float64(base[j]) + p.lambda*mixed
	}
	return out
}

func TestTaskArithHand(t *testing.T) {
	b0 := []float32{0, 0, 0, 0}
	two := [][]float32{{1, -2, 3, 0.5}, {-1, 1, 2, -4}}
	d5 := perModel(2, map[string][]float64{"density": {0.5, 0.5}})
	tests := []struct {
		name, method string
		base         []float32
		models       [][]float32
		global       map[string]float64
		per          []map[string]float64
		want         []float64
	}{
		// δ1 = (1,0), δ2 = (0,3); 0.5·δ1 + 2·δ2 = (0.5, 6); + base (1, 2).
		{"task_arithmetic", "task_arithmetic", []float32{1, 2}, [][]float32{{2, 2}, {1, 5}}, nil,
			perModel(2, map[string][]float64{"weight": {0.5, 2}}), []float64{1.5, 8}},
		// normalize: (0.5, 6)/2.5 = (0.2, 2.4); + base.
		{"task_arithmetic normalized", "task_arithmetic", []float32{1, 2}, [][]float32{{2, 2}, {1, 5}},
			map[string]float64{"normalize": 1}, perModel(2, map[string][]float64{"weight": {0.5, 2}}), []float64{1.2, 4.4}},
		// λ = ½: (0.25, 3) + base.
		{"task_arithmetic lambda", "task_arithmetic", []float32{1, 2}, [][]float32{{2, 2}, {1, 5}},
			map[string]float64{"lambda": 0.5}, perModel(2, map[string][]float64{"weight": {0.5, 2}}), []float64{1.25, 5}},
		// Σw = 0 with normalize: the divisor is taken as 1 (mergekit):
		// δ1 − δ2 = (1, −3) + base.
		{"task_arithmetic Σw=0", "task_arithmetic", []float32{1, 2}, [][]float32{{2, 2}, {1, 5}},
			map[string]float64{"normalize": 1}, perModel(2, map[string][]float64{"weight": {1, -1}}), []float64{2, -1}},
		// TIES, d = ½ (k = 2 of 4):
		//   δ1' = (0, −2, 3, 0)   (|3|, |−2| largest)
		//   δ2' = (0, 0, 2, −4)   (|−4|, |2| largest)
		//   S = (0, −2, 5, −4) → signs (+, −, +, −)
		//   col 0: nothing kept → 0; col 1: −2/1; col 2: (3+2)/2; col 3: −4/1
		{"ties", "ties", b0, two, nil, d5, []float64{0, -2, 2.5, -4}},
		// Same with λ = 2 and a base of ones (models shifted by one).
		{"ties lambda base", "ties", []float32{1, 1, 1, 1}, [][]float32{{2, -1, 4, 1.5}, {0, 2, 3, -3}},
			map[string]float64{"lambda": 2}, d5, []float64{1, -3, 6, -7}},
		// No normalize: col 2 is 3 + 2.
		{"ties no normalize", "ties", b0, two, map[string]float64{"normalize": 0}, d5, []float64{0, -2, 5, -4}},
		// TIES, d = 1: no pruning; S = (0, −1, 5, −3.5):
		//   col 0: S = 0 → +: keep 1 → 1/1; col 1: keep −2 → −2;
		//   col 2: (3+2)/2; col 3: keep −4 → −4.
		{"ties d=1", "ties", b0, two, nil, nil, []float64{1, -2, 2.5, -4}},
		// TIES, d = 0: every task vector dropped → base.
		{"ties d=0", "ties", []float32{7, 7, 7, 7}, [][]float32{{1, 2, 3, 4}, {5, 6, 7, 8}}, nil,
			perModel(2, map[string][]float64{"density": {0, 0}}), []float64{7, 7, 7, 7}},
		// breadcrumbs, n = 10, d = ½, γ = 0.2: keep ranks 2..6 → 4..8.
		{"breadcrumbs", "breadcrumbs", make([]float32, 10), [][]float32{{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}}, nil,
			perModel(1, map[string][]float64{"density": {0.5}, "gamma": {0.2}}), []float64{0, 0, 0, 4, 5, 6, 7, 8, 0, 0}},
		// Default γ = 0.01 on 10 entries drops no outliers (γ·n < 1): top 5.
		{"breadcrumbs γn<1", "breadcrumbs", make([]float32, 10), [][]float32{{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}}, nil,
			perModel(1, map[string][]float64{"density": {0.5}}), []float64{0, 0, 0, 0, 0, 6, 7, 8, 9, 10}},
		// All-negative task vectors under TIES: all keep their sign.
		// δ1 = (−1, −2), δ2 = (−3, −4); mean (−2, −3).
		{"ties all negative", "ties", []float32{0, 0}, [][]float32{{-1, -2}, {-3, -4}}, nil, nil, []float64{-2, -3}},
	}
	for _, tt := range tests {
		checkNear(t, tt.name, mustCall(t, tt.method, tt.base, tt.models, tt.global, tt.per), tt.want, 1e-6)
	}
}

// TestTaskArithModelIsBase: a model identical to the base contributes a
// zero task vector, which never wins a sign election (so it does not count
// in the divisor) and adds nothing. With the default parameters (density
// 1, weights 1, normalize off for the methods without consensus) every
// method of the family gives out = B + δ_x.
func TestTaskArithModelIsBase(t *testing.T) {
	rng := rand.New(rand.NewPCG(4, 4))
	b := randTensor(rng, 500, 1)
	x := around(rng, b, 0.1)
	want := make([]float64, len(b))
	for j := range b {
		want[j] = float64(b[j]) + float64(x[j]-b[j])
	}
	for name := range notesTable {
		checkNear(t, name, mustCall(t, name, b, [][]float32{b, x}, nil, nil), want, 1e-6)
		// Only the base: out = B exactly.
		checkBits(t, name+" base only", mustCall(t, name, b, [][]float32{b}, nil, nil), b)
	}
}

// dyadic returns models whose task vectors are multiples of 1/16 on a
// base of multiples of 1/64: every difference, product with the dyadic
// weights below and sum is exact in float32, so sign elections with S = 0
// and magnitude ties are decided identically by the reference.
func dyadic(rng *rand.Rand, n, models int) ([]float32, [][]float32) {
	b := make([]float32, n)
	for j := range b {
		b[j] = float32(rng.IntN(129)-64) / 64
	}
	xs := make([][]float32, models)
	for i := range xs {
		xs[i] = make([]float32, n)
		for j := range b {
			xs[i][j] = b[j] + float32(rng.IntN(17)-8)/16
		}
	}
	return b, xs
}

func TestTaskArithRandom(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 5))
	const n = 4099
	type dataset struct {
		name   string
		base   []float32
		models [][]float32
		w      []float64
	}
	gb := randTensor(rng, n, 1)
	exactB, exactX := dyadic(rng, n, 3)
	sets := []dataset{
		{"gaussian", gb, [][]float32{around(rng, gb, 0.05), around(rng, gb, 0.1), around(rng, gb, 0.02)}, []float64{0.7, 0.3, 1.1}},
		{"dyadic", exactB, exactX, []float64{0.5, 1, 2}},
		{"dyadic negative weight", exactB, exactX, []float64{1, -0.5, 0.25}},
	}
	settings := []struct {
		name    string
		global  map[string]float64
		density []float64
		gamma   []float64
	}{
		{"defaults", nil, nil, nil},
		{"sparse", nil, []float64{0.3, 0.5, 0.9}, []float64{0.05, 0.01, 0}},
		{"normalize lambda", map[string]float64{"normalize": 1, "lambda": 0.7}, []float64{0.2, 0.2, 0.6}, []float64{0.1, 0.3, 0.02}},
		{"no normalize", map[string]float64{"normalize": 0}, []float64{1, 0.5, 0.25}, nil},
	}
	for _, ds := range sets {
		for _, st := range settings {
			for name, row := range notesTable {
				deterministic := row.sparsify == "" || row.sparsify == "magnitude" || row.sparsify == "outliers"
				density, gamma := st.density, st.gamma
				if density == nil || !deterministic || row.sparsify == "" {
					density = []float64{1, 1, 1}
				}
				if gamma == nil || row.sparsify != "outliers" {
					gamma = []float64{0.01, 0.01, 0.01}
				}
				per := map[string][]float64{"weight": ds.w}
				if row.sparsify != "" {
					per["density"] = density
				}
				if row.sparsify == "outliers" {
					per["gamma"] = gamma
				}
				p := taParams{w: ds.w, density: density, gamma: gamma, lambda: 1, normalize: row.normalize}
				if v, ok := st.global["normalize"]; ok {
					p.normalize = v == 1
				}
				if v, ok := st.global["lambda"]; ok {
					p.lambda = v
				}
				got := mustCall(t, name, ds.base, ds.models, st.global, perModel(3, per))
				want := refTaskArith(row, ds.base, ds.models, p)
				checkNear(t, ds.name+"/"+st.name+"/"+name, got, want, 2e-6)
			}
		}
	}
}

// TestDareDellaMasks checks the random sparsifiers through the methods:
// one model, base zero, so out is the sparsified task vector itself.
func TestDareDellaMasks(t *testing.T) {
	rng := rand.New(rand.NewPCG(6, 6))
	const rows, cols = 200, 500
	n := rows * cols
	x := randTensor(rng, n, 1)
	for j := range x {
		if x[j] == 0 {
			x[j] = 1
		}
	}
	zero := make([]float32, n)
	var l1 float64
	for _, v := range x {
		l1 += math.Abs(float64(v))
	}
	m := map[string]Method{}
	for _, name := range []string{"dare_linear", "della_linear", "dare_ties", "della"} {
		m[name], _ = Lookup(name)
	}
	run := func(name string, d float64, rescale float64, seed uint64) []float32 {
		out := make([]float32, n)
		in := &Input{Tensor: "t", Shape: []uint64{cols, rows}, Base: zero, Models: [][]float32{x},
			Global:      map[string]float64{"rescale": rescale},
			ModelParams: perModel(1, map[string][]float64{"density": {d}}), Seed: seed}
		if err := m[name].Merge(in, out); err != nil {
			t.Fatal(err)
		}
		return out
	}
	for name := range m {
		for _, d := range []float64{0.1, 0.5, 0.8} {
			plain := run(name, d, 0, 1)
			kept := 0
			for j, v := range plain {
				switch v {
				case 0:
				case x[j]:
					kept++
				default:
					t.Fatalf("%s d=%v: entry %d = %v, neither 0 nor %v", name, d, j, v, x[j])
				}
			}
			// The kept count is a sum of independent Bernoulli(p_j): DARE
			// p_j = d; DELLA p = clamp(d − ε + 2ε·r/(cols−1), 0, 1) for
			// each rank r of each row (ε = 0.15; clamping matters at d = 0.1).
			var mean, variance float64
			for r := range cols {
				p := d
				if name == "della" || name == "della_linear" {
					p = math.Max(0, math.Min(1, d-0.15+0.3*float64(r)/(cols-1)))
				}
				mean += rows * p
				variance += rows * p * (1 - p)
			}
			if math.Abs(float64(kept)-mean) > 4*math.Sqrt(variance) {
				t.Errorf("%s d=%v: kept %d of %d, want %.0f ± %.0f", name, d, kept, n, mean, 4*math.Sqrt(variance))
			}
			// rescale (the default for all four): same mask, L1 restored.
			scaled := run(name, d, 1, 1)
			var after float64
			for j, v := range scaled {
				if (v == 0) != (plain[j] == 0) {
					t.Fatalf("%s: rescale changed the mask at %d", name, j)
				}
				after += math.Abs(float64(v))
			}
			if !(math.Abs(after-l1) <= 1e-5*l1) {
				t.Errorf("%s d=%v: L1 after rescale %v, want %v", name, d, after, l1)
			}
			// Reproducible for a seed; another seed gives another mask.
			checkBits(t, name+" same seed", run(name, d, 1, 1), scaled)
			other := run(name, d, 1, 2)
			differ := 0
			for j := range other {
				if (other[j] == 0) != (scaled[j] == 0) {
					differ++
				}
			}
			if differ < n/20 {
				t.Errorf("%s d=%v: seeds 1 and 2 differ in %d mask entries", name, d, differ)
			}
		}
	}
}

// TestDarePerModelMasks: two identical models must get independent masks.
// With weights 1 and 1000 and no rescale, out_j ∈ {0, δ, 1000δ, 1001δ};
// identical masks would give only 0 and 1001δ.
func TestDarePerModelMasks(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 7))
	x := randTensor(rng, 2000, 1)
	per := perModel(2, map[string][]float64{"weight": {1, 1000}, "density": {0.5, 0.5}})
	got := mustCall(t, "dare_linear", make([]float32, 2000), [][]float32{x, x}, map[string]float64{"rescale": 0}, per)
	var only1, only2 int
	for j, v := range got {
		switch {
		case v == x[j]:
			only1++
		case v == 1000*x[j]:
			only2++
		}
	}
	if only1 < 300 || only2 < 300 { // each ≈ 500
		t.Errorf("entries from model 1 alone: %d, model 2 alone: %d; want ≈ 500 each", only1, only2)
	}
}

// TestDellaRanksPerRow: DELLA ranks magnitudes within each row. Rows
// alternate between scale 1e-3 and 1; ranked per row, every row keeps
// about d of its entries; ranked over the whole tensor, the small rows
// would all rank low (p between d−ε and d, keeping about d − ε/2).
func TestDellaRanksPerRow(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 9))
	const rows, cols, d = 100, 1000, 0.5
	x := make([]float32, rows*cols)
	for r := range rows {
		scale := 1.0
		if r%2 == 0 {
			scale = 1e-3
		}
		for c := range cols {
			x[r*cols+c] = float32((1 + rng.Float64()) * scale)
		}
	}
	m, _ := Lookup("della_linear")
	out := make([]float32, len(x))
	in := &Input{Tensor: "t", Shape: []uint64{cols, rows}, Base: make([]float32, len(x)), Models: [][]float32{x},
		ModelParams: perModel(1, map[string][]float64{"density": {d}}), Seed: 3}
	if err := m.Merge(in, out); err != nil {
		t.Fatal(err)
	}
	keptSmall := 0
	for r := 0; r < rows; r += 2 {
		for _, v := range out[r*cols : (r+1)*cols] {
			if v != 0 {
				keptSmall++
			}
		}
	}
	// Per row: Σ p = d per entry; variance < 1/4 per entry.
	nSmall := float64(rows / 2 * cols)
	if math.Abs(float64(keptSmall)-d*nSmall) > 4*math.Sqrt(nSmall/4) {
		t.Errorf("small rows kept %d of %.0f, want about %.0f", keptSmall, nSmall, d*nSmall)
	}
}
