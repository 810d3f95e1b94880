package cli

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"

	"github.com/spf13/cobra"

	"github.com/evomerge/evomerge/engine/config"
	"github.com/evomerge/evomerge/engine/eval"
	"github.com/evomerge/evomerge/engine/evolve"
	"github.com/evomerge/evomerge/engine/hub"
	"github.com/evomerge/evomerge/engine/llm"
	"github.com/evomerge/evomerge/engine/merge"
	"github.com/evomerge/evomerge/engine/report"
	"github.com/evomerge/evomerge/tui"
)

// backend implements tui.Backend with the real engine: tournaments through
// evolve.Run, chat through a worker pool of its own (so a chat never waits
// for the tournament's workers), candidates merged into temporary files.
type backend struct {
	opt      evolve.Options
	poolOpts eval.PoolOptions // the chat's pool
	hw       config.Hardware  // the configuration's hardware, at start

	mu      sync.Mutex
	pool    *eval.Pool
	tmpDir  string
	merged  map[string]string // recipe text → materialised file
	devDesc string
}

// newBackend sizes the chat's pool from hw by the rule the tournament's
// pool follows (eval.PoolOptions.Sized): its one worker gets the configured
// thread budget and GPU offload. Left to opt.PoolOptions' zero values, a
// chat would run on the CPU of a GPU machine, and on a loaded machine its
// threads would spin against the tournament's (~2 tokens/s on 2 busy cores
// instead of ~60).
func newBackend(opt evolve.Options, hw config.Hardware) *backend {
	po := opt.PoolOptions.Sized(1, hw.Threads, hw.GPULayersN())
	return &backend{opt: opt, poolOpts: po, hw: hw, merged: map[string]string{}}
}

// Run runs a tournament (or resumes the one in cfg.Output.Dir) and writes
// its report.
func (b *backend) Run(ctx context.Context, cfg config.Config, resume bool, sink evolve.Sink, ctl *evolve.Control) (*evolve.Result, error) {
	opt := b.opt
	opt.Sink, opt.Control, opt.Resume = logRun(cfg, opt.PoolOptions, sink), ctl, resume
	res, err := evolve.Run(ctx, cfg, opt)
	if err != nil {
		return res, err
	}
	if path, rerr := report.Write(res.OutputDir); rerr == nil {
		sink(evolve.Log{Level: "info", Message: "report: " + path})
	} else {
		sink(evolve.Log{Level: "warn", Message: fmt.Sprintf("the report was not written: %v; `evomerge-tui report %s` writes it", rerr, res.OutputDir)})
	}
	return res, nil
}

// Materialize merges a candidate's recipe into a temporary GGUF (once per
// recipe) for the chat pane.
func (b *backend) Materialize(ctx context.Context, recipe string) (string, error) {
	b.mu.Lock()
	if p, ok := b.merged[recipe]; ok {
		b.mu.Unlock()
		return p, nil
	}
	if b.tmpDir == "" {
		dir, err := os.MkdirTemp("", "evomerge-chat-")
		if err != nil {
			b.mu.Unlock()
			return "", err
		}
		b.tmpDir = dir
	}
	path := filepath.Join(b.tmpDir, fmt.Sprintf("candidate-%d.gguf", len(b.merged)))
	b.mu.Unlock()
	r, err := merge.ParseRecipe(recipe)
	if err != nil {
		return "", err
	}
	if err := resolveRecipeModels(ctx, r, hub.NewResolver()); err != nil {
		return "", err
	}
	if _, _, err := merge.Run(ctx, r, path, llm.Codec{}, merge.ExecOptions{Codec: llm.Codec{}}); err != nil {
		return "", err
	}
	b.mu.Lock()
	b.merged[recipe] = path
	b.mu.Unlock()
	return path, nil
}

// Generate streams a continuation from a model file or reference.
func (b *backend) Generate(ctx context.Context, model, prompt string, opt eval.GenerateOptions, onText func(string)) (eval.GenerateResult, error) {
	path, err := resolveModel(ctx, model)
	if err != nil {
		return eval.GenerateResult{}, err
	}
	pool, err := b.chatPool(ctx)
	if err != nil {
		return eval.GenerateResult{}, err
	}
	return pool.Generate(ctx, path, prompt, opt, onText)
}

func (b *backend) chatPool(ctx context.Context) (*eval.Pool, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.pool != nil {
		return b.pool, nil
	}
	p, err := eval.NewPool(ctx, b.poolOpts)
	if err != nil {
		return nil, err
	}
	b.pool = p
	return p, nil
}

// Device describes where evaluation runs, for the status bar: the
// tournament's workers, with the threads each gets.
func (b *backend) Device() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.devDesc == "" {
		b.devDesc = describeDevice(b.poolOpts.Sized(b.hw.Workers, b.hw.Threads, b.hw.GPULayersN()))
	}
	return b.devDesc
}

func (b *backend) close() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.pool != nil {
		b.pool.Close()
	}
	if b.tmpDir != "" {
		os.RemoveAll(b.tmpDir)
	}
}

// describeDevice says CPU or GPU without loading llama.cpp in this process
// (the GPU backends are looked up the way workers will find them), and
// names a GPU the machine has but the workers will not use. Once a run
// starts, the engine's placement (measured in a worker) replaces it.
func describeDevice(po eval.PoolOptions) string {
	if len(po.Env) > 0 && po.GPULayers != 0 {
		return fmt.Sprintf("GPU backend found · %d CPU threads/worker", po.Threads)
	}
	d := fmt.Sprintf("CPU · %d threads/worker", po.Threads)
	if len(eval.SystemGPUs()) > 0 {
		if po.GPULayers == 0 {
			return d + " · GPU unused (--gpu-layers 0)"
		}
		return d + " · GPU unused (no GPU backend built)"
	}
	return d
}

// runTUI opens the workbench; start begins the tournament at once.
func runTUI(ctx context.Context, cfg config.Config, opt evolve.Options, configPath string, start bool) error {
	b := newBackend(opt, cfg.Hardware)
	defer b.close()
	return tui.Run(ctx, tui.Options{Config: cfg, ConfigPath: configPath, Backend: b, StartRun: start})
}

// workbench is evomerge-tui without an action: the TUI, with the config
// given by --config (or the defaults) and the run's flags (--model1..3,
// --base, --output, --optimizer, ..., the hardware flags) applied, not yet
// running.
func workbench(cmd *cobra.Command, o runOptions, hw hardwareFlags) error {
	if !isTerminal() {
		return fmt.Errorf("the workbench needs a terminal; without one use --run --headless (see --help)")
	}
	cfg, err := o.loadConfig(cmd.Flags(), hw)
	if err != nil {
		return err
	}
	return runTUI(cmd.Context(), cfg, engineOptions(cfg, false), o.configPath, false)
}

// generateConfig runs the configuration forms standalone; without a
// terminal they run in accessible mode (plain prompts on stdin/stdout).
func generateConfig(cmd *cobra.Command, path string) error {
	return tui.GenerateConfig(cmd.InOrStdin(), cmd.OutOrStdout(), path, !isTerminal())
}
