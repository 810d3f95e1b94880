package llm

/*
#include <stdlib.h>
#include "gradient.h"
*/
import "C"

import (
	"errors"
	"fmt"
	"maps"
	"runtime"
	"slices"
	"unsafe"

	"github.com/evomerge/evomerge/engine/gguf"
	"github.com/evomerge/evomerge/engine/llm/gradshape"
	"github.com/evomerge/evomerge/kernels"
)

// Coefficient gradients. A task-arithmetic merge is a function of a few
// coefficients — W = base + Σ_s c_s·(W_s − base) per tensor, c_s one of
// the recipe's weights (times λ) — and so is its loss on a window. A
// zeroth-order search (ES) learns one directional derivative of that loss
// per pair of evaluations; the exact gradient gives all of them for a few
// evaluations' cost (a forward and a backward pass: 6.6–7.3 times a
// llama.cpp scoring pass of the same window on the zoo, go test -bench
// Window ./engine/llm). Gradient builds the llama forward pass with
// ggml ops, each weight computed from the coefficient vector inside the
// graph, and lets ggml's automatic differentiation give dL/dc: the mean
// negative log-likelihood of the scored positions of a window (the
// llama-perplexity convention of engine/eval: positions from … n−2
// predict the next token), and its gradient.
//
// llama.cpp's own training API (llama_opt_init, llama_opt_epoch and
// ggml_opt_grad_acc for the gradients) is in the pinned build but cannot
// serve: the backward graph aborts in ggml_build_backward_expand on the
// KV cache's ggml_set_rows, an in-place op (upstream llama.cpp issues
// 16258 and 18805). Hence a graph of evomerge's own, which covers dense
// llama models, grouped-query attention and rope frequency factors
// included (package gradshape says which, in plain Go); it is checked
// against llama.cpp on the zoo and on generated models with grouped-query
// attention (the same loss to 1e-4) and against central differences.
//
// Everything is F32 on the CPU (ggml_graph_compute_with_ctx): the graph
// holds the base and every source's delta, so memory is about
// (1 + 3·sources) × the F32 model, twice over for the gradients — small
// models only.

// GradientWeight is one tensor of the merge: its base values, each
// source's delta from the base (nil: equal to the base), and the
// coefficient index of each source. All F32, in GGUF order (innermost
// dimension first).
type GradientWeight struct {
	Shape  []uint64
	Base   []float32
	Deltas [][]float32
	Coef   []int
}

// GradientWeights reads a base and its sources (GGUF files of one llama
// shape, any type ggml decodes) into the F32 weights NewGradient takes:
// coef(name, s) is the coefficient of source s in tensor name. A source
// that kept a tensor of the base gets no delta there.
func GradientWeights(base string, sources []string, coef func(name string, source int) int) (gradshape.Spec, map[string]GradientWeight, error) {
	b, md, err := readF32(base)
	if err != nil {
		return gradshape.Spec{}, nil, err
	}
	spec, err := gradshape.Of(md)
	if err != nil {
		return gradshape.Spec{}, nil, fmt.Errorf("%s: %w", base, err)
	}
	weights := b
	for s, path := range sources {
		src, _, err := readF32(path)
		if err != nil {
			return gradshape.Spec{}, nil, err
		}
		for name, w := range weights {
			v, ok := src[name]
			if !ok || len(v.Base) != len(w.Base) {
				return gradshape.Spec{}, nil, fmt.Errorf("%s: tensor %s missing or of another shape than the base's", path, name)
			}
			var d []float32
			for i := range v.Base {
				if v.Base[i] != w.Base[i] {
					d = v.Base
					for j := range d {
						d[j] -= w.Base[j]
					}
					break
				}
			}
			w.Deltas, w.Coef = append(w.Deltas, d), append(w.Coef, coef(name, s))
			weights[name] = w
		}
	}
	return spec, weights, nil
}

// readF32 decodes every tensor of a GGUF file to F32 (as GradientWeights
// without deltas), with the file's metadata.
func readF32(path string) (map[string]GradientWeight, gguf.Metadata, error) {
	f, err := gguf.Open(path)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	out := make(map[string]GradientWeight, len(f.Tensors))
	for _, ti := range f.Tensors {
		v, err := kernels.DecodeTensor(f, ti, Codec{})
		if err != nil {
			return nil, nil, err
		}
		out[ti.Name] = GradientWeight{Shape: ti.Shape, Base: v}
	}
	return out, f.Metadata, nil
}

// Gradient computes the loss of a merge on windows of n tokens and its
// gradient in the coefficients. Not safe for concurrent use.
type Gradient struct {
	g        *C.struct_evm_grad
	n, ncoef int
	vocab    int
	mem      int64 // the ggml arena's size
}

// NewGradient builds the graph for windows of n tokens scored from
// position from, over ncoef coefficients, computing with threads CPU
// threads. weights holds every tensor by GGUF name ("output.weight" may
// be absent: tied to the embeddings).
func NewGradient(spec gradshape.Spec, weights map[string]GradientWeight, ncoef, n, from, threads int) (*Gradient, error) {
	if n < 2 || from < 0 || from > n-2 {
		return nil, fmt.Errorf("gradient: scoring from position %d of windows of %d tokens", from, n)
	}
	if spec.CtxTrain > 0 && n > spec.CtxTrain {
		return nil, fmt.Errorf("gradient: windows of %d tokens exceed the model's context of %d", n, spec.CtxTrain)
	}
	names := gradshape.Tensors(spec.Layers)
	if err := gradshape.Covers(spec, slices.Collect(maps.Keys(weights))); err != nil {
		return nil, fmt.Errorf("gradient: %w", err)
	}
	ts := unsafe.Slice((*C.struct_evm_grad_tensor)(C.calloc(C.size_t(len(names)), C.size_t(unsafe.Sizeof(C.struct_evm_grad_tensor{})))), len(names))
	defer C.free(unsafe.Pointer(&ts[0]))
	var pin runtime.Pinner
	defer pin.Unpin()
	var bytes int64
	for i, name := range names {
		w, ok := weights[name]
		if !ok {
			if gradshape.Optional(name) {
				continue // tied, or no frequency factors: ne0 = 0
			}
			return nil, fmt.Errorf("gradient: no tensor %s", name)
		}
		size := 1
		for _, d := range w.Shape {
			size *= int(d)
		}
		if len(w.Shape) == 0 || len(w.Shape) > 2 || len(w.Base) != size || len(w.Deltas) != len(w.Coef) || len(w.Deltas) > len(ts[i].delta) {
			return nil, fmt.Errorf("gradient: tensor %s: shape %v, %d values, %d deltas for %d coefficients", name, w.Shape, len(w.Base), len(w.Deltas), len(w.Coef))
		}
		t := &ts[i]
		t.ne0, t.ne1 = C.int64_t(w.Shape[0]), 1
		if len(w.Shape) == 2 {
			t.ne1 = C.int64_t(w.Shape[1])
		}
		pin.Pin(&w.Base[0])
		t.base = (*C.float)(unsafe.Pointer(&w.Base[0]))
		for s, d := range w.Deltas {
			if d == nil {
				continue
			}
			if len(d) != size || w.Coef[s] < 0 || w.Coef[s] >= ncoef {
				return nil, fmt.Errorf("gradient: tensor %s source %d: %d values, coefficient %d of %d", name, s, len(d), w.Coef[s], ncoef)
			}
			pin.Pin(&d[0])
			t.delta[t.nsrc] = (*C.float)(unsafe.Pointer(&d[0]))
			t.idx[t.nsrc] = C.int(w.Coef[s])
			t.nsrc++
		}
		bytes += int64(size) * 4 * int64(1+3*int(t.nsrc))
	}
	if spec.Vocab <= 0 {
		spec.Vocab = int(ts[0].ne1)
	}
	m := C.struct_evm_grad_model{tensors: &ts[0], layers: C.int(spec.Layers), embd: C.int(spec.Embd), heads: C.int(spec.Heads), kv_heads: C.int(spec.KVHeads),
		vocab: C.int(spec.Vocab), ncoef: C.int(ncoef), ctx_train: C.int(max(spec.CtxTrain, n)), eps: C.float(spec.Eps), rope_base: C.float(spec.RopeBase)}
	mem := gradientMemory(spec, bytes, n, from)
	g := C.evm_grad_new(&m, C.int(n), C.int(from), C.int(max(1, threads)), C.size_t(mem))
	if g == nil {
		return nil, errors.New("gradient: ggml could not allocate the graph")
	}
	return &Gradient{g: g, n: n, ncoef: ncoef, vocab: spec.Vocab, mem: mem}, nil
}

// gradientMemory is the ggml arena for the graph: the merged weights
// (mergedBytes: base, deltas, products and sums) and their gradients,
// the activations of n tokens and the scored logits with theirs, and
// tensor overhead.
func gradientMemory(spec gradshape.Spec, mergedBytes int64, n, from int) int64 {
	act := int64(spec.Layers) * int64(n) * int64(64*spec.Embd+8*n*spec.Heads) * 4
	logits := int64(n-1-from) * int64(spec.Vocab) * 4 * 8
	return 2*mergedBytes + 2*act + logits + 64<<20
}

// Window returns the loss on one window of n tokens (tokens[0] the BOS
// the scorer puts there) at coefficients coef, and writes its gradient to
// grad (len ncoef).
func (g *Gradient) Window(coef []float32, tokens []int32, grad []float32) (float64, error) {
	if len(coef) != g.ncoef || len(grad) != g.ncoef || len(tokens) != g.n {
		return 0, fmt.Errorf("gradient: %d coefficients, %d gradients, %d tokens; want %d, %d, %d", len(coef), len(grad), len(tokens), g.ncoef, g.ncoef, g.n)
	}
	for _, t := range tokens {
		if t < 0 || int(t) >= g.vocab {
			return 0, fmt.Errorf("gradient: token %d out of the vocabulary (%d)", t, g.vocab)
		}
	}
	var loss C.double
	if st := C.evm_grad_window(g.g, (*C.float)(unsafe.Pointer(&coef[0])), (*C.int32_t)(unsafe.Pointer(&tokens[0])), &loss, (*C.float)(unsafe.Pointer(&grad[0]))); st != 0 {
		return 0, fmt.Errorf("gradient: ggml compute failed (status %d)", int(st))
	}
	return float64(loss), nil
}

// used is the arena's use (for the tests' check of gradientMemory).
func (g *Gradient) used() int64 { return int64(C.evm_grad_used(g.g)) }

// Close frees the graph.
func (g *Gradient) Close() {
	if g.g != nil {
		C.evm_grad_free(g.g)
		g.g = nil
	}
}
