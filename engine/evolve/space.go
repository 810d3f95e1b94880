// Package evolve searches for merge recipes: a genome encodes a recipe
// (technique plus continuous genes), an optimiser (GA, CMA-ES, NSGA-II or
// random search) proposes genomes, the engine merges and evaluates them
// and reports everything as events. Raw weights are never evolved — the
// lesson of the original Python EvoMerge, which added noise to weights and
// compared dicts in NSGA-II so that nothing ever dominated.
package evolve

import (
	"fmt"
	"maps"
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
//	           (weight_genes = "kinds": per kind of weightKinds and
//	           layer group, (3G+2)·M)
//	d[g][i]    density of source i in layer group g     G·M
//	t[g]       slerp/nuslerp interpolation per group    G
//	λ[g]       task-vector scale per group              G
//	pick       which source slerp pairs with the base   1
//	franken    two slices × (model, start, length)      6
//	in[s]      dfs slot s is on the path (gene > 0.5)   S
//	sc[s]      dfs slot s's residual scale              S
//
// Layer groups become mergekit gradients: anchor g is group g's value, so
// values vary smoothly across layers and recipes read like mergekit's. The
// dfs slots run over every layer of every source (ps_dfs: plus the
// parameter-space merge), repeated r times — Sakana's data-flow space.
//
// Which genes a technique reads, and how they become its recipe, follows
// from its declaration in the merge registry, never from its name: each
// parameter declares its gene kind (merge.GeneWeight → w, GeneDensity → d,
// GeneT → t, GeneLambda → λ; the others keep their defaults), a technique
// that takes one model besides the base reads the pick gene, one that
// takes at most k reads the first k sources, and the layouts read the
// structural genes (layer slices: franken; layer path: in and sc, with a
// sub-merge also the genes of merge.ps_method).
type Space struct {
	Techniques []string
	Sources    []string // source model paths (not the base)
	Names      []string // their names
	Base       string   // base model path ("" if none)
	BaseName   string
	Layers     int // blocks of the deepest model
	// Depths are the blocks of each model by path, when they differ
	// (nil: all have Layers). Only the data-flow techniques run on models
	// of different depths (package modelset drops the others): a slice
	// or a dfs slot reads layers the model has.
	Depths map[string]int
	Groups int
	// KindWeights lays the weight genes out per tensor kind and layer
	// group (merge.weight_genes = "kinds", see weightKinds) instead of
	// per layer group alone.
	KindWeights bool
	Ranges      config.Ranges
	Repeats     int // dfs r
	MaxLayers   int // dfs cap on the path length
	PSMethod    string
	OutType     string
	Seed        uint64
	// TokenizerSource is the recipes' tokenizer_source: "", "base" (no
	// base model), "union" or a model path (set by ResolveTokenizer).
	TokenizerSource string
}

// NewSpace lays out the genome for a configuration whose models have the
// given resolved paths (by name) and block count.
func NewSpace(cfg config.Config, paths map[string]string, layers int) (*Space, error) {
	s := &Space{
		Techniques:  slices.Clone(cfg.Merge.Techniques),
		Layers:      layers,
		Groups:      min(cfg.Merge.LayerGroups, max(1, layers)),
		KindWeights: cfg.Merge.WeightGenes == "kinds",
		Ranges:      cfg.Merge.Ranges,
		Repeats:     cfg.Merge.DFSRepeats,
		MaxLayers:   cfg.Merge.DFSMaxLayers,
		PSMethod:    cfg.Merge.PSMethod,
		OutType:     cfg.Merge.OutType,
		Seed:        cfg.Evolution.Seed,
	}
	for i, name := range s.Techniques {
		if t, ok := merge.Find(name); ok {
			s.Techniques[i] = t.Name // aliases: the seed's "dare" is dare_ties
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

// depth is the number of blocks of the model at path.
func (s *Space) depth(path string) int {
	if d, ok := s.Depths[path]; ok && d > 0 {
		return d
	}
	return s.Layers
}

// M is the number of sources.
func (s *Space) M() int { return len(s.Sources) }

// dfsSources are the models a layer path can draw from (a sub-merge
// technique such as ps_dfs adds "ps").
func (s *Space) dfsSources(technique string) []string {
	src := slices.Clone(s.Sources)
	if t, ok := merge.Find(technique); ok && t.SubMerge {
		src = append(src, "ps")
	}
	return src
}

// slots is the number of dfs slots (sources+1 for the ps source, so every
// technique shares one layout).
func (s *Space) slots() int { return (s.M() + 1) * s.Layers * s.Repeats }

// weightKinds are the tensor kinds of KindWeights, as recipe filters in
// the order they are tried (a tensor takes the first filter its name
// contains): the output norm one gene, the blocks' norms, attention and
// MLP one gene per layer group (per layer when layer_groups is at least
// the depth), every other tensor (embeddings, output) one. The norms are
// apart because merging wants them weighted unlike the matrices they
// scale.
var weightKinds = []struct {
	filter   string
	perGroup bool
}{{"output_norm", false}, {"_norm", true}, {"attn", true}, {"ffn", true}, {"", false}}

// wSlots is the number of weight genes per source: one per layer group,
// or with KindWeights one per kind and (for block kinds) layer group.
func (s *Space) wSlots() int {
	if !s.KindWeights {
		return s.Groups
	}
	n := 0
	for _, k := range weightKinds {
		if k.perGroup {
			n += s.Groups
		} else {
			n++
		}
	}
	return n
}

// Gene offsets.
func (s *Space) offW() int       { return 0 }
func (s *Space) offD() int       { return s.wSlots() * s.M() }
func (s *Space) offT() int       { return s.offD() + s.Groups*s.M() }
func (s *Space) offLambda() int  { return s.offT() + s.Groups }
func (s *Space) offPick() int    { return s.offLambda() + s.Groups }
func (s *Space) offFranken() int { return s.offPick() + 1 }
func (s *Space) offIn() int      { return s.offFranken() + 6 }
func (s *Space) offScale() int   { return s.offIn() + s.slots() }

// Len is the number of genes.
func (s *Space) Len() int { return s.offScale() + s.slots() }

// Used lists the gene indices a technique reads (CMA-ES searches only
// these): the structural genes of its layout, then those of its
// parameters (see Space).
func (s *Space) Used(technique string) []int {
	t, ok := merge.Find(technique)
	if !ok {
		return nil
	}
	var idx []int
	switch t.Layout {
	case merge.Slices:
		idx = geneSpan(idx, s.offFranken(), 6)
	case merge.LayerPath:
		idx = geneSpan(idx, s.offIn(), s.slots())
		idx = geneSpan(idx, s.offScale(), s.slots())
		if ps, ok := merge.Find(s.PSMethod); ok && t.SubMerge {
			idx = append(idx, s.paramGenes(ps)...)
		}
	}
	return append(idx, s.paramGenes(t)...)
}

// paramGenes lists the genes t's parameters and model choice read, in
// gene order.
func (s *Space) paramGenes(t merge.Technique) []int {
	var idx []int
	gm := s.Groups * s.M()
	for _, g := range t.Genes() {
		switch g {
		case merge.GeneWeight, merge.GeneTaskWeight:
			idx = geneSpan(idx, s.offW(), s.wSlots()*s.M())
		case merge.GeneDensity:
			idx = geneSpan(idx, s.offD(), gm)
		case merge.GeneT:
			idx = geneSpan(idx, s.offT(), s.Groups)
		case merge.GeneLambda:
			idx = geneSpan(idx, s.offLambda(), s.Groups)
		}
	}
	if picksOne(t) {
		idx = append(idx, s.offPick())
	}
	return idx
}

// picksOne reports whether t merges one source with the base, chosen by
// the pick gene.
func picksOne(t merge.Technique) bool { return t.Layout == merge.Tensorwise && t.MaxModels == 1 }

// geneSpan appends the n gene indices from from on.
func geneSpan(idx []int, from, n int) []int {
	for i := range n {
		idx = append(idx, from+i)
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
	r.TokenizerSource = s.TokenizerSource
	return r, nil
}

// ResolveTokenizer sets TokenizerSource from merge.tokenizer_source for the
// models at paths (by name), reading their vocabularies (see
// tokenizerSource).
func (s *Space) ResolveTokenizer(configured string, paths map[string]string) error {
	ts, err := tokenizerSource(configured, paths, s.Sources, s.Base)
	if err != nil {
		return err
	}
	s.TokenizerSource = ts
	return nil
}

// tokenizerSource resolves merge.tokenizer_source for the run's models: a
// model name becomes its path, and so does "base" when the run has one —
// a candidate's recipe may not include the base (linear, frankenmerge),
// yet every candidate keeps the base's vocabulary. Empty becomes the base
// when the vocabularies differ only in added tokens (fine-tunes that added
// chat markers) and stays empty when they are identical; other
// differences are refused unless a source is configured: the models were
// trained with different tokenizers, or one extends the other's.
func tokenizerSource(configured string, paths map[string]string, sources []string, base string) (string, error) {
	keep := "base"
	if base != "" {
		keep = base
	}
	switch {
	case configured == "base":
		return keep, nil
	case configured == "union":
		return configured, nil
	case configured != "":
		return paths[configured], nil
	}
	models := slices.Clone(sources)
	if base != "" {
		models = append([]string{base}, models...) // the others are compared with the base
	}
	rel, err := merge.CompareVocabularies(models...)
	switch rel {
	case merge.VocabIdentical:
		return "", err
	case merge.VocabAddedTokens:
		return keep, nil
	}
	return "", fmt.Errorf("%w (merge.tokenizer_source)", err)
}

func (s *Space) decodeTechnique(name string, g []float64) (*merge.Recipe, error) {
	t, ok := merge.Find(name)
	if !ok {
		return nil, fmt.Errorf("unknown technique %q", name)
	}
	switch t.Layout {
	case merge.Slices:
		return s.decodeFranken(t, g), nil
	case merge.LayerPath:
		return s.decodeDFS(t, g)
	}
	return s.decodeParams(t, g)
}

// decodeParams builds a Tensorwise technique's recipe: the base as its
// declaration asks, the sources it takes, and every evolved parameter
// from its genes.
func (s *Space) decodeParams(t merge.Technique, g []float64) (*merge.Recipe, error) {
	r := &merge.Recipe{Method: t.RecipeMethod()}
	switch t.Base {
	case merge.BaseRequired:
		if s.Base == "" {
			return nil, fmt.Errorf("%s needs a base", t.Name)
		}
		r.Base = s.Base
	case merge.BaseOptional:
		r.Base = s.Base
	}
	models := make([]int, s.M())
	for i := range models {
		models[i] = i
	}
	switch {
	case picksOne(t):
		models = []int{pickIndex(g[s.offPick()], s.M())}
	case t.MaxModels > 0:
		models = models[:min(t.MaxModels, s.M())]
	}
	for _, p := range t.Params {
		if p.Gene == merge.NotEvolved || p.Scope != merge.Global {
			continue
		}
		if r.Params == nil {
			r.Params = merge.Params{}
		}
		r.Params[p.Name] = s.globalValue(p.Gene, g)
	}
	weights := s.weights(g, models, s.weightRange(t, len(models)))
	for k, i := range models {
		mr := merge.ModelRef{Model: s.Sources[i]}
		for _, p := range t.Params {
			if p.Gene == merge.NotEvolved || p.Scope != merge.PerModel {
				continue
			}
			if mr.Params == nil {
				mr.Params = merge.Params{}
			}
			if p.Gene == merge.GeneWeight || p.Gene == merge.GeneTaskWeight {
				mr.Params[p.Name] = weights[k]
			} else { // GeneDensity
				mr.Params[p.Name] = gradient(s.groupValues(g, s.offD(), i, s.Ranges.Density))
			}
		}
		r.Models = append(r.Models, mr)
	}
	return r, nil
}

// minWeight is the weight every merged source gets in a layer group whose
// weight genes all decode to 0 (see weights).
const minWeight = 1e-4

// weightRange is the range t's weight genes map onto when it merges n
// models: merge.ranges.weight, or for task-vector weights that t does not
// normalise merge.ranges.task_weight divided by n — so the middle of the
// default [0, 2] is the uniform average (each task vector weighted 1/n).
func (s *Space) weightRange(t merge.Technique, n int) [2]float64 {
	if _, ok := t.Param(merge.GeneTaskWeight); ok && n > 0 {
		r := s.Ranges.TaskWeight
		return [2]float64{r[0] / float64(n), r[1] / float64(n)}
	}
	return s.Ranges.Weight
}

// weights decodes the weight genes of the merged sources into each one's
// weight value (in rng): per layer group a gradient, with KindWeights one filtered
// value per tensor kind (rounded as gradient rounds them). A layer group
// (or kind and layer) in which every merged source would weigh 0 is not a
// recipe a normalising method can merge (it divides by the sum), so there
// every source weighs minWeight instead: the limit of equal vanishing
// weights — the uniform average where weights are normalised, practically
// the base where they scale task vectors.
func (s *Space) weights(g []float64, models []int, rng [2]float64) []merge.Value {
	slots := s.wSlots()
	rows := make([][]float64, len(models))
	for k, i := range models {
		rows[k] = make([]float64, slots)
		for j := range slots {
			rows[k][j] = round4(lerp(rng, g[s.offW()+j*s.M()+i]))
		}
	}
	for j := range slots {
		zero := true
		for _, row := range rows {
			zero = zero && row[j] == 0
		}
		if zero {
			for _, row := range rows {
				row[j] = minWeight
			}
		}
	}
	out := make([]merge.Value, len(rows))
	for k, row := range rows {
		if !s.KindWeights {
			out[k] = gradient(row)
			continue
		}
		at := 0
		for _, kind := range weightKinds {
			n := 1
			if kind.perGroup {
				n = s.Groups
			}
			v := gradient(row[at : at+n])
			out[k].Filters = append(out[k].Filters, merge.Filtered{Filter: kind.filter, Anchors: v.Anchors})
			at += n
		}
	}
	return out
}

// globalValue decodes a global parameter: GeneT and GeneLambda per layer
// group (a gradient across the layers).
func (s *Space) globalValue(gene merge.Gene, g []float64) merge.Value {
	off, rng := s.offT(), s.Ranges.T
	if gene == merge.GeneLambda {
		off, rng = s.offLambda(), s.Ranges.Lambda
	}
	vals := make([]float64, s.Groups)
	for k := range vals {
		vals[k] = lerp(rng, g[off+k])
	}
	return gradient(vals)
}

// decodeFranken (the layer-slices layout) stacks two slices: each picks a
// model (a source or the base), a start layer and a length.
func (s *Space) decodeFranken(t merge.Technique, g []float64) *merge.Recipe {
	models := slices.Clone(s.Sources)
	if s.Base != "" {
		models = append(models, s.Base)
	}
	r := &merge.Recipe{Method: t.RecipeMethod()}
	o := s.offFranken()
	for k := range 2 {
		m := models[pickIndex(g[o+3*k], len(models))]
		start := pickIndex(g[o+3*k+1], s.depth(m))
		length := 1 + pickIndex(g[o+3*k+2], s.depth(m)-start)
		r.Slices = append(r.Slices, merge.Slice{Sources: []merge.SliceSource{{Model: m, From: start, To: start + length}}})
	}
	return r
}

// decodeDFS (the layer-path layout) builds the path from the slot
// indicators, in slot order: repeat-major, then source, then layer
// (Sakana's ordering).
func (s *Space) decodeDFS(t merge.Technique, g []float64) (*merge.Recipe, error) {
	src := s.dfsSources(t.Name)
	r := &merge.Recipe{Method: t.RecipeMethod(), Base: s.Base}
	nSrc := s.M() + 1
	for rep := range s.Repeats {
		for m := range nSrc {
			if m >= len(src) {
				continue // the ps slots, unused by plain dfs
			}
			for l := range s.Layers {
				slot := (rep*nSrc+m)*s.Layers + l
				if l >= s.depth(src[m]) || g[s.offIn()+slot] <= 0.5 || len(r.Layers) >= s.MaxLayers {
					continue
				}
				r.Layers = append(r.Layers, merge.LayerStep{Model: src[m], Layer: l, Scale: round4(lerp(s.Ranges.Scale, g[s.offScale()+slot]))})
			}
		}
	}
	if len(r.Layers) == 0 {
		return nil, fmt.Errorf("%s genome selects no layers", t.Name)
	}
	if t.SubMerge {
		ps, err := s.decodeTechnique(s.PSMethod, g)
		if err != nil {
			return nil, err
		}
		ps.Seed = s.Seed
		ps.TokenizerSource = s.TokenizerSource
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
		for _, k := range slices.Sorted(maps.Keys(r.Params)) {
			if k != "t" && k != "lambda" {
				fmt.Fprintf(&b, " %s=%s", k, r.Params[k])
			}
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
		// Every tensor's weight: the anchors, else filters one of which
		// ("", as weight_genes = "kinds" writes) catches every tensor.
		values := slices.Clone(w.Anchors)
		covered := len(w.Anchors) > 0
		for _, f := range w.Filters {
			values = append(values, f.Anchors...)
			covered = covered || f.Filter == ""
		}
		if !covered || len(values) == 0 {
			return "", false
		}
		zero, positive := true, true
		for _, a := range values {
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
