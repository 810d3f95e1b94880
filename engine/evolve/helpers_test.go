package evolve

import (
	"fmt"
	"testing"

	"github.com/evomerge/evomerge/engine/config"
)

// unitSpace is the genome layout of three sources and a base of four
// layers in two layer groups; the model files are never opened.
func unitSpace(t testing.TB, techniques ...string) *Space {
	t.Helper()
	cfg := config.Default()
	cfg.Models = nil
	paths := map[string]string{}
	for _, name := range []string{"a", "b", "c", "base"} {
		paths[name] = "/models/" + name + ".gguf"
		cfg.Models = append(cfg.Models, config.Model{Name: name, Path: paths[name]})
	}
	cfg.Merge.Base = "base"
	cfg.Merge.Techniques = techniques
	cfg.Merge.LayerGroups = 2
	cfg.Merge.WeightGenes = "groups" // the landscapes are over 6 weight genes
	s, err := NewSpace(cfg, paths, 4)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// unitOperators are the default configuration's variation settings on s.
func unitOperators(s *Space) *operators {
	ev := config.Default().Evolution
	return &operators{space: s, mutationRate: ev.MutationRate, mutationScale: ev.MutationScale,
		crossoverRate: ev.CrossoverRate, techniqueRate: ev.TechniqueRate, tournamentSize: ev.TournamentSize}
}

// optimise drives o through gens generations on a landscape: f gives a
// genome's fitness and objective vector (both maximised). It returns every
// individual told, in order.
func optimise(o optimizer, gens int, f func(Genome) (float64, []float64)) []*individual {
	var all []*individual
	for gen := range gens {
		inds := o.ask(gen)
		if inds == nil {
			break
		}
		for i, ind := range inds {
			ind.id = fmt.Sprintf("g%d-c%02d", gen, i)
			ind.fitness, ind.objs = f(ind.genome)
		}
		o.tell(gen, inds)
		all = append(all, inds...)
	}
	o.close()
	return all
}

// genesAt are g's genes at the indices idx.
func genesAt(g Genome, idx []int) []float64 {
	x := make([]float64, len(idx))
	for i, j := range idx {
		x[i] = g.Genes[j]
	}
	return x
}

func bestOf(inds []*individual) *individual {
	var b *individual
	for _, ind := range inds {
		if b == nil || better(ind, b) {
			b = ind
		}
	}
	return b
}

// configSpace is the genome layout of cfg's models, of 6 layers, and
// their paths by name.
func configSpace(t testing.TB, cfg config.Config) (*Space, map[string]string) {
	t.Helper()
	paths := map[string]string{}
	for _, m := range cfg.Models {
		paths[m.Name] = m.Path
	}
	s, err := NewSpace(cfg, paths, 6)
	if err != nil {
		t.Fatal(err)
	}
	return s, paths
}
