package evolve

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestScratchDir: the scratch directory is made once, under the configured
// root, announced once, and close removes it.
func TestScratchDir(t *testing.T) {
	root := t.TempDir()
	var logs []string
	s := &scratch{root: root, inFlight: 2, logf: func(_, format string, args ...any) { logs = append(logs, fmt.Sprintf(format, args...)) }}
	first, err := s.scratchDir()
	if err != nil {
		t.Fatal(err)
	}
	second, err := s.scratchDir()
	if err != nil {
		t.Fatal(err)
	}
	if first != second || filepath.Dir(first) != root {
		t.Errorf("scratch directories %s and %s, want one directory under %s", first, second, root)
	}
	if len(logs) != 1 || !strings.Contains(logs[0], first) {
		t.Errorf("log %q, want one announcement of the directory", logs)
	}
	s.close()
	if _, err := os.Stat(first); !os.IsNotExist(err) {
		t.Errorf("scratch directory %s left behind: %v", first, err)
	}
}

// TestScratchDirUnusableRoot: a root that cannot hold a directory is an
// error naming it.
func TestScratchDirUnusableRoot(t *testing.T) {
	file := filepath.Join(t.TempDir(), "plain-file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	s := &scratch{root: file, logf: func(string, string, ...any) {}}
	if _, err := s.scratchDir(); err == nil || !strings.Contains(err.Error(), file) {
		t.Errorf("scratch under a file: %v", err)
	}
}
