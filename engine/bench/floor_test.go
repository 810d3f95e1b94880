package bench

import (
	"context"
	"os"
	"path/filepath"
	"testing"
)

// TestIOFloor: the floor reads every byte of every input, writes and
// removes an output of the requested size, and leaves nothing behind.
func TestIOFloor(t *testing.T) {
	dir := t.TempDir()
	var inputs []string
	var total int64
	for i, size := range []int{3*floorChunk + 12345, 1, floorChunk} {
		p := filepath.Join(dir, string(rune('a'+i))+".bin")
		if err := os.WriteFile(p, make([]byte, size), 0o644); err != nil {
			t.Fatal(err)
		}
		inputs = append(inputs, p)
		total += int64(size)
	}
	out := t.TempDir()
	for _, threads := range []int{1, 3} {
		f, err := ioFloor(context.Background(), inputs, 5*floorChunk/2, out, threads)
		if err != nil {
			t.Fatal(err)
		}
		if f.InBytes != total || f.OutBytes != 5*floorChunk/2 {
			t.Fatalf("%d threads: %d bytes in, %d out; want %d, %d", threads, f.InBytes, f.OutBytes, total, 5*floorChunk/2)
		}
		if f.Total < f.Read || f.Total < f.Write || f.InputsGBps <= 0 || f.ReadGBps < f.InputsGBps {
			t.Fatalf("%d threads: inconsistent timings %+v", threads, f)
		}
		if left, _ := os.ReadDir(out); len(left) != 0 {
			t.Fatalf("%d threads: the floor left %d files", threads, len(left))
		}
	}
	if _, err := ioFloor(context.Background(), append(inputs, filepath.Join(dir, "missing")), 1, out, 2); err == nil {
		t.Fatal("a missing input gave no error")
	}
}

func TestMemoryBandwidth(t *testing.T) {
	if bw := memoryBandwidth(2, 32<<20); !(bw > 0.1 && bw < 1e4) {
		t.Fatalf("memory bandwidth %g GB/s", bw)
	}
}
