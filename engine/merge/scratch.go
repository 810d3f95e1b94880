package merge

import "sync"

// scratch recycles the large buffers of an execution. Every output tensor
// needs a float32 buffer per input and one for the result, plus the raw
// bytes read and written; allocating them fresh (tens of MB each for an
// embedding) costs page faults and zeroing on every tensor — an eighth of
// a linear F16 merge's time. A Plan keeps one pool per element type, so
// buffers are shared by the tensors of its executions and released with it
// (sync.Pool also drops idle buffers at garbage collection).
//
// A recycled buffer holds stale data: callers overwrite every element
// (methods must, see Method.Merge; TestMergeOverwritesOut checks it).
type scratch[T any] struct{ pool sync.Pool }

// get returns a buffer of n elements with unspecified contents.
func (s *scratch[T]) get(n int) []T {
	if b, ok := s.pool.Get().(*[]T); ok && cap(*b) >= n {
		return (*b)[:n]
	}
	return make([]T, n)
}

// put hands b back for reuse; b must not be used afterwards.
func (s *scratch[T]) put(b []T) {
	if cap(b) > 0 {
		s.pool.Put(&b)
	}
}
