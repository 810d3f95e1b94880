package evolve

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/evomerge/evomerge/engine/config"
	"github.com/evomerge/evomerge/engine/merge"
)

// scaled is a throwaway Tensorwise technique: the first model times c,
// with per-model weights and densities it does not read. Its declaration
// is all the space knows about it.
type scaled struct{}

func (scaled) Name() string { return "scaled_test" }
func (scaled) Doc() string  { return "the first model times c (a test technique)" }
func (scaled) Params() []merge.ParamSpec {
	return []merge.ParamSpec{
		{Name: "c", Scope: merge.Global, Default: 1, Min: 0, Max: 2, Doc: "factor", Gene: merge.GeneLambda},
		{Name: "keep", Scope: merge.PerModel, Default: 1, Min: 0, Max: 1, Doc: "unused fraction", Gene: merge.GeneDensity},
		{Name: "flag", Scope: merge.Global, Default: 0, Min: 0, Max: 1, Bool: true, Doc: "not evolved"},
	}
}
func (scaled) Base() merge.BaseUse    { return merge.BaseRequired }
func (scaled) Models() (min, max int) { return 1, 1 }
func (scaled) Merge(in *merge.Input, out []float32) error {
	for j := range out {
		out[j] = in.Models[0][j] * float32(in.Global["c"])
	}
	return nil
}

// testSpace is the space of techniques over testConfig's models, 6 layers
// in 3 layer groups.
func testSpace(t *testing.T, techniques ...string) (*Space, map[string]string) {
	t.Helper()
	cfg := testConfig(t)
	cfg.Merge.Techniques, cfg.Merge.LayerGroups = techniques, 3
	s, paths := configSpace(t, cfg)
	return s, paths
}

// TestSpaceFollowsDeclarations: a technique the space has never heard of
// is searched and decoded from its declaration alone.
func TestSpaceFollowsDeclarations(t *testing.T) {
	remove, err := merge.Register(merge.Technique{Order: 1000, Method: scaled{}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(remove)
	s, paths := testSpace(t, "scaled_test")
	gm := s.Groups * s.M()
	// λ genes (one per group) for c, the density genes for keep, pick for the one model.
	var want []int
	for i := range gm {
		want = append(want, s.offD()+i)
	}
	want = append(geneSpan(want, s.offLambda(), s.Groups), s.offPick())
	if got := s.Used("scaled_test"); !slices.Equal(got, want) {
		t.Errorf("Used = %v, want %v", got, want)
	}
	op := &operators{space: s}
	g := op.neutral("scaled_test")
	g.Genes[s.offPick()] = 0.9 // the last source
	g.Genes[s.offD()+s.M()+2] = 1
	r, err := s.Decode(g)
	if err != nil {
		t.Fatal(err)
	}
	if r.Method != "scaled_test" || r.Base != paths["base"] || len(r.Models) != 1 || r.Models[0].Model != paths["c"] {
		t.Fatalf("recipe %+v", r)
	}
	if c, _ := r.Params["c"].At("x", -1, 6); c != 1 || len(r.Params) != 1 {
		t.Errorf("global parameters %v, want c = 1 (λ's neutral gene) only", r.Params)
	}
	// Density range [0.1, 1]: group 0 at 0.5 → 0.55, group 1 at 1 → 1, group 2 at 0.5.
	if keep := r.Models[0].Params["keep"]; !slices.Equal(keep.Anchors, []float64{0.55, 1, 0.55}) || len(r.Models[0].Params) != 1 {
		t.Errorf("per-model parameters %v", r.Models[0].Params)
	}
	p, err := merge.NewPlan(r, merge.PlanOptions{})
	if err != nil {
		t.Fatalf("decoded recipe does not plan: %v", err)
	}
	p.Close()
}

// TestUsedFollowsDeclarations: the genes a technique reads are those its
// parameters declare (nuslerp has no t; ps_dfs reads its ps_method's).
func TestUsedFollowsDeclarations(t *testing.T) {
	s, _ := testSpace(t, config.Techniques...)
	gm := s.Groups * s.M()
	w := geneSpan(nil, s.offW(), gm)
	wd := geneSpan(slices.Clone(w), s.offD(), gm)
	path := geneSpan(geneSpan(nil, s.offIn(), s.slots()), s.offScale(), s.slots())
	for _, c := range []struct {
		technique, psMethod string
		want                []int
	}{
		{"linear", "ties", w},
		{"nuslerp", "ties", w},
		{"karcher", "ties", nil},
		{"slerp", "ties", append(geneSpan(nil, s.offT(), s.Groups), s.offPick())},
		{"ties", "ties", geneSpan(slices.Clone(wd), s.offLambda(), s.Groups)},
		{"dare", "ties", geneSpan(slices.Clone(wd), s.offLambda(), s.Groups)},
		{"sce", "ties", geneSpan(nil, s.offT(), s.Groups)},
		{"frankenmerge", "ties", geneSpan(nil, s.offFranken(), 6)},
		{"dfs", "ties", path},
		{"ps_dfs", "ties", geneSpan(append(slices.Clone(path), wd...), s.offLambda(), s.Groups)},
		{"ps_dfs", "linear", append(slices.Clone(path), w...)},
	} {
		s.PSMethod = c.psMethod
		if got := s.Used(c.technique); !slices.Equal(got, c.want) {
			t.Errorf("Used(%s) with ps_method %s = %v, want %v", c.technique, c.psMethod, got, c.want)
		}
	}
}

// TestKindWeights: with weight_genes = "kinds" and a layer group per
// layer, each source has a weight gene per layer for the blocks' norms,
// attention and MLP, and one for the output norm and one for the other
// tensors; a tensor's weight in the decoded recipe is its own gene's, the
// recipe survives its TOML form, and a source-alone seed weighs that
// source alone everywhere. With fewer groups than layers a kind's genes
// are a gradient's anchors (TestKindGroups).
func TestKindWeights(t *testing.T) {
	s := unitSpace(t, "linear", "ties")
	s.KindWeights = true
	const layers, m = 4, 3
	s.Groups = layers
	if got, want := s.wSlots(), 2+3*layers; got != want {
		t.Fatalf("%d weight slots, want %d", got, want)
	}
	if got := len(s.Used("linear")); got != s.wSlots()*m {
		t.Errorf("linear reads %d genes, want %d", got, s.wSlots()*m)
	}
	g := Genome{Technique: "linear", Genes: make([]float64, s.Len())}
	for j := range s.wSlots() * m {
		g.Genes[s.offW()+j] = float64(j%97+1) / 100
	}
	r, err := s.Decode(g)
	if err != nil {
		t.Fatal(err)
	}
	text, err := r.Encode()
	if err != nil {
		t.Fatal(err)
	}
	back, err := merge.ParseRecipe(string(text))
	if err != nil {
		t.Fatalf("decoded recipe does not parse: %v\n%s", err, text)
	}
	gene := func(slot, i int) float64 {
		return round4(lerp(s.Ranges.Weight, g.Genes[s.offW()+slot*m+i]))
	}
	for _, tc := range []struct {
		tensor string
		layer  int
		slot   int
	}{
		{"output_norm.weight", -1, 0},
		{"blk.2.attn_norm.weight", 2, 1 + 2},
		{"blk.3.ffn_norm.weight", 3, 1 + 3},
		{"blk.0.attn_q.weight", 0, 1 + layers},
		{"blk.1.attn_output.weight", 1, 1 + layers + 1},
		{"blk.3.ffn_down.weight", 3, 1 + 2*layers + 3},
		{"token_embd.weight", -1, 1 + 3*layers},
		{"output.weight", -1, 1 + 3*layers},
	} {
		for i := range m {
			w, ok := back.Models[i].Params["weight"].At(tc.tensor, tc.layer, layers)
			if want := gene(tc.slot, i); !ok || math.Abs(w-want) > 1e-12 {
				t.Errorf("%s source %d: weight %v (%v), want gene slot %d's %v", tc.tensor, i, w, ok, tc.slot, want)
			}
		}
	}
	seeds := unitOperators(s).seedGenomes(rand.New(rand.NewPCG(1, 1)), 1)
	r, err = s.Decode(seeds[0].genome)
	if err != nil {
		t.Fatal(err)
	}
	for i, mr := range r.Models {
		for _, tensor := range []string{"output_norm.weight", "blk.1.attn_k.weight", "blk.2.ffn_up.weight", "token_embd.weight"} {
			w, _ := mr.Params["weight"].At(tensor, merge.LayerOf(tensor), layers)
			if want := map[bool]float64{true: 1, false: 0}[i == 0]; w != want {
				t.Errorf("the first source's seed: source %d weighs %v on %s", i, w, tensor)
			}
		}
	}
}

// TestKindGroups: with 2 layer groups over 4 layers a kind's two genes are
// the weights of its first and last layer, the layers between
// interpolated linearly (mergekit's gradient).
func TestKindGroups(t *testing.T) {
	s := unitSpace(t, "linear")
	s.KindWeights = true
	const layers, m = 4, 3
	if got, want := s.wSlots(), 2+3*2; got != want {
		t.Fatalf("%d weight slots, want %d", got, want)
	}
	g := Genome{Technique: "linear", Genes: make([]float64, s.Len())}
	for j := range s.wSlots() * m {
		g.Genes[s.offW()+j] = float64(j+1) / 40
	}
	r, err := s.Decode(g)
	if err != nil {
		t.Fatal(err)
	}
	gene := func(slot, i int) float64 { return round4(lerp(s.Ranges.Weight, g.Genes[s.offW()+slot*m+i])) }
	for i := range m {
		first, last := gene(3, i), gene(4, i) // attention: slots 1+2, 1+2+1
		for l := range layers {
			want := first + (last-first)*float64(l)/float64(layers-1)
			w, ok := r.Models[i].Params["weight"].At(fmt.Sprintf("blk.%d.attn_v.weight", l), l, layers)
			if !ok || math.Abs(w-want) > 1e-9 {
				t.Errorf("source %d layer %d attention: %v, want %v", i, l, w, want)
			}
		}
	}
}
