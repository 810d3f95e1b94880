package cli

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/evomerge/evomerge/engine/hub"
)

// resolveModel turns a model argument (path or Hugging Face reference)
// into a local file, with a download bar when one is needed.
func resolveModel(ctx context.Context, ref string) (string, error) {
	if !hub.IsHubRef(ref) {
		if _, err := os.Stat(ref); err != nil {
			return "", fmt.Errorf("model %s: %w", ref, err)
		}
		return ref, nil
	}
	res := hub.NewResolver()
	bar := newLineProgress(os.Stderr, "downloading")
	res.Progress = func(file string, done, total int64) { bar.update(float64(done), float64(total), file) }
	start := time.Now()
	p, err := res.Resolve(ctx, ref)
	bar.done()
	if err != nil {
		return "", fmt.Errorf("model %s: %w", ref, err)
	}
	if time.Since(start) > time.Second {
		fmt.Fprintf(os.Stderr, "%s → %s\n", ref, p)
	}
	return p, nil
}
