package merge

import (
	"runtime"
	"sync"

	"github.com/evomerge/evomerge/engine/gguf"
	"github.com/evomerge/evomerge/kernels"
)

// Large tensors (a 128k-token embedding is hundreds of millions of values)
// are decoded and encoded in row-aligned chunks on all cores, so one big
// tensor does not leave the other cores idle while the executor waits to
// write it in order. Small tensors are converted in place: the executor
// already runs several of them at once.
const parallelMin = 1 << 20 // elements

// chunks splits n elements of rows of rowLen into up to GOMAXPROCS pieces
// of whole rows.
func chunks(n, rowLen int) [][2]int {
	rows := n / rowLen
	parts := min(runtime.GOMAXPROCS(0), rows)
	if n < parallelMin || parts <= 1 {
		return [][2]int{{0, n}}
	}
	out := make([][2]int, 0, parts)
	for p := range parts {
		from := rows * p / parts * rowLen
		to := rows * (p + 1) / parts * rowLen
		out = append(out, [2]int{from, to})
	}
	return out
}

// decodeParallel dequantizes src (rows of rowLen elements of type t) into dst.
func decodeParallel(c kernels.Codec, t gguf.Type, dst []float32, src []byte, rowLen int) error {
	return forChunks(len(dst), rowLen, func(from, to int) error {
		return c.Decode(t, dst[from:to], src[t.RowBytes(uint64(from)):t.RowBytes(uint64(to))])
	})
}

// encodeParallel quantizes src into dst.
func encodeParallel(c kernels.Codec, t gguf.Type, dst []byte, src []float32, rowLen int) error {
	return forChunks(len(src), rowLen, func(from, to int) error {
		return c.Encode(t, dst[t.RowBytes(uint64(from)):t.RowBytes(uint64(to))], src[from:to], rowLen)
	})
}

func forChunks(n, rowLen int, fn func(from, to int) error) error {
	if rowLen <= 0 {
		rowLen = n
	}
	parts := chunks(n, rowLen)
	if len(parts) == 1 {
		return fn(0, n)
	}
	errs := make([]error, len(parts))
	var wg sync.WaitGroup
	for i, p := range parts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = fn(p[0], p[1])
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
