package cli

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/evomerge/evomerge/engine/config"
	"github.com/evomerge/evomerge/engine/eval"
	"github.com/evomerge/evomerge/engine/evolve"
	"github.com/evomerge/evomerge/engine/format"
	"github.com/evomerge/evomerge/engine/llm"
	"github.com/evomerge/evomerge/engine/modelset"
	"github.com/evomerge/evomerge/engine/report"
)

type runOptions struct {
	configPath  string
	models      [3]string
	base        string
	headless    bool
	output      string
	resume      string
	optimizer   string
	generations int
	population  int
	seed        int64
}

func (o *runOptions) register(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringVar(&o.configPath, "config", "", "configuration file (default: the built-in defaults, see evomerge.toml.example)")
	for i := range o.models {
		f.StringVar(&o.models[i], fmt.Sprintf("model%d", i+1), "", fmt.Sprintf("source model %d: a GGUF path, zoo:NAME or Hugging Face reference (org/name[:QUANT], gpt2, a huggingface.co link); takes the place of the config's model %d", i+1, i+1))
	}
	f.StringVar(&o.base, "base", "", "base model: a GGUF path, zoo:NAME, Hugging Face reference, or the name of one of the models (default: the config's merge.base, else the base the models name in their metadata, else none)")
	f.BoolVar(&o.headless, "headless", false, "print progress lines instead of the TUI (automatic without a terminal)")
	f.StringVar(&o.output, "output", "", "output directory (default: the config's output.dir)")
	f.StringVar(&o.resume, "resume", "", "continue the run in DIR (its config.toml and history.jsonl)")
	f.StringVar(&o.optimizer, "optimizer", "", "override evolution.optimizer: ga, cmaes, nsga2, random")
	f.IntVar(&o.generations, "generations", 0, "override evolution.generations")
	f.IntVar(&o.population, "population", 0, "override evolution.population")
	f.Int64Var(&o.seed, "evolution-seed", -1, "override evolution.seed")
}

// runSettings are the flags that change what a run does; a resumed run
// is the run it was, so they cannot be combined with --resume.
var runSettings = []string{"config", "model1", "model2", "model3", "base", "output", "optimizer", "generations", "population", "evolution-seed"}

// loadConfig builds the effective configuration: file (or defaults, or the
// resumed run's config.toml), then the command-line overrides. flags says
// which were given.
func (o *runOptions) loadConfig(flags *pflag.FlagSet, hw hardwareFlags) (config.Config, error) {
	cfg := config.Default()
	var err error
	switch {
	case o.resume != "":
		for _, name := range runSettings {
			if flags.Changed(name) {
				return cfg, fmt.Errorf("--%s cannot change the run --resume continues (it runs with %s as it was); start a new run to change it", name, filepath.Join(o.resume, "config.toml"))
			}
		}
		if cfg, err = config.Load(filepath.Join(o.resume, "config.toml")); err != nil {
			return cfg, fmt.Errorf("--resume: %w", err)
		}
		cfg.Output.Dir = o.resume
		hw.apply(&cfg.Hardware) // where it runs is not part of the run
		return cfg, cfg.Validate().Err()
	case o.configPath != "":
		if cfg, err = config.Load(o.configPath); err != nil {
			return cfg, err
		}
	}
	o.applyModels(&cfg)
	if o.output != "" {
		cfg.Output.Dir = o.output
	}
	if o.optimizer != "" {
		cfg.Evolution.Optimizer = o.optimizer
	}
	if o.generations > 0 {
		cfg.Evolution.Generations = o.generations
	}
	if o.population > 0 {
		cfg.Evolution.Population = o.population
	}
	if o.seed >= 0 {
		cfg.Evolution.Seed = uint64(o.seed)
	}
	hw.apply(&cfg.Hardware)
	return cfg, cfg.Validate().Err()
}

// applyModels puts --model1..3 in the places of the configuration's
// sources 1..3 (appending when it has fewer) and --base in the place of
// its base. What they replace is gone; the configuration's other models
// stay, and when they are the zoo's defaults the run keeps only those
// that fit the models given (package modelset).
func (o *runOptions) applyModels(cfg *config.Config) {
	sources := cfg.Sources()
	place := func(name string) int {
		return slices.IndexFunc(cfg.Models, func(m config.Model) bool { return m.Name == name })
	}
	put := func(slot int, ref string) string {
		e := modelset.Entry(ref, func(name string) bool {
			j := place(name)
			return j >= 0 && j != slot
		})
		if slot >= 0 {
			cfg.Models[slot] = e
		} else {
			cfg.Models = append(cfg.Models, e)
		}
		return e.Name
	}
	for i, ref := range o.models {
		if ref == "" {
			continue
		}
		slot := -1
		if i < len(sources) {
			slot = place(sources[i].Name)
		}
		put(slot, ref)
	}
	if o.base == "" {
		return
	}
	if j := place(o.base); j >= 0 {
		cfg.Models[j].Fill = false
		cfg.Merge.Base = o.base
		return
	}
	slot := -1
	if cfg.Merge.Base != "" {
		slot = place(cfg.Merge.Base)
	}
	cfg.Merge.Base = put(slot, o.base)
}

// engineOptions are the evolve.Options every front end uses.
func engineOptions(cfg config.Config, resume bool) evolve.Options {
	return evolve.Options{
		Resume:       resume,
		Codec:        llm.Codec{},
		Resolve:      resolveRef,
		PoolOptions:  eval.PoolOptions{Env: workerEnv()},
		HeldOutCache: heldOutCacheDir(),
	}
}

// heldOutCacheDir keeps the held-out scores of a run's sources, base and
// uniform average for the next runs ("" when there is no cache directory).
func heldOutCacheDir() string {
	dir, err := os.UserCacheDir()
	if err != nil {
		return ""
	}
	return filepath.Join(dir, "evomerge", "heldout")
}

func (o *runOptions) execute(cmd *cobra.Command, hw hardwareFlags) error {
	cfg, err := o.loadConfig(cmd.Flags(), hw)
	if err != nil {
		return err
	}
	opt := engineOptions(cfg, o.resume != "")
	if !o.headless && isTerminal() {
		return runTUI(cmd.Context(), cfg, opt, o.configPath, true)
	}
	return runHeadless(cmd.Context(), cmd.OutOrStdout(), cfg, opt)
}

// runHeadless runs the tournament printing one line per evaluation and a
// summary per generation, then writes the report.
func runHeadless(ctx context.Context, w io.Writer, cfg config.Config, opt evolve.Options) error {
	p := &headlessPrinter{w: w}
	opt.Sink = logRun(cfg, opt.PoolOptions, p.event)
	res, err := evolve.Run(ctx, cfg, opt)
	if err != nil {
		return err
	}
	path, err := report.Write(res.OutputDir)
	if err != nil {
		// The tournament's outputs are complete (named above); the report
		// is a view of them that can be written again.
		fmt.Fprintf(w, "warning: the report was not written: %v\n  `evomerge-tui report %s` writes it\n", err, res.OutputDir)
		slog.Warn("the report was not written", "dir", res.OutputDir, "err", err)
		return nil
	}
	fmt.Fprintf(w, "report: %s\n", path)
	return nil
}

// headlessPrinter renders engine events as plain lines.
type headlessPrinter struct {
	w     io.Writer
	start time.Time
	total int
}

func (p *headlessPrinter) event(e evolve.Event) {
	switch e := e.(type) {
	case evolve.RunStarted:
		p.start, p.total = e.Time, e.Budget
		population := fmt.Sprintf(", population %d", e.Population)
		if e.Optimizer == "gradient" {
			population = "" // one centre per generation
		}
		fmt.Fprintf(p.w, "evomerge: %s%s, up to %d generations / %d evaluations, seed %d\n",
			evolve.OptimizerText(e.Optimizer, e.Tuned), population, e.Generations, e.Budget, e.Seed)
		writeModels(p.w, e)
		fmt.Fprintf(p.w, "techniques: %s\n", strings.Join(e.Techniques, ", "))
		for _, d := range e.Dropped {
			fmt.Fprintf(p.w, "  dropped %s: %s\n", d.Name, d.Reason)
		}
		fmt.Fprintf(p.w, "fitness texts: %s; output: %s\n", strings.Join(e.Texts, ", "), e.OutputDir)
		if e.Device.Workers > 0 {
			fmt.Fprintf(p.w, "device: %s\n", e.Device)
		}
		if e.Resumed > 0 {
			fmt.Fprintf(p.w, "resuming: %d evaluated candidates are replayed from history.jsonl\n", e.Resumed)
		}
	case evolve.GenerationStarted:
		fmt.Fprintf(p.w, "── generation %d: %d candidates\n", e.Generation, len(e.Candidates))
	case evolve.CandidateScored:
		c := e.Candidate
		switch e.Status {
		case evolve.StatusFailed:
			fmt.Fprintf(p.w, "  %-7s %-44s failed: %s\n", c.ID, clip(c.Summary, 44), e.Err)
		case evolve.StatusSkipped:
			fmt.Fprintf(p.w, "  %-7s %-44s skipped: %s\n", c.ID, clip(c.Summary, 44), e.Err)
		default:
			var ppl []string
			for _, k := range slices.Sorted(maps.Keys(e.Scores.Perplexity)) {
				ppl = append(ppl, k+" "+format.Perplexity(e.Scores.Perplexity[k]))
			}
			extra := ""
			if e.Status == evolve.StatusCached {
				extra = " (cached)"
			} else {
				extra = fmt.Sprintf(" merge %.1fs eval %.1fs", e.MergeTime.Seconds(), e.EvalTime.Seconds())
			}
			fmt.Fprintf(p.w, "  %-7s %-44s fitness %8s  ppl %s%s  [%d/%d]\n", c.ID, clip(c.Summary, 44), format.Fitness(e.Fitness),
				strings.Join(ppl, ", "), extra, e.Evaluation, p.total)
		}
	case evolve.GenerationDone:
		eta := ""
		if e.Evaluations > 0 && p.total > e.Evaluations {
			per := e.Elapsed / time.Duration(e.Evaluations)
			eta = fmt.Sprintf(", eta ≤ %s", (per * time.Duration(p.total-e.Evaluations)).Round(time.Second))
		}
		fmt.Fprintf(p.w, "   generation %d: best %s (%s), mean %s, worst %s; %d evaluations in %s%s\n",
			e.Generation, format.Fitness(e.Best), e.BestID, format.Fitness(e.Mean), format.Fitness(e.Worst), e.Evaluations, e.Elapsed.Round(time.Second), eta)
	case evolve.Log:
		if e.Level != "debug" {
			fmt.Fprintf(p.w, "  [%s] %s\n", e.Level, e.Message)
		}
	case evolve.Finished:
		if e.Result == nil {
			return
		}
		r := e.Result
		skipped := ""
		if len(r.Skipped) > 0 {
			skipped = fmt.Sprintf(" (%d candidates skipped)", len(r.Skipped))
		}
		fmt.Fprintf(p.w, "finished (%s) after %d evaluations in %s%s: best %s %s\n", r.Reason, r.Evaluations, r.Elapsed.Round(time.Second), skipped, r.Best.ID, r.Best.Summary)
		if len(r.Comparison) > 0 {
			writeComparison(p.w, r)
		}
		fmt.Fprintf(p.w, "wrote %s, %s, %s, %s\n", r.BestModel, r.BestRecipe, filepath.Join(r.OutputDir, "history.jsonl"), filepath.Join(r.OutputDir, "summary.json"))
	}
}

// writeModels prints the run's models (name, reference, shape), how the
// base was chosen, and the zoo models left out.
func writeModels(w io.Writer, e evolve.RunStarted) {
	fmt.Fprintln(w, "models:")
	width := 0
	for _, m := range e.Models {
		width = max(width, len(m.Name))
	}
	for _, m := range e.Models {
		role := "source"
		if m.Base {
			role = "base"
		}
		where := m.Ref
		if m.Path != m.Ref {
			where += " → " + m.Path
		}
		fmt.Fprintf(w, "  %-6s %-*s  %s, %d layers  %s\n", role, width, m.Name, m.Arch, m.Layers, where)
	}
	for _, d := range e.LeftOut {
		fmt.Fprintf(w, "  left out zoo model %s: %s\n", d.Name, d.Reason)
	}
	if e.BaseNote != "" {
		fmt.Fprintln(w, e.BaseNote)
	}
}

// writeComparison prints the held-out table.
func writeComparison(w io.Writer, r *evolve.Result) {
	texts := slices.Sorted(maps.Keys(r.Comparison[0].Perplexity))
	width := 12
	for _, m := range r.Comparison {
		width = max(width, len(m.Name))
	}
	fmt.Fprintf(w, "held-out perplexity (test texts the search never saw):\n  %-*s", width, "model")
	for _, t := range texts {
		fmt.Fprintf(w, " %10s", t)
	}
	fmt.Fprintf(w, " %10s %9s\n", "geo-mean", "coherence")
	for _, m := range r.Comparison {
		fmt.Fprintf(w, "  %-*s", width, m.Name)
		for _, t := range texts {
			fmt.Fprintf(w, " %10s", format.Perplexity(m.Perplexity[t]))
		}
		fmt.Fprintf(w, " %10s %9s\n", format.Perplexity(m.GeoMean), format.Fraction(m.Coherence))
	}
	for _, v := range r.Verdict {
		fmt.Fprintf(w, "verdict: %s\n", v)
	}
}

func clip(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}
