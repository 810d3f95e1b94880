package kernels

import (
	"math"
	"math/rand/v2"
	"testing"
)

// streamCut finds the cut of the r top-ranked entries of x the way the
// executor does, in pieces of at most piece entries: a key range from the
// profile, CollectRange, Holds, SelectCut. ok is false when the range
// misses rank r (possible only for a sampled profile).
func streamCut(x []float32, r, piece int, prof *MagProfile, margin float64) (c Cut, ok bool) {
	switch {
	case r <= 0:
		return CutNone, true
	case r >= len(x):
		return CutAll, true
	}
	lo, hi := prof.Range(r, len(x), margin)
	var keys []uint32
	var idx []int
	above := 0
	for off := 0; off < len(x); off += piece {
		var a int
		keys, idx, a = CollectRange(keys, idx, x[off:min(off+piece, len(x))], off, lo, hi)
		above += a
	}
	if !Holds(len(keys), r, above) {
		return Cut{}, false
	}
	return SelectCut(keys, idx, r, above), true
}

// exactCut is streamCut with a whole-tensor profile, which always holds.
func exactCut(t *testing.T, x []float32, r, piece int, prof *MagProfile) Cut {
	t.Helper()
	c, ok := streamCut(x, r, piece, prof, 0)
	if !ok {
		t.Fatalf("r=%d: the range of a whole-tensor profile misses the rank", r)
	}
	return c
}

func profileOf(x []float32, piece int) *MagProfile {
	var h MagHistogram
	for off := 0; off < len(x); off += piece {
		var part MagHistogram
		part.Add(x[off:min(off+piece, len(x))])
		h.Merge(&part)
	}
	return h.Profile()
}

// keepStreamed applies a cut piece by piece, as the executor's blocks do.
func keepStreamed(x []float32, piece int, keep, top Cut) []float32 {
	out := append([]float32(nil), x...)
	for off := 0; off < len(out); off += piece {
		KeepBand(out[off:min(off+piece, len(out))], off, keep, top)
	}
	return out
}

func magnitudeTestVectors(rng *rand.Rand) map[string][]float32 {
	n := 3000
	ties := make([]float32, n)
	for i := range ties {
		ties[i] = float32(rng.IntN(7)-3) * 0.5 // a few values, each thousands of times, ±, and zeros
	}
	negZero := make([]float32, n)
	for i := range negZero {
		if rng.IntN(3) == 0 {
			negZero[i] = float32(math.Copysign(0, -1))
		} else {
			negZero[i] = float32(rng.NormFloat64())
		}
	}
	spread := make([]float32, n)
	for i := range spread {
		spread[i] = float32(rng.NormFloat64() * math.Pow(2, float64(rng.IntN(40)-20)))
	}
	oneBucket := make([]float32, n) // every key in one bucket: the collection is the tensor
	for i := range oneBucket {
		oneBucket[i] = math.Float32frombits(0x3f800000 | rng.Uint32N(1<<17))
	}
	return map[string][]float32{"ties": ties, "negzero": negZero, "spread": spread,
		"onebucket": oneBucket, "normal": randVec(rng, 4099, 0.02), "odd": randVec(rng, 37, 1)}
}

// TestStreamedCutMatchesSparsify: for every r, the streamed cut keeps
// exactly what SparsifyMagnitude keeps (bit for bit, zeros' signs too), and
// bands of two cuts what SparsifyOutliers keeps.
func TestStreamedCutMatchesSparsify(t *testing.T) {
	rng := rand.New(rand.NewPCG(61, 62))
	for name, x := range magnitudeTestVectors(rng) {
		n := len(x)
		for _, piece := range []int{1024, 333, n} {
			prof := profileOf(x, piece)
			if prof.N != n {
				t.Fatalf("%s: profile counts %d entries, want %d", name, prof.N, n)
			}
			step := max(1, n/97)
			for r := 0; r <= n; r += step {
				c := exactCut(t, x, r, piece, prof)
				got := keepStreamed(x, piece, c, CutNone)
				want := append([]float32(nil), x...)
				k := SparsifyMagnitudeCount(want, r)
				if k != r {
					t.Fatalf("%s: SparsifyMagnitudeCount kept %d, want %d", name, k, r)
				}
				checkExact(t, name+" magnitude", got, want)
				// breadcrumbs: drop the top nTop, keep the next r − nTop.
				nTop := r / 3
				top := exactCut(t, x, nTop, piece, prof)
				got = keepStreamed(x, piece, c, top)
				want = append([]float32(nil), x...)
				keepRanksOutliers(want, r-nTop, nTop)
				checkExact(t, name+" outliers", got, want)
			}
		}
	}
}

// SparsifyMagnitudeCount is SparsifyMagnitude with a count instead of a
// density (test helper).
func SparsifyMagnitudeCount(delta []float32, k int) int {
	if k >= len(delta) {
		return len(delta)
	}
	c := cutTop(delta, k)
	for j, v := range delta {
		delta[j] = keepIf(v, c.contains(magKey(v)))
	}
	return k
}

// keepRanksOutliers is SparsifyOutliers' selection with counts: drop the
// top nTop entries, keep the next k.
func keepRanksOutliers(delta []float32, k, nTop int) {
	top := cutTop(delta, nTop)
	keep := cutTop(delta, nTop+k)
	for j, v := range delta {
		key := magKey(v)
		inKeep := keep.contains(key)
		inTop := top.contains(key)
		delta[j] = keepIf(v, inKeep && !inTop)
	}
}

func TestCutEdges(t *testing.T) {
	x := []float32{1, -2, 0, 3, float32(math.Copysign(0, -1)), 2}
	for _, tt := range []struct {
		keep, top Cut
		want      []float32
	}{
		{CutAll, CutNone, x},
		{CutNone, CutNone, []float32{0, 0, 0, 0, 0, 0}},
		{CutAll, CutAll, []float32{0, 0, 0, 0, 0, 0}},
		{Cut{Key: magKey(2), Last: 1}, CutNone, []float32{0, -2, 0, 3, 0, 0}}, // the first 2 only
		{Cut{Key: magKey(2), Last: 5}, Cut{Key: magKey(3), Last: 3}, []float32{0, -2, 0, 0, 0, 2}},
	} {
		got := keepStreamed(x, 4, tt.keep, tt.top)
		checkExact(t, "KeepBand", got, tt.want)
	}
}

func TestMagProfileLocate(t *testing.T) {
	// keys in three buckets: 5 entries of 4.0, 3 of 1.0, 2 of 0.25.
	x := []float32{4, 1, 0.25, 4, -4, 1, 4, -0.25, 1, 4}
	prof := profileOf(x, len(x))
	for _, tt := range []struct {
		lo, hi float32
		want   int
	}{{4, 4, 5}, {1, 4, 8}, {0.25, 4, 10}, {0.25, 0.25, 2}, {0, 0.1, 0}, {8, 100, 0}} {
		blo := magKey(tt.lo) &^ (1<<digitShift - 1)
		bhi := magKey(tt.hi) | (1<<digitShift - 1)
		if got := prof.Count(blo, bhi, len(x)); got != tt.want {
			t.Errorf("Count of the buckets [%v, %v] = %d, want %d", tt.lo, tt.hi, got, tt.want)
		}
		if got := prof.Count(blo, bhi, 2*len(x)); got != 2*tt.want {
			t.Errorf("Count scaled to twice the entries = %d, want %d", got, 2*tt.want)
		}
	}
	for _, tt := range []struct {
		r, above int
		key      float32
	}{{1, 0, 4}, {5, 0, 4}, {6, 5, 1}, {8, 5, 1}, {9, 8, 0.25}, {10, 8, 0.25}} {
		lo, hi, above := prof.Locate(tt.r)
		if k := magKey(tt.key); k < lo || k > hi || above != tt.above {
			t.Errorf("Locate(%d) = [%#x, %#x] above %d, want the bucket of %v above %d", tt.r, lo, hi, above, tt.key, tt.above)
		}
	}
}

func FuzzStreamedCut(f *testing.F) {
	f.Add([]byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 0, 0, 0x80, 0x3f}, uint16(2), uint16(5))
	f.Fuzz(func(t *testing.T, raw []byte, r, piece uint16) {
		x := make([]float32, len(raw)/2)
		DecodeF16(x, raw[:2*len(x)]) // half values tie often
		for i, v := range x {
			if v != v { // NaN keys rank above +Inf; keep the data finite like a merge's
				x[i] = 0
			}
		}
		if len(x) == 0 {
			return
		}
		p := int(piece)%len(x) + 1
		k := int(r) % (len(x) + 1)
		c, ok := streamCut(x, k, p, profileOf(x, p), 0)
		if !ok {
			t.Fatalf("k=%d: the range of a whole-tensor profile misses the rank", k)
		}
		got := keepStreamed(x, p, c, CutNone)
		want := append([]float32(nil), x...)
		SparsifyMagnitudeCount(want, k)
		checkExact(t, "streamed cut", got, want)
	})
}

// TestSampledRange: a profile of a sample gives ranges that, with a margin,
// hold the rank on data like a model's; whenever Holds says so, the cut is
// exact; and a sample of the wrong part of a tensor is caught by Holds.
func TestSampledRange(t *testing.T) {
	rng := rand.New(rand.NewPCG(63, 64))
	x := randVec(rng, 1<<16, 0.01)
	var h MagHistogram
	for off := 0; off < len(x); off += 8192 { // every other 4096 entries
		h.Add(x[off : off+4096])
	}
	prof := h.Profile()
	held := 0
	for r := 1; r < len(x); r += 997 {
		c, ok := streamCut(x, r, 1000, prof, 0.01)
		if !ok {
			continue
		}
		held++
		got := keepStreamed(x, 1000, c, CutNone)
		want := append([]float32(nil), x...)
		SparsifyMagnitudeCount(want, r)
		checkExact(t, "sampled cut", got, want)
	}
	if held < 60 {
		t.Fatalf("the sampled ranges held only %d of 66 ranks", held)
	}
	// A sample of small entries only: the range is too low for the top ranks.
	small := append(randVec(rng, 4096, 1e-4), randVec(rng, 4096, 1)...)
	var hs MagHistogram
	hs.Add(small[:4096])
	if _, ok := streamCut(small, 100, 512, hs.Profile(), 0.01); ok {
		t.Fatal("a range from an unrepresentative sample claimed to hold rank 100")
	}
}
