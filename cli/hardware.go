package cli

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/evomerge/evomerge/engine/config"
	"github.com/evomerge/evomerge/engine/eval"
)

// hardwareFlags choose where evaluation runs.
type hardwareFlags struct {
	gpuLayers string
	threads   int
	workers   int
}

func (h *hardwareFlags) register(cmd *cobra.Command) {
	cmd.Flags().StringVar(&h.gpuLayers, "gpu-layers", "", `layers offloaded to a GPU: "auto" (all, when a GPU backend is found) or a number (default: config, else auto)`)
	cmd.Flags().IntVar(&h.threads, "threads", 0, "CPU threads in total (default: config, else all cores)")
	cmd.Flags().IntVar(&h.workers, "workers", 0, "evaluation worker processes (default: config, else 1)")
}

// apply puts the flags that were given into h.
func (h hardwareFlags) apply(c *config.Hardware) {
	if h.gpuLayers != "" {
		c.GPULayers = h.gpuLayers
	}
	if h.threads > 0 {
		c.Threads = h.threads
	}
	if h.workers > 0 {
		c.Workers = h.workers
	}
}

// gpuLayersN parses --gpu-layers ("" and "auto" → −1).
func (h hardwareFlags) gpuLayersN() (int, error) {
	if h.gpuLayers == "" || h.gpuLayers == "auto" {
		return -1, nil
	}
	n, err := strconv.Atoi(h.gpuLayers)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("--gpu-layers %q: use auto or a number ≥ 0", h.gpuLayers)
	}
	return n, nil
}

// poolOptions are the worker-pool settings for this executable.
func (h hardwareFlags) poolOptions(logLevel string) (eval.PoolOptions, error) {
	gl, err := h.gpuLayersN()
	if err != nil {
		return eval.PoolOptions{}, err
	}
	return eval.PoolOptions{Env: workerEnv(), LogLevel: logLevel}.Sized(h.workers, h.threads, gl), nil
}

// newPool starts the evaluation workers these flags describe.
func (h hardwareFlags) newPool(ctx context.Context) (*eval.Pool, error) {
	po, err := h.poolOptions("warn")
	if err != nil {
		return nil, err
	}
	return eval.NewPool(ctx, po)
}

// workerEnv is the environment a worker needs for GPU backends. llama.cpp
// loads backends (libggml-cuda.so, built by `make` when nvcc is found)
// from OLLAMA_LIBRARY_PATH; the CUDA runtime must be on LD_LIBRARY_PATH
// before the process starts, which is why workers get it at spawn time.
// Each backend directory may hold ld_library_path, the runtime library
// directories it was linked against (one per line, written by
// scripts/gpu-backend.sh).
func workerEnv() []string {
	exe, err := os.Executable()
	if err != nil {
		return nil
	}
	return backendEnv(filepath.Join(filepath.Dir(exe), "..", "lib", "ollama"), os.Getenv("LD_LIBRARY_PATH"))
}

// backendEnv is workerEnv for the backends under libDir.
func backendEnv(libDir, ldLibraryPath string) []string {
	if abs, err := filepath.Abs(libDir); err == nil {
		libDir = abs
	}
	entries, err := os.ReadDir(libDir)
	if err != nil {
		return nil
	}
	var libPaths, ld []string
	for _, e := range entries {
		if e.IsDir() && (strings.HasPrefix(e.Name(), "cuda") || strings.HasPrefix(e.Name(), "rocm")) {
			dir := filepath.Join(libDir, e.Name())
			libPaths = append(libPaths, dir)
			ld = append(ld, dir)
			if b, err := os.ReadFile(filepath.Join(dir, "ld_library_path")); err == nil {
				for _, l := range strings.Split(string(b), "\n") {
					if l = strings.TrimSpace(l); l != "" && !slices.Contains(ld, l) {
						ld = append(ld, l)
					}
				}
			}
		}
	}
	if len(libPaths) == 0 {
		return nil
	}
	ld = append(ld, libDir)
	for _, d := range []string{"/usr/local/cuda/lib64", "/usr/local/cuda/targets/x86_64-linux/lib"} {
		if _, err := os.Stat(d); err == nil && !slices.Contains(ld, d) {
			ld = append(ld, d)
		}
	}
	if ldLibraryPath != "" {
		ld = append(ld, ldLibraryPath)
	}
	return []string{
		"OLLAMA_LIBRARY_PATH=" + strings.Join(append(libPaths, libDir), string(os.PathListSeparator)),
		"LD_LIBRARY_PATH=" + strings.Join(ld, string(os.PathListSeparator)),
	}
}
