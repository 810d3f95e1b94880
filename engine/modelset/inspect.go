package modelset

import (
	"fmt"
	"slices"
	"strings"

	"github.com/evomerge/evomerge/engine/gguf"
	"github.com/evomerge/evomerge/engine/hub"
	"github.com/evomerge/evomerge/engine/merge"
)

// header is what the rules read from one model's GGUF header.
type header struct {
	arch   string
	layers int
	width  uint64   // embedding width (token_embd's row length), 0 if unknown
	tokens int      // vocabulary size, 0 if unknown
	order  []string // tensor names in file order
	shapes map[string][]uint64
	bases  []string // hub ids named by general.base_model.N
	self   []string // hub ids the model names as its own repository
}

func readHeader(path string) (*header, error) {
	f, err := gguf.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	md := f.Metadata
	h := &header{arch: md.Architecture(), shapes: map[string][]uint64{}}
	if n, ok := md.ArchUint("block_count"); ok {
		h.layers = int(n)
	}
	for _, t := range f.Tensors {
		h.order = append(h.order, t.Name)
		h.shapes[t.Name] = t.Shape
	}
	if t, ok := h.shapes["token_embd.weight"]; ok && len(t) > 0 {
		h.width = t[0]
	}
	if toks, ok := md.Strings("tokenizer.ggml.tokens"); ok {
		h.tokens = len(toks)
	}
	n, _ := md.Uint("general.base_model.count")
	for i := range n {
		key := fmt.Sprintf("general.base_model.%d.", i)
		if id := hubID(md.String(key+"repo_url"), md.String(key+"organization"), md.String(key+"name")); id != "" {
			h.bases = append(h.bases, id)
		}
	}
	for _, k := range []string{"general.repo_url", "general.source.repo_url", "general.source.huggingface.repository"} {
		if id := hubID(md.String(k), "", ""); id != "" {
			h.self = append(h.self, id)
		}
	}
	return h, nil
}

// hubID is the hub repository a base_model entry names: its repo_url when
// that is a hub link (or an id), else organization/name when both read as
// id parts, else "".
func hubID(repoURL, org, name string) string {
	if repoURL != "" {
		if ref, err := hub.ParseRef(repoURL); err == nil && ref.File == "" && ref.Quant == "" {
			return ref.Repo
		}
	}
	if org != "" && name != "" && !strings.ContainsAny(org+name, " /") {
		if ref, err := hub.ParseRef("hf://" + org + "/" + name); err == nil {
			return ref.Repo
		}
	}
	return ""
}

// describe is a short description of a model's shape for messages:
// "llama, 6 layers, width 288".
func (h *header) describe() string {
	s := fmt.Sprintf("%s, %d layers", h.arch, h.layers)
	if h.width > 0 {
		s += fmt.Sprintf(", width %d", h.width)
	}
	return s
}

// mismatch is why two models cannot be merged tensor by tensor.
type mismatch struct {
	depth bool   // only the number of layers differs
	msg   string // one line naming both models (and the tensor and shapes)
}

// compare checks that b can be merged with a: the same architecture and,
// for every tensor, the same shape (blocks compared up to the shallower
// model's depth). A difference in depth alone is reported with depth set:
// data-flow techniques can still stack the layers.
func compare(aName string, a *header, bName string, b *header) *mismatch {
	if a.arch != b.arch {
		return &mismatch{msg: fmt.Sprintf("model %s is %s and model %s is %s: models of different architectures cannot be merged", bName, orUnknown(b.arch), aName, orUnknown(a.arch))}
	}
	shallow := min(a.layers, b.layers)
	seen := map[string]bool{}
	for _, pair := range [][2]*header{{a, b}, {b, a}} {
		x, y := pair[0], pair[1]
		xName, yName := aName, bName
		if x == b {
			xName, yName = bName, aName
		}
		for _, name := range x.order {
			if l := merge.LayerOf(name); l >= shallow || seen[name] {
				continue
			}
			seen[name] = true
			ys, ok := y.shapes[name]
			xs := x.shapes[name]
			switch {
			case !ok:
				return &mismatch{msg: fmt.Sprintf("model %s has no tensor %s, which model %s has (%s)", yName, name, xName, shape(xs))}
			case vocabRows(name, xs, ys):
				// Embedding rows follow the vocabulary: merge.tokenizer_source
				// aligns them (the run checks that the vocabularies can be).
			case !slices.Equal(xs, ys):
				return &mismatch{msg: fmt.Sprintf("tensor %s is %s in model %s and %s in model %s: the models differ in shape", name, shape(ys), yName, shape(xs), xName)}
			}
		}
	}
	if a.layers != b.layers {
		return &mismatch{depth: true, msg: fmt.Sprintf("model %s has %d layers and model %s %d", aName, a.layers, bName, b.layers)}
	}
	return nil
}

// vocabRows reports whether two shapes of an embedding tensor (one row
// per token) differ only in their number of rows.
func vocabRows(name string, a, b []uint64) bool {
	return (name == "token_embd.weight" || name == "output.weight") && len(a) == 2 && len(b) == 2 && a[0] == b[0]
}

func shape(s []uint64) string {
	parts := make([]string, len(s))
	for i, d := range s {
		parts[i] = fmt.Sprint(d)
	}
	return "[" + strings.Join(parts, " ") + "]"
}

func orUnknown(s string) string {
	if s == "" {
		return "of unknown architecture"
	}
	return s
}
