package kernels

import (
	"math"
	"math/rand/v2"
)

// Sparsification of task vectors δ, in place: the dropped entries are set
// to zero, the kept ones are left unchanged (see RescaleL1 for rescaling).
//
// Magnitude order. The magnitude methods rank entries by |δ| with ties
// broken by position: entry a outranks entry b when |δ_a| > |δ_b|, or
// |δ_a| = |δ_b| and a comes first in the flat tensor (lower index). This is
// a total order, so "the top k" is always exactly k entries and the result
// depends on nothing but the data. |δ| is compared through the float32 bit
// pattern with the sign cleared, which orders every non-negative float
// numerically (+0 and −0 are equal; a NaN ranks above +Inf).
//
// Counts. Like mergekit (Python's int(density * numel)), a fraction f of n
// entries means floor(f·n) computed in float64.
//
// Randomness. DARE and DELLA draw one uniform u ∈ [0, 1) per entry, in
// index order, from math/rand/v2's PCG seeded with (seed, pcgStream) —
// u is what rand.New(rand.NewPCG(seed, pcgStream)).Float64() returns —
// and the entry is kept when u < p.

// pcgStream is the second PCG seed word. It is fixed, so the mask is a
// function of the 64-bit seed alone.
const pcgStream = 0x6576_6f6d_6572_6765 // "evomerge"

// SubSeed derives the seed of stream i (model i of a tensor) from seed:
// SplitMix64's finaliser applied to seed + (i+1)·0x9e3779b97f4a7c15, so
// neighbouring seeds and indices give unrelated masks.
func SubSeed(seed, i uint64) uint64 {
	z := seed + (i+1)*0x9e3779b97f4a7c15
	z = (z ^ z>>30) * 0xbf58476d1ce4e5b9
	z = (z ^ z>>27) * 0x94d049bb133111eb
	return z ^ z>>31
}

// magKey is the sort key of |x|: its float32 bits with the sign cleared.
func magKey(x float32) uint32 { return math.Float32bits(x) &^ (1 << 31) }

// FractionCount returns floor(f·n) clamped to [0, n], the number of
// entries a fraction f of n means (density·numel, gamma·numel).
func FractionCount(f float64, n int) int {
	k := math.Floor(f * float64(n))
	switch {
	case !(k > 0): // also NaN
		return 0
	case k >= float64(n):
		return n
	}
	return int(k)
}

// A topCut describes the r entries of a tensor that rank highest in the
// magnitude order: those whose key is above key, and the first ties
// entries (in index order) whose key equals key.
type topCut struct {
	key  uint32
	ties int
	seen int // entries equal to key seen so far by contains
}

// contains reports whether the next entry in index order, of key k, is in
// the cut. It must be called once for every entry, in order.
func (c *topCut) contains(k uint32) bool {
	tie := k == c.key && c.seen < c.ties
	if tie { // rare: only entries equal to the threshold
		c.seen++
	}
	return k > c.key || tie
}

// cutTop finds the top r entries of x by radix selection on the 31-bit
// magnitude keys, a digit at a time from the top: 14 bits, 14 bits, 3
// bits. Each pass histograms the next digit of the keys that share the
// digits chosen so far and chooses the digit of the r-th largest key.
// O(n) time, no copy of x, and no allocation: the 2^14 uint32 counters
// (64 KB) live on the stack. (A 2^16-counter heap histogram saved a pass
// but made half a megabyte of garbage per model and tensor; in a TIES
// merge that kept the garbage collector's goal high enough to double the
// peak memory.) The shifts are constants: with variable shifts Go guards
// each against the type width, which slowed the passes by half.
func cutTop(x []float32, r int) topCut {
	switch {
	case r <= 0:
		return topCut{key: 1 << 31} // above every key: nothing
	case r >= len(x):
		return topCut{key: 0, ties: len(x)} // everything
	}
	if uint64(len(x)) <= math.MaxUint32 {
		var hist [1 << 14]uint32
		return radixSelect(x, r, hist[:])
	}
	return radixSelect(x, r, make([]uint64, 1<<14)) // counts could overflow uint32
}

// radixSelect is cutTop's selection for 0 < r < len(x), counting in hist
// (2^14 counters).
func radixSelect[C uint32 | uint64](x []float32, r int, hist []C) topCut {
	hist = hist[:1<<14]
	above := 0 // entries with a larger key than the candidates
	choose := func(counts []C) uint32 {
		b := len(counts) - 1
		for ; above+int(counts[b]) < r; b-- {
			above += int(counts[b])
		}
		return uint32(b)
	}
	for _, v := range x {
		hist[magKey(v)>>17]++
	}
	p := choose(hist)
	clear(hist)
	for _, v := range x {
		if k := magKey(v); k>>17 == p {
			hist[k>>3&(1<<14-1)]++
		}
	}
	p = p<<14 | choose(hist)
	clear(hist[:8])
	for _, v := range x {
		if k := magKey(v); k>>3 == p {
			hist[k&7]++
		}
	}
	p = p<<3 | choose(hist[:8])
	return topCut{key: p, ties: r - above}
}

// SparsifyMagnitude is TIES "magnitude": it keeps the k = floor(d·n)
// entries of largest |δ| over the whole tensor (ties broken by index, see
// the package comment) and zeroes the rest. d ≥ 1 keeps everything, d ≤ 0
// nothing (mergekit refuses k = 0; here the task vector is just dropped).
// It returns the number of entries kept.
func SparsifyMagnitude(delta []float32, density float64) int {
	n := len(delta)
	if density >= 1 {
		return n
	}
	k := FractionCount(density, n)
	c := cutTop(delta, k)
	for j, v := range delta {
		delta[j] = keepIf(v, c.contains(magKey(v)))
	}
	return k
}

// keepIf returns v if keep, else +0, without a branch: keep is
// data-dependent, and a mispredicted branch per entry costs more than the
// rest of the loop (the Go compiler turns maskIf into SETcc/CMOV).
func keepIf(v float32, keep bool) float32 {
	return math.Float32frombits(math.Float32bits(v) & maskIf(keep))
}

func maskIf(b bool) uint32 {
	var m uint32
	if b {
		m = ^uint32(0)
	}
	return m
}

// SparsifyOutliers is breadcrumbs "magnitude_outliers": of the n entries
// ranked by |δ|, it drops the top nTop = floor(γ·n) and keeps the next
// k = floor(d·n), dropping the bottom n − k − nTop. When k + nTop > n the
// density wins and fewer outliers are dropped (nTop = n − k), as in
// mergekit. Unlike mergekit, nTop = 0 drops no outliers (mergekit's slice
// [n_bot:-0] zeroes the whole tensor). d ≥ 1 keeps everything. It returns
// the number of entries kept (k).
func SparsifyOutliers(delta []float32, density, gamma float64) int {
	n := len(delta)
	if density >= 1 {
		return n
	}
	k := FractionCount(density, n)
	nTop := min(FractionCount(gamma, n), n-k)
	top := cutTop(delta, nTop)
	keep := cutTop(delta, nTop+k)
	for j, v := range delta {
		key := magKey(v)
		inKeep := keep.contains(key)
		inTop := top.contains(key)
		delta[j] = keepIf(v, inKeep && !inTop)
	}
	return k
}

// uniform maps 64 random bits to [0, 1) exactly as rand.Float64 does:
// the low 53 bits over 2^53.
func uniform(u uint64) float64 { return float64(u<<11>>11) / (1 << 53) }

// SparsifyRandom is DARE "random": each entry is kept independently with
// probability d (u < d, see the package comment) and zeroed otherwise.
// d ≥ 1 keeps everything without drawing. It returns the number kept.
func SparsifyRandom(delta []float32, density float64, seed uint64) int {
	if density >= 1 {
		return len(delta)
	}
	var rng rand.PCG
	rng.Seed(seed, pcgStream)
	kept := 0
	for j, v := range delta {
		keep := uniform(rng.Uint64()) < density
		delta[j] = keepIf(v, keep)
		kept += int(maskIf(keep) & 1)
	}
	return kept
}

// SparsifyMagPrune is DELLA "magprune". Each row of rowLen entries is
// ranked by |δ| within the row, rank r = 0 for the smallest up to m−1 for
// the largest (ties broken by index as in the package comment: the earlier
// entry ranks higher), and entry j is kept with probability
//
//	p_j = clamp((d − ε) + 2ε·r_j/(m−1), 0, 1)
//
// (r/(m−1) is mergekit's (rank − min)/(max − min); a row of one entry uses
// 1/2, so p = d). Unlike mergekit, d ± ε outside (0, 1) is not an error:
// the probabilities are clamped. d ≥ 1 keeps everything, d ≤ 0 nothing
// (as mergekit). It returns the number of entries kept.
func SparsifyMagPrune(delta []float32, rowLen int, density, epsilon float64, seed uint64) int {
	n := len(delta)
	switch {
	case density >= 1:
		return n
	case !(density > 0):
		clear(delta)
		return 0
	}
	rowLen = min(max(rowLen, 1), n)
	ranker := newRowRanker(rowLen)
	prob := make([]float64, rowLen)
	var rng rand.PCG
	rng.Seed(seed, pcgStream)
	kept := 0
	for lo := 0; lo < n; lo += rowLen {
		row := delta[lo:min(lo+rowLen, n)]
		m := len(row)
		for r, j := range ranker.rank(row) {
			rankNorm := 0.5
			if m > 1 {
				rankNorm = float64(r) / float64(m-1)
			}
			p := (density - epsilon) + rankNorm*2*epsilon
			prob[j] = min(max(p, 0), 1)
		}
		for j, v := range row {
			keep := uniform(rng.Uint64()) < prob[j]
			row[j] = keepIf(v, keep)
			kept += int(maskIf(keep) & 1)
		}
	}
	return kept
}

// rowRanker orders the entries of a row by rank, lowest first, with an LSD
// radix sort of the 31-bit magnitude keys: three stable passes of 11, 10
// and 10 bits, O(m) per row (a comparison sort of (key, index) pairs is
// 3-6x slower on rows of 4096: BenchmarkRankRows*). Radix passes keep
// equal keys in the order they are fed; feeding the indices from last to
// first makes the later of two equal entries rank lower.
type rowRanker struct {
	key, key2 []uint32
	idx, idx2 []uint32
	count     [1 << 11]int
}

func newRowRanker(m int) *rowRanker {
	return &rowRanker{key: make([]uint32, m), key2: make([]uint32, m), idx: make([]uint32, m), idx2: make([]uint32, m)}
}

// rank returns the indices of row from the lowest rank to the highest. The
// slice is reused by the next call.
func (r *rowRanker) rank(row []float32) []uint32 {
	m := len(row)
	key, idx := r.key[:m], r.idx[:m]
	key2, idx2 := r.key2[:m], r.idx2[:m]
	for p := range m {
		j := m - 1 - p
		key[p], idx[p] = magKey(row[j]), uint32(j)
	}
	for _, pass := range [...]struct{ shift, bits uint }{{0, 11}, {11, 10}, {21, 10}} {
		count := r.count[:1<<pass.bits]
		clear(count)
		mask := uint32(1)<<pass.bits - 1
		for _, k := range key {
			count[k>>pass.shift&mask]++
		}
		sum := 0
		for i, c := range count {
			count[i] = sum
			sum += c
		}
		for p, k := range key {
			digit := k >> pass.shift & mask
			q := count[digit]
			count[digit]++
			key2[q], idx2[q] = k, idx[p]
		}
		key, key2 = key2, key
		idx, idx2 = idx2, idx
	}
	return idx
}

// L1 returns ‖x‖₁ = Σ_j |x[j]|, accumulated in float64.
func L1(x []float32) float64 {
	var s0, s1 float64
	j := 0
	for ; j+2 <= len(x); j += 2 {
		s0 += math.Abs(float64(x[j]))
		s1 += math.Abs(float64(x[j+1]))
	}
	if j < len(x) {
		s0 += math.Abs(float64(x[j]))
	}
	return s0 + s1
}

// rescaleMin is mergekit's eps for rescaled_masked_tensor.
const rescaleMin = 1e-7

// RescaleL1 scales x by target/‖x‖₁, so that its L1 norm becomes target
// (the norm of the task vector before sparsification). It leaves x
// unchanged when target or ‖x‖₁ is below 1e-7, and reports whether it
// scaled.
func RescaleL1(x []float32, target float64) bool {
	now := L1(x)
	if target < rescaleMin || now < rescaleMin {
		return false
	}
	s := float32(target / now)
	for j := range x {
		x[j] *= s
	}
	return true
}
