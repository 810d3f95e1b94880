package eval

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/evomerge/evomerge/zoo"
)

func TestTextNames(t *testing.T) {
	tests := []struct {
		refs []string
		want []string
	}{
		{[]string{"zoo:moby/test"}, []string{"moby"}},
		{[]string{"zoo:bible"}, []string{"bible"}},
		{[]string{"data/my notes.txt", "/abs/corpus.tar.txt", "plain"}, []string{"my notes", "corpus.tar", "plain"}},
		{[]string{"zoo:moby/validation", "zoo:moby/test", "texts/moby.txt"}, []string{"moby", "moby-2", "moby-3"}},
		{[]string{"a/x.txt", "zoo:sotu", "b/x.md"}, []string{"x", "sotu", "x-2"}},
		{nil, []string{}},
	}
	for _, tt := range tests {
		if got := TextNames(tt.refs); !slices.Equal(got, tt.want) {
			t.Errorf("TextNames(%q) = %q, want %q", tt.refs, got, tt.want)
		}
	}
}

func TestLoadTexts(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "moby.txt")
	if err := os.WriteFile(path, []byte("Call me Ishmael."), 0o644); err != nil {
		t.Fatal(err)
	}
	texts, err := LoadTexts([]string{"zoo:moby/test", path})
	if err != nil {
		t.Fatal(err)
	}
	bundled, err := zoo.Text("moby", zoo.Test)
	if err != nil {
		t.Fatal(err)
	}
	want := []Text{{Name: "moby", Content: bundled}, {Name: "moby-2", Content: "Call me Ishmael."}}
	if !slices.Equal(texts, want) {
		t.Fatalf("got %d texts %q…, want %q…", len(texts), texts[0].Name, want[0].Name)
	}

	missing := filepath.Join(dir, "absent.txt")
	if _, err := LoadTexts([]string{missing}); err == nil || !strings.Contains(err.Error(), missing) {
		t.Errorf("missing file: %v", err)
	}
	if _, err := LoadTexts([]string{"zoo:atlantis"}); err == nil || !strings.Contains(err.Error(), "atlantis") {
		t.Errorf("unknown bundled text: %v", err)
	}
}
