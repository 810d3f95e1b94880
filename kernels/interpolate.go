package kernels

import "math"

// Merge arithmetic on flat float32 tensors.
//
// Conventions shared by the merge kernels (interpolate.go, sparsify.go,
// consensus.go, stock.go, sphere.go):
//   - Element-wise work is float32, as in the notes: every product is
//     rounded to float32 before it is added (an explicit float32(...)
//     conversion, which the Go spec says prevents fusing into an FMA), so
//     results are bit-identical on every GOARCH and GOAMD64 level.
//   - Reductions (dot products, norms, L1 sums) accumulate in float64 with
//     a fixed summation order, so they are deterministic and accurate on
//     tensors of 10^8 elements.
//   - Slices passed together must have the same length; dst may alias an
//     input only where a function says so.

// blockLen is the number of elements the multi-input loops process at a
// time: a block of every input (a few models) stays in L1 while it is
// worked on, so each input is streamed from memory once.
const blockLen = 1024

// Axpy computes dst[j] += a·x[j].
func Axpy(dst, x []float32, a float32) {
	x = x[:len(dst)]
	n := simdLen(len(dst))
	if n > 0 {
		axpyAVX2(&dst[0], &x[0], n, a)
	}
	for j := n; j < len(dst); j++ {
		dst[j] += float32(a * x[j])
	}
}

// AxpyDiff computes dst[j] += a·(x[j] − base[j]).
func AxpyDiff(dst, x, base []float32, a float32) {
	x, base = x[:len(dst)], base[:len(dst)]
	n := simdLen(len(dst))
	if n > 0 {
		axpyDiffAVX2(&dst[0], &x[0], &base[0], n, a)
	}
	for j := n; j < len(dst); j++ {
		dst[j] += float32(a * (x[j] - base[j]))
	}
}

// Sub computes dst[j] = x[j] − base[j] (the task vector δ = x − B).
func Sub(dst, x, base []float32) {
	x, base = x[:len(dst)], base[:len(dst)]
	n := simdLen(len(dst))
	if n > 0 {
		subAVX2(&dst[0], &x[0], &base[0], n)
	}
	for j := n; j < len(dst); j++ {
		dst[j] = x[j] - base[j]
	}
}

// AddScaled computes dst[j] = base[j] + a·dst[j].
func AddScaled(dst, base []float32, a float32) {
	base = base[:len(dst)]
	n := simdLen(len(dst))
	if n > 0 {
		addScaledAVX2(&dst[0], &base[0], n, a)
	}
	for j := n; j < len(dst); j++ {
		dst[j] = base[j] + float32(a*dst[j])
	}
}

// LinComb2 computes dst[j] = c0·x0[j] + c1·x1[j]. dst may alias x0 or x1.
func LinComb2(dst, x0, x1 []float32, c0, c1 float32) {
	x0, x1 = x0[:len(dst)], x1[:len(dst)]
	n := simdLen(len(dst))
	if n > 0 {
		linComb2AVX2(&dst[0], &x0[0], &x1[0], n, c0, c1)
	}
	for j := n; j < len(dst); j++ {
		dst[j] = float32(c0*x0[j]) + float32(c1*x1[j])
	}
}

// Lerp computes dst[j] = (1−t)·x0[j] + t·x1[j].
func Lerp(dst, x0, x1 []float32, t float64) {
	LinComb2(dst, x0, x1, float32(1-t), float32(t))
}

// WeightedSum computes dst[j] = Σ_i w[i]·xs[i][j], adding the terms in
// model order. With no inputs dst is zeroed.
func WeightedSum(dst []float32, xs [][]float32, w []float32) {
	if len(xs) == 0 {
		clear(dst)
		return
	}
	for lo := 0; lo < len(dst); lo += blockLen {
		hi := min(lo+blockLen, len(dst))
		d := dst[lo:hi]
		Scale(d, xs[0][lo:hi], w[0])
		for i := 1; i < len(xs); i++ {
			Axpy(d, xs[i][lo:hi], w[i])
		}
	}
}

// Dot returns Σ_j a[j]·b[j], accumulated in float64.
func Dot(a, b []float32) float64 {
	b = b[:len(a)]
	var s0, s1, s2, s3 float64
	j := 0
	for ; j+4 <= len(a); j += 4 {
		s0 += float64(a[j]) * float64(b[j])
		s1 += float64(a[j+1]) * float64(b[j+1])
		s2 += float64(a[j+2]) * float64(b[j+2])
		s3 += float64(a[j+3]) * float64(b[j+3])
	}
	for ; j < len(a); j++ {
		s0 += float64(a[j]) * float64(b[j])
	}
	return (s0 + s1) + (s2 + s3)
}

// Norm returns the Euclidean norm ‖a‖ = √(Σ_j a[j]²), accumulated in float64.
func Norm(a []float32) float64 { return math.Sqrt(Dot(a, a)) }

// Slerp thresholds, as in mergekit's slerp: vectors whose norm is at most
// slerpNormEps are used unnormalised; above slerpDotMax the directions are
// treated as colinear and the tensors are interpolated linearly.
const (
	slerpNormEps = 1e-8
	slerpDotMax  = 0.9995
)

// SlerpCoefficients returns c0, c1 with slerp(t; v0, v1) = c0·v0 + c1·v1,
// given dot = v0·v1, nn0 = ‖v0‖² and nn1 = ‖v1‖²:
//
//	n_k = v_k/‖v_k‖ (v_k itself when ‖v_k‖ ≤ 1e-8), d = n0·n1
//	|d| > 0.9995: c0 = 1−t, c1 = t (lerp on the unnormalised tensors)
//	otherwise:    θ = acos d, c0 = sin(θ − tθ)/sin θ, c1 = sin(tθ)/sin θ
//
// t = 0 gives exactly (1, 0) and t = 1 exactly (0, 1).
func SlerpCoefficients(dot, nn0, nn1, t float64) (c0, c1 float64) {
	d := dot
	if n := math.Sqrt(nn0); n > slerpNormEps {
		d /= n
	}
	if n := math.Sqrt(nn1); n > slerpNormEps {
		d /= n
	}
	if math.Abs(d) > slerpDotMax {
		return 1 - t, t
	}
	theta := math.Acos(d)
	sin := math.Sin(theta)
	thetaT := theta * t
	return math.Sin(theta-thetaT) / sin, math.Sin(thetaT) / sin
}

// Slerp writes the spherical linear interpolation of the flattened tensors
// v0 (t = 0) and v1 (t = 1) to dst: dst = c0·v0 + c1·v1 with the
// coefficients of SlerpCoefficients. dst may alias v0 or v1.
func Slerp(dst, v0, v1 []float32, t float64) {
	c0, c1 := SlerpCoefficients(Dot(v0, v1), Dot(v0, v0), Dot(v1, v1), t)
	LinComb2(dst, v0, v1, float32(c0), float32(c1))
}

// NuSlerp thresholds, as in mergekit's nuslerp: norms are clamped below at
// nuslerpNormMin before normalising, and where |sin θ| < nuslerpSinMin the
// vectors are interpolated linearly.
const (
	nuslerpNormMin = 1e-7
	nuslerpSinMin  = 1e-8
)

// NuSlerpCoefficients returns c0, c1 with nuslerp(t; v0, v1) = c0·v0 + c1·v1,
// given dot = v0·v1, nn0 = ‖v0‖² and nn1 = ‖v1‖²:
//
//	cos θ = clamp(dot / (max(‖v0‖, 1e-7)·max(‖v1‖, 1e-7)), −1, 1)
//	|sin θ| < 1e-8: c0 = 1−t, c1 = t
//	otherwise:      c0 = sin((1−t)θ)/sin θ, c1 = sin(tθ)/sin θ
//
// A zero vector has cos θ = 0, so θ = π/2.
func NuSlerpCoefficients(dot, nn0, nn1, t float64) (c0, c1 float64) {
	n0 := max(math.Sqrt(nn0), nuslerpNormMin)
	n1 := max(math.Sqrt(nn1), nuslerpNormMin)
	cos := min(max(dot/(n0*n1), -1), 1)
	theta := math.Acos(cos)
	sin := math.Sin(theta)
	if math.Abs(sin) < nuslerpSinMin {
		return 1 - t, t
	}
	return math.Sin((1-t)*theta) / sin, math.Sin(t*theta) / sin
}

// NuSlerp interpolates the flattened tensors v0 and v1 as one vector each:
// dst = c0·v0 + c1·v1 with the coefficients of NuSlerpCoefficients.
// dst may alias v0 or v1.
func NuSlerp(dst, v0, v1 []float32, t float64) {
	c0, c1 := NuSlerpCoefficients(Dot(v0, v1), Dot(v0, v0), Dot(v1, v1), t)
	LinComb2(dst, v0, v1, float32(c0), float32(c1))
}

// NuSlerpRows interpolates each contiguous row of rowLen elements on its
// own, as NuSlerp does for a whole tensor. dst may alias v0 or v1.
func NuSlerpRows(dst, v0, v1 []float32, rowLen int, t float64) {
	for lo := 0; lo+rowLen <= len(dst); lo += rowLen {
		hi := lo + rowLen
		NuSlerp(dst[lo:hi], v0[lo:hi], v1[lo:hi], t)
	}
}

// NuSlerpColumns interpolates each column on its own: the tensor is read
// as rows of rowLen elements and column c is the vector of elements
// {r·rowLen + c}. dst may alias v0 or v1.
func NuSlerpColumns(dst, v0, v1 []float32, rowLen int, t float64) {
	dot := make([]float64, rowLen)
	nn0 := make([]float64, rowLen)
	nn1 := make([]float64, rowLen)
	rows := len(dst) / rowLen
	for r := range rows {
		a, b := v0[r*rowLen:(r+1)*rowLen], v1[r*rowLen:(r+1)*rowLen]
		for c, x := range a {
			y := float64(b[c])
			dot[c] += float64(x) * y
			nn0[c] += float64(x) * float64(x)
			nn1[c] += y * y
		}
	}
	c0 := make([]float32, rowLen)
	c1 := make([]float32, rowLen)
	for c := range rowLen {
		k0, k1 := NuSlerpCoefficients(dot[c], nn0[c], nn1[c], t)
		c0[c], c1[c] = float32(k0), float32(k1)
	}
	for r := range rows {
		d := dst[r*rowLen : (r+1)*rowLen]
		a, b := v0[r*rowLen:(r+1)*rowLen], v1[r*rowLen:(r+1)*rowLen]
		for c := range d {
			d[c] = float32(c0[c]*a[c]) + float32(c1[c]*b[c])
		}
	}
}
