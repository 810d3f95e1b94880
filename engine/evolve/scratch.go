package evolve

import (
	"os"
	"sync"
	"syscall"
)

// scratch is the run's scratch directory: the evaluation workers merge
// there the candidates they cannot merge in place (data-flow recipes), and
// the final comparison writes the uniform average there. It is
// hardware.tmp_dir when configured; otherwise tmpfs (/dev/shm) when it has
// room for the models in flight, else the system temp dir — a candidate
// file is written, read once and deleted, so memory-backed files save a
// disk round trip.
type scratch struct {
	root     string   // configured scratch root ("" = choose)
	models   []string // the run's model files, which size a candidate
	inFlight int      // candidates that may exist at once
	logf     func(level, format string, args ...any)

	mu  sync.Mutex
	dir string // created on first use
}

// scratchDir returns the candidates' directory, creating it on first use.
func (m *scratch) scratchDir() (string, error) {
	m.mu.Lock()
	dir, created, err := m.scratchDirLocked()
	m.mu.Unlock()
	if created {
		m.logf("info", "scratch directory for candidates merged through files: %s (at most %d at a time)", dir, m.inFlight)
	}
	return dir, err
}

func (m *scratch) scratchDirLocked() (string, bool, error) {
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

// close removes the scratch directory.
func (m *scratch) close() {
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
