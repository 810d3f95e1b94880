package evolve

import (
	"crypto/sha256"
	"encoding/hex"
	"math/rand/v2"
	"slices"
)

// Genome is a candidate recipe in gene form: a technique and the shared
// gene vector (see Space), every gene in [0,1].
type Genome struct {
	Technique string    `json:"technique"`
	Genes     []float64 `json:"genes"`
}

// Clone returns an independent copy.
func (g Genome) Clone() Genome { return Genome{Technique: g.Technique, Genes: slices.Clone(g.Genes)} }

// recipeKey hashes a recipe's canonical TOML together with the evaluation
// settings: equal keys are the same candidate, so fitness is cached by it.
func recipeKey(recipeTOML []byte, evalSalt string) string {
	h := sha256.New()
	h.Write(recipeTOML)
	h.Write([]byte{0})
	h.Write([]byte(evalSalt))
	return hex.EncodeToString(h.Sum(nil))[:16]
}

// individual is a genome in a population with what the optimiser knows of it.
type individual struct {
	genome  Genome
	origin  string
	parents []string
	id      string
	key     string
	fitness float64
	objs    []float64 // objectives, all maximised
	failed  bool
	rung    int     // promotions passed in its generation (promote.go)
	first   float64 // with rung > 0: the fitness on the generation's windows
	rank    int     // NSGA-II front
	crowd   float64 // NSGA-II crowding distance
	// wantGrad asks the measurer for the fitness's gradient (the gradient
	// optimiser, gradient.go); grad is ∂fitness/∂gene once scored.
	wantGrad bool
	grad     []float64
}

// operators hold the GA's variation settings.
type operators struct {
	space          *Space
	mutationRate   float64
	mutationScale  float64
	crossoverRate  float64
	techniqueRate  float64
	tournamentSize int
	// known reports whether a genome's recipe was already evaluated in
	// this run's timeline; children that repeat one are mutated again.
	known func(Genome) bool
}

// novel mutates c until it is a recipe not yet evaluated (at most 8
// tries), so the budget is not spent on duplicates. taken holds the keys
// of this generation's earlier children.
func (op *operators) novel(rng *rand.Rand, c Genome, taken map[string]bool, key func(Genome) string) Genome {
	if op.known == nil || key == nil {
		return c
	}
	for range 8 {
		k := key(c)
		if !op.known(c) && !taken[k] {
			taken[k] = true
			return c
		}
		c = op.mutate(rng, c)
	}
	return c
}

// randomGenome draws every gene uniformly.
func (op *operators) randomGenome(rng *rand.Rand, technique string) Genome {
	g := Genome{Technique: technique, Genes: make([]float64, op.space.Len())}
	for i := range g.Genes {
		g.Genes[i] = rng.Float64()
	}
	return g
}

// mutate perturbs each gene with probability mutationRate by N(0, σ),
// clamped to [0,1]. A dfs slot indicator flips instead, with a probability
// that makes about two flips per mutated path (flipping a quarter of the
// slots at once turns any path into noise). With probability
// techniqueRate the technique switches.
func (op *operators) mutate(rng *rand.Rand, g Genome) Genome {
	c := g.Clone()
	in, n := op.space.offIn(), op.space.slots()
	flip := min(op.mutationRate, 2/float64(max(1, n)))
	for i := range c.Genes {
		if i >= in && i < in+n {
			if rng.Float64() < flip {
				c.Genes[i] = 1 - c.Genes[i] // flip the slot
			}
			continue
		}
		if rng.Float64() < op.mutationRate {
			c.Genes[i] = clamp01(c.Genes[i] + rng.NormFloat64()*op.mutationScale)
		}
	}
	if len(op.space.Techniques) > 1 && rng.Float64() < op.techniqueRate {
		c.Technique = op.space.Techniques[rng.IntN(len(op.space.Techniques))]
	}
	return c
}

// crossover takes each gene from either parent with equal probability and
// the technique of the fitter parent a.
func (op *operators) crossover(rng *rand.Rand, a, b Genome) Genome {
	c := Genome{Technique: a.Technique, Genes: make([]float64, len(a.Genes))}
	for i := range c.Genes {
		if rng.Float64() < 0.5 {
			c.Genes[i] = a.Genes[i]
		} else {
			c.Genes[i] = b.Genes[i]
		}
	}
	return c
}

// tournament picks the best of k random individuals; better reports
// whether x beats y.
func tournament(rng *rand.Rand, pop []*individual, k int, better func(x, y *individual) bool) *individual {
	best := pop[rng.IntN(len(pop))]
	for range k - 1 {
		c := pop[rng.IntN(len(pop))]
		if better(c, best) {
			best = c
		}
	}
	return best
}

// seedGenomes are the reference points and diverse starts of an initial
// population: each source alone and the uniform average (what any merge
// must beat), then one diverse genome per configured technique in turn
// (see diverse) until the population is full.
func (op *operators) seedGenomes(rng *rand.Rand, n int) []individual {
	s := op.space
	var out []individual
	add := func(g Genome, origin string) {
		if len(out) < n {
			out = append(out, individual{genome: g, origin: origin})
		}
	}
	for i := range s.M() {
		g := op.neutral("linear")
		for k := range s.wSlots() {
			for j := range s.M() {
				g.Genes[s.offW()+k*s.M()+j] = 0
			}
			g.Genes[s.offW()+k*s.M()+i] = 1
		}
		add(g, "source")
	}
	if s.M() > 1 {
		add(op.neutral("linear"), "uniform")
	}
	for i := 0; len(out) < n; i++ {
		add(op.diverse(rng, s.Techniques[i%len(s.Techniques)]), "initial")
	}
	return out
}

// diverse is a random but viable genome of a technique: every continuous
// gene drawn uniformly, and for the data-flow techniques a random source's
// layers in order with two slots flipped (a fully random path is noise).
func (op *operators) diverse(rng *rand.Rand, technique string) Genome {
	s := op.space
	g := Genome{Technique: technique, Genes: make([]float64, s.Len())}
	in, slots := s.offIn(), s.slots()
	for i := range g.Genes {
		if i < in || i >= in+slots {
			g.Genes[i] = rng.Float64()
		} else {
			g.Genes[i] = 0.25
		}
	}
	src := rng.IntN(len(s.dfsSources(technique)))
	for l := range s.Layers {
		g.Genes[in+src*s.Layers+l] = 0.75 // repeat 0 of source src
	}
	for range 2 {
		i := in + rng.IntN(slots)
		g.Genes[i] = 1 - g.Genes[i]
	}
	return g
}

// neutral is a technique's reasonable starting genome: equal weights, half
// density, λ and scales 1 (mid-range), t one half, and for data-flow
// techniques the first source's layers in order.
func (op *operators) neutral(technique string) Genome {
	s := op.space
	g := Genome{Technique: technique, Genes: make([]float64, s.Len())}
	for i := range g.Genes {
		g.Genes[i] = 0.5
	}
	// λ = 1 when the range allows it.
	if r := s.Ranges.Lambda; r[1] > r[0] {
		for k := range s.Groups {
			g.Genes[s.offLambda()+k] = clamp01((1 - r[0]) / (r[1] - r[0]))
		}
	}
	for i := range s.slots() {
		g.Genes[s.offIn()+i] = 0.25
		if r := s.Ranges.Scale; r[1] > r[0] {
			g.Genes[s.offScale()+i] = clamp01((1 - r[0]) / (r[1] - r[0]))
		}
	}
	for l := range s.Layers {
		g.Genes[s.offIn()+l] = 0.75 // repeat 0, source 0, every layer
	}
	// frankenmerge: source 0 layers [0, L/2) then source 1 layers [L/2, L).
	o := s.offFranken()
	half := float64(s.Layers/2) / float64(s.Layers)
	g.Genes[o], g.Genes[o+1], g.Genes[o+2] = 0, 0, half-1e-9
	second := 0.0
	if s.M() > 1 {
		second = (1 + 1e-9) / float64(s.M()+1)
		if s.Base == "" {
			second = (1 + 1e-9) / float64(s.M())
		}
	}
	g.Genes[o+3], g.Genes[o+4], g.Genes[o+5] = second, half+1e-9, 1
	return g
}
