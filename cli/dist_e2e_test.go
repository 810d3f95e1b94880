package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/evomerge/evomerge/engine/evolve"
)

// lockedBuffer collects a child's stderr while the test reads it.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestDistributedRunOnTheZoo: a coordinator that evaluates nothing itself
// (hardware.workers = 0, a loopback listener) and one `worker --join`
// process run a small tournament on the zoo with real llama.cpp: the
// worker finds the sources at the same paths (checked by sha256), every
// candidate is scored by it, and both sides report the join.
func TestDistributedRunOnTheZoo(t *testing.T) {
	requireZoo(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	out := filepath.Join(t.TempDir(), "run")
	path := tinyConfig(t, out)
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	text := strings.Replace(string(raw), "population = 4\ngenerations = 3", "population = 3\ngenerations = 2", 1)
	text = strings.Replace(text, "test_chunks = 2", "test_chunks = 2\ntest_texts = []", 1)
	text += fmt.Sprintf("[hardware]\nworkers = 0\n[distributed]\nlisten = \"127.0.0.1:%d\"\ntoken = \"zoo-token\"\n", port)
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}

	var werr lockedBuffer
	worker := exec.Command(os.Args[0], "worker", "--join", fmt.Sprintf("nats://zoo-token@127.0.0.1:%d", port), "--slots", "1", "--threads", "2")
	worker.Stderr = &werr
	if err := worker.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = worker.Process.Kill()
		_ = worker.Wait()
	})
	code, stdout, stderr := runCLI(t, "--run", "--headless", "--config", path)
	if code != 0 {
		t.Fatalf("run: exit %d\n%s\n%s\nworker:\n%s", code, stdout, stderr, werr.String())
	}
	if !strings.Contains(stdout+stderr, "joined: ") {
		t.Errorf("the coordinator did not report the worker joining:\n%s\n%s", stdout, stderr)
	}
	if !strings.Contains(werr.String(), "serving run ") {
		t.Errorf("the worker did not serve the run:\n%s", werr.String())
	}
	hist, err := os.ReadFile(filepath.Join(out, "history.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	recs := 0
	for _, line := range strings.Split(strings.TrimSpace(string(hist)), "\n") {
		var r evolve.Record
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatal(err)
		}
		recs++
		if r.Status != evolve.StatusDone || len(r.Scores.Perplexity) != 3 {
			t.Errorf("%s: status %s (%s), perplexities %v", r.ID, r.Status, r.Err, r.Scores.Perplexity)
		}
		for name, p := range r.Scores.Perplexity {
			if !(p > 1) || math.IsInf(p, 0) {
				t.Errorf("%s: perplexity on %s is %v", r.ID, name, p)
			}
		}
	}
	if recs == 0 {
		t.Fatal("history.jsonl is empty")
	}
}
