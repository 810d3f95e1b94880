package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/evomerge/evomerge/engine/eval"
)

type genOptions struct {
	prompt string
	opt    eval.GenerateOptions
	stats  bool
}

func (o *genOptions) register(cmd *cobra.Command) {
	f := cmd.Flags()
	d := eval.DefaultSampling()
	f.StringVar(&o.prompt, "prompt", "", "prompt to continue")
	f.IntVar(&o.opt.MaxTokens, "max-tokens", 128, "tokens to generate at most")
	f.Float64Var(&o.opt.Temperature, "temperature", d.Temperature, "sampling temperature (0 = greedy, deterministic)")
	f.IntVar(&o.opt.TopK, "top-k", d.TopK, "keep the k likeliest tokens (0 = off)")
	f.Float64Var(&o.opt.TopP, "top-p", d.TopP, "nucleus sampling threshold (1 = off)")
	f.Float64Var(&o.opt.MinP, "min-p", d.MinP, "drop tokens below min-p × the top probability (0 = off)")
	f.Float64Var(&o.opt.RepeatPenalty, "repeat-penalty", d.RepeatPenalty, "penalty for tokens among the last 64 (1 = off)")
	f.Uint64Var(&o.opt.Seed, "seed", d.Seed, "sampling seed")
	f.BoolVar(&o.stats, "stats", false, "print token counts and speed to stderr")
}

func (o *genOptions) execute(cmd *cobra.Command, model string, hw hardwareFlags) error {
	ctx := cmd.Context()
	path, err := resolveModel(ctx, model)
	if err != nil {
		return err
	}
	if err := checkModelFile(path); err != nil {
		return err
	}
	if err := o.opt.Validate(); err != nil {
		return err
	}
	pool, err := hw.newPool(ctx)
	if err != nil {
		return err
	}
	defer pool.Close()
	w := cmd.OutOrStdout()
	fmt.Fprint(w, o.prompt)
	res, err := pool.Generate(ctx, path, o.prompt, o.opt, func(s string) { fmt.Fprint(w, s) })
	fmt.Fprintln(w)
	if err != nil {
		return err
	}
	if o.stats {
		fmt.Fprintf(cmd.ErrOrStderr(), "%d prompt tokens (%.0f/s), %d generated (%.1f/s), stopped by %s\n",
			res.PromptTokens, res.PromptPerSecond, res.Tokens, res.TokensPerSecond, res.StopReason)
	}
	return nil
}
