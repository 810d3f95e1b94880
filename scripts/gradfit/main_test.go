package main

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/evomerge/evomerge/engine/llm"
	"github.com/evomerge/evomerge/engine/merge"
	"github.com/evomerge/evomerge/zoo"
)

// TestFit: two steps on one window per text write a task-arithmetic
// recipe over the zoo's experts whose weights have left the uniform
// average, and that recipe merges.
func TestFit(t *testing.T) {
	slog.SetDefault(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))
	out := filepath.Join(t.TempDir(), "fit.toml")
	var stdout, stderr bytes.Buffer
	if code := run([]string{"-steps", "2", "-windows", "1", "-out", out}, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	if !strings.Contains(stdout.String(), "step 2: loss") {
		t.Errorf("no progress for step 2:\n%s", stdout.String())
	}
	text, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	r, err := merge.ParseRecipe(string(text))
	if err != nil {
		t.Fatal(err)
	}
	if r.Method != "task_arithmetic" || len(r.Models) != len(zoo.Experts()) {
		t.Fatalf("%s over %d models", r.Method, len(r.Models))
	}
	moved := 0
	for _, m := range r.Models {
		for _, f := range m.Params["weight"].Filters {
			for _, a := range f.Anchors {
				if a != 0.33333 {
					moved++
				}
			}
		}
	}
	if moved == 0 {
		t.Error("no weight moved from the uniform average")
	}
	if _, _, err := merge.Run(context.Background(), r, filepath.Join(t.TempDir(), "fit.gguf"), llm.Codec{}, merge.ExecOptions{}); err != nil {
		t.Fatalf("the fitted recipe does not merge: %v", err)
	}
	if code := run([]string{"-windows", "0"}, &stdout, &stderr); code == 0 {
		t.Error("0 windows per text was accepted")
	}
}
