package archtest

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/evomerge/evomerge/engine/config"
	"github.com/evomerge/evomerge/engine/eval"
	"github.com/evomerge/evomerge/engine/evolve"
	"github.com/evomerge/evomerge/engine/gguf"
	"github.com/evomerge/evomerge/engine/gguf/synth"
	"github.com/evomerge/evomerge/engine/llm"
	"github.com/evomerge/evomerge/engine/merge"
)

// family is a generated base model and fine-tunes of it, on disk.
type family struct {
	spec  synth.Spec
	dir   string
	base  string
	tunes []string
}

// newFamily writes spec as the base and n fine-tunes of it (relative
// deltas of 0.1: far enough apart that spherical methods do not fall back
// to linear interpolation).
func newFamily(t testing.TB, spec synth.Spec, n int) family {
	t.Helper()
	f := family{spec: spec, dir: t.TempDir()}
	f.base = filepath.Join(f.dir, "base.gguf")
	if err := spec.Write(f.base, "base"); err != nil {
		t.Fatal(err)
	}
	for i := range n {
		p := filepath.Join(f.dir, fmt.Sprintf("ft%d.gguf", i))
		if err := spec.FineTune(uint64(100+i), 0.1).Write(p, fmt.Sprintf("ft%d", i)); err != nil {
			t.Fatal(err)
		}
		f.tunes = append(f.tunes, p)
	}
	return f
}

// layers is the family's block count.
func (f family) layers(t testing.TB) int {
	t.Helper()
	g, err := gguf.Open(f.base)
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	n, _ := g.Metadata.ArchUint("block_count")
	return int(n)
}

// recipeCase is one merge of a family.
type recipeCase struct {
	name   string
	recipe *merge.Recipe
}

// methodRecipe is a parameter-space recipe for a registered method over
// the family: the base when the method takes one, as many fine-tunes as
// it accepts (up to three), required parameters set (t = 0.35), densities
// 0.6 so that sparsifying methods sparsify.
func methodRecipe(f family, name string) *merge.Recipe {
	m, _ := merge.Lookup(name)
	r := &merge.Recipe{Method: name, Seed: 7}
	if m.Base() != merge.BaseIgnored {
		r.Base = f.base
	}
	lo, hi := m.Models()
	n := min(len(f.tunes), max(lo, 3))
	if hi > 0 {
		n = min(n, hi)
	}
	global := merge.Params{}
	perModel := merge.Params{}
	for _, spec := range m.Params() {
		var v float64
		switch {
		case spec.Name == "density":
			v = 0.6
		case spec.Required && spec.Name == "t":
			v = 0.35
		case spec.Required:
			v = (spec.Min + spec.Max) / 2
		default:
			continue
		}
		if spec.Scope == merge.Global {
			global[spec.Name] = merge.Scalar(v)
		} else {
			perModel[spec.Name] = merge.Scalar(v)
		}
	}
	r.Params = global
	weights := []float64{0.5, 0.3, 0.2}
	for i := range n {
		ps := merge.Params{}
		for k, v := range perModel {
			ps[k] = v
		}
		if _, ok := merge.Spec(m, "weight"); ok {
			ps["weight"] = merge.Scalar(weights[i])
		}
		r.Models = append(r.Models, merge.ModelRef{Model: f.tunes[i], Params: ps})
	}
	return r
}

// recipes is every parameter-space method, a mergekit-style slerp over
// slices, a frankenmerge, a dfs layer path and a ps_dfs path.
func recipes(t testing.TB, f family) []recipeCase {
	var out []recipeCase
	for _, name := range merge.Methods() {
		out = append(out, recipeCase{name, methodRecipe(f, name)})
	}
	n := f.layers(t)
	out = append(out,
		recipeCase{"slerp-slices", &merge.Recipe{Method: "slerp", Base: f.base,
			Params: merge.Params{"t": merge.Gradient(0.2, 0.8)},
			Slices: []merge.Slice{{Sources: []merge.SliceSource{{Model: f.base, To: n}, {Model: f.tunes[0], To: n}}}}}},
		recipeCase{"frankenmerge", &merge.Recipe{Method: "passthrough", Slices: []merge.Slice{
			{Sources: []merge.SliceSource{{Model: f.tunes[0], From: 0, To: n - 1}}},
			{Sources: []merge.SliceSource{{Model: f.tunes[1], From: 1, To: n}}},
		}}},
	)
	var path []merge.LayerStep
	for l := range n + 2 { // deeper than the sources, some layers repeated
		path = append(path, merge.LayerStep{Model: f.tunes[l%len(f.tunes)], Layer: min(l, n-1), Scale: 1 - 0.1*float64(l%3)})
	}
	out = append(out, recipeCase{"dfs", &merge.Recipe{Method: "dfs", Layers: path}})
	ps := methodRecipe(f, "ties")
	psPath := slices.Clone(path)
	for i := range psPath {
		if i%2 == 0 {
			psPath[i].Model = "ps"
		}
	}
	out = append(out, recipeCase{"ps_dfs", &merge.Recipe{Method: "ps_dfs", Layers: psPath, Sources: map[string]*merge.Recipe{"ps": ps}}})
	return out
}

// mergeTo plans and executes r with ggml's codec into dir/name.gguf.
func mergeTo(t testing.TB, r *merge.Recipe, dir, name string) string {
	t.Helper()
	plan, err := merge.NewPlan(r, merge.PlanOptions{Codec: llm.Codec{}})
	if err != nil {
		t.Fatalf("planning %s: %v", name, err)
	}
	defer plan.Close()
	out := filepath.Join(dir, name+".gguf")
	if _, err := plan.Execute(context.Background(), out, merge.ExecOptions{Codec: llm.Codec{}}); err != nil {
		t.Fatalf("merging %s: %v", name, err)
	}
	return out
}

// TestArchitectures: for every generated architecture, every registered
// merge method and every data-flow technique produce a file llama.cpp
// loads and evaluates to a finite perplexity; a linear merge equals the
// weighted mean of its inputs on every tensor (biases, fused projections
// and extra norms included); a short tournament runs to the end.
func TestArchitectures(t *testing.T) {
	p := newPool(t)
	for _, a := range synth.Archs() {
		t.Run(string(a), func(t *testing.T) {
			f := newFamily(t, synth.Spec{Arch: a, Type: gguf.TypeF16, Seed: 1}, 3)
			out := t.TempDir()
			basePPL := perplexity(t, p, f.base)
			for _, c := range recipes(t, f) {
				t.Run(c.name, func(t *testing.T) {
					path := mergeTo(t, c.recipe, out, c.name)
					ppl := perplexity(t, p, path)
					t.Logf("%s %s: perplexity %.1f (base %.1f)", a, c.name, ppl, basePPL)
					switch c.name {
					case "linear":
						checkLinear(t, c.recipe, path)
					case "slerp":
						checkSlerp(t, c.recipe, path, a)
					}
				})
			}
			// optimizer auto follows exact gradients on llama (grouped-
			// query attention, rope factors), the evolution strategy on
			// the architectures the gradient graph does not cover.
			want := "es"
			if a == synth.Llama {
				want = "gradient"
			}
			t.Run("tournament", func(t *testing.T) { tournament(t, p, f, want) })
		})
	}
}

// checkLinear compares every tensor of a linear merge with Σ wᵢxᵢ / Σ wᵢ
// computed in float64 from the decoded inputs.
func checkLinear(t *testing.T, r *merge.Recipe, path string) {
	t.Helper()
	got := readAll(t, path)
	var inputs []map[string][]float32
	var weights []float64
	var sum float64
	for _, m := range r.Models {
		inputs = append(inputs, readAll(t, m.Model))
		w, _ := m.Params["weight"].At("", -1, 0)
		weights = append(weights, w)
		sum += w
	}
	for name, out := range got {
		var worst float64
		for i := range out {
			var want float64
			for k, in := range inputs {
				want += weights[k] * float64(in[name][i])
			}
			want /= sum
			worst = max(worst, math.Abs(float64(out[i])-want)/(math.Abs(want)+1e-3))
		}
		if worst > 2e-3 { // F16 output: 11-bit mantissa
			t.Errorf("linear %s: relative error %.2g against the weighted mean", name, worst)
		}
	}
}

// checkSlerp compares every tensor of a two-model slerp with mergekit's
// formula applied to the whole tensor — a fused attn_qkv or gate/up
// projection is one weight to mergekit, not three or two — on the values
// mergekit sees: Gemma's norms without the one the converter added.
func checkSlerp(t *testing.T, r *merge.Recipe, path string, a synth.Arch) {
	t.Helper()
	got, x0, x1 := readAll(t, path), readAll(t, r.Base), readAll(t, r.Models[0].Model)
	tt, _ := r.Params["t"].At("", -1, 0)
	for name, out := range got {
		var off float32
		if (a == synth.Gemma2 || a == synth.Gemma3) && strings.HasSuffix(name, "norm.weight") {
			off = 1
		}
		want := slerp64(tt, shifted(x0[name], -off), shifted(x1[name], -off))
		var worst float64
		for i := range out {
			w := want[i] + float64(off)
			worst = max(worst, math.Abs(float64(out[i])-w)/(math.Abs(w)+1e-3))
		}
		if worst > 2e-3 {
			t.Errorf("slerp %s: relative error %.2g against the slerp of the whole tensor", name, worst)
		}
	}
}

func shifted(v []float32, d float32) []float32 {
	out := make([]float32, len(v))
	for i := range v {
		out[i] = v[i] + d
	}
	return out
}

// slerp64 is mergekit's slerp in float64 on flattened tensors (linear
// interpolation when they are nearly parallel).
func slerp64(t float64, v0, v1 []float32) []float64 {
	var d0, d1, dot float64
	for i := range v0 {
		d0 += float64(v0[i]) * float64(v0[i])
		d1 += float64(v1[i]) * float64(v1[i])
	}
	for i := range v0 {
		dot += float64(v0[i]) * float64(v1[i]) / math.Sqrt(d0*d1)
	}
	out := make([]float64, len(v0))
	s0, s1 := 1-t, t
	if math.Abs(dot) <= 0.9995 {
		theta := math.Acos(dot)
		s0, s1 = math.Sin((1-t)*theta)/math.Sin(theta), math.Sin(t*theta)/math.Sin(theta)
	}
	for i := range out {
		out[i] = s0*float64(v0[i]) + s1*float64(v1[i])
	}
	return out
}

// readAll decodes every tensor of a GGUF file.
func readAll(t testing.TB, path string) map[string][]float32 {
	t.Helper()
	f, err := gguf.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := map[string][]float32{}
	for _, ti := range f.Tensors {
		raw, err := f.ReadTensor(ti, nil)
		if err != nil {
			t.Fatal(err)
		}
		v := make([]float32, ti.Elements())
		if err := (llm.Codec{}).Decode(ti.Type, v, raw); err != nil {
			t.Fatalf("%s: %s: %v", path, ti.Name, err)
		}
		out[ti.Name] = v
	}
	return out
}

// tournament runs a two-generation search over the family with real
// evaluation, every default technique allowed, and checks that it ran
// the optimizer that optimizer "auto" should choose and ends with a
// best.gguf llama.cpp evaluates.
func tournament(t *testing.T, p *eval.Pool, f family, optimizer string) (best string) {
	dir := t.TempDir()
	text := filepath.Join(dir, "text.txt")
	if err := os.WriteFile(text, []byte(evalText(t).Content), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := config.Default()
	cfg.Models = nil
	for i, m := range f.tunes {
		cfg.Models = append(cfg.Models, config.Model{Name: fmt.Sprintf("ft%d", i), Path: m})
	}
	cfg.Models = append(cfg.Models, config.Model{Name: "base", Path: f.base})
	cfg.Merge.Base = "base"
	cfg.Merge.LayerGroups = 2
	cfg.Evolution.Population = 4
	cfg.Evolution.Generations = 2
	cfg.Evolution.Patience = 0
	cfg.Evaluation.Texts = []string{text}
	cfg.Evaluation.TestTexts = []string{text}
	cfg.Evaluation.Context = 64
	cfg.Evaluation.Chunks = 2
	cfg.Evaluation.TestChunks = 2
	cfg.Output.Dir = filepath.Join(dir, "out")
	cfg.Hardware.Workers, cfg.Hardware.Threads = 1, 1 // as poolOptions, for the same reason
	res, err := evolve.Run(context.Background(), cfg, evolve.Options{PoolOptions: poolOptions(), Codec: llm.Codec{}})
	if err != nil {
		t.Fatal(err)
	}
	if res.Optimizer != optimizer {
		t.Errorf("optimizer auto ran %s, want %s", res.Optimizer, optimizer)
	}
	best = filepath.Join(cfg.Output.Dir, "best.gguf")
	ppl := perplexity(t, p, best)
	// Every candidate that merged must load and evaluate. Candidates whose
	// genes make a degenerate recipe (all weights of a layer group zero for
	// a normalising method) fail at merging with their reason; that is the
	// search's business, not the architecture's, and is only logged.
	var failed, unmerged []string
	hist, err := os.ReadFile(filepath.Join(cfg.Output.Dir, "history.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(hist)), "\n") {
		var r evolve.Record
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatalf("history.jsonl: %v", err)
		}
		switch {
		case r.OK():
		case strings.HasPrefix(r.Err, "merging:"):
			unmerged = append(unmerged, r.Technique+": "+r.Err)
		default:
			failed = append(failed, r.Technique+": "+r.Err)
		}
	}
	t.Logf("%d evaluations, best %s (fitness %.3f), best.gguf perplexity %.1f; not merged: %q",
		res.Evaluations, res.Best.Summary, res.BestFitness, ppl, unmerged)
	if len(failed) > 0 {
		t.Errorf("%d merged candidates failed to evaluate: %s", len(failed), strings.Join(failed, "; "))
	}
	return best
}
