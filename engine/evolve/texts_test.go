package evolve

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/evomerge/evomerge/engine/config"
	"github.com/evomerge/evomerge/engine/eval"
	"github.com/evomerge/evomerge/zoo"
)

// TestLoadTexts: bundled texts are named by domain, files by base name,
// repeats get a numeric suffix, and a missing file is an error naming it.
func TestLoadTexts(t *testing.T) {
	dir := t.TempDir()
	a := filepath.Join(dir, "notes.txt")
	b := filepath.Join(t.TempDir(), "notes.md")
	os.WriteFile(a, []byte("first"), 0o644)
	os.WriteFile(b, []byte("second"), 0o644)
	texts, err := LoadTexts([]string{"zoo:bible/validation", a, b, "zoo:bible/test"})
	if err != nil {
		t.Fatal(err)
	}
	bible, _ := zoo.Text("bible", "validation")
	want := []eval.Text{{Name: "bible", Content: bible}, {Name: "notes", Content: "first"}, {Name: "notes-2", Content: "second"}}
	for i, w := range want {
		if texts[i] != w {
			t.Errorf("text %d: %q (%d bytes), want %q (%d bytes)", i, texts[i].Name, len(texts[i].Content), w.Name, len(w.Content))
		}
	}
	if texts[3].Name != "bible-2" {
		t.Errorf("second bible text named %q", texts[3].Name)
	}
	missing := filepath.Join(dir, "missing.txt")
	if _, err := LoadTexts([]string{missing}); err == nil || !strings.Contains(err.Error(), missing) {
		t.Errorf("missing text: %v", err)
	}
}

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
