package evolve

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/evomerge/evomerge/engine/config"
	"github.com/evomerge/evomerge/engine/eval"
)

// TestLoadTasks: no file holds no tasks; a bad line is reported with the
// file's name.
func TestLoadTasks(t *testing.T) {
	if tasks, err := loadTasks(""); err != nil || tasks != nil {
		t.Errorf("no tasks file: %v, %v", tasks, err)
	}
	path := filepath.Join(t.TempDir(), "tasks.jsonl")
	os.WriteFile(path, []byte(`{"context":"2+2=","choices":["4","5"],"answer":0}`+"\n"+`{"context":"x","choices":["a"],"answer":0}`+"\n"), 0o644)
	_, err := loadTasks(path)
	if err == nil || !strings.HasPrefix(err.Error(), path+": ") || !strings.Contains(err.Error(), "line 2") {
		t.Errorf("bad tasks file: %v", err)
	}
}

// TestEvalSalt: every evaluation setting and every text's content changes
// the salt (and with it every recipe key), so a resumed run never reuses
// fitness measured another way; the same settings give the same salt.
func TestEvalSalt(t *testing.T) {
	v := config.Default().Evaluation
	texts := []eval.Text{{Name: "a", Content: "alpha"}}
	tasks := []eval.Task{{Context: "c", Choices: []string{"x", "y"}}}
	base := evalSalt(v, texts, tasks)
	if evalSalt(v, []eval.Text{{Name: "a", Content: "alpha"}}, tasks) != base {
		t.Fatal("the same settings give another salt")
	}
	changed := map[string]string{}
	w := v
	w.Context++
	changed["context"] = evalSalt(w, texts, tasks)
	w = v
	w.Chunks++
	changed["chunks"] = evalSalt(w, texts, tasks)
	w = v
	w.ScoreFrom = 32
	changed["score_from"] = evalSalt(w, texts, tasks)
	w = v
	w.Objectives.Coherence = 0.5
	changed["objectives"] = evalSalt(w, texts, tasks)
	w = v
	w.CoherenceTokens++
	changed["coherence tokens"] = evalSalt(w, texts, tasks)
	changed["text content"] = evalSalt(v, []eval.Text{{Name: "a", Content: "alpha!"}}, tasks)
	changed["text name"] = evalSalt(v, []eval.Text{{Name: "b", Content: "alpha"}}, tasks)
	changed["task answer"] = evalSalt(v, texts, []eval.Task{{Context: "c", Choices: []string{"x", "y"}, Answer: 1}})
	changed["no tasks"] = evalSalt(v, texts, nil)
	for what, s := range changed {
		if s == base {
			t.Errorf("changing the %s keeps the salt", what)
		}
	}
}
