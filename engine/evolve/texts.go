package evolve

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/evomerge/evomerge/engine/config"
	"github.com/evomerge/evomerge/engine/eval"
	"github.com/evomerge/evomerge/zoo"
)

// LoadTexts reads evaluation texts: "zoo:DOMAIN[/SPLIT]" or file paths.
// Names are the domain or the file's base name, made unique.
func LoadTexts(refs []string) ([]eval.Text, error) {
	var out []eval.Text
	used := map[string]int{}
	for _, ref := range refs {
		var name, content string
		if d, split, ok := zoo.ParseTextRef(ref); ok {
			t, err := zoo.Text(d, split)
			if err != nil {
				return nil, err
			}
			name, content = d, t
		} else {
			b, err := os.ReadFile(ref)
			if err != nil {
				return nil, fmt.Errorf("evaluation text: %w", err)
			}
			name, content = strings.TrimSuffix(filepath.Base(ref), filepath.Ext(ref)), string(b)
		}
		if used[name]++; used[name] > 1 {
			name = fmt.Sprintf("%s-%d", name, used[name])
		}
		out = append(out, eval.Text{Name: name, Content: content})
	}
	return out, nil
}

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
	for _, t := range texts {
		fmt.Fprintf(h, "%s %x\n", t.Name, sha256.Sum256([]byte(t.Content)))
	}
	for _, t := range tasks {
		fmt.Fprintf(h, "%q %q %d\n", t.Context, t.Choices, t.Answer)
	}
	return hex.EncodeToString(h.Sum(nil))[:16]
}
