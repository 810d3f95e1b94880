package cli

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/evomerge/evomerge/engine/bench"
	"github.com/evomerge/evomerge/zoo"
)

func newBenchCmd() *cobra.Command {
	var out, skip, model string
	var modelMB int
	var bareLoop bool
	var verdictSeeds []uint
	var hw hardwareFlags
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Measure merge and evaluation throughput, each against a baseline from the same run",
		Long: `Measure what a tournament spends its time on, each figure next to a baseline
measured in the same run: merges (linear, TIES on F16 and Q8_0 models, and a
TIES candidate after another from the same sources) against the I/O floor and
the memory bandwidth, with peak memory; evaluation through the worker pool against a
bare llama.cpp decode loop, 2 workers against 1, GPU against CPU when a GPU
backend is present; one candidate's turnaround; the engine's own overhead.
Prints a table and writes JSON (the run report includes it when it sits in
the run's directory as bench.json).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if lvl := slog.Default().Enabled(cmd.Context(), slog.LevelDebug); !lvl {
				// llama.cpp's model-loading chatter is logged at info level.
				slog.SetDefault(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))
			}
			exe, err := os.Executable()
			if err != nil {
				return err
			}
			po, err := hw.poolOptions("warn")
			if err != nil {
				return err
			}
			if model == "" {
				model = zoo.Model(zoo.Base)
			}
			if bareLoop {
				r, err := bench.BareDecode(model, po.Threads, po.GPULayers)
				if err != nil {
					return err
				}
				return json.NewEncoder(cmd.OutOrStdout()).Encode(r)
			}
			opt := bench.Options{Exe: exe, Dir: os.TempDir(), ModelMB: modelMB, Model: model, Threads: hw.threads,
				GPULayers: po.GPULayers, Env: po.Env, Skip: map[string]bool{}, Log: cmd.ErrOrStderr()}
			opt.HeldOutCache = heldOutCacheDir()
			for _, seed := range verdictSeeds {
				opt.VerdictSeeds = append(opt.VerdictSeeds, uint64(seed))
			}
			for _, s := range strings.Split(skip, ",") {
				if s = strings.TrimSpace(s); s != "" {
					opt.Skip[s] = true
				}
			}
			res, err := bench.Run(cmd.Context(), opt)
			if err != nil {
				return err
			}
			res.Table(cmd.OutOrStdout())
			if out != "" {
				if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
					return err
				}
				if err := res.WriteJSON(out); err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "\nwrote %s\n", out)
			}
			return nil
		},
	}
	cmd.Flags().StringVarP(&out, "output", "o", "bench.json", "JSON file to write (empty: none)")
	cmd.Flags().IntVar(&modelMB, "model-mb", 256, "size of each generated model in the merge benchmarks (F16 MB)")
	cmd.Flags().StringVar(&model, "model", "", "GGUF model for the evaluation benchmarks (default: the zoo's stories15M)")
	cmd.Flags().StringVar(&skip, "skip", "", "comma-separated groups to skip: merge, eval, turnaround, inplace, overhead, distributed")
	cmd.Flags().UintSliceVar(&verdictSeeds, "verdict-seeds", nil, "also run the default tournament (make run's) once per seed, e.g. 42,1,2, and compare its winner with the uniform average on every test window (minutes per seed)")
	cmd.Flags().BoolVar(&bareLoop, "bare-loop", false, "run only the bare llama.cpp decode loop and print its tokens/s as JSON (the GPU row runs it as a child)")
	_ = cmd.Flags().MarkHidden("bare-loop")
	hw.register(cmd)
	return cmd
}
