package kernels

import (
	"fmt"

	"github.com/evomerge/evomerge/engine/gguf"
)

// Codec converts tensor data between a ggml storage type and float32.
// Merging always works in float32: sources are decoded, merged, and the
// result encoded into the output type.
type Codec interface {
	// CanDecode and CanEncode report whether the codec handles type t.
	CanDecode(t gguf.Type) bool
	CanEncode(t gguf.Type) bool
	// Decode dequantizes len(dst) elements of type t from src.
	Decode(t gguf.Type, dst []float32, src []byte) error
	// Encode quantizes src, made of rows of rowLen elements, into dst
	// (t.RowBytes(len(src)) bytes).
	Encode(t gguf.Type, dst []byte, src []float32, rowLen int) error
}

// DecodeTensor reads tensor t of f and decodes it to float32 with codec.
func DecodeTensor(f *gguf.File, t gguf.TensorInfo, codec Codec) ([]float32, error) {
	raw, err := f.ReadTensor(t, nil)
	if err != nil {
		return nil, err
	}
	vals := make([]float32, t.Elements())
	if err := codec.Decode(t.Type, vals, raw); err != nil {
		return nil, fmt.Errorf("%s: %s: %w", f.Path, t.Name, err)
	}
	return vals, nil
}

// Native is the pure-Go codec: F32, F16, BF16 and Q8_0, bit-exact with
// ggml. engine/llm provides a codec for every other ggml type.
type Native struct{}

func (Native) CanDecode(t gguf.Type) bool { return nativeType(t) }
func (Native) CanEncode(t gguf.Type) bool { return nativeType(t) }

func nativeType(t gguf.Type) bool {
	switch t {
	case gguf.TypeF32, gguf.TypeF16, gguf.TypeBF16, gguf.TypeQ8_0:
		return true
	}
	return false
}

func (Native) Decode(t gguf.Type, dst []float32, src []byte) error {
	if err := checkSizes(t, len(dst), len(src)); err != nil {
		return err
	}
	switch t {
	case gguf.TypeF32:
		DecodeF32(dst, src)
	case gguf.TypeF16:
		DecodeF16(dst, src)
	case gguf.TypeBF16:
		DecodeBF16(dst, src)
	case gguf.TypeQ8_0:
		DecodeQ8_0(dst, src)
	default:
		return fmt.Errorf("decoding %s needs the ggml codec", t)
	}
	return nil
}

func (Native) Encode(t gguf.Type, dst []byte, src []float32, rowLen int) error {
	if err := checkSizes(t, len(src), len(dst)); err != nil {
		return err
	}
	if rowLen <= 0 || len(src)%rowLen != 0 || uint64(rowLen)%t.BlockSize() != 0 {
		return fmt.Errorf("encoding %s: row length %d does not fit %d elements in blocks of %d", t, rowLen, len(src), t.BlockSize())
	}
	switch t {
	case gguf.TypeF32:
		EncodeF32(dst, src)
	case gguf.TypeF16:
		EncodeF16(dst, src)
	case gguf.TypeBF16:
		EncodeBF16(dst, src)
	case gguf.TypeQ8_0:
		EncodeQ8_0(dst, src)
	default:
		return fmt.Errorf("encoding %s needs the ggml codec", t)
	}
	return nil
}

func checkSizes(t gguf.Type, n, nbytes int) error {
	if !t.Valid() {
		return fmt.Errorf("invalid tensor type %d", uint32(t))
	}
	if uint64(n)%t.BlockSize() != 0 {
		return fmt.Errorf("%s: %d elements are not a whole number of %d-element blocks", t, n, t.BlockSize())
	}
	if want := t.RowBytes(uint64(n)); uint64(nbytes) != want {
		return fmt.Errorf("%s: %d elements need %d bytes, buffer has %d", t, n, want, nbytes)
	}
	return nil
}
