package kernels

import (
	"encoding/binary"
	"math"
	"math/bits"
	"slices"
	"sort"
	"unsafe"
)

// Magnitude selection in passes over a tensor that is never held whole in
// float32: the executor streams a task vector block by block, so the top-k
// selection of SparsifyMagnitude and SparsifyOutliers is split into
//
//  1. a MagProfile: a histogram of the keys' top digit (14 of the 31 key
//     bits; a bucket is 1/64 of a binade), of the whole tensor or of a
//     sample of it. It depends only on the task vector, not on the
//     density, so a run keeps it per source tensor, and a new density is
//     a lookup: Range gives a key range that holds the entry of rank k
//     (exactly for a whole-tensor profile, with a margin for a sample);
//  2. a pass collecting the entries in that range and counting those
//     above it (CollectRange), and an exact selection among them
//     (SelectCut) — valid when Holds: a sample's range can miss (the
//     caller then profiles the whole tensor), a whole-tensor profile's
//     cannot;
//  3. the merge pass, which keeps the entries in the Cut (KeepCut,
//     KeepBand).
//
// The result is the same set as SparsifyMagnitude's: the same order
// (magnitude, then index) and the same count.

// maxKey is the largest magnitude key (a NaN with every mantissa bit set).
const maxKey = 1<<31 - 1

// digitShift leaves the top 14 of the 31 key bits: the bucket of a key.
const digitShift = 17

// A Cut is the set of the r top-ranked entries of a tensor in the
// magnitude order: the entries whose key is above Key, and those whose key
// equals Key at flat index Last or before. CutAll and CutNone are the
// whole tensor and nothing.
type Cut struct {
	Key  uint32
	Last int
}

var (
	CutAll  = Cut{Key: 0, Last: math.MaxInt} // every entry
	CutNone = Cut{Key: maxKey + 1, Last: -1} // no entry
)

// from is the lowest key the cut keeps at flat index j.
func (c Cut) from(j int) uint32 {
	if j <= c.Last {
		return c.Key
	}
	return c.Key + 1
}

// KeepCut zeroes (to +0, as SparsifyMagnitude does) the entries of x that
// are not in c; x holds the tensor's entries from flat index offset on.
func KeepCut(x []float32, offset int, c Cut) {
	KeepBand(x, offset, c, CutNone)
}

// KeepBand keeps the entries of x that are in keep but not in top (top ⊂
// keep: breadcrumbs drops the top outliers) and zeroes the rest; x holds
// the tensor's entries from flat index offset on.
func KeepBand(x []float32, offset int, keep, top Cut) {
	// Split x where either cut's threshold changes (after Last).
	for len(x) > 0 {
		n := len(x)
		for _, last := range [2]int{keep.Last, top.Last} {
			if last >= offset && last-offset < n-1 {
				n = last - offset + 1
			}
		}
		lo, hiExcl := keep.from(offset), top.from(offset) // keep lo ≤ key < hiExcl
		if hiExcl == 0 {
			clear(x[:n])
		} else {
			keepRange(x[:n], lo, hiExcl-1)
		}
		x, offset = x[n:], offset+n
	}
}

// MagHistogram counts magnitude keys by bucket (their top 14 bits).
type MagHistogram struct {
	counts [1 << 14]uint64
}

// Add counts the entries of x.
func (h *MagHistogram) Add(x []float32) {
	c := &h.counts
	for _, v := range x {
		c[magKey(v)>>digitShift]++
	}
}

// Merge adds the counts of o.
func (h *MagHistogram) Merge(o *MagHistogram) {
	for i, c := range o.counts {
		h.counts[i] += c
	}
}

// Profile returns the histogram in the compact form a cache keeps.
func (h *MagHistogram) Profile() *MagProfile {
	first, last := -1, -1
	var n uint64
	for i, c := range h.counts {
		if c != 0 {
			if first < 0 {
				first = i
			}
			last = i
			n += c
		}
	}
	p := &MagProfile{N: int(n)}
	if first < 0 {
		return p
	}
	p.first = uint32(first)
	// above[i] = entries in buckets above first+i.
	p.above = make([]uint64, last-first+1)
	var sum uint64
	for i := last; i >= first; i-- {
		p.above[i-first] = sum
		sum += h.counts[i]
	}
	return p
}

// A MagProfile is a tensor's magnitude distribution by bucket: enough to
// find the bucket of the entry of any rank without reading the tensor.
type MagProfile struct {
	N     int // entries
	first uint32
	above []uint64 // entries in buckets above first+i
}

// Bytes is the memory the profile holds.
func (p *MagProfile) Bytes() int { return 8*len(p.above) + 32 }

// Locate returns the bucket holding the entry of rank r (1 ≤ r ≤ N, 1 the
// largest) among the profiled entries, as the key range [lo, hi] of that
// bucket, and the number of entries in higher buckets.
func (p *MagProfile) Locate(r int) (lo, hi uint32, above int) {
	// above is non-increasing; bucket i holds ranks above[i]+1 …
	// above[i-1]: the first i with above[i] < r.
	i := sort.Search(len(p.above), func(i int) bool { return p.above[i] < uint64(r) })
	b := p.first + uint32(i)
	return b << digitShift, b<<digitShift | (1<<digitShift - 1), int(p.above[i])
}

// Range returns a key range that holds the entry of rank r (1 ≤ r ≤ n) of
// a tensor of n entries of which the profile counted N: the buckets of the
// profile's ranks (r/n ∓ margin)·N. A whole-tensor profile (N = n) with
// margin 0 gives the one bucket that holds rank r; for a sample the margin
// (a fraction of n) allows for sampling error.
func (p *MagProfile) Range(r, n int, margin float64) (lo, hi uint32) {
	if p.N == 0 || n == 0 {
		return 0, maxKey
	}
	sr := float64(r) * float64(p.N) / float64(n) // exact when N = n
	m := margin * float64(p.N)
	hi = maxKey
	if top := int(math.Floor(sr - m)); top >= 1 {
		_, hi, _ = p.Locate(min(top, p.N))
	}
	lo = 0
	if bottom := int(math.Ceil(sr + m)); bottom <= p.N {
		lo, _, _ = p.Locate(max(bottom, 1))
	}
	return lo, hi
}

// Count estimates how many entries of a tensor of n entries have keys in
// [lo, hi] (whole buckets, as Range returns), scaling the profile's counts
// from N to n.
func (p *MagProfile) Count(lo, hi uint32, n int) int {
	if p.N == 0 {
		return 0
	}
	// atLeast is the number of profiled entries in key's bucket or above.
	atLeast := func(key uint64) uint64 {
		switch b := int(key>>digitShift) - int(p.first); {
		case b <= 0:
			return uint64(p.N)
		case b > len(p.above):
			return 0
		default:
			return p.above[b-1]
		}
	}
	in := atLeast(uint64(lo)) - atLeast(uint64(hi)+1)
	return int(float64(in) * float64(n) / float64(p.N))
}

// CollectRange appends the entries of x whose key lies in [lo, hi], as
// their keys and flat indices (offset + position in x), in index order, and
// returns the number of entries of x whose key is above hi.
func CollectRange(keys []uint32, idx []int, x []float32, offset int, lo, hi uint32) ([]uint32, []int, int) {
	const chunk = 1024
	var mask [chunk / 8]byte
	above := 0
	for start := 0; start < len(x); start += chunk {
		blk := x[start:min(start+chunk, len(x))]
		n := simdLen(len(blk))
		if n > 0 {
			above += rangeBitsAVX2(&mask[0], &blk[0], n, int32(lo), int32(hi))
			// Most of the mask is zero: scan it 64 entries at a time.
			for w := 0; w*64 < n; w++ {
				m := binary.LittleEndian.Uint64(mask[w*8:])
				if rest := n - w*64; rest < 64 {
					m &= 1<<rest - 1 // bytes past n/8 are stale
				}
				for m != 0 {
					j := w*64 + bits.TrailingZeros64(m)
					m &= m - 1
					keys, idx = append(keys, magKey(blk[j])), append(idx, offset+start+j)
				}
			}
		}
		for j := n; j < len(blk); j++ {
			switch k := magKey(blk[j]); {
			case k > hi:
				above++
			case k >= lo:
				keys, idx = append(keys, k), append(idx, offset+start+j)
			}
		}
	}
	return keys, idx, above
}

// Holds reports whether a range with collected entries and above entries
// above it holds rank r: SelectCut's precondition.
func Holds(collected, r, above int) bool { return above < r && r-above <= collected }

// SelectCut returns the cut of the r top-ranked entries of a tensor, given
// every entry of a key range that holds rank r (keys and flat indices in
// index order, as CollectRange gives them) and the number of entries above
// the range (Holds must be true).
func SelectCut(keys []uint32, idx []int, r, above int) Cut {
	need := r - above // entries to take from the bucket
	// The keys read as float32 are entries with those keys (magKey(v) is
	// v's bits, the sign being clear): select among them without a copy.
	vals := unsafe.Slice((*float32)(unsafe.Pointer(unsafe.SliceData(keys))), len(keys))
	t := cutTop(vals, need)
	if need >= len(keys) { // the whole bucket: cutTop reports key 0
		return Cut{Key: slices.Min(keys), Last: math.MaxInt}
	}
	// The cut keeps t.ties entries of key t.key, the first in index order.
	seen := 0
	last := -1
	for i, k := range keys {
		if k == t.key {
			seen++
			if seen == t.ties {
				last = idx[i]
				break
			}
		}
	}
	return Cut{Key: t.key, Last: last}
}
