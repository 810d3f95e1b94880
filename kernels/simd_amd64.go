//go:build amd64 && !purego

package kernels

import "golang.org/x/sys/cpu"

// useAVX2 selects the assembly loops of simd_amd64.s: AVX2 with F16C (every
// x86-64-v3 CPU; the operating system must save the YMM registers, which
// cpu.X86.HasAVX2 includes).
var useAVX2 = cpu.X86.HasAVX2 && cpu.X86.HasF16C

// Element-wise loops over n elements, n a multiple of 8 unless stated. The
// Go wrappers in simd.go handle the tails and the dispatch.

//go:noescape
func axpyAVX2(dst, x *float32, n int, a float32)

//go:noescape
func scaleAVX2(dst, x *float32, n int, a float32)

//go:noescape
func subAVX2(dst, x, b *float32, n int)

//go:noescape
func axpyDiffAVX2(dst, x, b *float32, n int, a float32)

//go:noescape
func addScaledAVX2(dst, b *float32, n int, a float32)

//go:noescape
func linComb2AVX2(dst, x0, x1 *float32, n int, c0, c1 float32)

//go:noescape
func keepRangeAVX2(dst *float32, n int, lo, hi int32)

//go:noescape
func rangeBitsAVX2(bits *byte, x *float32, n int, lo, hi int32) (above int)

//go:noescape
func signElectAVX2(el, s *float32, n int)

//go:noescape
func consensusAddAVX2(d, q, x, el *float32, n int, w float32)

//go:noescape
func divNonZeroAVX2(d, q *float32, n int)

//go:noescape
func nonFiniteAVX2(x *float32, n int) int

//go:noescape
func decodeF16AVX2(dst *float32, src *byte, n int) (nan bool)

//go:noescape
func encodeF16AVX2(dst *byte, src *float32, n int)

//go:noescape
func decodeBF16AVX2(dst *float32, src *byte, n int)

// n a multiple of 16.
//
//go:noescape
func encodeBF16AVX2(dst *byte, src *float32, n int)

// nb blocks of 32.
//
//go:noescape
func decodeQ8_0AVX2(dst *float32, src *byte, nb int)

//go:noescape
func encodeQ8_0AVX2(dst *byte, src *float32, nb int) (done int)

// n a multiple of 8; see softmax.go.
//
//go:noescape
func expSumAVX2(s *[8]float64, x *float32, n int, m float32)

//go:noescape
func maxAVX2(x *float32, n int) float32
