package cli

import (
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/evomerge/evomerge/engine/config"
	"github.com/evomerge/evomerge/engine/eval"
	"github.com/evomerge/evomerge/engine/evolve"
	"github.com/evomerge/evomerge/engine/format"
)

// logRun returns a sink that records a run's events in the log and passes
// each on to next: enough to diagnose a run from its log file alone — its
// start (the configuration's digest, each source with its sha256, the
// hardware), each generation, every candidate that failed or was skipped
// with the reason, the engine's messages, the result. Worker crashes and
// restarts are logged by the pool, hub downloads by the resolver.
//
// The sources are hashed beside the run (a large model takes seconds);
// the end of the run waits for their lines.
func logRun(cfg config.Config, po eval.PoolOptions, next evolve.Sink) evolve.Sink {
	var hashed chan struct{}
	return func(ev evolve.Event) {
		switch e := ev.(type) {
		case evolve.RunStarted:
			// The digest of the configuration the run keeps in its
			// directory (the models as resolved), or of the one given.
			digest := "unknown"
			if raw, err := os.ReadFile(filepath.Join(e.OutputDir, "config.toml")); err == nil {
				digest = fmt.Sprintf("%x", sha256.Sum256(raw))
			} else if raw, err := cfg.Encode(); err == nil {
				digest = fmt.Sprintf("%x", sha256.Sum256(raw))
			}
			slog.Info("run started", "dir", e.OutputDir, "resumed", e.Resumed, "optimizer", e.Optimizer, "seed", e.Seed,
				"population", e.Population, "generations", e.Generations, "budget", e.Budget,
				"techniques", strings.Join(e.Techniques, ","), "texts", strings.Join(e.Texts, ","), "config_sha256", digest)
			po := po.Sized(cfg.Hardware.Workers, cfg.Hardware.Threads, cfg.Hardware.GPULayersN())
			slog.Info("hardware", "workers", po.Workers, "threads_per_worker", po.Threads, "gpu_layers", po.GPULayers,
				"device", describeDevice(po), "cpus", runtime.NumCPU(), "platform", runtime.GOOS+"/"+runtime.GOARCH)
			hashed = make(chan struct{})
			go func(names, files []string) {
				defer close(hashed)
				for i, name := range names {
					logSource(name, files[i])
				}
			}(e.Sources, e.Files)
		case evolve.GenerationDone:
			slog.Info("generation done", "generation", e.Generation, "best", format.Fitness(e.Best), "best_id", e.BestID,
				"generation_best", format.Fitness(e.GenBest), "mean", format.Fitness(e.Mean), "worst", format.Fitness(e.Worst),
				"evaluations", e.Evaluations, "stalled", e.Stalled, "elapsed", e.Elapsed.Round(1e6))
		case evolve.CandidateScored:
			switch e.Status {
			case evolve.StatusFailed:
				slog.Warn("candidate failed", "id", e.Candidate.ID, "recipe", e.Candidate.Summary, "err", e.Err)
			case evolve.StatusSkipped:
				slog.Info("candidate skipped", "id", e.Candidate.ID, "reason", e.Err)
			default:
				slog.Debug("candidate scored", "id", e.Candidate.ID, "status", e.Status, "fitness", format.Fitness(e.Fitness),
					"recipe", e.Candidate.Summary)
			}
		case evolve.Log:
			slog.Log(context.Background(), logLevel(e.Level), e.Message)
		case evolve.Paused:
			slog.Info("run paused", "paused", e.Paused)
		case evolve.Finished:
			if hashed != nil {
				<-hashed
			}
			switch r := e.Result; {
			case e.Err != nil:
				slog.Error("run failed", "reason", e.Reason, "err", e.Err, "elapsed", e.Elapsed.Round(1e6))
			case r != nil:
				slog.Info("run finished", "reason", r.Reason, "best", r.Best.ID, "fitness", format.Fitness(r.BestFitness),
					"recipe", r.Best.Summary, "evaluations", r.Evaluations, "skipped", len(r.Skipped),
					"best_model", r.BestModel, "best_recipe", r.BestRecipe, "elapsed", r.Elapsed.Round(1e6))
			}
		}
		next(ev)
	}
}

// logSource logs a model file's size and sha256.
func logSource(name, path string) {
	f, err := os.Open(path)
	if err != nil {
		slog.Warn("source", "name", name, "file", path, "err", err)
		return
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		slog.Warn("source", "name", name, "file", path, "err", err)
		return
	}
	slog.Info("source", "name", name, "file", path, "bytes", n, "sha256", fmt.Sprintf("%x", h.Sum(nil)))
}

// logLevel is the slog level of an engine log event's level.
func logLevel(level string) slog.Level {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return slog.LevelInfo
	}
	return l
}
