package cli

import (
	"bytes"
	"context"
	"math"
	"path/filepath"
	"strings"
	"testing"

	"github.com/evomerge/evomerge/engine/config"
	"github.com/evomerge/evomerge/engine/evolve"
	"github.com/evomerge/evomerge/engine/gguf"
	"github.com/evomerge/evomerge/engine/gguf/synth"
	"github.com/evomerge/evomerge/engine/merge"
	"github.com/evomerge/evomerge/kernels"
	"github.com/evomerge/evomerge/tui"
)

// halfway is a throwaway technique that exists only in this test file:
// out = B + mix·Σ w_i·(x_i − B).
type halfway struct{}

func (halfway) Name() string { return "halfway_test" }
func (halfway) Doc() string {
	return "a throwaway technique: the base plus mix times the weighted task vectors"
}
func (halfway) Params() []merge.ParamSpec {
	return []merge.ParamSpec{
		{Name: "weight", Scope: merge.PerModel, Default: 1, Min: -10, Max: 10, Doc: "weight of the task vector", Gene: merge.GeneWeight},
		{Name: "mix", Scope: merge.Global, Default: 1, Min: 0, Max: 1, Doc: "how far to go", Gene: merge.GeneT},
	}
}
func (halfway) Base() merge.BaseUse    { return merge.BaseRequired }
func (halfway) Models() (min, max int) { return 1, 0 }
func (halfway) Merge(in *merge.Input, out []float32) error {
	for j := range out {
		s := 0.0
		for i, x := range in.Models {
			s += in.ModelParams[i]["weight"] * float64(x[j]-in.Base[j])
		}
		out[j] = in.Base[j] + float32(in.Global["mix"]*s)
	}
	return nil
}

// TestThrowawayTechniqueReachesEverything: a technique registered from one
// file, with no other change, is accepted by the configuration, searched
// and decoded by the evolution (and its recipe merges), offered by the
// forms and listed by --help.
func TestThrowawayTechniqueReachesEverything(t *testing.T) {
	remove, err := merge.Register(merge.Technique{Order: 1000, Method: halfway{}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(remove)

	// Configuration.
	dir := t.TempDir()
	cfg := config.Default()
	cfg.Models = nil
	paths := map[string]string{}
	for i, name := range []string{"a", "b", "base"} {
		p := filepath.Join(dir, name+".gguf")
		if err := (synth.Model{Type: gguf.TypeF32, Seed: uint64(i + 1)}).Write(p, name); err != nil {
			t.Fatal(err)
		}
		cfg.Models = append(cfg.Models, config.Model{Name: name, Path: p})
		paths[name] = p
	}
	cfg.Merge.Base = "base"
	cfg.Merge.Techniques = []string{"ties", "halfway_test"}
	cfg.Merge.PSMethod = "halfway_test"
	if ps := cfg.Validate(); len(ps) != 0 {
		t.Fatalf("configuration with the technique rejected: %v", ps.Err())
	}
	bad := config.Default()
	bad.Merge.Techniques = []string{"nonesuch"}
	if err := bad.Validate().Err(); err == nil || !strings.Contains(err.Error(), "halfway_test") {
		t.Errorf("the allowed list does not name the technique: %v", err)
	}

	// Evolution: the genome decodes into a recipe with the declared
	// parameters, which plans and merges.
	s, err := evolve.NewSpace(cfg, paths, 4)
	if err != nil {
		t.Fatal(err)
	}
	weights := s.Groups * s.M()
	if s.KindWeights { // norms, attention, MLP per group; output norm; the rest
		weights = (3*s.Groups + 2) * s.M()
	}
	if len(s.Used("halfway_test")) != weights+s.Groups {
		t.Errorf("Used = %v: want the weight genes and the t genes", s.Used("halfway_test"))
	}
	genes := make([]float64, s.Len())
	for i := range genes {
		genes[i] = 0.5
	}
	r, err := s.Decode(evolve.Genome{Technique: "halfway_test", Genes: genes})
	if err != nil {
		t.Fatal(err)
	}
	if r.Method != "halfway_test" || r.Base != paths["base"] || len(r.Models) != 2 {
		t.Fatalf("recipe %+v", r)
	}
	mix, _ := r.Params["mix"].At("x", -1, 4)
	w, _ := r.Models[1].Params["weight"].At("x", -1, 4)
	if mix != 0.5 || w != 0.5 {
		t.Fatalf("mix %v, weight %v: want 0.5 from genes at 0.5 in [0, 1]", mix, w)
	}
	out := filepath.Join(dir, "merged.gguf")
	if _, _, err := merge.Run(context.Background(), r, out, kernels.Native{}, merge.ExecOptions{}); err != nil {
		t.Fatal(err)
	}
	f, err := gguf.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	ti := f.Tensors[len(f.Tensors)/2]
	raw, err := f.ReadTensor(ti, nil)
	if err != nil {
		t.Fatal(err)
	}
	got := make([]float32, ti.Elements())
	if err := (kernels.Native{}).Decode(ti.Type, got, raw); err != nil {
		t.Fatal(err)
	}
	a, b, base := synth.Values(1, ti.Name, len(got)), synth.Values(2, ti.Name, len(got)), synth.Values(3, ti.Name, len(got))
	for j := range got {
		want := float64(base[j]) + 0.5*(0.5*float64(a[j]-base[j])+0.5*float64(b[j]-base[j]))
		if math.Abs(float64(got[j])-want) > 1e-6 {
			t.Fatalf("%s[%d] = %v, want %v", ti.Name, j, got[j], want)
		}
	}
	// ps_dfs merges with it (genes above 0.5 put every slot on the path).
	g := evolve.Genome{Technique: "ps_dfs", Genes: make([]float64, s.Len())}
	for i := range g.Genes {
		g.Genes[i] = 0.75
	}
	if r, err := s.Decode(g); err != nil || r.Sources["ps"] == nil || r.Sources["ps"].Method != "halfway_test" {
		t.Errorf("ps_dfs with ps_method halfway_test: %v %+v", err, r)
	}

	// Forms: the techniques multi-select offers it.
	var form bytes.Buffer
	if err := tui.GenerateConfig(strings.NewReader(""), &form, filepath.Join(dir, "gen.toml"), true); err != nil {
		t.Fatalf("%v\n%s", err, form.String())
	}
	if !strings.Contains(form.String(), "   halfway_test\n") {
		t.Errorf("the form does not offer the technique:\n%s", form.String())
	}

	// --help.
	code, stdout, stderr := runCLI(t, "--help")
	if code != 0 || !strings.Contains(stdout, "halfway_test") || !strings.Contains(stdout, halfway{}.Doc()) {
		t.Errorf("--help (exit %d) does not list the technique:\n%s%s", code, stdout, stderr)
	}
}

// TestHelpListsTechniques: --help lists every registered technique.
func TestHelpListsTechniques(t *testing.T) {
	code, stdout, _ := runCLI(t, "--help")
	if code != 0 {
		t.Fatalf("exit %d", code)
	}
	for _, tq := range merge.Techniques() {
		if !strings.Contains(stdout, "  "+tq.Name) || !strings.Contains(stdout, tq.Doc) {
			t.Errorf("--help lacks %s: %s", tq.Name, tq.Doc)
		}
	}
	if !strings.Contains(stdout, "dare_ties (dare)") {
		t.Error("--help does not show the alias dare")
	}
}
