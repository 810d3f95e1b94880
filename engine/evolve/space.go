// Package evolve searches for merge recipes: a genome encodes a recipe
// (technique plus continuous genes), an optimiser (GA, CMA-ES, NSGA-II or
// random search) proposes genomes, the engine merges and evaluates them
// and reports everything as events. Raw weights are never evolved — the
// lesson of the original Python EvoMerge, which added noise to weights and
// compared dicts in NSGA-II so that nothing ever dominated.
package evolve

import (
	"fmt"
	"math"
	"slices"
	"strings"

	"github.com/evomerge/evomerge/engine/config"
	"github.com/evomerge/evomerge/engine/merge"
)

// Space is the layout of a genome: which gene means what, and how genes
// in [0,1] decode into a merge recipe.
//
// Every genome holds the same vector, whatever its technique, so crossover
// and technique switches keep each gene's meaning:
//
//	w[g][i]    weight of source i in layer group g      G·M genes
//	d[g][i]    density of source i in layer group g     G·M
//	t[g]       slerp/nuslerp interpolation per group    G
//	λ          task-vector scale                        1
//	pick       which source slerp pairs with the base   1
//	franken    two slices × (model, start, length)      6
//	in[s]      dfs slot s is on the path (gene > 0.5)   S
//	sc[s]      dfs slot s's residual scale              S
//
// Layer groups become mergekit gradients: anchor g is group g's value, so
// values vary smoothly across layers and recipes read like mergekit's. The
// dfs slots run over every layer of every source (ps_dfs: plus the
// parameter-space merge), repeated r times — Sakana's data-flow space.
type Space struct {
	Techniques []string
	Sources    []string // source model paths (not the base)
	Names      []string // their names
	Base       string   // base model path ("" if none)
	BaseName   string
	Layers     int // blocks of the models
	Groups     int
	Ranges     config.Ranges
	Repeats    int // dfs r
	MaxLayers  int // dfs cap on the path length
	PSMethod   string
	OutType    string
	Seed       uint64
}

// NewSpace lays out the genome for a configuration whose models have the
// given resolved paths (by name) and block count.
func NewSpace(cfg config.Config, paths map[string]string, layers int) (*Space, error) {
	s := &Space{
		Techniques: slices.Clone(cfg.Merge.Techniques),
		Layers:     layers,
		Groups:     min(cfg.Merge.LayerGroups, max(1, layers)),
		Ranges:     cfg.Merge.Ranges,
		Repeats:    cfg.Merge.DFSRepeats,
		MaxLayers:  cfg.Merge.DFSMaxLayers,
		PSMethod:   cfg.Merge.PSMethod,
		OutType:    cfg.Merge.OutType,
		Seed:       cfg.Evolution.Seed,
	}
	for i, t := range s.Techniques {
		if t == "dare" {
			s.Techniques[i] = "dare_ties" // the seed's "dare"
		}
	}
	for _, m := range cfg.Sources() {
		s.Sources = append(s.Sources, paths[m.Name])
		s.Names = append(s.Names, m.Name)
	}
	if b, ok := cfg.BaseModel(); ok {
		s.Base, s.BaseName = paths[b.Name], b.Name
	}
	if layers < 1 {
		return nil, fmt.Errorf("models have %d layers", layers)
	}
	if s.MaxLayers == 0 {
		s.MaxLayers = 2 * layers
	}
	return s, nil
}

// M is the number of sources.
func (s *Space) M() int { return len(s.Sources) }

// dfsSources are the models a dfs path can draw from (ps_dfs adds "ps").
func (s *Space) dfsSources(technique string) []string {
	src := slices.Clone(s.Sources)
	if technique == "ps_dfs" {
		src = append(src, "ps")
	}
	return src
}

// slots is the number of dfs slots (sources+1 for the ps source, so every
// technique shares one layout).
func (s *Space) slots() int { return (s.M() + 1) * s.Layers * s.Repeats }

// Gene offsets.
func (s *Space) offW() int       { return 0 }
func (s *Space) offD() int       { return s.Groups * s.M() }
func (s *Space) offT() int       { return 2 * s.Groups * s.M() }
func (s *Space) offLambda() int  { return s.offT() + s.Groups }
func (s *Space) offPick() int    { return s.offLambda() + 1 }
func (s *Space) offFranken() int { return s.offPick() + 1 }
func (s *Space) offIn() int      { return s.offFranken() + 6 }
func (s *Space) offScale() int   { return s.offIn() + s.slots() }

// Len is the number of genes.
func (s *Space) Len() int { return s.offScale() + s.slots() }

// Used lists the gene indices a technique reads (CMA-ES searches only these).
func (s *Space) Used(technique string) []int {
	var idx []int
	span := func(from, n int) {
		for i := range n {
			idx = append(idx, from+i)
		}
	}
	gm := s.Groups * s.M()
	switch technique {
	case "linear", "model_stock":
		if technique == "linear" {
			span(s.offW(), gm)
		}
	case "slerp":
		span(s.offT(), s.Groups)
		idx = append(idx, s.offPick())
	case "nuslerp":
		span(s.offW(), gm)
		span(s.offT(), s.Groups)
	case "task_arithmetic":
		span(s.offW(), gm)
		idx = append(idx, s.offLambda())
	case "frankenmerge":
		span(s.offFranken(), 6)
	case "dfs", "ps_dfs":
		span(s.offIn(), s.slots())
		span(s.offScale(), s.slots())
		if technique == "ps_dfs" {
			span(s.offW(), gm)
			span(s.offD(), gm)
			idx = append(idx, s.offLambda())
		}
	default: // the task-arithmetic family with sparsification
		span(s.offW(), gm)
		span(s.offD(), gm)
		idx = append(idx, s.offLambda())
	}
	return idx
}

func lerp(r [2]float64, x float64) float64 { return r[0] + (r[1]-r[0])*clamp01(x) }

func clamp01(x float64) float64 {
	if math.IsNaN(x) {
		return 0.5
	}
	return min(1, max(0, x))
}

// pickIndex maps a gene to one of n choices.
func pickIndex(x float64, n int) int { return min(n-1, int(clamp01(x)*float64(n))) }

// gradient builds a parameter value from per-group genes (rounded to 4
// decimals so recipes stay readable and hashing is stable).
func gradient(vals []float64) merge.Value {
	r := make([]float64, len(vals))
	for i, v := range vals {
		r[i] = math.Round(v*1e4) / 1e4
	}
	allSame := true
	for _, v := range r {
		allSame = allSame && v == r[0]
	}
	if allSame {
		return merge.Scalar(r[0])
	}
	return merge.Gradient(r...)
}

func round4(x float64) float64 { return math.Round(x*1e4) / 1e4 }

// groupValues reads the G genes of source i starting at off (G·M layout).
func (s *Space) groupValues(g []float64, off, i int, r [2]float64) []float64 {
	out := make([]float64, s.Groups)
	for k := range out {
		out[k] = lerp(r, g[off+k*s.M()+i])
	}
	return out
}

// Decode turns a genome into a merge recipe.
func (s *Space) Decode(gn Genome) (*merge.Recipe, error) {
	if len(gn.Genes) != s.Len() {
		return nil, fmt.Errorf("genome has %d genes, the space %d", len(gn.Genes), s.Len())
	}
	r, err := s.decodeTechnique(gn.Technique, gn.Genes)
	if err != nil {
		return nil, err
	}
	r.OutType = s.OutType
	r.Seed = s.Seed
	return r, nil
}

func (s *Space) decodeTechnique(tech string, g []float64) (*merge.Recipe, error) {
	ranges := s.Ranges
	weights := func(i int) merge.Value { return gradient(s.groupValues(g, s.offW(), i, ranges.Weight)) }
	densities := func(i int) merge.Value { return gradient(s.groupValues(g, s.offD(), i, ranges.Density)) }
	lambda := merge.Scalar(round4(lerp(ranges.Lambda, g[s.offLambda()])))
	tValues := make([]float64, s.Groups)
	for k := range tValues {
		tValues[k] = lerp(ranges.T, g[s.offT()+k])
	}
	switch tech {
	case "linear":
		r := &merge.Recipe{Method: "linear"}
		for i, src := range s.Sources {
			r.Models = append(r.Models, merge.ModelRef{Model: src, Params: merge.Params{"weight": weights(i)}})
		}
		return r, nil
	case "slerp":
		if s.Base == "" {
			return nil, fmt.Errorf("slerp needs a base")
		}
		k := pickIndex(g[s.offPick()], s.M())
		return &merge.Recipe{Method: "slerp", Base: s.Base, Params: merge.Params{"t": gradient(tValues)},
			Models: []merge.ModelRef{{Model: s.Sources[k]}}}, nil
	case "nuslerp":
		r := &merge.Recipe{Method: "nuslerp", Base: s.Base}
		for i := range min(2, s.M()) {
			r.Models = append(r.Models, merge.ModelRef{Model: s.Sources[i], Params: merge.Params{"weight": weights(i)}})
		}
		return r, nil
	case "model_stock":
		r := &merge.Recipe{Method: "model_stock", Base: s.Base}
		for _, src := range s.Sources {
			r.Models = append(r.Models, merge.ModelRef{Model: src})
		}
		return r, nil
	case "frankenmerge":
		return s.decodeFranken(g), nil
	case "dfs", "ps_dfs":
		return s.decodeDFS(tech, g)
	}
	m, ok := merge.Lookup(tech)
	if !ok {
		return nil, fmt.Errorf("unknown technique %q", tech)
	}
	r := &merge.Recipe{Method: tech, Base: s.Base}
	if _, ok := merge.Spec(m, "lambda"); ok {
		r.Params = merge.Params{"lambda": lambda}
	}
	_, hasDensity := merge.Spec(m, "density")
	for i, src := range s.Sources {
		ps := merge.Params{"weight": weights(i)}
		if hasDensity {
			ps["density"] = densities(i)
		}
		r.Models = append(r.Models, merge.ModelRef{Model: src, Params: ps})
	}
	return r, nil
}

// decodeFranken stacks two slices: each picks a model (a source or the
// base), a start layer and a length.
func (s *Space) decodeFranken(g []float64) *merge.Recipe {
	models := slices.Clone(s.Sources)
	if s.Base != "" {
		models = append(models, s.Base)
	}
	r := &merge.Recipe{Method: "passthrough"}
	o := s.offFranken()
	for k := range 2 {
		m := models[pickIndex(g[o+3*k], len(models))]
		start := pickIndex(g[o+3*k+1], s.Layers)
		length := 1 + pickIndex(g[o+3*k+2], s.Layers-start)
		r.Slices = append(r.Slices, merge.Slice{Sources: []merge.SliceSource{{Model: m, From: start, To: start + length}}})
	}
	return r
}

// decodeDFS builds the layer path from the slot indicators, in slot order:
// repeat-major, then source, then layer (Sakana's ordering).
func (s *Space) decodeDFS(tech string, g []float64) (*merge.Recipe, error) {
	src := s.dfsSources(tech)
	r := &merge.Recipe{Method: tech, Base: s.Base}
	nSrc := s.M() + 1
	for rep := range s.Repeats {
		for m := range nSrc {
			if m >= len(src) {
				continue // the ps slots, unused by plain dfs
			}
			for l := range s.Layers {
				slot := (rep*nSrc+m)*s.Layers + l
				if g[s.offIn()+slot] <= 0.5 || len(r.Layers) >= s.MaxLayers {
					continue
				}
				r.Layers = append(r.Layers, merge.LayerStep{Model: src[m], Layer: l, Scale: round4(lerp(s.Ranges.Scale, g[s.offScale()+slot]))})
			}
		}
	}
	if len(r.Layers) == 0 {
		return nil, fmt.Errorf("%s genome selects no layers", tech)
	}
	if tech == "ps_dfs" {
		ps, err := s.decodeTechnique(s.PSMethod, g)
		if err != nil {
			return nil, err
		}
		ps.Seed = s.Seed
		r.Sources = map[string]*merge.Recipe{"ps": ps}
	}
	if r.Base == "" {
		r.Base = s.Sources[0]
	}
	return r, nil
}

// Summary is a short human description of a genome's recipe.
func (s *Space) Summary(gn Genome, r *merge.Recipe) string {
	if r == nil {
		return gn.Technique
	}
	var b strings.Builder
	b.WriteString(gn.Technique)
	switch {
	case len(r.Layers) > 0:
		fmt.Fprintf(&b, " %d layers:", len(r.Layers))
		for i, l := range r.Layers {
			if i == 8 {
				b.WriteString(" …")
				break
			}
			fmt.Fprintf(&b, " %s%d", s.nameOf(l.Model)[:1], l.Layer)
		}
	case len(r.Slices) > 0:
		for _, sl := range r.Slices {
			src := sl.Sources[0]
			fmt.Fprintf(&b, " %s[%d:%d]", s.nameOf(src.Model), src.From, src.To)
		}
	default:
		if v, ok := r.Params["t"]; ok {
			fmt.Fprintf(&b, " t=%s→%s", v, s.nameOf(r.Models[0].Model))
		}
		if v, ok := r.Params["lambda"]; ok {
			fmt.Fprintf(&b, " λ=%s", v)
		}
		for _, m := range r.Models {
			if w, ok := m.Params["weight"]; ok {
				fmt.Fprintf(&b, " %s=%s", s.nameOf(m.Model), w)
			}
		}
	}
	return b.String()
}

func (s *Space) nameOf(path string) string {
	if i := slices.Index(s.Sources, path); i >= 0 {
		return s.Names[i]
	}
	if path == s.Base && s.BaseName != "" {
		return s.BaseName
	}
	return path
}

// directModel reports whether a recipe is just one source model: linear,
// with one model weighted above zero everywhere and the others zero, so
// the normalised merge is that model. It is evaluated from its file.
func directModel(r *merge.Recipe) (string, bool) {
	if r.Method != "linear" {
		return "", false
	}
	model := ""
	for _, m := range r.Models {
		w := m.Params["weight"]
		if len(w.Filters) > 0 || len(w.Anchors) == 0 {
			return "", false
		}
		zero, positive := true, true
		for _, a := range w.Anchors {
			zero = zero && a == 0
			positive = positive && a > 0
		}
		switch {
		case zero:
		case positive && model == "":
			model = m.Model
		default:
			return "", false
		}
	}
	return model, model != ""
}
