package merge

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/evomerge/evomerge/engine/gguf"
	"github.com/evomerge/evomerge/engine/gguf/synth"
	"github.com/evomerge/evomerge/kernels"
)

// writeSynth writes a synthetic model (engine/gguf/synth) into dir.
func writeSynth(t testing.TB, dir, name string, m synth.Model) string {
	t.Helper()
	path := filepath.Join(dir, name+".gguf")
	if err := m.Write(path, name); err != nil {
		t.Fatal(err)
	}
	return path
}

// readAll decodes every tensor of a GGUF file.
func readAll(t testing.TB, path string) (*gguf.File, map[string][]float32) {
	t.Helper()
	f, err := gguf.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	out := map[string][]float32{}
	for _, ti := range f.Tensors {
		raw, err := f.ReadTensor(ti, nil)
		if err != nil {
			t.Fatal(err)
		}
		v := make([]float32, ti.Elements())
		if err := (kernels.Native{}).Decode(ti.Type, v, raw); err != nil {
			t.Fatal(err)
		}
		out[ti.Name] = v
	}
	return f, out
}

func runRecipe(t testing.TB, r *Recipe, out string) (*Plan, Stats) {
	t.Helper()
	p, st, err := Run(context.Background(), r, out, kernels.Native{}, ExecOptions{Workers: 3})
	if err != nil {
		t.Fatal(err)
	}
	return p, st
}

func near(a, b float64, tol float64) bool { return math.Abs(a-b) <= tol*(1+math.Abs(b)) }

// TestLinearGradientAndFilters checks parameter resolution end to end:
// a weight gradient across layers and a filtered weight, against values
// computed independently from the synthetic models' formulas.
func TestLinearGradientAndFilters(t *testing.T) {
	dir := t.TempDir()
	a := writeSynth(t, dir, "a", synth.Model{Type: gguf.TypeF32, Seed: 1})
	b := writeSynth(t, dir, "b", synth.Model{Type: gguf.TypeF32, Seed: 2})
	r := &Recipe{Method: "linear", Models: []ModelRef{
		{Model: a, Params: Params{"weight": Gradient(0, 1)}}, // 0 at layer 0 … 1 at layer 3
		{Model: b, Params: Params{"weight": {Filters: []Filtered{{Filter: "self_attn", Anchors: []float64{3}}, {Anchors: []float64{1}}}}}},
	}}
	out := filepath.Join(dir, "out.gguf")
	runRecipe(t, r, out)
	_, got := readAll(t, out)
	for _, ti := range (synth.Model{}).Tensors() {
		layer := LayerOf(ti.Name)
		wa := 0.0 // non-block tensors take the first anchor
		if layer >= 0 {
			wa = float64(layer) / 3
		}
		wb := 1.0
		if strings.Contains(ti.Name, "attn_q") || strings.Contains(ti.Name, "attn_output") {
			wb = 3 // self_attn in mergekit's vocabulary
		}
		va := synth.Values(1, ti.Name, int(ti.Elements()))
		vb := synth.Values(2, ti.Name, int(ti.Elements()))
		for i, g := range got[ti.Name] {
			want := (wa*float64(va[i]) + wb*float64(vb[i])) / (wa + wb)
			if !near(float64(g), want, 1e-5) {
				t.Fatalf("%s[%d] = %v, want %v (wa %v, wb %v)", ti.Name, i, g, want, wa, wb)
			}
		}
	}
}

func TestWeightOneReproducesModel(t *testing.T) {
	for _, typ := range []gguf.Type{gguf.TypeF32, gguf.TypeF16, gguf.TypeBF16} {
		t.Run(typ.String(), func(t *testing.T) {
			dir := t.TempDir()
			a := writeSynth(t, dir, "a", synth.Model{Type: typ, Seed: 1})
			b := writeSynth(t, dir, "b", synth.Model{Type: typ, Seed: 2})
			out := filepath.Join(dir, "out.gguf")
			runRecipe(t, &Recipe{Method: "linear", Models: []ModelRef{
				{Model: a, Params: Params{"weight": Scalar(0)}}, {Model: b, Params: Params{"weight": Scalar(1)}},
			}}, out)
			fb, _ := gguf.Open(b)
			defer fb.Close()
			fo, _ := gguf.Open(out)
			defer fo.Close()
			for _, ti := range fb.Tensors {
				want, _ := fb.ReadTensor(ti, nil)
				oi, _ := fo.Tensor(ti.Name)
				got, _ := fo.ReadTensor(oi, nil)
				if oi.Type != ti.Type || string(got) != string(want) {
					t.Fatalf("%s differs from the source (%s vs %s)", ti.Name, oi.Type, ti.Type)
				}
			}
		})
	}
}

// TestMethodWiring checks that each registered method sees the right
// tensors and parameters: the executor's output equals calling the method
// directly on the decoded inputs.
func TestMethodWiring(t *testing.T) {
	dir := t.TempDir()
	base := writeSynth(t, dir, "base", synth.Model{Type: gguf.TypeF32, Seed: 10})
	a := writeSynth(t, dir, "a", synth.Model{Type: gguf.TypeF32, Seed: 11})
	b := writeSynth(t, dir, "b", synth.Model{Type: gguf.TypeF32, Seed: 12})
	recipes := map[string]*Recipe{
		"ties": {Method: "ties", Base: base, Seed: 7, Params: Params{"lambda": Scalar(0.9)}, Models: []ModelRef{
			{Model: a, Params: Params{"weight": Scalar(0.6), "density": Scalar(0.5)}},
			{Model: b, Params: Params{"weight": Scalar(0.4), "density": Gradient(0.2, 0.8)}}}},
		"dare_ties": {Method: "dare_ties", Base: base, Seed: 7, Models: []ModelRef{
			{Model: a, Params: Params{"weight": Scalar(0.5), "density": Scalar(0.5)}}, {Model: b, Params: Params{"weight": Scalar(0.5), "density": Scalar(0.5)}}}},
		"slerp":       {Method: "slerp", Base: base, Params: Params{"t": Gradient(0.1, 0.9)}, Models: []ModelRef{{Model: base}, {Model: a}}},
		"model_stock": {Method: "model_stock", Base: base, Models: []ModelRef{{Model: a}, {Model: b}}},
		"sce":         {Method: "sce", Base: base, Params: Params{"select_topk": Gradient(0.3, 1)}, Models: []ModelRef{{Model: a}, {Model: b}}},
	}
	for name, r := range recipes {
		t.Run(name, func(t *testing.T) {
			out := filepath.Join(dir, name+".gguf")
			p, _ := runRecipe(t, r, out)
			_, got := readAll(t, out)
			m, _ := Lookup(r.Method)
			for _, tp := range p.Tensors {
				n := int(tp.Out.Elements())
				in := &Input{Tensor: tp.Out.Name, Shape: tp.Out.Shape, Base: synth.Values(10, tp.Out.Name, n), Seed: tensorSeed(r.Seed, tp.Out.Name)}
				models := slices.DeleteFunc(slices.Clone(r.Models), func(mr ModelRef) bool { return mr.Model == r.Base })
				for _, mr := range models {
					seed := map[string]uint64{a: 11, b: 12}[mr.Model]
					in.Models = append(in.Models, synth.Values(seed, tp.Out.Name, n))
				}
				in.Global, in.ModelParams = resolveParams(m, r.Params, nil, models, tp.Out.Name, LayerOf(tp.Out.Name), 4)
				want := make([]float32, n)
				if err := m.Merge(in, want); err != nil {
					t.Fatal(err)
				}
				if !slices.Equal(got[tp.Out.Name], want) {
					t.Fatalf("%s differs from a direct %s call", tp.Out.Name, r.Method)
				}
			}
		})
	}
}

func TestSlicesStackAndRenumber(t *testing.T) {
	dir := t.TempDir()
	a := writeSynth(t, dir, "a", synth.Model{Type: gguf.TypeF16, Seed: 1})
	b := writeSynth(t, dir, "b", synth.Model{Type: gguf.TypeF16, Seed: 2})
	r := &Recipe{Method: "passthrough", Slices: []Slice{
		{Sources: []SliceSource{{Model: a, From: 0, To: 3}}},
		{Sources: []SliceSource{{Model: b, From: 1, To: 4}}},
	}}
	out := filepath.Join(dir, "out.gguf")
	_, st := runRecipe(t, r, out)
	f, got := readAll(t, out)
	if n, _ := f.Metadata.ArchUint("block_count"); n != 6 {
		t.Fatalf("block_count = %d, want 6", n)
	}
	per, _ := f.Metadata.Get("llama.per_layer_test")
	if want := []uint32{100, 101, 102, 101, 102, 103}; !slices.Equal(per.(gguf.Array).Values.([]uint32), want) {
		t.Errorf("per-layer array %v, want %v", per, want)
	}
	origin := []struct {
		seed  uint64
		layer int
	}{{1, 0}, {1, 1}, {1, 2}, {2, 1}, {2, 2}, {2, 3}}
	for k, o := range origin {
		for _, suffix := range []string{"attn_q.weight", "ffn_down.weight", "attn_norm.weight"} {
			name := fmt.Sprintf("blk.%d.%s", k, suffix)
			src := fmt.Sprintf("blk.%d.%s", o.layer, suffix)
			want := synth.Values(o.seed, src, len(got[name]))
			for i := range want {
				if suffix != "attn_norm.weight" {
					want[i] = kernels.F16ToF32(kernels.F32ToF16(want[i]))
				}
			}
			if !slices.Equal(got[name], want) {
				t.Fatalf("%s is not %s of model %d", name, src, o.seed)
			}
		}
	}
	if len(f.Tensors) != 1+6*6+1 || f.Tensors[0].Name != "token_embd.weight" || f.Tensors[len(f.Tensors)-1].Name != "output_norm.weight" {
		t.Errorf("unexpected tensor order: %d tensors, first %s", len(f.Tensors), f.Tensors[0].Name)
	}
	if st.RawCopies != st.Tensors {
		t.Errorf("%d of %d tensors copied byte for byte", st.RawCopies, st.Tensors)
	}
}

func TestDFSPathScalesResidualOutputs(t *testing.T) {
	dir := t.TempDir()
	a := writeSynth(t, dir, "a", synth.Model{Type: gguf.TypeF32, Seed: 1})
	b := writeSynth(t, dir, "b", synth.Model{Type: gguf.TypeF32, Seed: 2})
	r := &Recipe{Method: "ps_dfs", Base: a,
		Sources: map[string]*Recipe{"ps": {Method: "linear", Models: []ModelRef{{Model: a}, {Model: b}}}},
		Layers:  []LayerStep{{Model: a, Layer: 3, Scale: 1}, {Model: "ps", Layer: 0, Scale: 0.5}, {Model: b, Layer: 3, Scale: 2}},
	}
	out := filepath.Join(dir, "out.gguf")
	runRecipe(t, r, out)
	f, got := readAll(t, out)
	if n, _ := f.Metadata.ArchUint("block_count"); n != 3 {
		t.Fatalf("block_count %d", n)
	}
	check := func(name string, want func(i int) float64) {
		for i, g := range got[name] {
			if !near(float64(g), want(i), 1e-6) {
				t.Fatalf("%s[%d] = %v, want %v", name, i, g, want(i))
			}
		}
	}
	n := 64 * 64
	va := synth.Values(1, "blk.0.attn_output.weight", n)
	vb := synth.Values(2, "blk.0.attn_output.weight", n)
	check("blk.1.attn_output.weight", func(i int) float64 { return 0.5 * float64((va[i]+vb[i])/2) })
	q := synth.Values(1, "blk.0.attn_q.weight", n)
	qb := synth.Values(2, "blk.0.attn_q.weight", n)
	check("blk.1.attn_q.weight", func(i int) float64 { return float64((q[i] + qb[i]) / 2) }) // not scaled
	d := synth.Values(2, "blk.3.ffn_down.weight", 96*64)
	check("blk.2.ffn_down.weight", func(i int) float64 { return 2 * float64(d[i]) })
	aq := synth.Values(1, "blk.3.attn_q.weight", n)
	check("blk.0.attn_q.weight", func(i int) float64 { return float64(aq[i]) })
}

func TestOutputTypes(t *testing.T) {
	dir := t.TempDir()
	a := writeSynth(t, dir, "a", synth.Model{Type: gguf.TypeF16, Seed: 1})
	b := writeSynth(t, dir, "b", synth.Model{Type: gguf.TypeF16, Seed: 2, Dim: 64, FFN: 96})
	out := filepath.Join(dir, "out.gguf")
	p, _ := runRecipe(t, &Recipe{Method: "linear", OutType: "q8_0", Models: []ModelRef{{Model: a}, {Model: b}}}, out)
	f, _ := readAll(t, out)
	for _, ti := range f.Tensors {
		want := gguf.TypeQ8_0
		if len(ti.Shape) == 1 {
			want = gguf.TypeF32
		}
		if ti.Type != want {
			t.Errorf("%s is %s, want %s", ti.Name, ti.Type, want)
		}
	}
	if ft, _ := f.Metadata.Uint("general.file_type"); ft != 7 {
		t.Errorf("file_type %d, want 7 (Q8_0)", ft)
	}
	if len(p.Warnings) != 0 {
		t.Errorf("unexpected warnings %v", p.Warnings)
	}
	// Q4_K needs rows of 256: none of these tensors has them; the pure-Go
	// codec cannot write Q4_K at all. Everything falls back, and says so.
	p, _ = runRecipe(t, &Recipe{Method: "linear", OutType: "q4_k", Models: []ModelRef{{Model: a}, {Model: b}}}, out)
	if len(p.Warnings) != 1 || !strings.Contains(p.Warnings[0], "cannot be written as Q4_K") || !strings.Contains(p.Warnings[0], "written as Q8_0") {
		t.Errorf("warnings %v", p.Warnings)
	}
}

func TestPlanReportsEveryProblem(t *testing.T) {
	dir := t.TempDir()
	a := writeSynth(t, dir, "a", synth.Model{Type: gguf.TypeF32, Seed: 1})
	b := writeSynth(t, dir, "b", synth.Model{Type: gguf.TypeF32, Seed: 2})
	bigVocab := writeSynth(t, dir, "bigvocab", synth.Model{Type: gguf.TypeF32, Seed: 3, Vocab: 41})
	otherTok := writeSynth(t, dir, "othertok", synth.Model{Type: gguf.TypeF32, Seed: 4, Tokens: append([]string{"x"}, func() []string {
		var s []string
		for i := 1; i < 40; i++ {
			s = append(s, fmt.Sprintf("t%d", i))
		}
		return s
	}()...)})
	qwen := writeSynth(t, dir, "qwen", synth.Model{Type: gguf.TypeF32, Seed: 5, Arch: "qwen2"})
	wide := writeSynth(t, dir, "wide", synth.Model{Type: gguf.TypeF32, Seed: 6, FFN: 128})
	tests := []struct {
		name string
		r    *Recipe
		want []string
	}{
		{"unknown method", &Recipe{Method: "tiez", Models: []ModelRef{{Model: a}}}, []string{`unknown method "tiez"`}},
		{"missing files", &Recipe{Method: "linear", Models: []ModelRef{{Model: "/nope/x.gguf"}, {Model: "/nope/y.gguf"}}},
			[]string{"/nope/x.gguf: file not found", "/nope/y.gguf: file not found"}},
		{"params", &Recipe{Method: "ties", Base: a, Params: Params{"lambda": Scalar(1), "t": Scalar(0.5)}, Models: []ModelRef{
			{Model: b, Params: Params{"density": Scalar(1.5), "weight": Scalar(1), "lambda": Scalar(2)}}}},
			[]string{`ties has no parameter "t"`, "density = 1.5 is outside [0, 1]", "lambda is a global parameter"}},
		{"no base", &Recipe{Method: "ties", Models: []ModelRef{{Model: a}}}, []string{"ties needs a base model"}},
		{"slerp needs t", &Recipe{Method: "slerp", Base: a, Models: []ModelRef{{Model: b}}}, []string{"slerp needs parameter t"}},
		{"incompatible", &Recipe{Method: "linear", Models: []ModelRef{{Model: a}, {Model: bigVocab}, {Model: otherTok}, {Model: qwen}}},
			[]string{"vocabulary of 41 tokens differs from 40", `token 0 is "t0" there, "x" here`, `architecture "qwen2" differs from "llama"`}},
		{"shapes", &Recipe{Method: "linear", Models: []ModelRef{{Model: a}, {Model: wide}}},
			[]string{`tensor "blk.0.ffn_up.weight" is [64 128], expected [64 96]`}},
		{"layer range", &Recipe{Method: "passthrough", Slices: []Slice{{Sources: []SliceSource{{Model: a, From: 2, To: 9}}}}},
			[]string{"layer_range [2, 9) exceeds the model's 4 layers"}},
		{"dfs layer", &Recipe{Method: "dfs", Layers: []LayerStep{{Model: a, Layer: 7, Scale: 1}}}, []string{"layer 7 does not exist"}},
		{"linear zero weights", &Recipe{Method: "linear", Models: []ModelRef{{Model: a, Params: Params{"weight": Scalar(0)}}}}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := NewPlan(tt.r, PlanOptions{})
			if tt.want == nil {
				// Planning passes; execution reports the degenerate weights.
				if err != nil {
					t.Fatal(err)
				}
				defer p.Close()
				out := filepath.Join(dir, "zero.gguf")
				_, err := p.Execute(context.Background(), out, ExecOptions{})
				if err == nil || !strings.Contains(err.Error(), "sum to 0") {
					t.Fatalf("got %v", err)
				}
				if _, err := os.Stat(out); !errors.Is(err, os.ErrNotExist) {
					t.Error("failed merge left an output file")
				}
				return
			}
			if err == nil {
				p.Close()
				t.Fatal("plan accepted")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error lacks %q:\n%v", w, err)
				}
			}
		})
	}
}

func TestCancelLeavesNothing(t *testing.T) {
	dir := t.TempDir()
	a := writeSynth(t, dir, "a", synth.Model{Type: gguf.TypeF32, Seed: 1})
	b := writeSynth(t, dir, "b", synth.Model{Type: gguf.TypeF32, Seed: 2})
	out := filepath.Join(dir, "out.gguf")
	ctx, cancel := context.WithCancel(context.Background())
	p, err := NewPlan(&Recipe{Method: "linear", Models: []ModelRef{{Model: a}, {Model: b}}}, PlanOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	_, err = p.Execute(ctx, out, ExecOptions{Progress: func(pr Progress) {
		if pr.Done == 3 {
			cancel()
		}
	}})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v", err)
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if e.Name() != "a.gguf" && e.Name() != "b.gguf" {
			t.Errorf("left behind: %s", e.Name())
		}
	}
}

// mapCache is an unbounded TensorCache (safe for the executor's workers).
type mapCache struct {
	mu sync.Mutex
	m  map[[32]byte][]byte
}

func (c *mapCache) Get(k [32]byte) ([]byte, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	v, ok := c.m[k]
	return v, ok
}

func (c *mapCache) Put(k [32]byte, v []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.m[k] = v
}

func TestTensorCache(t *testing.T) {
	dir := t.TempDir()
	base := writeSynth(t, dir, "base", synth.Model{Type: gguf.TypeF16, Seed: 1})
	a := writeSynth(t, dir, "a", synth.Model{Type: gguf.TypeF16, Seed: 2})
	cache := &mapCache{m: map[[32]byte][]byte{}}
	mk := func(wq float64) *Recipe {
		return &Recipe{Method: "task_arithmetic", Base: base, Models: []ModelRef{{Model: a, Params: Params{
			"weight": {Filters: []Filtered{{Filter: "attn_q", Anchors: []float64{wq}}, {Anchors: []float64{0.5}}}}}}}}
	}
	run := func(r *Recipe, path string) Stats {
		_, st, err := Run(context.Background(), r, path, kernels.Native{}, ExecOptions{Cache: cache})
		if err != nil {
			t.Fatal(err)
		}
		return st
	}
	first := run(mk(0.5), filepath.Join(dir, "1.gguf"))
	second := run(mk(0.5), filepath.Join(dir, "2.gguf"))
	third := run(mk(0.9), filepath.Join(dir, "3.gguf"))
	if first.CacheHits != 0 || second.CacheHits != second.Tensors {
		t.Errorf("hits: first %d, second %d of %d", first.CacheHits, second.CacheHits, second.Tensors)
	}
	// Only the 4 attn_q tensors changed.
	if want := third.Tensors - 4; third.CacheHits != want {
		t.Errorf("third run: %d hits, want %d", third.CacheHits, want)
	}
	b1, _ := os.ReadFile(filepath.Join(dir, "1.gguf"))
	b2, _ := os.ReadFile(filepath.Join(dir, "2.gguf"))
	if string(b1) != string(b2) {
		t.Error("cached merge differs from the computed one")
	}
}

func TestValueAt(t *testing.T) {
	v := Gradient(0, 1, 0)
	tests := []struct {
		layer, layers int
		want          float64
	}{{0, 5, 0}, {1, 5, 0.5}, {2, 5, 1}, {3, 5, 0.5}, {4, 5, 0}, {-1, 5, 0}, {0, 1, 0}}
	for _, tt := range tests {
		if got, _ := v.At("blk.0.x", tt.layer, tt.layers); !near(got, tt.want, 1e-12) {
			t.Errorf("At(%d of %d) = %v, want %v", tt.layer, tt.layers, got, tt.want)
		}
	}
	f := Value{Filters: []Filtered{{Filter: "mlp", Anchors: []float64{1}}, {Filter: "attn", Anchors: []float64{2}}}}
	if got, ok := f.At("blk.0.ffn_up.weight", 0, 4); !ok || got != 1 {
		t.Errorf("mlp filter: %v %v", got, ok)
	}
	if got, ok := f.At("blk.0.attn_norm.weight", 0, 4); !ok || got != 2 {
		t.Errorf("attn filter: %v %v", got, ok)
	}
	if _, ok := f.At("output_norm.weight", -1, 4); ok {
		t.Error("no filter should match output_norm")
	}
	if LayerOf("blk.12.attn_q.weight") != 12 || LayerOf("token_embd.weight") != -1 || Renumber("blk.3.ffn_up.weight", 17) != "blk.17.ffn_up.weight" {
		t.Error("layer name helpers wrong")
	}
}

// TestLinearZeroWeightIsExact: a model weighted 0 cannot change the result,
// not even through 0·∞ = NaN or −0 + 0 = +0.
func TestLinearZeroWeightIsExact(t *testing.T) {
	m, _ := Lookup("linear")
	negZero := float32(math.Copysign(0, -1))
	a := []float32{1.5, negZero, -2}
	b := []float32{float32(math.Inf(1)), 3, float32(math.NaN())}
	out := make([]float32, 3)
	in := &Input{Tensor: "x", Shape: []uint64{3}, Models: [][]float32{a, b},
		ModelParams: []map[string]float64{{"weight": 1}, {"weight": 0}}, Global: map[string]float64{"normalize": 1}}
	if err := m.Merge(in, out); err != nil {
		t.Fatal(err)
	}
	for i := range a {
		if math.Float32bits(out[i]) != math.Float32bits(a[i]) {
			t.Errorf("element %d: %v (bits %#x), want %v (bits %#x)", i, out[i], math.Float32bits(out[i]), a[i], math.Float32bits(a[i]))
		}
	}
}
