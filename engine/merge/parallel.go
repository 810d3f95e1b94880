package merge

import (
	"context"
	"sync"

	"github.com/evomerge/evomerge/engine/gguf"
	"github.com/evomerge/evomerge/kernels"
)

// Threads. An execution computes on ExecOptions.Threads threads: every
// piece of CPU work — reading a tensor, a chunk of a decode, encode or
// fused pass, a Method.Merge call — holds one of the limiter's tokens
// while it runs. A goroutine that waits for others (a tensor waiting for
// its chunks, the writer) holds none, so the work cannot deadlock however
// tensors and chunks interleave.
//
// Large tensors (a 128k-token embedding is hundreds of millions of values)
// are split into chunks on all threads, so one big tensor does not leave
// the other threads idle while the executor waits to write it in order.
// Small tensors run as one chunk: several of them are in flight at once.
const parallelMin = 1 << 16 // elements per chunk, at least

// limiter hands out an execution's threads.
type limiter chan struct{}

func newLimiter(threads int) limiter { return make(limiter, max(1, threads)) }

// do runs fn holding a token.
func (l limiter) do(ctx context.Context, fn func() error) error {
	select {
	case l <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-l }()
	return fn()
}

// chunks splits n elements into up to cap(l) pieces of at least
// parallelMin elements whose boundaries are multiples of align.
func (l limiter) chunks(n, align int) [][2]int {
	align = max(align, 1)
	units := (n + align - 1) / align
	parts := min(cap(l), units, max(1, n/parallelMin))
	out := make([][2]int, 0, parts)
	for p := range parts {
		from := min(units*p/parts*align, n)
		to := min(units*(p+1)/parts*align, n)
		out = append(out, [2]int{from, to})
	}
	return out
}

// forChunks runs fn on the chunks of [0, n) (see chunks), in parallel, each
// holding a token, and returns the error of the first failing chunk.
func (l limiter) forChunks(ctx context.Context, n, align int, fn func(from, to int) error) error {
	parts := l.chunks(n, align)
	if len(parts) == 1 {
		return l.do(ctx, func() error { return fn(0, n) })
	}
	errs := make([]error, len(parts))
	var wg sync.WaitGroup
	for i, p := range parts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = l.do(ctx, func() error { return fn(p[0], p[1]) })
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// rowAlign is the chunk alignment for a codec call on rows of rowLen
// elements: whole rows (K-quants quantize rows), or the whole tensor when
// the shape gives no row length.
func rowAlign(n, rowLen int) int {
	if rowLen <= 0 || n%rowLen != 0 {
		return n
	}
	return rowLen
}

// decodeParallel dequantizes src (rows of rowLen elements of type t) into dst.
func decodeParallel(ctx context.Context, cpu limiter, c kernels.Codec, t gguf.Type, dst []float32, src []byte, rowLen int) error {
	return cpu.forChunks(ctx, len(dst), rowAlign(len(dst), rowLen), func(from, to int) error {
		return c.Decode(t, dst[from:to], src[t.RowBytes(uint64(from)):t.RowBytes(uint64(to))])
	})
}

// encodeParallel quantizes src into dst.
func encodeParallel(ctx context.Context, cpu limiter, c kernels.Codec, t gguf.Type, dst []byte, src []float32, rowLen int) error {
	return cpu.forChunks(ctx, len(src), rowAlign(len(src), rowLen), func(from, to int) error {
		return c.Encode(t, dst[t.RowBytes(uint64(from)):t.RowBytes(uint64(to))], src[from:to], rowLen)
	})
}
