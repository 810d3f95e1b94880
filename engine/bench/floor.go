package bench

import (
	"context"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/google/renameio/v2"
)

// The two baselines of the merge rows, measured in the same run:
//
//   - The I/O floor: a merge's reads and write with no arithmetic. Every
//     input file is read from the page cache in 8 MiB reads on all
//     threads, while one goroutine writes an output of the merge's size
//     the way the merge writes it (a temporary file in the same directory,
//     then fsync and rename: the merge's output is atomic and durable).
//   - Streaming memory bandwidth: all threads copying between buffers
//     much larger than the caches (512 MiB in all, each way), counting the
//     bytes read and the bytes written.

const floorChunk = 8 << 20

// floor is the I/O floor of one set of inputs.
type floor struct {
	Total      time.Duration // wall time, reads and write overlapped
	Read       time.Duration // until the last read finished
	Write      time.Duration // until the output was synced and renamed
	CPU        time.Duration // this process's CPU time meanwhile
	InBytes    int64
	OutBytes   int64
	ReadGBps   float64 // InBytes over Read
	WriteGBps  float64 // OutBytes over Write
	InputsGBps float64 // InBytes over Total: comparable with a merge's GB/s of input
}

// ioFloor measures the floor of reading inputs and writing outBytes to a
// file in dir, on threads reader goroutines and one writer.
func ioFloor(ctx context.Context, inputs []string, outBytes int64, dir string, threads int) (floor, error) {
	var f floor
	type chunk struct {
		file *os.File
		off  int64
		n    int
	}
	var files []*os.File
	defer func() {
		for _, fh := range files {
			fh.Close()
		}
	}()
	var chunks []chunk
	for _, p := range inputs {
		fh, err := os.Open(p)
		if err != nil {
			return f, err
		}
		files = append(files, fh)
		st, err := fh.Stat()
		if err != nil {
			return f, err
		}
		for off := int64(0); off < st.Size(); off += floorChunk {
			chunks = append(chunks, chunk{fh, off, int(min(floorChunk, st.Size()-off))})
		}
		f.InBytes += st.Size()
	}
	f.OutBytes = outBytes
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	start, cpu0 := time.Now(), processCPU()

	var writeErr error
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		writeErr = writeOutput(ctx, dir, outBytes)
		f.Write = time.Since(start)
	}()

	next := make(chan chunk)
	errs := make([]error, threads)
	var readers sync.WaitGroup
	for t := range threads {
		readers.Add(1)
		go func() {
			defer readers.Done()
			buf := make([]byte, floorChunk)
			for c := range next {
				if _, err := c.file.ReadAt(buf[:c.n], c.off); err != nil && err != io.EOF {
					errs[t] = err
					cancel()
				}
			}
		}()
	}
feed:
	for _, c := range chunks {
		select {
		case next <- c:
		case <-ctx.Done():
			break feed
		}
	}
	close(next)
	readers.Wait()
	f.Read = time.Since(start)
	wg.Wait()
	f.Total, f.CPU = time.Since(start), processCPU()-cpu0
	for _, err := range append(errs, writeErr) {
		if err != nil {
			return f, err
		}
	}
	if err := ctx.Err(); err != nil {
		return f, err
	}
	f.ReadGBps = float64(f.InBytes) / 1e9 / f.Read.Seconds()
	f.WriteGBps = float64(f.OutBytes) / 1e9 / f.Write.Seconds()
	f.InputsGBps = float64(f.InBytes) / 1e9 / f.Total.Seconds()
	return f, nil
}

// writeOutput writes n bytes to a new file in dir as gguf.Create does:
// temporary file, sync, rename; then removes it.
func writeOutput(ctx context.Context, dir string, n int64) error {
	path := fmt.Sprintf("%s/floor-%d.bin", dir, os.Getpid())
	pf, err := renameio.NewPendingFile(path, renameio.WithPermissions(0o644))
	if err != nil {
		return err
	}
	defer pf.Cleanup()
	buf := make([]byte, floorChunk)
	for i := range buf {
		buf[i] = byte(i * 7) // not zeros: nothing may skip them
	}
	for left := n; left > 0; left -= floorChunk {
		if err := ctx.Err(); err != nil {
			return err
		}
		if _, err := pf.Write(buf[:min(floorChunk, left)]); err != nil {
			return err
		}
	}
	if err := pf.CloseAtomicallyReplace(); err != nil {
		return err
	}
	return os.Remove(path)
}

// memBandwidthBytes is the size of each side of the bandwidth copy.
const memBandwidthBytes = 512 << 20

// memoryBandwidth returns the best of three rounds of every thread copying
// its share of total bytes, in GB/s of bytes read plus bytes written.
func memoryBandwidth(threads, total int) float64 {
	per := total / threads
	src, dst := make([][]byte, threads), make([][]byte, threads)
	for t := range threads {
		src[t], dst[t] = make([]byte, per), make([]byte, per)
		for i := 0; i < per; i += 4096 { // fault the pages in before timing
			src[t][i], dst[t][i] = 1, 1
		}
	}
	best := time.Duration(1<<63 - 1)
	for range 3 {
		var wg sync.WaitGroup
		start := time.Now()
		for t := range threads {
			wg.Add(1)
			go func() {
				defer wg.Done()
				copy(dst[t], src[t])
			}()
		}
		wg.Wait()
		best = min(best, time.Since(start))
	}
	return 2 * float64(per*threads) / 1e9 / best.Seconds()
}
