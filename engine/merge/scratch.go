package merge

import "sync"

// scratch recycles the large buffers of an execution. Every output tensor
// needs a float32 buffer per input and one for the result, plus the raw
// bytes read and written; allocating them fresh (tens of MB each for an
// embedding) costs page faults and zeroing on every tensor. A Plan keeps
// one scratch per element type, so buffers are shared by the tensors of
// its executions and released with it.
//
// Buffers are pooled by exact length. Reusing any large-enough buffer
// lets the embedding's (131 MB in float32 for a 32k×1024 model) serve
// every layer after it, so a TIES merge keeps a dozen of them in
// circulation (with 2 GB models it peaked at 2.3 GB; pooled by length and
// without other garbage, 1.5 GB). Per-length pools let the embedding's
// buffers fall idle once it is done, and sync.Pool drops idle buffers at
// garbage collection. A model has few distinct tensor lengths.
//
// Because little else is allocated during a merge, the garbage collector
// runs rarely, and per-tensor garbage elsewhere piles up to its goal (set
// while the embedding is in flight): keep the merge path free of it.
//
// A recycled buffer holds stale data: callers overwrite every element
// (methods must, see Method.Merge; TestMergeOverwritesOut checks it).
type scratch[T any] struct {
	mu    sync.Mutex
	pools map[int]*sync.Pool // by length; each holds *[]T
}

func (s *scratch[T]) pool(n int) *sync.Pool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.pools == nil {
		s.pools = map[int]*sync.Pool{}
	}
	p := s.pools[n]
	if p == nil {
		p = &sync.Pool{}
		s.pools[n] = p
	}
	return p
}

// get returns a buffer of n elements with unspecified contents.
func (s *scratch[T]) get(n int) []T {
	if b, ok := s.pool(n).Get().(*[]T); ok {
		return *b
	}
	return make([]T, n)
}

// put hands b, which get returned, back for reuse; b must not be used
// afterwards.
func (s *scratch[T]) put(b []T) {
	if len(b) > 0 {
		s.pool(len(b)).Put(&b)
	}
}
