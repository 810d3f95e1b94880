package kernels

import (
	"encoding/binary"
	"math"
)

// Q8_0 stores blocks of 32 values as one f16 scale d followed by 32 int8
// quants: x ≈ d·q. Encoding follows ggml's quantize_row_q8_0_ref, which is
// what llama-quantize writes: d = max|x|/127, q = roundf(x/d).

const q8Block = 32

// DecodeQ8_0 dequantizes len(dst) values (a multiple of 32).
func DecodeQ8_0(dst []float32, src []byte) {
	nb := len(dst) / q8Block
	src = src[:nb*34]
	if useAVX2 && nb > 0 {
		decodeQ8_0AVX2(&dst[0], &src[0], nb)
		return
	}
	decodeQ8_0Go(dst, src)
}

func decodeQ8_0Go(dst []float32, src []byte) {
	nb := len(dst) / q8Block
	src = src[:nb*34]
	for b := range nb {
		blk := src[b*34 : b*34+34]
		d := F16ToF32(binary.LittleEndian.Uint16(blk))
		out := dst[b*q8Block : b*q8Block+q8Block]
		for j := range out {
			out[j] = d * float32(int8(blk[2+j]))
		}
	}
}

// EncodeQ8_0 quantizes src (a multiple of 32 values) into dst.
func EncodeQ8_0(dst []byte, src []float32) {
	nb := len(src) / q8Block
	dst = dst[:nb*34]
	if !useAVX2 {
		encodeQ8_0Go(dst, src)
		return
	}
	// The assembly stops before blocks it leaves to Go: non-finite ones,
	// and those so small that 1/d could overflow.
	for b := 0; b < nb; b++ {
		b += encodeQ8_0AVX2(&dst[b*34], &src[b*q8Block], nb-b)
		if b < nb {
			encodeQ8_0Go(dst[b*34:b*34+34], src[b*q8Block:b*q8Block+q8Block])
		}
	}
}

func encodeQ8_0Go(dst []byte, src []float32) {
	nb := len(src) / q8Block
	dst = dst[:nb*34]
	for b := range nb {
		x := src[b*q8Block : b*q8Block+q8Block]
		var amax float32
		for _, v := range x {
			amax = max(amax, float32(math.Abs(float64(v))))
		}
		d := amax / 127
		var id float32
		if d != 0 {
			id = 1 / d
		}
		blk := dst[b*34 : b*34+34]
		binary.LittleEndian.PutUint16(blk, F32ToF16(d))
		for j, v := range x {
			blk[2+j] = byte(int8(roundHalfAway(v * id)))
		}
	}
}

// roundHalfAway is C's roundf: halves round away from zero.
func roundHalfAway(v float32) float32 { return float32(math.Round(float64(v))) }
