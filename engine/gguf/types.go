package gguf

import (
	"fmt"
	"strings"
)

// Type is a ggml tensor element type, numbered as in ggml.h's enum ggml_type.
type Type uint32

// The ggml tensor types. Gaps in the numbering (4, 5, 31–33, 36–38) are
// types that ggml removed; files using them are rejected.
const (
	TypeF32     Type = 0
	TypeF16     Type = 1
	TypeQ4_0    Type = 2
	TypeQ4_1    Type = 3
	TypeQ5_0    Type = 6
	TypeQ5_1    Type = 7
	TypeQ8_0    Type = 8
	TypeQ8_1    Type = 9
	TypeQ2_K    Type = 10
	TypeQ3_K    Type = 11
	TypeQ4_K    Type = 12
	TypeQ5_K    Type = 13
	TypeQ6_K    Type = 14
	TypeQ8_K    Type = 15
	TypeIQ2_XXS Type = 16
	TypeIQ2_XS  Type = 17
	TypeIQ3_XXS Type = 18
	TypeIQ1_S   Type = 19
	TypeIQ4_NL  Type = 20
	TypeIQ3_S   Type = 21
	TypeIQ2_S   Type = 22
	TypeIQ4_XS  Type = 23
	TypeI8      Type = 24
	TypeI16     Type = 25
	TypeI32     Type = 26
	TypeI64     Type = 27
	TypeF64     Type = 28
	TypeIQ1_M   Type = 29
	TypeBF16    Type = 30
	TypeTQ1_0   Type = 34
	TypeTQ2_0   Type = 35
	TypeMXFP4   Type = 39
)

// typeTraits holds the storage layout of one type: a row of n elements
// (n a multiple of BlockSize) takes n/BlockSize*BlockBytes bytes.
type typeTraits struct {
	name       string
	blockSize  uint64 // elements per block
	blockBytes uint64 // bytes per block
	quantized  bool
}

// traits mirrors ggml's type_traits table (ggml.c) for every type a GGUF
// file may hold. engine/llm's tests check it against ggml itself.
var traits = map[Type]typeTraits{
	TypeF32:     {"F32", 1, 4, false},
	TypeF16:     {"F16", 1, 2, false},
	TypeQ4_0:    {"Q4_0", 32, 18, true},
	TypeQ4_1:    {"Q4_1", 32, 20, true},
	TypeQ5_0:    {"Q5_0", 32, 22, true},
	TypeQ5_1:    {"Q5_1", 32, 24, true},
	TypeQ8_0:    {"Q8_0", 32, 34, true},
	TypeQ8_1:    {"Q8_1", 32, 36, true},
	TypeQ2_K:    {"Q2_K", 256, 84, true},
	TypeQ3_K:    {"Q3_K", 256, 110, true},
	TypeQ4_K:    {"Q4_K", 256, 144, true},
	TypeQ5_K:    {"Q5_K", 256, 176, true},
	TypeQ6_K:    {"Q6_K", 256, 210, true},
	TypeQ8_K:    {"Q8_K", 256, 292, true},
	TypeIQ2_XXS: {"IQ2_XXS", 256, 66, true},
	TypeIQ2_XS:  {"IQ2_XS", 256, 74, true},
	TypeIQ3_XXS: {"IQ3_XXS", 256, 98, true},
	TypeIQ1_S:   {"IQ1_S", 256, 50, true},
	TypeIQ4_NL:  {"IQ4_NL", 32, 18, true},
	TypeIQ3_S:   {"IQ3_S", 256, 110, true},
	TypeIQ2_S:   {"IQ2_S", 256, 82, true},
	TypeIQ4_XS:  {"IQ4_XS", 256, 136, true},
	TypeI8:      {"I8", 1, 1, false},
	TypeI16:     {"I16", 1, 2, false},
	TypeI32:     {"I32", 1, 4, false},
	TypeI64:     {"I64", 1, 8, false},
	TypeF64:     {"F64", 1, 8, false},
	TypeIQ1_M:   {"IQ1_M", 256, 56, true},
	TypeBF16:    {"BF16", 1, 2, false},
	TypeTQ1_0:   {"TQ1_0", 256, 54, true},
	TypeTQ2_0:   {"TQ2_0", 256, 66, true},
	TypeMXFP4:   {"MXFP4", 32, 17, true},
}

// Valid reports whether t is a type ggml can store in a GGUF file.
func (t Type) Valid() bool { _, ok := traits[t]; return ok }

// String returns ggml's name for the type ("F16", "Q4_K", ...).
func (t Type) String() string {
	if tr, ok := traits[t]; ok {
		return tr.name
	}
	return fmt.Sprintf("type(%d)", uint32(t))
}

// BlockSize is the number of elements one block of t encodes.
func (t Type) BlockSize() uint64 { return traits[t].blockSize }

// BlockBytes is the size in bytes of one block of t.
func (t Type) BlockBytes() uint64 { return traits[t].blockBytes }

// Quantized reports whether t is a block-quantized type.
func (t Type) Quantized() bool { return traits[t].quantized }

// RowBytes is the storage size of n consecutive elements of type t; n must
// be a multiple of t.BlockSize().
func (t Type) RowBytes(n uint64) uint64 {
	tr := traits[t]
	if tr.blockSize == 0 {
		return 0
	}
	return n / tr.blockSize * tr.blockBytes
}

// ParseType maps a type name (case-insensitive: "f16", "Q4_K", "q8_0") to its Type.
func ParseType(name string) (Type, error) {
	for t, tr := range traits {
		if strings.EqualFold(tr.name, name) {
			return t, nil
		}
	}
	return 0, fmt.Errorf("unknown tensor type %q", name)
}

// Types lists every valid type in numeric order.
func Types() []Type {
	out := make([]Type, 0, len(traits))
	for t := Type(0); t < 64; t++ {
		if t.Valid() {
			out = append(out, t)
		}
	}
	return out
}
