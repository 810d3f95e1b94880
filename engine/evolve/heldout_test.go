package evolve

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/evomerge/evomerge/engine/eval"
)

// TestHeldOutCache: an entry stored is loaded back whole; its key changes
// with a model file's contents, the test texts, the settings, the
// coherence judge and the build; no revision means no cache.
func TestHeldOutCache(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	model, ref := write("a.gguf", "weights"), write("ref.gguf", "judge")
	tests := []eval.Text{{Name: "bible", Content: "In the beginning"}}
	cacheDir := filepath.Join(dir, "cache")
	c, err := newHeldOutCache(cacheDir, tests, "ctx=256", ref, "abc")
	if err != nil || c == nil {
		t.Fatalf("cache: %v", err)
	}
	key, err := c.key("model", []string{model})
	if err != nil {
		t.Fatal(err)
	}
	ms := ModelScore{Name: "a", Kind: "source", Perplexity: map[string]float64{"bible": 12.5}, GeoMean: 12.5, Tokens: 127,
		Windows: map[string][]eval.WindowNLL{"bible": {{Index: 0, NLL: 320.8, Tokens: 127}}}, Coherence: 0.5, Sample: "x"}
	if _, ok := c.load(key); ok {
		t.Fatal("an empty cache has the entry")
	}
	if err := c.store(key, ms); err != nil {
		t.Fatal(err)
	}
	if got, ok := c.load(key); !ok || !reflect.DeepEqual(got, ms) {
		t.Errorf("loaded %+v (%v), stored %+v", got, ok, ms)
	}
	keyWith := func(tests []eval.Text, settings, ref, rev string) string {
		c, err := newHeldOutCache(cacheDir, tests, settings, ref, rev)
		if err != nil {
			t.Fatal(err)
		}
		k, err := c.key("model", []string{model})
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	if keyWith(tests, "ctx=256", ref, "abc") != key {
		t.Error("the same inputs give another key")
	}
	for what, k := range map[string]string{
		"text":     keyWith([]eval.Text{{Name: "bible", Content: "In the beginning God"}}, "ctx=256", ref, "abc"),
		"settings": keyWith(tests, "ctx=128", ref, "abc"),
		"judge":    keyWith(tests, "ctx=256", write("ref2.gguf", "another judge"), "abc"),
		"build":    keyWith(tests, "ctx=256", ref, "abd"),
	} {
		if k == key {
			t.Errorf("another %s gives the same key", what)
		}
	}
	write("a.gguf", "other weights")
	if k, _ := c.key("model", []string{model}); k == key {
		t.Error("another model file gives the same key")
	}
	if c, _ := newHeldOutCache(cacheDir, tests, "ctx=256", ref, ""); c != nil {
		t.Error("a build without a revision keeps a cache")
	}
	if _, ok := (*heldOutCache)(nil).load(key); ok {
		t.Error("a nil cache has entries")
	}
}
