package kernels

import "math"

// SIMD. The hot loops — F16/BF16/Q8_0 decoding and encoding, the weighted
// sums, task-vector subtraction, magnitude masking, TIES sign election and
// the log-softmax of scoring
// — have AVX2/F16C versions in Go assembly (simd_amd64.s), chosen at run
// time when the CPU has them (golang.org/x/sys/cpu) and never with the
// purego build tag; the Go loops stay as the fallback and as the reference
// the tests compare the assembly with, bit for bit.
//
// Why Go assembly rather than ggml's C row converters through cgo (engine/llm
// is the one cgo package): measured on 1M values (go test -bench, 2 cores),
// ggml_cpu_fp16_to_fp32 and ggml_cpu_fp32_to_fp16 run at 16–28 GB/s of
// float32 and these loops at 17–26 GB/s — the same, both memory bound — but
// a cgo call costs 33–43 ns, a quarter of an Axpy over the 1024-element
// blocks the merge executor streams through L1 (135–190 ns). With cgo the
// whole fused pipeline per tensor would have to be C; in Go assembly each
// kernel stays a small, separately tested step, the pure-Go packages (the
// executor, its tests, the workbench) get the speed without cgo, and no
// codec interface has to carry it. Go's own SIMD package is experimental
// (GOEXPERIMENT) and not used.
//
// The loops never use FMA: the Go loops round every product to float32
// before adding it (see interpolate.go), and the assembly does the same
// with VMULPS and VADDPS, so results do not depend on the CPU (an FMA
// would save one instruction per element in loops bound by memory).

// Dispatch between the assembly loops (simd_amd64.s, when useAVX2) and
// their Go equivalents. The assembly handles the largest multiple of 8 (or
// 16, 32) elements, Go the tail; both compute the same float32 operations
// in the same order, so results are bit-identical (NaN payloads aside:
// which of two NaN operands an addition returns is not fixed by Go either).

// simdLen is how many of n elements the assembly loops take.
func simdLen(n int) int {
	if useAVX2 {
		return n &^ 7
	}
	return 0
}

// Scale computes dst[j] = a·x[j].
func Scale(dst, x []float32, a float32) {
	x = x[:len(dst)]
	n := simdLen(len(dst))
	if n > 0 {
		scaleAVX2(&dst[0], &x[0], n, a)
	}
	for j := n; j < len(dst); j++ {
		dst[j] = float32(a * x[j])
	}
}

// NonFinite returns the index of the first NaN or infinity in x, or -1.
// (An all-ones exponent is exactly NaN or ±Inf.)
func NonFinite(x []float32) int {
	from := 0
	if n := simdLen(len(x)); n > 0 {
		from = nonFiniteAVX2(&x[0], n) // the first group of 8 with one, or n
	}
	for j := from; j < len(x); j++ {
		if math.Float32bits(x[j])&0x7f800000 == 0x7f800000 {
			return j
		}
	}
	return -1
}

// signElect sets el[j] to +1 where s[j] ≥ 0 and to −1 elsewhere (NaN too).
func signElect(el, s []float32) {
	s = s[:len(el)]
	n := simdLen(len(el))
	if n > 0 {
		signElectAVX2(&el[0], &s[0], n)
	}
	for j := n; j < len(el); j++ {
		el[j] = math.Float32frombits(one | ^maskIf(s[j] >= 0)&signBit)
	}
}

// consensusAdd adds model x's weighted entries that agree with the elected
// sign el to d, and its weight w to q there: with dv = w·x[j], where
// dv·el[j] > 0 (same sign, non-zero, not NaN) d[j] += dv and q[j] += w.
// Branch-free (maskIf): the signs are data-dependent and a branch would
// mispredict half the time.
func consensusAdd(d, q, x, el []float32, w float32) {
	q, x, el = q[:len(d)], x[:len(d)], el[:len(d)]
	n := simdLen(len(d))
	if n > 0 {
		consensusAddAVX2(&d[0], &q[0], &x[0], &el[0], n, w)
	}
	wBits := math.Float32bits(w)
	for j := n; j < len(d); j++ {
		dv := float32(w * x[j])
		in := maskIf(dv*el[j] > 0)
		d[j] += math.Float32frombits(math.Float32bits(dv) & in)
		q[j] += math.Float32frombits(wBits & in)
	}
}

// divNonZero computes d[j] /= q[j], dividing by 1 where q[j] = 0.
func divNonZero(d, q []float32) {
	q = q[:len(d)]
	n := simdLen(len(d))
	if n > 0 {
		divNonZeroAVX2(&d[0], &q[0], n)
	}
	for j := n; j < len(d); j++ {
		v := q[j]
		if v == 0 {
			v = 1
		}
		d[j] /= v
	}
}

// keepRange zeroes (to +0) the entries of x whose magnitude key is outside
// [lo, hi]. lo > hi zeroes everything.
func keepRange(x []float32, lo, hi uint32) {
	hi = min(hi, maxKey)
	if lo > hi {
		clear(x)
		return
	}
	n := simdLen(len(x))
	if n > 0 {
		keepRangeAVX2(&x[0], n, int32(lo), int32(hi))
	}
	for j := n; j < len(x); j++ {
		k := magKey(x[j])
		x[j] = keepIf(x[j], k >= lo && k <= hi)
	}
}
