package cli

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/evomerge/evomerge/engine/hub"
	"github.com/evomerge/evomerge/engine/modelset"
)

// resolveModel turns a model argument (zoo:NAME, a path or a Hugging Face
// reference) into a local file, with a download bar when one is needed.
// Its errors name the argument.
func resolveModel(ctx context.Context, ref string) (string, error) {
	p, err := resolveRef(ctx, ref)
	if err != nil {
		return "", fmt.Errorf("model %s: %w", ref, err)
	}
	return p, nil
}

// resolveRef is resolveModel for callers that name the model themselves
// (a run's models: package modelset).
func resolveRef(ctx context.Context, ref string) (string, error) {
	res := hub.NewResolver()
	bar := newLineProgress(os.Stderr, "downloading")
	res.Progress = func(file string, done, total int64) { bar.update(float64(done), float64(total), file) }
	start := time.Now()
	return modelset.Resolver(func(ctx context.Context, ref string) (string, error) {
		info, err := res.ResolveInfo(ctx, ref)
		bar.done()
		if err == nil && !info.Local && time.Since(start) > time.Second {
			fmt.Fprintf(os.Stderr, "%s → %s\n", ref, info.Path)
		}
		return info.Path, err
	})(ctx, ref)
}
