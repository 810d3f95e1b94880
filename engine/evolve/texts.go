package evolve

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"

	"github.com/evomerge/evomerge/engine/config"
	"github.com/evomerge/evomerge/engine/eval"
)

// loadTasks reads the multiple-choice tasks file ("" holds none).
func loadTasks(path string) ([]eval.Task, error) {
	if path == "" {
		return nil, nil
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	tasks, err := eval.ReadTasks(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return tasks, nil
}

// evalSalt captures every evaluation setting, so cached fitness is reused
// only when it would be computed the same way.
func evalSalt(v config.Evaluation, texts []eval.Text, tasks []eval.Task) string {
	h := sha256.New()
	fmt.Fprintf(h, "ctx=%d chunks=%d obj=%v coh=%v/%d tasks=%d\n", v.Context, v.Chunks, v.Objectives, v.CoherencePrompts, v.CoherenceTokens, len(tasks))
	if v.ScoreFrom != 0 {
		fmt.Fprintf(h, "from=%d\n", v.ScoreFrom)
	}
	for _, t := range texts {
		fmt.Fprintf(h, "%s %x\n", t.Name, sha256.Sum256([]byte(t.Content)))
	}
	for _, t := range tasks {
		fmt.Fprintf(h, "%q %q %d\n", t.Context, t.Choices, t.Answer)
	}
	return hex.EncodeToString(h.Sum(nil))[:16]
}
