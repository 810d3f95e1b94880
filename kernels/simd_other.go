//go:build !amd64 || purego

package kernels

// Without the assembly loops (other architectures, or the purego build
// tag) every kernel runs its Go loop; these stubs are never called.
const useAVX2 = false

func axpyAVX2(dst, x *float32, n int, a float32)                    {}
func scaleAVX2(dst, x *float32, n int, a float32)                   {}
func subAVX2(dst, x, b *float32, n int)                             {}
func axpyDiffAVX2(dst, x, b *float32, n int, a float32)             {}
func addScaledAVX2(dst, b *float32, n int, a float32)               {}
func linComb2AVX2(dst, x0, x1 *float32, n int, c0, c1 float32)      {}
func keepRangeAVX2(dst *float32, n int, lo, hi int32)               {}
func rangeBitsAVX2(bits *byte, x *float32, n int, lo, hi int32) int { return 0 }
func signElectAVX2(el, s *float32, n int)                           {}
func consensusAddAVX2(d, q, x, el *float32, n int, w float32)       {}
func divNonZeroAVX2(d, q *float32, n int)                           {}
func nonFiniteAVX2(x *float32, n int) int                           { return 0 }
func decodeF16AVX2(dst *float32, src *byte, n int) bool             { return false }
func encodeF16AVX2(dst *byte, src *float32, n int)                  {}
func decodeBF16AVX2(dst *float32, src *byte, n int)                 {}
func encodeBF16AVX2(dst *byte, src *float32, n int)                 {}
func decodeQ8_0AVX2(dst *float32, src *byte, nb int)                {}
func encodeQ8_0AVX2(dst *byte, src *float32, nb int) int            { return 0 }
func expSumAVX2(s *[8]float64, x *float32, n int, m float32)        {}
func maxAVX2(x *float32, n int) float32                             { return 0 }
