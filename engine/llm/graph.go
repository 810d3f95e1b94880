package llm

/*
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct ggml_context;
struct ggml_tensor;
struct ggml_backend;
struct ggml_backend_buffer;
struct ggml_backend_buffer_type;
struct ggml_gallocr;

struct ggml_backend * evm_graph_backend(const struct ggml_tensor * weight, int threads, struct ggml_backend_buffer_type ** buft);
struct ggml_backend_buffer_type * evm_graph_weight_buft(const struct ggml_tensor * weight);
struct ggml_tensor * evm_graph_upload(struct ggml_backend * be, int type, const int64_t * ne, const void * data, size_t size,
                                      struct ggml_context ** ctx, struct ggml_backend_buffer ** buf);
void evm_graph_release(struct ggml_context * ctx, struct ggml_backend_buffer * buf);
int  evm_graph_merge(struct ggml_backend * be, struct ggml_gallocr * galloc, struct ggml_tensor * dst,
                     struct ggml_tensor * base, struct ggml_tensor ** xs, const float * coefs, int n, float scale,
                     bool consensus, bool normalize, float lambda);

void ggml_backend_free(struct ggml_backend * backend);
struct ggml_gallocr * ggml_gallocr_new(struct ggml_backend_buffer_type * buft);
void ggml_gallocr_free(struct ggml_gallocr * galloc);
const char *ggml_backend_buft_name(struct ggml_backend_buffer_type * buft);
*/
import "C"

import (
	"errors"
	"fmt"
	"unsafe"

	"github.com/evomerge/evomerge/engine/gguf"
)

// The merge as a ggml graph. A GraphMerger holds the sources' tensors in
// a backend buffer on the device of a loaded model's weights, each
// uploaded once, and merges a weight with one small ggml graph: the
// sources converted to F32 (ggml_cast: F16 and BF16 widened, Q8_0
// dequantized by ggml's own row decoder), combined with per-tensor scalar
// coefficients (ggml_scale, ggml_sub, ggml_add in the order of the terms),
// and copied into the weight tensor itself (ggml_cpy, which rounds to
// the weight's type). Nothing crosses to the host: with the CUDA backend
// the sources live in GPU memory and the weights are overwritten where
// they are; with the CPU backend the same graph runs on ggml's CPU
// kernels, which is how the tests check it.
//
// The graphs are the weighted-sum forms Σ c_i·x_i and B + Σ c_i·(x_i − B)
// (linear, task_arithmetic and the unsparsified rest of its family) and
// TIES's sign election and disjoint merge without sparsification, times a
// scale. Weights outside the device's own buffer
// type (host copies of a GPU model's embeddings, repacked CPU buffers),
// outputs other than F32/F16/BF16 and sources of other types are not
// eligible; callers merge those with the Go kernels.
//
// Arithmetic: F32 throughout, one rounding per operation, the terms
// summed in order — the Go kernels' order, which fuse no multiply-adds
// either — and one final rounding to the weight's type (round to nearest
// even, as the Go encoders); ggml's Q8_0 decoder multiplies scale and
// quant as the Go one does. So on the CPU backend the bytes are the Go
// merger's (the tests find no element that differs). A GPU backend whose
// compiler contracts a multiply and an add into one rounding could differ
// in the last F32 bit, which the rounding to F16/BF16 almost always
// absorbs; that has not been measured.

// GraphSourceTypes are the source types a graph can read.
var GraphSourceTypes = map[gguf.Type]bool{gguf.TypeF32: true, gguf.TypeF16: true, gguf.TypeBF16: true, gguf.TypeQ8_0: true}

// GraphOutputTypes are the weight types a graph can write.
var GraphOutputTypes = map[gguf.Type]bool{gguf.TypeF32: true, gguf.TypeF16: true, gguf.TypeBF16: true}

// GraphMerger merges weights of one model as ggml graphs on the model's
// device. It is not safe for concurrent use, and must not run while a
// context of the model decodes.
type GraphMerger struct {
	model   *Model
	be      *C.struct_ggml_backend
	buft    *C.struct_ggml_backend_buffer_type
	galloc  *C.struct_ggml_gallocr
	device  string
	sources map[GraphOperand]*graphSource
	bytes   int64
}

// GraphOperand names a source tensor: a source key (the caller's, e.g.
// the file's path) and the tensor's name.
type GraphOperand struct {
	Source, Tensor string
}

// GraphTerm is one term of a merge: a source tensor and its coefficient.
type GraphTerm struct {
	GraphOperand
	Coef float32
}

// GraphForm is a weight's arithmetic: Scale·Σ Coef_i·X_i, or, with a
// Base, Scale·(Base + Σ Coef_i·(X_i − Base)); with Consensus (a Base
// required) Scale·(Base + Lambda·TIES), TIES being the sign election and
// disjoint merge of the task vectors Coef_i·(X_i − Base), divided by the
// agreeing weights when Normalize (kernels.SignConsensus).
type GraphForm struct {
	Base      *GraphOperand
	Terms     []GraphTerm
	Scale     float32
	Consensus bool
	Normalize bool
	Lambda    float32
}

type graphSource struct {
	t   *C.struct_ggml_tensor
	ctx *C.struct_ggml_context
	buf *C.struct_ggml_backend_buffer
}

// ErrGraphIneligible marks a weight or source the graph cannot merge; the
// caller merges it another way.
var ErrGraphIneligible = errors.New("not eligible for the graph merge")

// ErrGraphNoMemory marks a source tensor the device has no room for (the
// uploaded sources take their files' size in device memory); the caller
// merges the weights that need it another way.
var ErrGraphNoMemory = errors.New("no device memory left for the graph merge's sources")

// NewGraphMerger starts a backend on the device holding m's weights (the
// device of its first repeating-layer weight, or its first weight) with
// threads threads (CPU backend).
func NewGraphMerger(m *Model, threads int) (*GraphMerger, error) {
	if m.m == nil {
		return nil, errors.New("graph merger of a closed model")
	}
	if !m.writable {
		return nil, fmt.Errorf("%s: %w", m.path, ErrNotWritable)
	}
	ws, err := m.Weights()
	if err != nil {
		return nil, err
	}
	if len(ws) == 0 {
		return nil, fmt.Errorf("%s: the model has no weights", m.path)
	}
	pick := ws[0]
	for _, w := range ws {
		if len(w.Name) > 4 && w.Name[:4] == "blk." {
			pick = w
			break
		}
	}
	var buft *C.struct_ggml_backend_buffer_type
	be := C.evm_graph_backend(pick.t, C.int(max(threads, 1)), &buft)
	if be == nil {
		return nil, fmt.Errorf("%s: no backend for the device of weight %s (%s buffer)", m.path, pick.Name, pick.Buffer)
	}
	g := &GraphMerger{model: m, be: be, buft: buft, galloc: C.ggml_gallocr_new(buft),
		device: C.GoString(C.ggml_backend_buft_name(buft)), sources: map[GraphOperand]*graphSource{}}
	if g.galloc == nil {
		C.ggml_backend_free(be)
		return nil, fmt.Errorf("%s: cannot create a graph allocator on %s", m.path, g.device)
	}
	return g, nil
}

// Device is the buffer type the merger computes in ("CPU", "CUDA0").
func (g *GraphMerger) Device() string { return g.device }

// SourceBytes is the size of the uploaded sources.
func (g *GraphMerger) SourceBytes() int64 { return g.bytes }

// Eligible reports whether weight w can be written by a graph: it lives in
// the merger's buffer type and has a type the graph writes.
func (g *GraphMerger) Eligible(w Weight) bool {
	return w.t != nil && GraphOutputTypes[w.Type] && C.evm_graph_weight_buft(w.t) == g.buft
}

// Uploaded reports whether a source tensor is on the device.
func (g *GraphMerger) Uploaded(op GraphOperand) bool { return g.sources[op] != nil }

// Upload copies a source tensor (its GGUF bytes) to the device, once: a
// tensor already uploaded is kept.
func (g *GraphMerger) Upload(op GraphOperand, typ gguf.Type, shape []uint64, data []byte) error {
	if g.sources[op] != nil {
		return nil
	}
	if !GraphSourceTypes[typ] {
		return fmt.Errorf("source %s tensor %s is %s: %w", op.Source, op.Tensor, typ, ErrGraphIneligible)
	}
	if len(shape) > 4 || len(data) == 0 {
		return fmt.Errorf("source %s tensor %s: %d dimensions, %d bytes: %w", op.Source, op.Tensor, len(shape), len(data), ErrGraphIneligible)
	}
	ne := [4]C.int64_t{1, 1, 1, 1}
	for i, d := range shape {
		ne[i] = C.int64_t(d)
	}
	ti := gguf.TensorInfo{Name: op.Tensor, Type: typ, Shape: shape}
	if uint64(len(data)) != ti.Bytes() {
		return fmt.Errorf("source %s tensor %s: %d bytes given, %s %v holds %d", op.Source, op.Tensor, len(data), typ, shape, ti.Bytes())
	}
	s := &graphSource{}
	s.t = C.evm_graph_upload(g.be, C.int(typ), &ne[0], unsafe.Pointer(&data[0]), C.size_t(len(data)), &s.ctx, &s.buf)
	if s.t == nil {
		return fmt.Errorf("source %s tensor %s: %d bytes on %s (%d uploaded): %w", op.Source, op.Tensor, len(data), g.device, g.bytes, ErrGraphNoMemory)
	}
	g.sources[op] = s
	g.bytes += int64(len(data))
	return nil
}

// Merge computes form on the device and writes it into weight w (every
// source uploaded, w eligible).
func (g *GraphMerger) Merge(w Weight, form GraphForm) error {
	if g.model.m == nil {
		return errors.New("graph merge into a closed model")
	}
	if !g.Eligible(w) {
		return fmt.Errorf("weight %s (%s in %s): %w", w.Name, w.Type, w.Buffer, ErrGraphIneligible)
	}
	if len(form.Terms) == 0 {
		return fmt.Errorf("weight %s: a merge without terms: %w", w.Name, ErrGraphIneligible)
	}
	src := func(op GraphOperand) (*C.struct_ggml_tensor, error) {
		s := g.sources[op]
		if s == nil {
			return nil, fmt.Errorf("weight %s: source %s tensor %s is not uploaded", w.Name, op.Source, op.Tensor)
		}
		return s.t, nil
	}
	n := len(form.Terms)
	xs := make([]*C.struct_ggml_tensor, n) // C pointers in Go memory: allowed by cgo's rules
	coefs := make([]C.float, n)
	for i, t := range form.Terms {
		x, err := src(t.GraphOperand)
		if err != nil {
			return err
		}
		xs[i], coefs[i] = x, C.float(t.Coef)
	}
	var base *C.struct_ggml_tensor
	if form.Base != nil {
		b, err := src(*form.Base)
		if err != nil {
			return err
		}
		base = b
	}
	switch C.evm_graph_merge(g.be, g.galloc, w.t, base, &xs[0], &coefs[0], C.int(n), C.float(form.Scale),
		C.bool(form.Consensus), C.bool(form.Normalize), C.float(form.Lambda)) {
	case 0:
		return nil
	case -1:
		return fmt.Errorf("weight %s %v: a source tensor has another shape: %w", w.Name, w.Shape, ErrGraphIneligible)
	case -2:
		return fmt.Errorf("weight %s: cannot allocate the merge graph on %s", w.Name, g.device)
	case -4:
		return fmt.Errorf("weight %s: %s does not support an operation of the merge graph: %w", w.Name, g.device, ErrGraphIneligible)
	default:
		return fmt.Errorf("weight %s: the merge graph failed on %s", w.Name, g.device)
	}
}

// Close frees the uploaded sources and the backend.
func (g *GraphMerger) Close() {
	for k, s := range g.sources {
		C.evm_graph_release(s.ctx, s.buf)
		delete(g.sources, k)
	}
	if g.galloc != nil {
		C.ggml_gallocr_free(g.galloc)
		g.galloc = nil
	}
	if g.be != nil {
		C.ggml_backend_free(g.be)
		g.be = nil
	}
	g.bytes = 0
}
