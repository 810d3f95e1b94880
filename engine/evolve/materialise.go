package evolve

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"syscall"
	"time"

	"github.com/evomerge/evomerge/engine/merge"
	"github.com/evomerge/evomerge/kernels"
)

// materialiser writes candidate models into a scratch directory that lives
// as long as the run. The directory is hardware.tmp_dir when configured;
// otherwise tmpfs (/dev/shm) when it has room for the models in flight,
// else the system temp dir — a candidate is written, read once by a worker
// and deleted, so memory-backed files save a disk round trip. Merged tensors
// are shared between candidates through a byte-bounded cache (cache.go).
type materialiser struct {
	root     string   // configured scratch root ("" = choose)
	models   []string // the run's model files, which size a candidate
	inFlight int      // candidates that may exist at once
	codec    kernels.Codec
	cache    *lruCache
	logf     func(level, format string, args ...any)

	mu         sync.Mutex
	dir        string // created on first use
	tensorHits int
}

// scratchDir returns the candidates' directory, creating it on first use.
func (m *materialiser) scratchDir() (string, error) {
	m.mu.Lock()
	dir, created, err := m.scratchDirLocked()
	m.mu.Unlock()
	if created {
		m.logf("info", "candidates are merged into %s (at most %d at a time)", dir, m.inFlight)
	}
	return dir, err
}

func (m *materialiser) scratchDirLocked() (string, bool, error) {
	if m.dir != "" {
		return m.dir, false, nil
	}
	root := m.root
	if root == "" {
		root = os.TempDir()
		var largest int64
		for _, p := range m.models {
			if st, err := os.Stat(p); err == nil {
				largest = max(largest, st.Size())
			}
		}
		need := uint64(largest) * uint64(m.inFlight+1) * 2
		if free, err := freeBytes("/dev/shm"); err == nil && free > need {
			root = "/dev/shm"
		}
	}
	dir, err := os.MkdirTemp(root, "evomerge-candidates-")
	if err != nil {
		return "", false, err
	}
	m.dir = dir
	return dir, true, nil
}

// candidate merges recipe r into the scratch file of candidate id and
// returns its path (set once the directory exists, even when merging
// fails: the caller removes it) and the time planning and merging took (0
// when planning failed). progress gets the fraction of tensors written,
// starting with 0 once the directory exists.
func (m *materialiser) candidate(ctx context.Context, id string, r *merge.Recipe, progress func(float64)) (string, time.Duration, error) {
	dir, err := m.scratchDir()
	if err != nil {
		return "", 0, err
	}
	path := filepath.Join(dir, id+".gguf")
	progress(0)
	t0 := time.Now()
	plan, err := merge.NewPlan(r, merge.PlanOptions{Codec: m.codec})
	if err != nil {
		return path, 0, fmt.Errorf("planning: %w", err)
	}
	st, err := plan.Execute(ctx, path, merge.ExecOptions{Codec: m.codec, Workers: max(1, runtime.NumCPU()/2),
		Cache: m.cache, Progress: func(p merge.Progress) { progress(float64(p.Done) / float64(p.Total)) }})
	plan.Close()
	took := time.Since(t0)
	if err != nil {
		return path, took, fmt.Errorf("merging: %w", err)
	}
	m.mu.Lock()
	m.tensorHits += st.CacheHits
	m.mu.Unlock()
	return path, took, nil
}

// hits is the number of merged tensors taken from the cache.
func (m *materialiser) hits() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.tensorHits
}

// close removes the scratch directory.
func (m *materialiser) close() {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.dir != "" {
		os.RemoveAll(m.dir)
	}
}

// freeBytes is the space available to this user on the file system at path.
func freeBytes(path string) (uint64, error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(path, &st); err != nil {
		return 0, err
	}
	return st.Bavail * uint64(st.Bsize), nil
}
