package llm

/*
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

// Mirrors struct ggml_type_traits in ggml.h of the pinned llama.cpp; the
// tests check the fields against engine/gguf's independent table.
typedef void (*evm_to_float_t)(const void * x, float * y, int64_t k);
struct evm_type_traits {
    const char    *type_name;
    int64_t        blck_size;
    int64_t        blck_size_interleave;
    size_t         type_size;
    bool           is_quantized;
    evm_to_float_t to_float;
    void          *from_float_ref;
};
const struct evm_type_traits * ggml_get_type_traits(int type);
size_t ggml_quantize_chunk(int type, const float * src, void * dst, int64_t start, int64_t nrows, int64_t n_per_row, const float * imatrix);
bool   ggml_quantize_requires_imatrix(int type);

static void evm_to_float(const struct evm_type_traits *t, const void *x, float *y, int64_t k) { t->to_float(x, y, k); }
*/
import "C"

import (
	"fmt"
	"unsafe"

	"github.com/evomerge/evomerge/engine/gguf"
	"github.com/evomerge/evomerge/kernels"
)

// Codec converts every ggml type with ggml's own routines. F32, F16, BF16
// and Q8_0 go through the bit-identical pure-Go kernels.Native.
type Codec struct{ native kernels.Native }

// TypeTraits is what ggml reports about a type (used by tests).
type TypeTraits struct {
	Name       string
	BlockSize  int64
	BlockBytes uint64
	Quantized  bool
}

// Traits returns ggml's traits for t.
func Traits(t gguf.Type) TypeTraits {
	tr := C.ggml_get_type_traits(C.int(t))
	return TypeTraits{Name: C.GoString(tr.type_name), BlockSize: int64(tr.blck_size), BlockBytes: uint64(tr.type_size), Quantized: bool(tr.is_quantized)}
}

// CanDecode reports whether ggml can dequantize t.
func (c Codec) CanDecode(t gguf.Type) bool {
	if c.native.CanDecode(t) {
		return true
	}
	return t.Valid() && C.ggml_get_type_traits(C.int(t)).to_float != nil
}

// CanEncode reports whether ggml can quantize t without an importance
// matrix (the 1- and 2-bit IQ types need one; evomerge has none to give).
func (c Codec) CanEncode(t gguf.Type) bool {
	if c.native.CanEncode(t) {
		return true
	}
	if !t.Valid() || bool(C.ggml_quantize_requires_imatrix(C.int(t))) {
		return false
	}
	switch t {
	case gguf.TypeQ8_1, gguf.TypeQ8_K, gguf.TypeI8, gguf.TypeI16, gguf.TypeI32, gguf.TypeI64, gguf.TypeF64:
		return false // no quantize_chunk path: internal or integer types
	case gguf.TypeIQ2_S, gguf.TypeIQ1_M:
		return false // ggml runs them without, but llama-quantize refuses: quality is poor
	}
	return true
}

// Decode dequantizes len(dst) elements of type t.
func (c Codec) Decode(t gguf.Type, dst []float32, src []byte) error {
	if c.native.CanDecode(t) {
		return c.native.Decode(t, dst, src)
	}
	if !c.CanDecode(t) {
		return fmt.Errorf("ggml cannot dequantize %s", t)
	}
	if uint64(len(dst))%t.BlockSize() != 0 || t.RowBytes(uint64(len(dst))) != uint64(len(src)) {
		return fmt.Errorf("%s: %d elements do not match %d bytes", t, len(dst), len(src))
	}
	if len(dst) == 0 {
		return nil
	}
	C.evm_to_float(C.ggml_get_type_traits(C.int(t)), unsafe.Pointer(&src[0]), (*C.float)(unsafe.Pointer(&dst[0])), C.int64_t(len(dst)))
	return nil
}

// Encode quantizes src (rows of rowLen elements) into dst.
func (c Codec) Encode(t gguf.Type, dst []byte, src []float32, rowLen int) error {
	if c.native.CanEncode(t) {
		return c.native.Encode(t, dst, src, rowLen)
	}
	if !c.CanEncode(t) {
		return fmt.Errorf("ggml cannot quantize to %s without an importance matrix", t)
	}
	if rowLen <= 0 || len(src)%rowLen != 0 || uint64(rowLen)%t.BlockSize() != 0 {
		return fmt.Errorf("%s needs rows that are multiples of %d elements; got rows of %d", t, t.BlockSize(), rowLen)
	}
	if t.RowBytes(uint64(len(src))) != uint64(len(dst)) {
		return fmt.Errorf("%s: %d elements need %d bytes, buffer has %d", t, len(src), t.RowBytes(uint64(len(src))), len(dst))
	}
	if len(src) == 0 {
		return nil
	}
	rows := len(src) / rowLen
	n := C.ggml_quantize_chunk(C.int(t), (*C.float)(unsafe.Pointer(&src[0])), unsafe.Pointer(&dst[0]), 0, C.int64_t(rows), C.int64_t(rowLen), nil)
	if uint64(n) != uint64(len(dst)) {
		return fmt.Errorf("ggml wrote %d bytes quantizing to %s, expected %d", n, t, len(dst))
	}
	return nil
}

// quantizeChunkC calls ggml_quantize_chunk directly, bypassing the Go fast
// paths (tests compare the two).
func quantizeChunkC(t gguf.Type, dst []byte, src []float32, rowLen int) {
	C.ggml_quantize_chunk(C.int(t), (*C.float)(unsafe.Pointer(&src[0])), unsafe.Pointer(&dst[0]), 0, C.int64_t(len(src)/rowLen), C.int64_t(rowLen), nil)
}
