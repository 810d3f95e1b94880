package evolve

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/evomerge/evomerge/engine/merge"
	"github.com/evomerge/evomerge/kernels"
)

// TestMaterialiseCandidate: a candidate file is byte for byte what
// merge.Run writes for its recipe, the second merge of a recipe takes its
// tensors from the cache and still writes the same bytes, the scratch
// directory is made once under the configured root and announced once,
// and close removes it.
func TestMaterialiseCandidate(t *testing.T) {
	cfg := testConfig(t)
	paths := map[string]string{}
	var models []string
	for _, m := range cfg.Models {
		paths[m.Name] = m.Path
		models = append(models, m.Path)
	}
	s, err := NewSpace(cfg, paths, 6)
	if err != nil {
		t.Fatal(err)
	}
	r, err := s.Decode(unitOperators(s).neutral("ties"))
	if err != nil {
		t.Fatal(err)
	}
	ref := filepath.Join(t.TempDir(), "ref.gguf")
	if _, _, err := merge.Run(context.Background(), r, ref, kernels.Native{}, merge.ExecOptions{Codec: kernels.Native{}}); err != nil {
		t.Fatal(err)
	}
	want, _ := os.ReadFile(ref)

	root := t.TempDir()
	var logs []string
	m := &materialiser{root: root, models: models, inFlight: 2, codec: kernels.Native{}, cache: newLRUCache(64 << 20),
		logf: func(_, format string, args ...any) { logs = append(logs, fmt.Sprintf(format, args...)) }}
	var fractions []float64
	for i := range 2 {
		path, took, err := m.candidate(context.Background(), fmt.Sprintf("g0-c%02d", i), r, func(f float64) { fractions = append(fractions, f) })
		if err != nil {
			t.Fatal(err)
		}
		if filepath.Dir(filepath.Dir(path)) != root || took <= 0 {
			t.Errorf("candidate at %s (took %v), want a directory under %s", path, took, root)
		}
		if got, _ := os.ReadFile(path); !bytes.Equal(got, want) {
			t.Errorf("merge %d differs from merge.Run's output", i)
		}
		if hits := m.hits(); (i == 0) != (hits == 0) {
			t.Errorf("after merge %d: %d tensors from the cache", i, hits)
		}
	}
	if fractions[0] != 0 || fractions[len(fractions)-1] != 1 {
		t.Errorf("progress %v, want 0 … 1", fractions)
	}
	if len(logs) != 1 || !strings.Contains(logs[0], root) {
		t.Errorf("log %q, want one announcement of the directory", logs)
	}
	dir, _ := m.scratchDir()
	m.close()
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("scratch directory %s left behind: %v", dir, err)
	}
}

// TestMaterialiseFailure: a recipe that does not plan fails with the
// planning error and no merge time.
func TestMaterialiseFailure(t *testing.T) {
	m := &materialiser{root: t.TempDir(), inFlight: 2, codec: kernels.Native{}, cache: newLRUCache(1 << 20), logf: func(string, string, ...any) {}}
	defer m.close()
	bad := &merge.Recipe{Method: "linear", Models: []merge.ModelRef{{Model: filepath.Join(t.TempDir(), "missing.gguf")}}}
	path, took, err := m.candidate(context.Background(), "g0-c00", bad, func(float64) {})
	if err == nil || !strings.HasPrefix(err.Error(), "planning: ") || took != 0 || path == "" {
		t.Errorf("candidate of a recipe over a missing model: %q, %v, %v", path, took, err)
	}
}
