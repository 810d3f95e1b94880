package cli

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/evomerge/evomerge/engine/format"
	"github.com/evomerge/evomerge/engine/hub"
	"github.com/evomerge/evomerge/engine/llm"
	"github.com/evomerge/evomerge/engine/merge"
	"github.com/evomerge/evomerge/engine/modelset"
)

func newMergeCmd() *cobra.Command {
	var out, outType string
	var dryRun bool
	var workers, threads int
	cmd := &cobra.Command{
		Use:   "merge RECIPE.toml|mergekit.yml -o OUT.gguf",
		Short: "Merge models once, from an evomerge recipe or a mergekit config",
		Long: `Merge models once. The recipe is evomerge's TOML (as written by a tournament's
best-recipe.toml) or a mergekit YAML config whose models are GGUF files or
Hugging Face references. Methods (evomerge-tui --help describes them):
` + wrapWords(merge.RecipeMethods(), 80) + `.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			r, err := merge.LoadRecipe(args[0])
			if err != nil {
				return err
			}
			if outType != "" {
				r.OutType = outType
			}
			if err := resolveRecipeModels(cmd.Context(), r, hub.NewResolver()); err != nil {
				return err
			}
			codec := llm.Codec{}
			plan, err := merge.NewPlan(r, merge.PlanOptions{Codec: codec})
			if err != nil {
				return err
			}
			defer plan.Close()
			w := cmd.OutOrStdout()
			if dryRun {
				fmt.Fprint(w, plan.DryRun())
				return nil
			}
			if out == "" {
				return fmt.Errorf("-o OUT.gguf is required (or --dry-run)")
			}
			for _, warn := range plan.Warnings {
				fmt.Fprintln(cmd.ErrOrStderr(), "warning:", warn)
			}
			bar := newLineProgress(os.Stderr, "merging")
			st, err := plan.Execute(cmd.Context(), out, merge.ExecOptions{Codec: codec, Threads: threads, Workers: workers, Progress: func(p merge.Progress) {
				bar.update(float64(p.Bytes), float64(p.TotalBytes), fmt.Sprintf("%d/%d %s", p.Done, p.Total, p.Tensor))
			}})
			bar.done()
			if err != nil {
				return err
			}
			secs := st.Duration.Seconds()
			fmt.Fprintf(w, "wrote %s: %d tensors, %s in, %s out, %.2fs (%.0f MB/s of input)\n", out, st.Tensors,
				format.Bytes(st.InputBytes), format.Bytes(st.OutputBytes), secs, float64(st.InputBytes)/1e6/max(secs, 1e-9))
			return nil
		},
	}
	cmd.Flags().StringVarP(&out, "output", "o", "", "output GGUF file (written atomically)")
	cmd.Flags().StringVar(&outType, "out-type", "", "override the recipe's out_type (keep, f32, f16, bf16, q8_0, q4_k, ...)")
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "print the plan without merging")
	cmd.Flags().IntVar(&threads, "threads", 0, "CPU threads the merge computes on (default: all CPUs)")
	cmd.Flags().IntVar(&workers, "workers", 0, "tensors in flight (default: the threads)")
	return cmd
}

// resolveRecipeModels turns Hugging Face and zoo references in a recipe (and its
// sub-recipes) into local files, downloading them when needed.
func resolveRecipeModels(ctx context.Context, r *merge.Recipe, res *hub.Resolver) error {
	resolve := func(m *string) error {
		if *m == "" || r.Sources[*m] != nil || hub.IsLocalPath(*m) {
			return nil
		}
		start := time.Now()
		bar := newLineProgress(os.Stderr, "downloading")
		res.Progress = func(file string, done, total int64) { bar.update(float64(done), float64(total), file) }
		p, err := modelset.Resolver(res.Resolve)(ctx, *m)
		bar.done()
		if err != nil {
			return fmt.Errorf("model %s: %w", *m, err)
		}
		if d := time.Since(start); d > time.Second {
			fmt.Fprintf(os.Stderr, "resolved %s → %s (%.1fs)\n", *m, p, d.Seconds())
		}
		*m = p
		return nil
	}
	if err := resolve(&r.Base); err != nil {
		return err
	}
	for i := range r.Models {
		if err := resolve(&r.Models[i].Model); err != nil {
			return err
		}
	}
	for i := range r.Slices {
		for j := range r.Slices[i].Sources {
			if err := resolve(&r.Slices[i].Sources[j].Model); err != nil {
				return err
			}
		}
	}
	for i := range r.Layers {
		if err := resolve(&r.Layers[i].Model); err != nil {
			return err
		}
	}
	for _, s := range r.Sources {
		if err := resolveRecipeModels(ctx, s, res); err != nil {
			return err
		}
	}
	return nil
}
