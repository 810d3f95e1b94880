package evolve

import (
	"context"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"testing"

	"github.com/evomerge/evomerge/engine/config"
	"github.com/evomerge/evomerge/engine/gguf"
	"github.com/evomerge/evomerge/engine/gguf/synth"
	"github.com/evomerge/evomerge/engine/merge"
	"github.com/evomerge/evomerge/engine/modelset"
)

// TestDataFlowOverDifferentDepths: over models of different depths the run
// keeps the data-flow techniques (package modelset), and every recipe the
// genome decodes into reads only layers its models have and plans against
// the files.
func TestDataFlowOverDifferentDepths(t *testing.T) {
	dir := t.TempDir()
	cfg := config.Default()
	cfg.Models = nil
	for i, m := range []struct {
		name   string
		layers int
	}{{"deep", 4}, {"shallow", 2}, {"base", 4}} {
		p := filepath.Join(dir, m.name+".gguf")
		if err := (synth.Model{Layers: m.layers, Type: gguf.TypeF32, Seed: uint64(i + 1)}).Write(p, m.name); err != nil {
			t.Fatal(err)
		}
		cfg.Models = append(cfg.Models, config.Model{Name: m.name, Path: p})
	}
	cfg.Merge.Base = "base"
	cfg.Merge.Techniques = []string{"linear", "ties", "frankenmerge", "dfs", "ps_dfs"}
	set, err := modelset.Prepare(context.Background(), cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	kept := set.Config.Merge.Techniques
	if !slices.Equal(kept, []string{"frankenmerge", "dfs"}) {
		t.Fatalf("kept %v", kept)
	}
	space, err := NewSpace(set.Config, set.Paths(), set.Layers())
	if err != nil {
		t.Fatal(err)
	}
	space.Depths = set.Depths()
	depth := set.Depths()
	shallow := set.Paths()["shallow"]
	rng := rand.New(rand.NewPCG(1, 2))
	usedShallow, planned := false, 0
	for i := range 400 {
		g := Genome{Technique: kept[i%2], Genes: make([]float64, space.Len())}
		for j := range g.Genes {
			g.Genes[j] = rng.Float64()
		}
		r, err := space.Decode(g)
		if err != nil {
			continue // a dfs genome that selects no layer
		}
		for _, sl := range r.Slices {
			for _, src := range sl.Sources {
				if src.To > depth[src.Model] || src.From < 0 || src.From >= src.To {
					t.Fatalf("slice [%d, %d) of %s, which has %d layers", src.From, src.To, src.Model, depth[src.Model])
				}
				usedShallow = usedShallow || src.Model == shallow
			}
		}
		for _, st := range r.Layers {
			if st.Layer >= depth[st.Model] {
				t.Fatalf("dfs step: layer %d of %s, which has %d layers", st.Layer, st.Model, depth[st.Model])
			}
			usedShallow = usedShallow || st.Model == shallow
		}
		if planned < 20 {
			plan, err := merge.NewPlan(r, merge.PlanOptions{})
			if err != nil {
				t.Fatalf("%s: %v", g.Technique, err)
			}
			plan.Close()
			planned++
		}
	}
	if !usedShallow || planned < 20 {
		t.Errorf("the shallow model was used: %v; recipes planned: %d", usedShallow, planned)
	}
}
