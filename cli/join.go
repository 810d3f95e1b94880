package cli

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/evomerge/evomerge/engine/dist"
	"github.com/evomerge/evomerge/engine/eval"
)

// joinFlags are `worker --join`'s.
type joinFlags struct {
	url      string
	slots    int
	threads  int
	gpu      int
	cacheDir string
	tlsCA    string
}

// join serves the runs of a coordinator (or a NATS server) until ctx
// ends: one evaluation worker process per slot, the run's sources
// resolved on this machine, one job per free slot.
func join(ctx context.Context, f joinFlags) error {
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	nc, err := dist.DialWorker(f.url, "evomerge worker", f.tlsCA)
	if err != nil {
		return err
	}
	defer nc.Close()
	cache := f.cacheDir
	if cache == "" {
		if d, err := os.UserCacheDir(); err == nil {
			cache = filepath.Join(d, "evomerge", "sources")
		}
	}
	logf := func(format string, args ...any) { fmt.Fprintf(os.Stderr, "evomerge worker: "+format+"\n", args...) }
	fmt.Fprintf(os.Stderr, "evomerge worker: joined %s with %d slots; waiting for a run\n", dist.Redact(f.url), max(1, f.slots))
	return dist.Join(ctx, nc, dist.JoinOptions{
		HostOptions: dist.HostOptions{Slots: f.slots, Logf: logf},
		CacheDir:    cache,
		Start: func(ctx context.Context, info dist.RunInfo, prep eval.PrepareRequest) (dist.Started, error) {
			pool, err := eval.NewPool(ctx, eval.PoolOptions{Command: []string{exe, "worker"}, Env: workerEnv()}.Sized(f.slots, f.threads, f.gpu))
			if err != nil {
				return dist.Started{}, err
			}
			if _, err := pool.Prepare(ctx, prep); err != nil {
				pool.Close()
				return dist.Started{}, fmt.Errorf("preparing the run's sources: %w", err)
			}
			st := dist.Started{Exec: dist.PoolExecutor{Pool: pool, Paths: sourcePaths(prep)}, Stop: pool.Close, Device: "CPU"}
			if pl, err := pool.Placement(ctx, prep.Template); err == nil {
				st.Device = pl.Short()
				for _, g := range pl.GPUs {
					st.VRAM += int64(g.MemoryTotal)
				}
			}
			return st, nil
		},
	})
}

// sourcePaths maps the run's source names to this machine's files.
func sourcePaths(prep eval.PrepareRequest) map[string]string {
	m := map[string]string{}
	for _, s := range prep.Sources {
		m[s.Name] = s.Path
	}
	return m
}
