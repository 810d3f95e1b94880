package merge

import (
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"
)

// A Recipe describes one merge completely. It has three shapes, all
// planned by Plan:
//
//   - parameter space: Method, Base and Models — every tensor of the
//     output is Method applied to the same tensor of each model;
//   - slices: Slices stack layer ranges; a slice with one source copies
//     (passthrough/frankenmerge), one with several merges them with Method;
//   - data-flow space: Method "dfs" and Layers, a path through the
//     sources' layers, each step with a scale (see dfs.go).
//
// Models are GGUF paths (or Hugging Face references, resolved by the
// caller) or the names of Sources: sub-recipes merged on the fly, which is
// how ps_dfs uses a parameter-space merge as one of its sources.
type Recipe struct {
	Name    string             // general.name of the output (default: derived)
	Method  string             // a registered Method, "passthrough" or "dfs"
	Base    string             // base model; required by task-arithmetic methods
	Models  []ModelRef         // parameter-space models (may include the base)
	Slices  []Slice            // layer slices, instead of Models
	Layers  []LayerStep        // dfs layer path
	Sources map[string]*Recipe // named sub-recipes usable as models
	Params  Params             // global parameters
	OutType string             // "keep" (default), "f32", "f16", "bf16", "q8_0", "q4_k", ...
	Seed    uint64             // for random sparsification (DARE, DELLA)
	// TokenizerSource is mergekit's tokenizer_source: "base", "union" or a
	// model, the vocabulary the output keeps when the models' vocabularies
	// differ ("" = they must not differ). See vocab.go.
	TokenizerSource string
}

// ModelRef is one input model with its parameters.
type ModelRef struct {
	Model  string
	Params Params
}

// Slice is a run of layers taken from one or more sources. With several
// sources, all must cover the same number of layers and are merged.
type Slice struct {
	Sources []SliceSource
	Params  Params
}

// SliceSource is a half-open layer range [From, To) of a model.
type SliceSource struct {
	Model  string
	From   int
	To     int
	Params Params
}

// LayerStep is one step of a dfs layer path: layer Layer of Model, its
// residual contribution scaled by Scale (see dfs.go).
type LayerStep struct {
	Model string
	Layer int
	Scale float64
}

// Params maps parameter names to values.
type Params map[string]Value

// Value is a parameter value as mergekit configs write it: a number (or
// boolean), a gradient — a list of anchors interpolated across the layers
// of a slice — or a list of filtered values, the first whose filter matches
// the tensor name winning (an empty filter matches everything).
type Value struct {
	Anchors []float64
	Filters []Filtered
}

// Filtered is one entry of a filtered value.
type Filtered struct {
	Filter  string
	Anchors []float64
}

// Scalar makes a constant value.
func Scalar(v float64) Value { return Value{Anchors: []float64{v}} }

// Bool makes a boolean value.
func Bool(b bool) Value {
	if b {
		return Scalar(1)
	}
	return Scalar(0)
}

// Gradient makes a value interpolated across layers.
func Gradient(anchors ...float64) Value { return Value{Anchors: anchors} }

// IsZero reports whether v is unset.
func (v Value) IsZero() bool { return len(v.Anchors) == 0 && len(v.Filters) == 0 }

// At resolves v for a tensor: layer is the tensor's index within its slice
// (−1 for tensors outside the blocks, which take the first anchor) and
// layers the slice's layer count.
func (v Value) At(tensor string, layer, layers int) (float64, bool) {
	anchors := v.Anchors
	if len(v.Filters) > 0 {
		anchors = nil
		for _, f := range v.Filters {
			if f.Filter == "" || FilterMatches(f.Filter, tensor) {
				anchors = f.Anchors
				break
			}
		}
	}
	switch {
	case len(anchors) == 0:
		return 0, false
	case len(anchors) == 1 || layer < 0 || layers <= 1:
		return anchors[0], true
	}
	t := float64(layer) / float64(layers-1) * float64(len(anchors)-1)
	i := min(int(math.Floor(t)), len(anchors)-2)
	frac := t - float64(i)
	return anchors[i]*(1-frac) + anchors[i+1]*frac, true
}

func (v Value) String() string {
	num := func(a []float64) string {
		if len(a) == 1 {
			return strconv.FormatFloat(a[0], 'g', -1, 64)
		}
		parts := make([]string, len(a))
		for i, x := range a {
			parts[i] = strconv.FormatFloat(x, 'g', -1, 64)
		}
		return "[" + strings.Join(parts, ", ") + "]"
	}
	if len(v.Filters) == 0 {
		return num(v.Anchors)
	}
	parts := make([]string, len(v.Filters))
	for i, f := range v.Filters {
		if f.Filter == "" {
			parts[i] = num(f.Anchors)
		} else {
			parts[i] = f.Filter + ": " + num(f.Anchors)
		}
	}
	return "{" + strings.Join(parts, "; ") + "}"
}

// Layer filters accept mergekit's Hugging Face vocabulary and GGUF's: a
// filter matches a GGUF tensor name that contains it, or contains one of
// the GGUF spellings of the Hugging Face module it names.
var hfToGGUF = map[string][]string{
	"self_attn":                {"attn_q", "attn_k", "attn_v", "attn_output", "attn_qkv"},
	"mlp":                      {"ffn_gate", "ffn_up", "ffn_down"},
	"q_proj":                   {"attn_q."},
	"k_proj":                   {"attn_k."},
	"v_proj":                   {"attn_v."},
	"o_proj":                   {"attn_output"},
	"gate_proj":                {"ffn_gate"},
	"up_proj":                  {"ffn_up"},
	"down_proj":                {"ffn_down"},
	"input_layernorm":          {"attn_norm"},
	"post_attention_layernorm": {"ffn_norm"},
	"layernorm":                {"_norm"},
	"embed_tokens":             {"token_embd"},
	"lm_head":                  {"output.weight"},
}

// FilterMatches reports whether filter selects the GGUF tensor name.
func FilterMatches(filter, tensor string) bool {
	if strings.Contains(tensor, filter) {
		return true
	}
	for _, g := range hfToGGUF[filter] {
		if strings.Contains(tensor, g) {
			return true
		}
	}
	return false
}

var blockRe = regexp.MustCompile(`^blk\.(\d+)\.`)

// LayerOf returns the block index of a GGUF tensor name ("blk.12.…" → 12),
// or −1 for tensors outside the blocks.
func LayerOf(tensor string) int {
	m := blockRe.FindStringSubmatch(tensor)
	if m == nil {
		return -1
	}
	n, err := strconv.Atoi(m[1])
	if err != nil {
		return -1
	}
	return n
}

// Renumber replaces the block index of a block tensor name.
func Renumber(tensor string, layer int) string {
	loc := blockRe.FindStringSubmatchIndex(tensor)
	if loc == nil {
		return tensor
	}
	return tensor[:loc[2]] + strconv.Itoa(layer) + tensor[loc[3]:]
}

// modelNames lists every model the recipe reads, in first-use order.
func (r *Recipe) modelNames() []string {
	var names []string
	seen := map[string]bool{}
	add := func(m string) {
		if m != "" && !seen[m] {
			seen[m] = true
			names = append(names, m)
		}
	}
	add(r.Base)
	for _, m := range r.Models {
		add(m.Model)
	}
	for _, s := range r.Slices {
		for _, src := range s.Sources {
			add(src.Model)
		}
	}
	for _, l := range r.Layers {
		add(l.Model)
	}
	return names
}

// Describe is a one-line summary ("ties over stories15M: bible 0.5, moby 0.5").
func (r *Recipe) Describe() string {
	var parts []string
	for _, m := range r.Models {
		p := shortName(m.Model)
		if w, ok := m.Params["weight"]; ok {
			p += " " + w.String()
		}
		parts = append(parts, p)
	}
	s := r.Method
	if r.Base != "" {
		s += " over " + shortName(r.Base)
	}
	if len(r.Slices) > 0 {
		s += fmt.Sprintf(", %d slices", len(r.Slices))
	}
	if len(r.Layers) > 0 {
		s += fmt.Sprintf(", %d-layer path", len(r.Layers))
	}
	if len(parts) > 0 {
		s += ": " + strings.Join(parts, ", ")
	}
	return s
}

func shortName(path string) string {
	if i := strings.LastIndexAny(path, `/\`); i >= 0 {
		path = path[i+1:]
	}
	return strings.TrimSuffix(path, ".gguf")
}
