// Package llm is evomerge's only cgo package: a thin layer over llama.cpp
// (through github.com/ollama/ollama/llama, pinned at v0.24.0) that loads
// models, tokenizes, decodes batches and exposes logits, plus ggml's
// quantization routines as a kernels.Codec.
//
// It adds what the ollama wrapper lacks:
//   - contexts are freed (llama_free), so evaluating thousands of candidates
//     does not leak a KV cache each;
//   - embeddings output is switched off (the wrapper turns it on for every
//     context, which costs a copy per token);
//   - logits are read in place through llama_get_logits instead of copying
//     n_vocab floats per token;
//   - a model's weight tensors are reachable through llama.cpp's internal
//     tensor map (a C++ shim, tensormap.cpp) and, for a model loaded
//     Writable, overwritten with ggml_backend_tensor_set (weights.go);
//   - the compute devices of the loaded backends — name, description,
//     memory — through ggml's device API (device.go), and how many of a
//     model's layers were offloaded to a GPU;
//   - the merge as a ggml graph (graph.go, graphmerge.c): source tensors
//     uploaded once to the device holding a model's weights, and per
//     weight a small graph — linear, task arithmetic or unsparsified
//     TIES with scalar coefficients, in F32 — whose result ggml_cpy
//     writes into the weight itself. On a GPU nothing crosses to the
//     host; on the CPU backend the same graph runs, which is how the
//     tests check it against the Go merger (bit-identical on the zoo).
//
// llama.cpp aborts the process on internal assertion failures, so callers
// run this package inside a child worker process (engine/eval), never in
// the workbench itself.
package llm

/*
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>

struct llama_context;
struct llama_model;
void   llama_free(struct llama_context * ctx);
void   llama_set_embeddings(struct llama_context * ctx, bool embeddings);
float *llama_get_logits(struct llama_context * ctx);
int32_t llama_model_n_ctx_train(const struct llama_model * model);
int32_t llama_model_n_layer(const struct llama_model * model);
int32_t llama_model_n_embd(const struct llama_model * model);
int32_t llama_model_n_head(const struct llama_model * model);
uint64_t llama_model_n_params(const struct llama_model * model);
int32_t llama_model_desc(const struct llama_model * model, char * buf, size_t buf_size);
struct llama_vocab;
const struct llama_vocab * llama_model_get_vocab(const struct llama_model * model);
int32_t llama_vocab_bos(const struct llama_vocab * vocab);
*/
import "C"

import (
	"errors"
	"fmt"
	"runtime"
	"sync"
	"unsafe"

	"github.com/ollama/ollama/llama"
	"github.com/ollama/ollama/ml"

	"github.com/evomerge/evomerge/engine/gguf"
)

var initOnce sync.Once

// Init loads the ggml backends (CPU, and GPU backends found under
// OLLAMA_LIBRARY_PATH or <exe>/../lib/ollama). It is safe to call repeatedly.
func Init() { initOnce.Do(llama.BackendInit) }

// ModelParams control loading.
type ModelParams struct {
	// GPULayers is the number of layers to offload; negative means all of
	// them when a GPU is present (the "auto" setting).
	GPULayers int
	// Writable loads the weights into memory llama.cpp allocates (use_mmap
	// off) instead of mapping the file read-only, so SetWeight can
	// overwrite them. It costs a copy of the model in memory.
	Writable bool
}

// Model is a loaded model.
type Model struct {
	m         *llama.Model
	path      string
	arch      string
	writable  bool
	offloaded int
}

// ErrLoad marks a model that llama.cpp refused to load.
var ErrLoad = errors.New("llama.cpp could not load the model")

// Load loads a GGUF model. The file is validated with engine/gguf first so
// that bad input gets a precise error rather than llama.cpp's generic one.
func Load(path string, p ModelParams) (*Model, error) {
	Init()
	f, err := gguf.Open(path)
	if err != nil {
		return nil, err
	}
	arch := f.Metadata.Architecture()
	f.Close()
	if arch == "" {
		return nil, fmt.Errorf("%s: no general.architecture in the metadata: %w", path, ErrLoad)
	}
	layers := p.GPULayers
	gpus := len(GPUs())
	if layers < 0 {
		layers = 0
		if gpus > 0 {
			layers = 999
		}
	}
	m, err := llama.LoadModelFromFile(path, llama.ModelParams{NumGpuLayers: layers, UseMmap: !p.Writable})
	if err != nil {
		return nil, fmt.Errorf("%s (architecture %q): %w", path, arch, ErrLoad)
	}
	model := &Model{m: m, path: path, arch: arch, writable: p.Writable}
	if gpus > 0 {
		// llama.cpp's rule (llama_model::load_tensors): the last
		// min(n_gpu_layers, n_layer+1) layers, the output layer counted
		// as one, go to the GPUs.
		model.offloaded = min(layers, model.Layers()+1)
	}
	return model, nil
}

// cModel extracts the C pointer, the first field of the wrapper's struct.
func (m *Model) cModel() *C.struct_llama_model {
	return *(**C.struct_llama_model)(unsafe.Pointer(m.m))
}

// Close frees the model.
func (m *Model) Close() {
	if m.m != nil {
		llama.FreeModel(m.m)
		m.m = nil
	}
}

// Path is the file the model was loaded from.
func (m *Model) Path() string { return m.path }

// Architecture is general.architecture.
func (m *Model) Architecture() string { return m.arch }

// VocabSize is the number of tokens.
func (m *Model) VocabSize() int { return m.m.NumVocab() }

// TrainContext is the context length the model was trained with.
func (m *Model) TrainContext() int { return int(C.llama_model_n_ctx_train(m.cModel())) }

// Layers is the number of transformer blocks.
func (m *Model) Layers() int { return int(C.llama_model_n_layer(m.cModel())) }

// Offloaded is the number of layers on GPUs, of OffloadableLayers.
func (m *Model) Offloaded() int { return m.offloaded }

// OffloadableLayers is the number of layers llama.cpp can offload: the
// transformer blocks and the output layer.
func (m *Model) OffloadableLayers() int { return m.Layers() + 1 }

// Params is the number of parameters.
func (m *Model) Params() uint64 { return uint64(C.llama_model_n_params(m.cModel())) }

// Description is llama.cpp's one-line summary ("llama ?B F16").
func (m *Model) Description() string {
	var buf [256]C.char
	C.llama_model_desc(m.cModel(), &buf[0], C.size_t(len(buf)))
	return C.GoString(&buf[0])
}

// AddsBOS reports whether the tokenizer prepends BOS.
func (m *Model) AddsBOS() bool { return m.m.AddBOSToken() }

// IsEOG reports whether token ends generation.
func (m *Model) IsEOG(token int) bool { return m.m.TokenIsEog(token) }

// Tokenize converts text to tokens; addBOS prepends BOS when the model
// wants one. Special-token text is not parsed.
func (m *Model) Tokenize(text string, addBOS bool) ([]int, error) {
	if text == "" {
		if addBOS && m.AddsBOS() {
			return m.m.Tokenize(" ", true, false) // llama.cpp cannot tokenize "", BOS + space is harmless
		}
		return nil, nil
	}
	return m.m.Tokenize(text, addBOS, false)
}

// TokenizeSpecial is Tokenize without BOS and with the text of special
// tokens (chat markers such as <|im_start|>) parsed into those tokens, as
// a chat template's output needs.
func (m *Model) TokenizeSpecial(text string) ([]int, error) {
	if text == "" {
		return nil, nil
	}
	return m.m.Tokenize(text, false, true)
}

// BOS is the beginning-of-sequence token.
func (m *Model) BOS() int { return int(C.llama_vocab_bos(C.llama_model_get_vocab(m.cModel()))) }

// Piece returns the bytes of one token (possibly part of a UTF-8 sequence).
func (m *Model) Piece(token int) string { return m.m.TokenToPiece(token) }

// flashAttention chooses llama.cpp's flash-attention mode. ggml-cuda's
// batched flash-attention kernels exist for head sizes 64, 80, 96, 112,
// 128, 256 (and 576); any other size reaches GGML_ABORT in fattn.cu as soon
// as a batch is offloaded to a GPU — even with every layer on the CPU,
// because large batches are offloaded by default. stories15M's heads are
// 48 wide, so for such models flash attention is off; otherwise llama.cpp
// decides ("auto").
func (m *Model) flashAttention() ml.FlashAttentionType {
	switch m.HeadDim() {
	case 0, 64, 80, 96, 112, 128, 256: // 0: unknown, llama.cpp decides
		return ml.FlashAttentionAuto
	}
	return ml.FlashAttentionDisabled
}

// HeadDim is the width of one attention head (0 if the model has no heads).
func (m *Model) HeadDim() int {
	heads := int(C.llama_model_n_head(m.cModel()))
	if heads <= 0 {
		return 0
	}
	return int(C.llama_model_n_embd(m.cModel())) / heads
}

// Context is a decoding context with its own KV cache and thread pool.
type Context struct {
	c      *llama.Context
	model  *Model
	nCtx   int
	batch  *llama.Batch
	nVocab int
}

// ContextParams size a context.
type ContextParams struct {
	Size    int // context length in tokens
	Batch   int // max tokens per Decode call (defaults to Size)
	Threads int // CPU threads (defaults to the number of CPUs)
}

// NewContext creates a context; call Close to free it.
func (m *Model) NewContext(p ContextParams) (*Context, error) {
	if p.Size <= 0 {
		return nil, fmt.Errorf("context size %d must be positive", p.Size)
	}
	if p.Batch <= 0 || p.Batch > p.Size {
		p.Batch = p.Size
	}
	if p.Threads <= 0 {
		p.Threads = runtime.NumCPU()
	}
	cp := llama.NewContextParams(p.Size, p.Batch, 1, p.Threads, m.flashAttention(), "")
	c, err := llama.NewContextWithModel(m.m, cp)
	if err != nil {
		return nil, fmt.Errorf("%s: creating a %d-token context: %w", m.path, p.Size, err)
	}
	ctx := &Context{c: c, model: m, nCtx: p.Size, nVocab: m.VocabSize()}
	C.llama_set_embeddings(ctx.cCtx(), false)
	b, err := llama.NewBatch(p.Batch, 1, 0)
	if err != nil {
		C.llama_free(ctx.cCtx())
		return nil, err
	}
	ctx.batch = b
	return ctx, nil
}

func (c *Context) cCtx() *C.struct_llama_context {
	return *(**C.struct_llama_context)(unsafe.Pointer(c.c))
}

// Close frees the context and its KV cache.
func (c *Context) Close() {
	if c.c == nil {
		return
	}
	c.batch.Free()
	C.llama_free(c.cCtx())
	c.c = nil
}

// Size is the context length.
func (c *Context) Size() int { return c.nCtx }

// BatchSize is the largest number of tokens one Decode accepts.
func (c *Context) BatchSize() int { return c.batch.Size() }

// Clear empties the KV cache.
func (c *Context) Clear() { c.c.KvCacheClear() }

// Decode evaluates tokens at positions pos, pos+1, ... and returns the
// logits of tokens[outputFrom:] as one slice of rows of VocabSize floats
// (row i = the distribution after token outputFrom+i). Logits are computed
// only for those tokens, which saves the output projection for the rest
// (for small models the largest matrix). outputFrom = len(tokens)-1 asks
// for the last token only; len(tokens) for none. The slice points into
// llama.cpp's buffer: valid until the next Decode, not to be modified.
func (c *Context) Decode(tokens []int, pos, outputFrom int) ([]float32, error) {
	if len(tokens) == 0 {
		return nil, errors.New("decode: no tokens")
	}
	if len(tokens) > c.batch.Size() {
		return nil, fmt.Errorf("decode: %d tokens exceed the batch size %d", len(tokens), c.batch.Size())
	}
	if pos < 0 || pos+len(tokens) > c.nCtx {
		return nil, fmt.Errorf("decode: positions %d..%d exceed the context size %d", pos, pos+len(tokens)-1, c.nCtx)
	}
	if outputFrom < 0 || outputFrom > len(tokens) {
		return nil, fmt.Errorf("decode: outputFrom %d outside [0, %d]", outputFrom, len(tokens))
	}
	c.batch.Clear()
	for i, t := range tokens {
		if t < 0 || t >= c.nVocab {
			return nil, fmt.Errorf("decode: token %d out of the vocabulary (%d)", t, c.nVocab)
		}
		c.batch.Add(t, nil, pos+i, i >= outputFrom, 0)
	}
	if err := c.c.Decode(c.batch); err != nil {
		return nil, fmt.Errorf("decode: %w", err)
	}
	rows := len(tokens) - outputFrom
	if rows == 0 {
		return nil, nil
	}
	p := C.llama_get_logits(c.cCtx())
	if p == nil {
		return nil, errors.New("decode: llama.cpp returned no logits")
	}
	return unsafe.Slice((*float32)(unsafe.Pointer(p)), rows*c.nVocab), nil
}

// VocabSize is the number of logits per token.
func (c *Context) VocabSize() int { return c.nVocab }

// RemoveFrom drops KV cache entries at positions ≥ pos (for reusing a
// shared prompt prefix).
func (c *Context) RemoveFrom(pos int) { c.c.KvCacheSeqRm(0, pos, -1) }
