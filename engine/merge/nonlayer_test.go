package merge

import (
	"fmt"
	"math"
	"path/filepath"
	"slices"
	"testing"

	"github.com/evomerge/evomerge/engine/gguf"
	"github.com/evomerge/evomerge/engine/gguf/synth"
)

// nonLayerFamily writes an F32 Llama-3-shaped base (token_embd,
// rope_freqs, output_norm and an untied output) and three fine-tunes.
func nonLayerFamily(t testing.TB, spec synth.Spec) (base string, tunes []string) {
	t.Helper()
	dir := t.TempDir()
	spec.Type, spec.Seed = gguf.TypeF32, 1
	base = filepath.Join(dir, "base.gguf")
	if err := spec.Write(base, "base"); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		p := filepath.Join(dir, fmt.Sprintf("ft%d.gguf", i))
		if err := spec.FineTune(uint64(50+i), 0.1).Write(p, fmt.Sprintf("ft%d", i)); err != nil {
			t.Fatal(err)
		}
		tunes = append(tunes, p)
	}
	return base, tunes
}

// slerp64 is mergekit's slerp in float64: flattened vectors, normalised
// copies for the angle, linear interpolation of the originals when they
// are nearly parallel.
func slerp64(t float64, v0, v1 []float32) []float64 {
	var d0, d1, dot float64
	for i := range v0 {
		d0 += float64(v0[i]) * float64(v0[i])
		d1 += float64(v1[i]) * float64(v1[i])
	}
	n0, n1 := math.Sqrt(d0), math.Sqrt(d1)
	for i := range v0 {
		dot += float64(v0[i]) / n0 * float64(v1[i]) / n1
	}
	out := make([]float64, len(v0))
	if math.Abs(dot) > 0.9995 {
		for i := range out {
			out[i] = (1-t)*float64(v0[i]) + t*float64(v1[i])
		}
		return out
	}
	theta := math.Acos(dot)
	s0, s1 := math.Sin((1-t)*theta)/math.Sin(theta), math.Sin(t*theta)/math.Sin(theta)
	for i := range out {
		out[i] = s0*float64(v0[i]) + s1*float64(v1[i])
	}
	return out
}

func maxRelDiff(got []float32, want []float64) float64 {
	var worst float64
	for i := range got {
		worst = max(worst, math.Abs(float64(got[i])-want[i])/(math.Abs(want[i])+1e-6))
	}
	return worst
}

// TestNonLayerTensorsFollowMergekit: token_embd, output_norm and output
// are merged with the recipe's method — over the first slice's sources on
// the embedding side and the last slice's on the output side, parameters
// read at gradient position 0 — in `slices:` and `models:` recipes alike,
// as mergekit's planner does; rope_freqs (no checkpoint holds it) is
// copied. Each method's non-layer tensors are compared with the method
// applied directly to the decoded input tensors, and slerp's and linear's
// with their formulas.
func TestNonLayerTensorsFollowMergekit(t *testing.T) {
	base, tunes := nonLayerFamily(t, synth.Spec{Arch: synth.Llama})
	baseF, baseT := readAll(t, base)
	var tuneT []map[string][]float32
	for _, p := range tunes {
		_, m := readAll(t, p)
		tuneT = append(tuneT, m)
	}
	const layers = 4
	for _, name := range Methods() {
		m, _ := Lookup(name)
		lo, hi := m.Models()
		n := max(lo, 2)
		if hi > 0 {
			n = min(n, hi)
		}
		// Global parameters: required ones as a gradient whose first anchor
		// (what the non-layer tensors read) differs from the others.
		global := Params{}
		for _, s := range m.Params() {
			if s.Scope == Global && s.Required {
				global[s.Name] = Gradient(0.35, 0.9)
			}
		}
		models := []ModelRef{}
		for i := range n {
			ps := Params{}
			if _, ok := Spec(m, "weight"); ok {
				ps["weight"] = Gradient(0.6-0.2*float64(i), 0.1)
			}
			if _, ok := Spec(m, "density"); ok {
				ps["density"] = Scalar(0.7)
			}
			models = append(models, ModelRef{Model: tunes[i], Params: ps})
		}
		useBase := m.Base() != BaseIgnored
		withBase := func(srcs []SliceSource, from, to int) []SliceSource {
			if useBase {
				srcs = append([]SliceSource{{Model: base, From: from, To: to}}, srcs...)
			}
			return srcs
		}
		sliceSources := func(from, to int) []SliceSource {
			var srcs []SliceSource
			for _, mr := range models {
				srcs = append(srcs, SliceSource{Model: mr.Model, From: from, To: to, Params: mr.Params})
			}
			return withBase(srcs, from, to)
		}
		r := &Recipe{Method: name, Params: global, Models: models, Seed: 9}
		rs := &Recipe{Method: name, Params: global, Seed: 9, Slices: []Slice{{Sources: sliceSources(0, layers)}}}
		// Two slices with different slice-level parameters: the embedding
		// reads the first's, the output side the last's.
		two := &Recipe{Method: name, Params: global, Seed: 9, Slices: []Slice{
			{Sources: sliceSources(0, 2)}, {Sources: sliceSources(2, layers)},
		}}
		if useBase {
			r.Base, rs.Base, two.Base = base, base, base
		}
		if _, ok := Spec(m, "t"); ok {
			two.Slices[0].Params = Params{"t": Gradient(0.2, 0.5)}
			two.Slices[1].Params = Params{"t": Gradient(0.7, 0.5)}
		}
		for _, c := range []struct {
			form string
			r    *Recipe
		}{{"models", r}, {"slices", rs}, {"two slices", two}} {
			t.Run(name+"/"+c.form, func(t *testing.T) {
				out := filepath.Join(t.TempDir(), "out.gguf")
				runRecipe(t, c.r, out)
				_, got := readAll(t, out)
				if !slices.Equal(got["rope_freqs.weight"], baseT["rope_freqs.weight"]) {
					t.Error("rope_freqs.weight is not the reference's")
				}
				for _, tensor := range []string{"token_embd.weight", "output_norm.weight", "output.weight"} {
					params := Params{}
					for k, v := range c.r.Params {
						params[k] = v
					}
					if sl := c.r.Slices; len(sl) == 2 { // the side's slice parameters override the global ones
						side := sl[0]
						if tensor != "token_embd.weight" {
							side = sl[1]
						}
						for k, v := range side.Params {
							params[k] = v
						}
					}
					info, _ := baseF.Tensor(tensor)
					in := &Input{Tensor: tensor, Shape: info.Shape, Seed: tensorSeed(9, tensor), Global: map[string]float64{}}
					for k, v := range params {
						in.Global[k] = v.Anchors[0] // gradient position 0
					}
					if useBase {
						in.Base = slices.Clone(baseT[tensor])
					}
					for i, mr := range models {
						in.Models = append(in.Models, slices.Clone(tuneT[i][tensor]))
						mp := map[string]float64{}
						for k, v := range mr.Params {
							mp[k] = v.Anchors[0]
						}
						in.ModelParams = append(in.ModelParams, mp)
					}
					want := make([]float32, len(got[tensor]))
					if err := m.Merge(in, want); err != nil {
						t.Fatal(err)
					}
					if !slices.Equal(got[tensor], want) {
						t.Errorf("%s differs from %s applied to the inputs' %s", tensor, name, tensor)
					}
					switch name {
					case "slerp":
						tt := in.Global["t"]
						if d := maxRelDiff(got[tensor], slerp64(tt, baseT[tensor], tuneT[0][tensor])); d > 1e-4 {
							t.Errorf("%s: relative difference %.2g from slerp(t=%g)", tensor, d, tt)
						}
					case "linear":
						want := make([]float64, len(got[tensor]))
						var sum float64
						for i, mp := range in.ModelParams {
							sum += mp["weight"]
							for j := range want {
								want[j] += mp["weight"] * float64(tuneT[i][tensor][j])
							}
						}
						for j := range want {
							want[j] /= sum
						}
						if d := maxRelDiff(got[tensor], want); d > 1e-5 {
							t.Errorf("%s: relative difference %.2g from the weighted mean", tensor, d)
						}
					}
				}
			})
		}
	}
}

// TestSlerpEmbeddingAtT035 is the case mergekit users meet first: a
// two-model slerp config over slices with t = 0.35. token_embd equals the
// slerp formula — not the base's copy, which differs from it by about 20%.
func TestSlerpEmbeddingAtT035(t *testing.T) {
	base, tunes := nonLayerFamily(t, synth.Spec{Arch: synth.Qwen2, Tied: true})
	r := &Recipe{Method: "slerp", Base: base, Params: Params{"t": Scalar(0.35)}, Slices: []Slice{{Sources: []SliceSource{
		{Model: base, To: 4}, {Model: tunes[0], To: 4},
	}}}}
	out := filepath.Join(t.TempDir(), "out.gguf")
	runRecipe(t, r, out)
	_, got := readAll(t, out)
	_, a := readAll(t, base)
	_, b := readAll(t, tunes[0])
	want := slerp64(0.35, a["token_embd.weight"], b["token_embd.weight"])
	if d := maxRelDiff(got["token_embd.weight"], want); d > 1e-4 {
		t.Errorf("token_embd: relative difference %.2g from slerp(0.35)", d)
	}
	var num, den float64
	for i, w := range want {
		num = max(num, math.Abs(float64(a["token_embd.weight"][i])-w))
		den = max(den, math.Abs(w))
	}
	t.Logf("the base's token_embd differs from slerp(0.35) by %.0f%% (relative max difference)", 100*num/den)
}

// TestPassthroughCopiesEnds: a frankenmerge copies the embedding from the
// first slice's model and the output side from the last slice's.
func TestPassthroughCopiesEnds(t *testing.T) {
	base, tunes := nonLayerFamily(t, synth.Spec{Arch: synth.Llama})
	r := &Recipe{Method: "passthrough", Slices: []Slice{
		{Sources: []SliceSource{{Model: tunes[0], From: 0, To: 3}}},
		{Sources: []SliceSource{{Model: tunes[1], From: 1, To: 4}}},
	}}
	out := filepath.Join(t.TempDir(), "out.gguf")
	runRecipe(t, r, out)
	_, got := readAll(t, out)
	_, a := readAll(t, tunes[0])
	_, b := readAll(t, tunes[1])
	_, ref := readAll(t, base)
	for tensor, want := range map[string][]float32{
		"token_embd.weight": a["token_embd.weight"], "output_norm.weight": b["output_norm.weight"],
		"output.weight": b["output.weight"], "rope_freqs.weight": ref["rope_freqs.weight"],
	} {
		if !slices.Equal(got[tensor], want) {
			t.Errorf("%s is not the expected model's", tensor)
		}
	}
}

// TestGemmaNormOffset: Gemma GGUFs store norm weights plus one; a slerp
// works on the weights mergekit sees (stored − 1) and stores the result
// plus one, in the blocks and in output_norm.
func TestGemmaNormOffset(t *testing.T) {
	base, tunes := nonLayerFamily(t, synth.Spec{Arch: synth.Gemma2})
	r := &Recipe{Method: "slerp", Base: base, Params: Params{"t": Scalar(0.35)}, Models: []ModelRef{{Model: tunes[0]}}}
	out := filepath.Join(t.TempDir(), "out.gguf")
	runRecipe(t, r, out)
	_, got := readAll(t, out)
	_, a := readAll(t, base)
	_, b := readAll(t, tunes[0])
	minus1 := func(v []float32) []float32 {
		out := make([]float32, len(v))
		for i := range v {
			out[i] = v[i] - 1
		}
		return out
	}
	for _, tensor := range []string{"blk.1.post_ffw_norm.weight", "blk.0.attn_norm.weight", "output_norm.weight"} {
		want := slerp64(0.35, minus1(a[tensor]), minus1(b[tensor]))
		for i := range want {
			want[i]++
		}
		if d := maxRelDiff(got[tensor], want); d > 1e-5 {
			t.Errorf("%s: relative difference %.2g from 1 + slerp(w_a − 1, w_b − 1)", tensor, d)
		}
		if d := maxRelDiff(got[tensor], slerp64(0.35, a[tensor], b[tensor])); d < 1e-4 {
			t.Errorf("%s: equals the slerp of the stored values, which mergekit does not compute", tensor)
		}
	}
	// Weights that are not norms are merged as stored.
	want := slerp64(0.35, a["blk.0.attn_q.weight"], b["blk.0.attn_q.weight"])
	if d := maxRelDiff(got["blk.0.attn_q.weight"], want); d > 1e-4 {
		t.Errorf("attn_q: relative difference %.2g from slerp", d)
	}
}
