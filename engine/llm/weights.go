package llm

/*
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct llama_model;
struct ggml_tensor;
struct ggml_backend_buffer;
struct ggml_backend_buffer_type;

// The leading fields of struct ggml_tensor in ggml.h of the pinned
// llama.cpp (type, buffer, ne, nb); the tests check them against ggml's
// own accessors and the GGUF header the model was loaded from.
struct evm_tensor_head {
    int32_t                      type;
    struct ggml_backend_buffer * buffer;
    int64_t                      ne[4];
    size_t                       nb[4];
};

int64_t             evm_tensor_count(const struct llama_model * model);
struct ggml_tensor *evm_tensor_at(const struct llama_model * model, int64_t i, const char ** name);

size_t  ggml_nbytes(const struct ggml_tensor * tensor);
int64_t ggml_nelements(const struct ggml_tensor * tensor);
int     ggml_n_dims(const struct ggml_tensor * tensor);
void    ggml_backend_tensor_set(struct ggml_tensor * tensor, const void * data, size_t offset, size_t size);
void    ggml_backend_tensor_get(const struct ggml_tensor * tensor, void * data, size_t offset, size_t size);
struct ggml_backend_buffer_type *ggml_backend_buffer_get_type(struct ggml_backend_buffer * buffer);
const char *ggml_backend_buft_name(struct ggml_backend_buffer_type * buft);

static const struct evm_tensor_head *evm_head(const struct ggml_tensor *t) { return (const struct evm_tensor_head *) t; }
*/
import "C"

import (
	"errors"
	"fmt"
	"unsafe"

	"github.com/evomerge/evomerge/engine/gguf"
)

// Weight is one weight tensor of a loaded model as llama.cpp holds it:
// the model's tensor map, in llama.cpp's order. A tensor llama.cpp
// duplicates (a tied output projection placed on another device) appears
// once per copy, under the same name.
type Weight struct {
	Name   string
	Type   gguf.Type
	Shape  []uint64 // elements per dimension, innermost first, as GGUF stores them
	Bytes  int
	Buffer string // the buffer type holding it: "CPU", "CUDA0", "CPU_REPACK", ...
	t      *C.struct_ggml_tensor
}

// Buffers that llama.cpp fills by converting what it is given (weights
// repacked for the CPU's matrix kernels): they accept whole-tensor writes
// of the GGUF bytes but cannot be read back.
var writeOnlyBuffers = map[string]bool{"CPU_REPACK": true, "AMX": true}

// ErrNotWritable marks a model whose weights cannot be overwritten: it was
// loaded with its file memory-mapped (read-only pages).
var ErrNotWritable = errors.New("the model's weights are memory-mapped from its file; load it with Writable to overwrite them")

// Weights lists the model's weight tensors.
func (m *Model) Weights() ([]Weight, error) {
	if m.m == nil {
		return nil, errors.New("weights of a closed model")
	}
	cm := m.cModel()
	n := int64(C.evm_tensor_count(cm))
	out := make([]Weight, 0, n)
	for i := range n {
		var name *C.char
		t := C.evm_tensor_at(cm, C.int64_t(i), &name)
		if t == nil || name == nil {
			return nil, fmt.Errorf("%s: tensor map entry %d is empty", m.path, i)
		}
		h := C.evm_head(t)
		w := Weight{Name: C.GoString(name), Type: gguf.Type(h._type), Bytes: int(C.ggml_nbytes(t)), t: t}
		for d := range int(C.ggml_n_dims(t)) {
			w.Shape = append(w.Shape, uint64(h.ne[d]))
		}
		if h.buffer == nil {
			return nil, fmt.Errorf("%s: tensor %s has no buffer (not loaded)", m.path, w.Name)
		}
		w.Buffer = C.GoString(C.ggml_backend_buft_name(C.ggml_backend_buffer_get_type(h.buffer)))
		out = append(out, w)
	}
	return out, nil
}

// SetWeight overwrites a weight with data, which must be the whole tensor
// in its GGUF encoding (what a file of the model would hold). The backend
// copies it where the weight lives: a memcpy on the CPU, an upload to a
// GPU, a repack for buffers that convert. It must not run while a context
// of the model decodes.
func (m *Model) SetWeight(w Weight, data []byte) error {
	if m.m == nil {
		return errors.New("setting a weight of a closed model")
	}
	if !m.writable {
		return fmt.Errorf("%s: %w", m.path, ErrNotWritable)
	}
	if len(data) != w.Bytes || w.t == nil {
		return fmt.Errorf("%s: tensor %s holds %d bytes, got %d", m.path, w.Name, w.Bytes, len(data))
	}
	if len(data) == 0 {
		return nil
	}
	C.ggml_backend_tensor_set(w.t, unsafe.Pointer(&data[0]), 0, C.size_t(len(data)))
	return nil
}

// GetWeight reads a weight's bytes back into dst (len = w.Bytes).
func (m *Model) GetWeight(w Weight, dst []byte) error {
	if m.m == nil {
		return errors.New("reading a weight of a closed model")
	}
	if writeOnlyBuffers[w.Buffer] {
		return fmt.Errorf("%s: tensor %s lives in a %s buffer, which cannot be read back", m.path, w.Name, w.Buffer)
	}
	if len(dst) != w.Bytes || w.t == nil {
		return fmt.Errorf("%s: tensor %s holds %d bytes, buffer has %d", m.path, w.Name, w.Bytes, len(dst))
	}
	if len(dst) == 0 {
		return nil
	}
	C.ggml_backend_tensor_get(w.t, unsafe.Pointer(&dst[0]), 0, C.size_t(len(dst)))
	return nil
}

// elements is ggml's element count of the weight (for tests).
func (w Weight) elements() int64 { return int64(C.ggml_nelements(w.t)) }
