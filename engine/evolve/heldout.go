package evolve

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime/debug"

	"github.com/google/renameio/v2"

	"github.com/evomerge/evomerge/engine/dist"
	"github.com/evomerge/evomerge/engine/eval"
)

// The held-out cache. The final comparison scores every window of the
// test texts for every source, the base and the uniform average — the
// same models in every run over the same sources, and most of its time.
// With Options.HeldOutCache set (the CLI sets the user cache directory's
// evomerge/heldout), their ModelScores are kept there, one JSON file per
// model, keyed by the sha256 of the model file(s) — for the uniform
// average, of every source, with its output type and tokenizer source —
// and of everything else that decides the numbers: the test texts'
// contents, the window settings, the coherence settings and the sha256 of
// the model that judges coherence, the generation prompt, and this build's
// revision (another llama.cpp may score differently) — a build without a
// clean revision (go test, a modified tree) keeps no cache. The best
// model is always scored afresh. A damaged or unreadable entry is scored
// again.

// heldOutCache is a run's view of the cache (nil: none).
type heldOutCache struct {
	dir  string
	salt string
}

// newHeldOutCache is the cache in dir for this run's test texts and
// settings, for the build revision (none without one); reference is the
// model that judges coherence.
func newHeldOutCache(dir string, tests []eval.Text, settings, reference, revision string) (*heldOutCache, error) {
	if dir == "" || revision == "" {
		return nil, nil
	}
	h := sha256.New()
	fmt.Fprintf(h, "%s\n", settings)
	for _, t := range tests {
		fmt.Fprintf(h, "%s %x\n", t.Name, sha256.Sum256([]byte(t.Content)))
	}
	ref, err := dist.FileSHA256(reference)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(h, "reference %s\nbuild %s\n", ref, revision)
	return &heldOutCache{dir: dir, salt: hex.EncodeToString(h.Sum(nil))}, nil
}

// key names the entry of a model made from files (one file for a source,
// every source for the uniform average) by what (its kind and recipe
// settings).
func (c *heldOutCache) key(what string, files []string) (string, error) {
	h := sha256.New()
	fmt.Fprintf(h, "%s\n%s\n", c.salt, what)
	for _, f := range files {
		sum, err := dist.FileSHA256(f)
		if err != nil {
			return "", err
		}
		fmt.Fprintf(h, "%s\n", sum)
	}
	return hex.EncodeToString(h.Sum(nil))[:32], nil
}

// load returns the entry of key, if there is a readable one (none from a
// nil cache or for the empty key).
func (c *heldOutCache) load(key string) (ModelScore, bool) {
	var ms ModelScore
	if c == nil || key == "" {
		return ms, false
	}
	raw, err := os.ReadFile(filepath.Join(c.dir, key+".json"))
	if err != nil || json.Unmarshal(raw, &ms) != nil || len(ms.Perplexity) == 0 {
		return ModelScore{}, false
	}
	return ms, true
}

// store writes the entry of key (whole or not at all; nothing for a nil
// cache or the empty key).
func (c *heldOutCache) store(key string, ms ModelScore) error {
	if c == nil || key == "" {
		return nil
	}
	raw, err := json.Marshal(ms)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(c.dir, 0o755); err != nil {
		return err
	}
	return renameio.WriteFile(filepath.Join(c.dir, key+".json"), raw, 0o644)
}

// buildRevision is this build's VCS revision ("" when it has none or was
// built from a modified tree).
func buildRevision() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return ""
	}
	rev := ""
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			if s.Value == "true" {
				return ""
			}
		}
	}
	return rev
}
