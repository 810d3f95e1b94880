package kernels

import (
	"math"
	"math/rand/v2"
	"slices"
	"sort"
	"testing"
)

func TestFractionCount(t *testing.T) {
	tests := []struct {
		f    float64
		n    int
		want int
	}{
		{0.5, 10, 5},
		{0.29, 10, 2},   // 0.29·10 = 2.9000000000000004 → 2
		{0.7, 10, 7},    // 7.000000000000001 → 7
		{0.29, 100, 28}, // 28.999999999999996 → 28, as Python's int()
		{0.01, 99, 0},   // γ·n < 1
		{0, 10, 0},
		{1, 10, 10},
		{1.5, 10, 10},
		{-0.5, 10, 0},
		{math.NaN(), 10, 0},
	}
	for _, tt := range tests {
		if got := FractionCount(tt.f, tt.n); got != tt.want {
			t.Errorf("FractionCount(%v, %d) = %d, want %d", tt.f, tt.n, got, tt.want)
		}
	}
}

// refRankDesc returns the indices of x from highest to lowest rank: larger
// |x| first, equal |x| in index order.
func refRankDesc(x []float32) []int {
	idx := make([]int, len(x))
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(a, b int) bool {
		return math.Abs(float64(x[idx[a]])) > math.Abs(float64(x[idx[b]]))
	})
	return idx
}

// refKeepRanks zeroes every entry of a copy of x whose rank (0 = highest)
// is outside [from, to).
func refKeepRanks(x []float32, from, to int) []float32 {
	out := make([]float32, len(x))
	for r, i := range refRankDesc(x) {
		if r >= from && r < to {
			out[i] = x[i]
		}
	}
	return out
}

func TestSparsifyMagnitudeHand(t *testing.T) {
	tests := []struct {
		name    string
		delta   []float32
		density float64
		want    []float32
	}{
		// k = 3: −3 and 2, then |1| = |−1| tie: the earlier (index 2) wins.
		{"tie by index", []float32{0.5, -3, 1, 2, -1, 0.1}, 0.5, []float32{0, -3, 1, 2, 0, 0}},
		// All magnitudes equal, k = 2: the first two.
		{"all equal", []float32{1, -1, 1, -1, 1}, 0.4, []float32{1, -1, 0, 0, 0}},
		// All negative, k = floor(0.6·5) = 3: −5, −4, −3.
		{"all negative", []float32{-1, -5, -3, -4, -2}, 0.6, []float32{0, -5, -3, -4, 0}},
		{"density 0", []float32{1, 2, 3}, 0, []float32{0, 0, 0}},
		{"density 1", []float32{1, -2, 3}, 1, []float32{1, -2, 3}},
		// k = floor(0.29·10) = 2 (not 3).
		{"floor", []float32{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}, 0.29, []float32{0, 0, 0, 0, 0, 0, 0, 0, 9, 10}},
		// +0 and −0 are equal magnitudes; k = 2 keeps 5 and the first zero.
		{"signed zeros", []float32{float32(math.Copysign(0, -1)), 0, 5}, 0.67, []float32{float32(math.Copysign(0, -1)), 0, 5}},
		// A zero task vector (model identical to the base) stays zero.
		{"zero vector", []float32{0, 0, 0, 0}, 0.5, []float32{0, 0, 0, 0}},
	}
	for _, tt := range tests {
		got := append([]float32(nil), tt.delta...)
		SparsifyMagnitude(got, tt.density)
		checkExact(t, tt.name, got, tt.want)
	}
}

// spreadVec draws values over many binades, with repeats, so that radix
// selection must use both of its passes and resolve ties.
func spreadVec(rng *rand.Rand, n int) []float32 {
	v := make([]float32, n)
	for i := range v {
		switch rng.IntN(4) {
		case 0: // small integers: many exact ties
			v[i] = float32(rng.IntN(9) - 4)
		case 1: // values close together: same top 15 bits
			v[i] = 1 + float32(rng.IntN(1<<12))*0x1p-20
		default:
			v[i] = float32(rng.NormFloat64() * math.Exp(rng.NormFloat64()*3))
		}
	}
	return v
}

func TestSparsifyMagnitudeRandom(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	for _, n := range []int{1, 2, 17, 1000, 50_000} {
		x := spreadVec(rng, n)
		for _, d := range []float64{0, 0.001, 0.1, 0.33, 0.5, 0.9, 0.999, 1} {
			got := append([]float32(nil), x...)
			kept := SparsifyMagnitude(got, d)
			k := int(d * float64(n))
			if kept != k {
				t.Fatalf("n=%d d=%v: kept %d, want %d", n, d, kept, k)
			}
			checkExact(t, "magnitude", got, refKeepRanks(x, 0, k))
		}
	}
}

func TestSparsifyOutliersHand(t *testing.T) {
	ten := []float32{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}
	tests := []struct {
		name           string
		delta          []float32
		density, gamma float64
		want           []float32
	}{
		// n = 10, k = 5, nTop = 2: drop 10, 9; keep 8..4; drop 3, 2, 1.
		{"basic", ten, 0.5, 0.2, []float32{0, 0, 0, 4, 5, 6, 7, 8, 0, 0}},
		// γ·n = 0.1 < 1: nTop = 0, keep the top 5 (mergekit zeroes all).
		{"gamma·n < 1", ten, 0.5, 0.01, []float32{0, 0, 0, 0, 0, 6, 7, 8, 9, 10}},
		// k + nTop = 9 + 2 > 10: nTop = 1, keep the next 9.
		{"density wins", ten, 0.9, 0.2, []float32{1, 2, 3, 4, 5, 6, 7, 8, 9, 0}},
		// Signs do not matter, ties by index: |−4| = |4|, the first ranks higher.
		// Ranks: 5, −4(idx1), 4(idx3), 3, −1; k = 2, nTop = 1 → keep −4(idx1), 4(idx3).
		{"ties", []float32{5, -4, 3, 4, -1}, 0.4, 0.2, []float32{0, -4, 0, 4, 0}},
		{"density 1", ten[:3], 1, 0.5, []float32{1, 2, 3}},
		{"density 0", ten[:3], 0, 0.5, []float32{0, 0, 0}},
	}
	for _, tt := range tests {
		got := append([]float32(nil), tt.delta...)
		SparsifyOutliers(got, tt.density, tt.gamma)
		checkExact(t, tt.name, got, tt.want)
	}
}

func TestSparsifyOutliersRandom(t *testing.T) {
	rng := rand.New(rand.NewPCG(13, 14))
	for _, n := range []int{3, 100, 40_000} {
		x := spreadVec(rng, n)
		for _, c := range [][2]float64{{0.5, 0.01}, {0.3, 0.1}, {0.9, 0.2}, {0.05, 0}, {0.7, 0.3}} {
			d, g := c[0], c[1]
			got := append([]float32(nil), x...)
			SparsifyOutliers(got, d, g)
			k := int(d * float64(n))
			nTop := min(int(g*float64(n)), n-k)
			checkExact(t, "outliers", got, refKeepRanks(x, nTop, nTop+k))
		}
	}
}

// nonzero counts the non-zero entries.
func nonzero(x []float32) int {
	c := 0
	for _, v := range x {
		if v != 0 {
			c++
		}
	}
	return c
}

// noZeros returns a random vector without zero entries.
func noZeros(rng *rand.Rand, n int) []float32 {
	x := randVec(rng, n, 1)
	for i := range x {
		if x[i] == 0 {
			x[i] = 1
		}
	}
	return x
}

func TestSparsifyRandomStatistics(t *testing.T) {
	rng := rand.New(rand.NewPCG(15, 16))
	const n = 200_000
	x := noZeros(rng, n)
	for _, d := range []float64{0.05, 0.3, 0.5, 0.9} {
		got := append([]float32(nil), x...)
		kept := SparsifyRandom(got, d, 42)
		if c := nonzero(got); c != kept {
			t.Fatalf("d=%v: returned %d kept, %d non-zero", d, kept, c)
		}
		mean, sigma := n*d, math.Sqrt(n*d*(1-d))
		if math.Abs(float64(kept)-mean) > 4*sigma {
			t.Errorf("d=%v: kept %d, want %.0f ± %.0f (4σ)", d, kept, mean, 4*sigma)
		}
		for i, v := range got {
			if v != 0 && v != x[i] {
				t.Fatalf("d=%v: kept entry %d changed: %v → %v", d, i, x[i], v)
			}
		}
	}
}

func TestSparsifyRandomMatchesContract(t *testing.T) {
	// The documented mask: entry j kept iff the j-th Float64 of
	// rand.New(rand.NewPCG(seed, pcgStream)) is below d.
	rng := rand.New(rand.NewPCG(17, 18))
	x := noZeros(rng, 5000)
	const seed, d = 1234567, 0.37
	got := append([]float32(nil), x...)
	SparsifyRandom(got, d, seed)
	oracle := rand.New(rand.NewPCG(seed, pcgStream))
	for j := range x {
		keep := oracle.Float64() < d
		if keep != (got[j] != 0) {
			t.Fatalf("entry %d: kept=%v, contract says %v", j, got[j] != 0, keep)
		}
	}
}

func TestSparsifyRandomEdges(t *testing.T) {
	x := []float32{1, -2, 3, 0.5}
	got := append([]float32(nil), x...)
	if k := SparsifyRandom(got, 1, 7); k != 4 {
		t.Errorf("d=1 kept %d", k)
	}
	checkExact(t, "d=1", got, x)
	if k := SparsifyRandom(got, 0, 7); k != 0 {
		t.Errorf("d=0 kept %d", k)
	}
	checkExact(t, "d=0", got, []float32{0, 0, 0, 0})
}

func TestSparsifyReproducible(t *testing.T) {
	rng := rand.New(rand.NewPCG(19, 20))
	x := noZeros(rng, 20_000)
	type sparsifier func(x []float32, seed uint64)
	for name, f := range map[string]sparsifier{
		"random":   func(x []float32, seed uint64) { SparsifyRandom(x, 0.5, seed) },
		"magprune": func(x []float32, seed uint64) { SparsifyMagPrune(x, 100, 0.5, 0.2, seed) },
	} {
		a := append([]float32(nil), x...)
		b := append([]float32(nil), x...)
		c := append([]float32(nil), x...)
		f(a, 99)
		f(b, 99)
		f(c, 100)
		checkExact(t, name+" same seed", a, b)
		differ := 0
		for i := range a {
			if (a[i] == 0) != (c[i] == 0) {
				differ++
			}
		}
		// Independent masks at p = 1/2 differ in about half the entries.
		if differ < len(x)/4 {
			t.Errorf("%s: seeds 99 and 100 differ in %d of %d mask entries", name, differ, len(x))
		}
	}
}

func TestSubSeed(t *testing.T) {
	type arg struct{ seed, i uint64 }
	seen := map[uint64]arg{}
	for _, s := range []uint64{0, 1, 2, 1 << 63} {
		for i := range uint64(4) {
			v := SubSeed(s, i)
			if prev, dup := seen[v]; dup {
				t.Fatalf("SubSeed(%d, %d) = SubSeed(%d, %d)", s, i, prev.seed, prev.i)
			}
			seen[v] = arg{s, i}
			if v != SubSeed(s, i) {
				t.Fatal("SubSeed is not deterministic")
			}
		}
	}
}

// refMagPruneProbs computes DELLA's keep probabilities by sorting each
// row: ascending |x|, and among equal |x| the later entry ranks lower.
func refMagPruneProbs(x []float32, rowLen int, d, eps float64) []float64 {
	p := make([]float64, len(x))
	for lo := 0; lo < len(x); lo += rowLen {
		m := min(rowLen, len(x)-lo)
		idx := make([]int, m)
		for i := range idx {
			idx[i] = lo + i
		}
		sort.Slice(idx, func(a, b int) bool {
			ma, mb := math.Abs(float64(x[idx[a]])), math.Abs(float64(x[idx[b]]))
			if ma != mb {
				return ma < mb
			}
			return idx[a] > idx[b]
		})
		for r, i := range idx {
			rn := 0.5
			if m > 1 {
				rn = float64(r) / float64(m-1)
			}
			p[i] = math.Max(0, math.Min(1, d-eps+2*eps*rn))
		}
	}
	return p
}

func TestSparsifyMagPruneHand(t *testing.T) {
	// d = 0.5, ε = 0.5: p = r/(m−1). Row (3, −1, 2): |−1| is rank 0 (p = 0,
	// always dropped), 2 rank 1 (p = ½), 3 rank 2 (p = 1, always kept).
	// Row (2, −2, 1): 1 rank 0, then the tie: −2 (later) rank 1, 2 rank 2.
	x := []float32{3, -1, 2, 2, -2, 1}
	keptMiddle := 0
	const trials = 400
	for seed := range uint64(trials) {
		got := append([]float32(nil), x...)
		SparsifyMagPrune(got, 3, 0.5, 0.5, seed)
		if got[0] != 3 || got[1] != 0 || got[3] != 2 || got[5] != 0 {
			t.Fatalf("seed %d: %v: rank-0 entries must be dropped, top entries kept", seed, got)
		}
		if got[2] != 0 {
			keptMiddle++
		}
	}
	// Binomial(400, ½): mean 200, σ = 10.
	if keptMiddle < 160 || keptMiddle > 240 {
		t.Errorf("middle entry kept %d of %d times, want 200 ± 40", keptMiddle, trials)
	}
}

func TestSparsifyMagPruneMatchesContract(t *testing.T) {
	rng := rand.New(rand.NewPCG(21, 22))
	for _, c := range []struct {
		rows, rowLen int
		d, eps       float64
	}{
		{50, 40, 0.4, 0.15},
		{10, 1, 0.3, 0.15},   // rows of one entry: p = d
		{20, 30, 0.1, 0.15},  // d − ε < 0: clamped to 0
		{20, 30, 0.95, 0.15}, // d + ε > 1: clamped to 1
		{1, 500, 0.5, 0},     // ε = 0: p = d everywhere
	} {
		x := spreadVec(rng, c.rows*c.rowLen)
		for i := range x {
			if x[i] == 0 {
				x[i] = 0.25
			}
		}
		got := append([]float32(nil), x...)
		const seed = 777
		kept := SparsifyMagPrune(got, c.rowLen, c.d, c.eps, seed)
		p := refMagPruneProbs(x, c.rowLen, c.d, c.eps)
		oracle := rand.New(rand.NewPCG(seed, pcgStream))
		for j := range x {
			keep := oracle.Float64() < p[j]
			if keep != (got[j] != 0) || (keep && got[j] != x[j]) {
				t.Fatalf("%+v entry %d (p=%v): got %v from %v, contract keeps=%v", c, j, p[j], got[j], x[j], keep)
			}
		}
		if nz := nonzero(got); nz != kept {
			t.Fatalf("%+v: returned %d kept, %d non-zero", c, kept, nz)
		}
	}
}

func TestSparsifyMagPruneStatistics(t *testing.T) {
	rng := rand.New(rand.NewPCG(23, 24))
	const rows, m = 100, 1000
	const d, eps = 0.4, 0.15
	x := noZeros(rng, rows*m)
	got := append([]float32(nil), x...)
	SparsifyMagPrune(got, m, d, eps, 5)
	// Per row, rank r has p_r = 0.25 + 0.3·r/999. Split by rank halves:
	// the expected kept counts and variances follow from p_r.
	var keptLow, keptHigh int
	var meanLow, meanHigh, varLow, varHigh float64
	for r := range m {
		p := d - eps + 2*eps*float64(r)/(m-1)
		if r < m/2 {
			meanLow += rows * p
			varLow += rows * p * (1 - p)
		} else {
			meanHigh += rows * p
			varHigh += rows * p * (1 - p)
		}
	}
	for lo := 0; lo < len(x); lo += m {
		order := refRankDesc(x[lo : lo+m]) // highest rank first
		for pos, i := range order {
			if got[lo+i] == 0 {
				continue
			}
			if pos < m/2 {
				keptHigh++
			} else {
				keptLow++
			}
		}
	}
	if math.Abs(float64(keptLow)-meanLow) > 4*math.Sqrt(varLow) {
		t.Errorf("low half: kept %d, want %.0f ± %.0f", keptLow, meanLow, 4*math.Sqrt(varLow))
	}
	if math.Abs(float64(keptHigh)-meanHigh) > 4*math.Sqrt(varHigh) {
		t.Errorf("high half: kept %d, want %.0f ± %.0f", keptHigh, meanHigh, 4*math.Sqrt(varHigh))
	}
	total, want := keptLow+keptHigh, float64(rows*m)*d
	if math.Abs(float64(total)-want) > 4*math.Sqrt(varLow+varHigh) {
		t.Errorf("kept %d, want %.0f (density %v)", total, want, d)
	}
}

func TestSparsifyMagPruneEdges(t *testing.T) {
	x := []float32{1, -2, 3, 0.5}
	got := append([]float32(nil), x...)
	SparsifyMagPrune(got, 2, 1, 0.15, 3)
	checkExact(t, "d=1", got, x)
	SparsifyMagPrune(got, 2, 0, 0.15, 3)
	checkExact(t, "d=0", got, []float32{0, 0, 0, 0})
}

func TestRescaleL1(t *testing.T) {
	rng := rand.New(rand.NewPCG(25, 26))
	x := noZeros(rng, 100_000)
	var before float64
	for _, v := range x {
		before += math.Abs(float64(v))
	}
	for _, d := range []float64{0.01, 0.3, 0.9} {
		got := append([]float32(nil), x...)
		SparsifyRandom(got, d, 8)
		if !RescaleL1(got, before) {
			t.Fatalf("d=%v: not rescaled", d)
		}
		var after float64
		for _, v := range got {
			after += math.Abs(float64(v))
		}
		if !(math.Abs(after-before) <= 1e-5*before) {
			t.Errorf("d=%v: L1 after rescale %v, want %v", d, after, before)
		}
		// The kept entries are all scaled by the same factor.
		var scale float64
		for i, v := range got {
			if v == 0 {
				continue
			}
			s := float64(v) / float64(x[i])
			if scale == 0 {
				scale = s
			}
			if !(math.Abs(s-scale) <= 1e-6*scale) {
				t.Fatalf("d=%v: entry %d scaled by %v, others by %v", d, i, s, scale)
			}
		}
	}
	// Hand: (1, 0, −1) has L1 2; target 6 scales by 3.
	v := []float32{1, 0, -1}
	RescaleL1(v, 6)
	checkExact(t, "hand", v, []float32{3, 0, -3})
	// Norms below 1e-7 are left alone (no division by ~0, no blow-up).
	tiny := []float32{1e-9, -1e-9}
	if RescaleL1(tiny, 1) {
		t.Error("rescaled a vector of L1 2e-9")
	}
	checkExact(t, "tiny", tiny, []float32{1e-9, -1e-9})
	zero := []float32{0, 0}
	if RescaleL1(zero, 1) {
		t.Error("rescaled a zero vector")
	}
	if RescaleL1(v, 5e-8) {
		t.Error("rescaled to a target below 1e-7")
	}
}

func TestL1(t *testing.T) {
	if got := L1([]float32{1, -2, 3.5}); got != 6.5 {
		t.Errorf("L1 = %v, want 6.5", got)
	}
	if got := L1(nil); got != 0 {
		t.Errorf("L1(nil) = %v", got)
	}
}

// TestCutTopAgainstSort checks the selection primitive over every r: on a
// tensor full of ties, and on one whose keys differ in every radix digit
// (magnitudes over many binades, and pairs that differ only in the lowest
// mantissa bits, with duplicates).
func TestCutTopAgainstSort(t *testing.T) {
	rng := rand.New(rand.NewPCG(27, 28))
	ties := make([]float32, 300)
	for i := range ties {
		ties[i] = float32(rng.IntN(7)-3) * 0.5
	}
	spread := make([]float32, 400)
	for i := range spread {
		switch i % 4 {
		case 0:
			spread[i] = float32(rng.NormFloat64() * math.Pow(2, float64(rng.IntN(60)-30)))
		case 1: // a near neighbour of the previous entry
			spread[i] = math.Float32frombits(math.Float32bits(spread[i-1]) ^ uint32(rng.IntN(1<<12)))
		case 2: // a duplicate, possibly negated
			spread[i] = spread[rng.IntN(i)] * float32(1-2*rng.IntN(2))
		default:
			spread[i] = float32(rng.Float64())
		}
	}
	for _, x := range [][]float32{ties, spread} {
		cutTopAgainstSort(t, x)
	}
}

func cutTopAgainstSort(t *testing.T, x []float32) {
	t.Helper()
	order := refRankDesc(x)
	for r := 0; r <= len(x); r++ {
		c := cutTop(x, r)
		var in []int
		for i, v := range x {
			if c.contains(magKey(v)) {
				in = append(in, i)
			}
		}
		want := slices.Clone(order[:r])
		slices.Sort(want)
		if !slices.Equal(in, want) {
			t.Fatalf("r=%d: cut %v, want %v", r, in, want)
		}
		// The 64-bit counters of tensors over 2^32 entries select alike.
		if 0 < r && r < len(x) {
			if wide := radixSelect(x, r, make([]uint64, 1<<14)); wide.key != c.key || wide.ties != c.ties {
				t.Fatalf("r=%d: uint64 counters give %+v, uint32 %+v", r, wide, c)
			}
		}
	}
}
