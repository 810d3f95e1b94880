package merge

import (
	"crypto/sha256"
	"encoding/binary"
	"sync"

	"github.com/evomerge/evomerge/kernels"
)

// SourceCache keeps work that depends only on the source tensors, so that
// executions reading the same sources — every candidate of a tournament —
// do it once:
//
//   - magnitude profiles of task vectors x − B (kernels.MagProfile, a few
//     kilobytes each): TIES and breadcrumbs find the threshold of any
//     density from the profile plus one collection pass, where a missing
//     profile costs a pass over an eighth of the task vector (fused.go);
//   - float32 copies of source tensors of types the native kernels cannot
//     decode (K-quants, IQ and other types the codec decodes), up to a byte
//     budget. F16, BF16, Q8_0 and F32 tensors are not kept: their SIMD
//     decoding streams faster than a float32 copy twice their size could
//     be read back. Copies are admitted until the budget is full and then
//     kept: candidates read every source tensor in the same order, a cycle
//     that defeats least-recently-used eviction (each copy would be evicted
//     just before it is needed again), while a fixed set is hit every time.
//
// A SourceCache is safe for concurrent use; keys include each file's path,
// size and modification time, so a changed file is not served stale data.
type SourceCache struct {
	mu       sync.Mutex
	profiles map[[32]byte]*kernels.MagProfile
	decoded  map[[32]byte][]float32
	budget   int64 // bytes of decoded copies allowed
	used     int64
	stats    SourceCacheStats
}

// SourceCacheStats count a SourceCache's use.
type SourceCacheStats struct {
	ProfileHits, ProfileMisses int
	// SampleMisses counts key ranges from sampled profiles that missed
	// their rank (the tensor was then profiled whole).
	SampleMisses               int
	DecodedHits, DecodedMisses int
	DecodedBytes               int64 // held by decoded copies
	ProfileBytes               int64 // held by profiles
}

// NewSourceCache returns a cache that keeps up to decodedBudget bytes of
// decoded source tensors (0: none; profiles are always kept).
func NewSourceCache(decodedBudget int64) *SourceCache {
	return &SourceCache{profiles: map[[32]byte]*kernels.MagProfile{}, decoded: map[[32]byte][]float32{}, budget: decodedBudget}
}

// Stats returns the counts so far.
func (c *SourceCache) Stats() SourceCacheStats {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.stats
	s.DecodedBytes = c.used
	return s
}

func (c *SourceCache) profile(key [32]byte) (*kernels.MagProfile, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	p, ok := c.profiles[key]
	if ok {
		c.stats.ProfileHits++
	} else {
		c.stats.ProfileMisses++
	}
	return p, ok
}

// putProfile keeps p, replacing a profile of the same task vector (a
// whole-tensor profile replaces one of a sample that missed).
func (c *SourceCache) putProfile(key [32]byte, p *kernels.MagProfile) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if old, ok := c.profiles[key]; ok {
		c.stats.ProfileBytes -= int64(old.Bytes())
	}
	c.profiles[key] = p
	c.stats.ProfileBytes += int64(p.Bytes())
}

func (c *SourceCache) sampleMissed() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.stats.SampleMisses++
}

// decodedCopy returns the cached float32 copy of a source tensor.
func (c *SourceCache) decodedCopy(key [32]byte) ([]float32, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	v, ok := c.decoded[key]
	if ok {
		c.stats.DecodedHits++
	} else {
		c.stats.DecodedMisses++
	}
	return v, ok
}

// admits reports whether a copy of n values would fit the budget.
func (c *SourceCache) admits(n int) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.used+4*int64(n) <= c.budget
}

// putDecoded keeps v (which the caller must not change afterwards) if it
// fits the budget, and reports whether it did.
func (c *SourceCache) putDecoded(key [32]byte, v []float32) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.decoded[key]; ok {
		return true
	}
	size := 4 * int64(len(v))
	if c.used+size > c.budget {
		return false
	}
	c.decoded[key] = v
	c.used += size
	return true
}

// operandKey identifies a source tensor by file (path, size, modification
// time) and name; ok is false for tensors that are not read from a file.
func (p *Plan) operandKey(op Operand) (key [32]byte, ok bool) {
	fs, isFile := p.sources[op.Source].(*fileSource)
	if !isFile {
		return key, false
	}
	h := sha256.New()
	for _, s := range []string{fs.f.Path, fs.identity(), op.Tensor} {
		h.Write([]byte(s))
		h.Write([]byte{0})
	}
	h.Write(binary.LittleEndian.AppendUint64(nil, uint64(fs.f.Size)))
	copy(key[:], h.Sum(nil))
	return key, true
}

// profileKey identifies the task vector x − B of model operand x.
func (p *Plan) profileKey(x, base Operand) (key [32]byte, ok bool) {
	kx, okx := p.operandKey(x)
	kb, okb := p.operandKey(base)
	if !okx || !okb {
		return key, false
	}
	return sha256.Sum256(append(kx[:], kb[:]...)), true
}
