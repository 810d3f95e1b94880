package kernels

import (
	"encoding/binary"
	"math"
)

// IEEE half precision and bfloat16, converted exactly as ggml does:
// float32 → f16 rounds to nearest even (F16C's _cvtss_sh), float32 → bf16
// rounds to nearest even and quiets NaNs (GGML_FP32_TO_BF16). Decoding is
// exact. Owned here rather than taken from a library because these loops
// are the merge engine's hot path for F16/BF16 models.

// f16Table maps every half-precision bit pattern to its float32 value.
var f16Table = func() *[1 << 16]float32 {
	var t [1 << 16]float32
	for i := range t {
		t[i] = f16ToF32Slow(uint16(i))
	}
	return &t
}()

func f16ToF32Slow(h uint16) float32 {
	sign := uint32(h>>15) << 31
	exp := uint32(h>>10) & 0x1f
	mant := uint32(h) & 0x3ff
	switch {
	case exp == 0x1f: // inf or NaN, payload kept
		return math.Float32frombits(sign | 0x7f800000 | mant<<13)
	case exp != 0: // normal
		return math.Float32frombits(sign | (exp+112)<<23 | mant<<13)
	case mant == 0:
		return math.Float32frombits(sign)
	default: // subnormal: value = mant × 2^-24
		f := float32(mant) * (1.0 / (1 << 24))
		if sign != 0 {
			f = -f
		}
		return f
	}
}

// F16ToF32 converts one half-precision value.
func F16ToF32(h uint16) float32 { return f16Table[h] }

// F32ToF16 converts one float32 to half precision, rounding to nearest
// even. Magnitudes in the normal half range take the fast path (f16Normal);
// everything else — zero, subnormal halves, overflow, infinities, NaN —
// goes to f32ToF16Rare. EncodeF16 repeats this dispatch in its loop, where
// the inlined fast path makes it 1.9× faster than calling F32ToF16.
func F32ToF16(f float32) uint16 {
	u := math.Float32bits(f)
	if !normalHalf(u) {
		return f32ToF16Rare(u)
	}
	return f16Normal(u)
}

// normalHalf reports whether the float32 bits u have a magnitude in
// [2^-14, 2^16), where half precision has normal numbers (values from
// 65520 on round to infinity, which f16Normal gets right too).
func normalHalf(u uint32) bool {
	return (u&^0x80000000)-113<<23 < (127+16-113)<<23
}

// f16Normal converts float32 bits u for which normalHalf holds: rebias the
// exponent and round with the integer bias trick — add 0xfff plus the
// lowest kept bit, then drop 13 bits; a carry into the exponent is the
// correct rounding.
func f16Normal(u uint32) uint16 {
	a := u &^ 0x80000000
	return uint16(u>>16)&0x8000 | uint16((a-(127-15)<<23+0xfff+(a>>13)&1)>>13)
}

// f32ToF16Rare converts the float32 bits u whose magnitude is outside the
// normal half range. Subnormal results let the FPU round by adding a magic
// number that aligns the ten mantissa bits at the bottom of a float (after
// F. Giesen's float_to_half_fast3_rtne).
func f32ToF16Rare(u uint32) uint16 {
	const (
		f32Infty    = 255 << 23
		f16Max      = (127 + 16) << 23
		denormMagic = ((127 - 15) + (23 - 10) + 1) << 23
	)
	sign := uint16(u>>16) & 0x8000
	u &^= 0x80000000
	switch {
	case u > f32Infty: // NaN: quiet, payload kept
		return sign | 0x7e00 | uint16((u>>13)&0x3ff)
	case u >= f16Max: // overflow or infinity
		return sign | 0x7c00
	default: // subnormal or zero half
		v := math.Float32bits(math.Float32frombits(u) + math.Float32frombits(denormMagic))
		return sign | uint16(v-denormMagic)
	}
}

// BF16ToF32 converts one bfloat16 value.
func BF16ToF32(h uint16) float32 { return math.Float32frombits(uint32(h) << 16) }

// F32ToBF16 converts one float32 to bfloat16 the way ggml does.
func F32ToBF16(f float32) uint16 {
	u := math.Float32bits(f)
	if u&0x7fffffff > 0x7f800000 {
		return uint16(u>>16) | 64 // quiet NaN
	}
	return uint16((u + (0x7fff + (u>>16)&1)) >> 16)
}

// DecodeF16 converts len(dst) half-precision values from src.
func DecodeF16(dst []float32, src []byte) {
	src = src[:2*len(dst)]
	n := simdLen(len(dst))
	if n > 0 && decodeF16AVX2(&dst[0], &src[0], n) {
		decodeF16Go(dst[:n], src) // F16C quiets signalling NaNs; the table keeps them
	}
	decodeF16Go(dst[n:], src[2*n:])
}

func decodeF16Go(dst []float32, src []byte) {
	src = src[:2*len(dst)]
	for i := range dst {
		dst[i] = f16Table[binary.LittleEndian.Uint16(src[2*i:])]
	}
}

// EncodeF16 converts src to half precision into dst (2 bytes per value).
func EncodeF16(dst []byte, src []float32) {
	dst = dst[:2*len(src)]
	n := simdLen(len(src))
	if n > 0 {
		encodeF16AVX2(&dst[0], &src[0], n)
	}
	encodeF16Go(dst[2*n:], src[n:])
}

func encodeF16Go(dst []byte, src []float32) {
	dst = dst[:2*len(src)]
	for i, f := range src {
		u := math.Float32bits(f)
		var h uint16
		if normalHalf(u) {
			h = f16Normal(u)
		} else {
			h = f32ToF16Rare(u)
		}
		binary.LittleEndian.PutUint16(dst[2*i:], h)
	}
}

// DecodeBF16 converts len(dst) bfloat16 values from src.
func DecodeBF16(dst []float32, src []byte) {
	src = src[:2*len(dst)]
	n := simdLen(len(dst))
	if n > 0 {
		decodeBF16AVX2(&dst[0], &src[0], n)
	}
	decodeBF16Go(dst[n:], src[2*n:])
}

func decodeBF16Go(dst []float32, src []byte) {
	src = src[:2*len(dst)]
	for i := range dst {
		dst[i] = math.Float32frombits(uint32(binary.LittleEndian.Uint16(src[2*i:])) << 16)
	}
}

// EncodeBF16 converts src to bfloat16 into dst.
func EncodeBF16(dst []byte, src []float32) {
	dst = dst[:2*len(src)]
	n := simdLen(len(src)) &^ 15
	if n > 0 {
		encodeBF16AVX2(&dst[0], &src[0], n)
	}
	encodeBF16Go(dst[2*n:], src[n:])
}

func encodeBF16Go(dst []byte, src []float32) {
	dst = dst[:2*len(src)]
	for i, f := range src {
		binary.LittleEndian.PutUint16(dst[2*i:], F32ToBF16(f))
	}
}

// DecodeF32 copies little-endian float32 values.
func DecodeF32(dst []float32, src []byte) {
	src = src[:4*len(dst)]
	for i := range dst {
		dst[i] = math.Float32frombits(binary.LittleEndian.Uint32(src[4*i:]))
	}
}

// EncodeF32 writes little-endian float32 values.
func EncodeF32(dst []byte, src []float32) {
	dst = dst[:4*len(src)]
	for i, f := range src {
		binary.LittleEndian.PutUint32(dst[4*i:], math.Float32bits(f))
	}
}
