// Package gradshape says which models engine/llm's coefficient-gradient
// graph covers and reads their shape: the llama architecture (dense, with
// grouped-query attention and rope frequency factors, without biases or
// experts). It is plain Go, so the evolution engine can decide before a
// run whether its models allow the gradient optimizer, and the graph (cgo)
// refuses the same models with the same error.
package gradshape

import (
	"errors"
	"fmt"
	"slices"

	"github.com/evomerge/evomerge/engine/gguf"
)

// Spec is the shape of a llama model (GGUF metadata).
type Spec struct {
	Layers, Embd, Heads, KVHeads, Vocab, CtxTrain int
	Eps, RopeBase                                 float32
}

// ErrArch marks a model the coefficient-gradient graph does not cover.
var ErrArch = errors.New("coefficient gradients cover dense llama models")

// Of reads a model's shape from its GGUF metadata.
func Of(md gguf.Metadata) (Spec, error) {
	if a := md.Architecture(); a != "llama" {
		return Spec{}, fmt.Errorf("architecture %q: %w", a, ErrArch)
	}
	u := func(k string) int { v, _ := md.ArchUint(k); return int(v) }
	f := func(k string, def float64) float32 {
		if v, ok := md.Float("llama." + k); ok {
			return float32(v)
		}
		return float32(def)
	}
	s := Spec{Layers: u("block_count"), Embd: u("embedding_length"), Heads: u("attention.head_count"), KVHeads: u("attention.head_count_kv"),
		CtxTrain: u("context_length"), Eps: f("attention.layer_norm_rms_epsilon", 1e-5), RopeBase: f("rope.freq_base", 10000)}
	if s.KVHeads == 0 {
		s.KVHeads = s.Heads
	}
	if s.Layers <= 0 || s.Embd <= 0 || s.Heads <= 0 || s.Embd%s.Heads != 0 || s.Heads%s.KVHeads != 0 {
		return Spec{}, fmt.Errorf("incomplete llama metadata (layers %d, width %d, heads %d, key-value heads %d): %w", s.Layers, s.Embd, s.Heads, s.KVHeads, ErrArch)
	}
	if k := u("attention.key_length"); k != 0 && k != s.Embd/s.Heads {
		return Spec{}, fmt.Errorf("heads of %d, not width/heads = %d: %w", k, s.Embd/s.Heads, ErrArch)
	}
	if n := u("expert_count"); n > 0 {
		return Spec{}, fmt.Errorf("%d experts: %w", n, ErrArch)
	}
	if n, ok := md.Strings("tokenizer.ggml.tokens"); ok {
		s.Vocab = len(n)
	}
	if v := u("vocab_size"); v > 0 {
		s.Vocab = v
	}
	return s, nil
}

// LayerKinds are the tensors of a block, in the graph's order (gradient.h).
var LayerKinds = []string{"attn_norm", "attn_q", "attn_k", "attn_v", "attn_output", "ffn_norm", "ffn_gate", "ffn_up", "ffn_down"}

// Tensors are the names of the tensors the graph builds, in its order:
// embeddings, output norm, output (absent when tied), rope frequency
// factors (optional), then each block's LayerKinds.
func Tensors(layers int) []string {
	names := []string{"token_embd.weight", "output_norm.weight", "output.weight", "rope_freqs.weight"}
	for l := range layers {
		for _, k := range LayerKinds {
			names = append(names, fmt.Sprintf("blk.%d.%s.weight", l, k))
		}
	}
	return names
}

// Optional reports whether the graph does without the tensor.
func Optional(name string) bool { return name == "output.weight" || name == "rope_freqs.weight" }

// Covers checks that every tensor named is one the graph builds.
func Covers(s Spec, names []string) error {
	known := Tensors(s.Layers)
	for _, name := range names {
		if !slices.Contains(known, name) {
			return fmt.Errorf("tensor %s is not in the llama block the graph builds: %w", name, ErrArch)
		}
	}
	return nil
}

// Check is Of and Covers for a model file.
func Check(f *gguf.File) (Spec, error) {
	s, err := Of(f.Metadata)
	if err != nil {
		return s, err
	}
	names := make([]string, len(f.Tensors))
	for i, ti := range f.Tensors {
		names[i] = ti.Name
	}
	return s, Covers(s, names)
}

// Same checks that a source has the base's tensors, of the same shapes:
// the graph adds each source's difference from the base, tensor by
// tensor (a fine-tune with added tokens, whose embeddings have more rows,
// is not covered).
func Same(base, source *gguf.File) error {
	if len(base.Tensors) != len(source.Tensors) {
		return fmt.Errorf("%d tensors, the base has %d: %w", len(source.Tensors), len(base.Tensors), ErrArch)
	}
	shapes := make(map[string][]uint64, len(base.Tensors))
	for _, ti := range base.Tensors {
		shapes[ti.Name] = ti.Shape
	}
	for _, ti := range source.Tensors {
		if s, ok := shapes[ti.Name]; !ok || !slices.Equal(s, ti.Shape) {
			return fmt.Errorf("tensor %s %v is not the base's (%v): %w", ti.Name, ti.Shape, s, ErrArch)
		}
	}
	return nil
}
