package cli

import (
	"context"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/evomerge/evomerge/engine/config"
	"github.com/evomerge/evomerge/engine/eval"
	"github.com/evomerge/evomerge/engine/evolve"
	"github.com/evomerge/evomerge/engine/format"
	"github.com/evomerge/evomerge/engine/llm"
	"github.com/evomerge/evomerge/engine/report"
)

type runOptions struct {
	configPath  string
	models      [3]string
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
		f.StringVar(&o.models[i], fmt.Sprintf("model%d", i+1), "", fmt.Sprintf("source model %d: a GGUF path or Hugging Face id (replaces the config's model %d)", i+1, i+1))
	}
	f.BoolVar(&o.headless, "headless", false, "print progress lines instead of the TUI (automatic without a terminal)")
	f.StringVar(&o.output, "output", "", "output directory (default: the config's output.dir)")
	f.StringVar(&o.resume, "resume", "", "continue the run in DIR (its config.toml and history.jsonl)")
	f.StringVar(&o.optimizer, "optimizer", "", "override evolution.optimizer: ga, cmaes, nsga2, random")
	f.IntVar(&o.generations, "generations", 0, "override evolution.generations")
	f.IntVar(&o.population, "population", 0, "override evolution.population")
	f.Int64Var(&o.seed, "evolution-seed", -1, "override evolution.seed")
}

// loadConfig builds the effective configuration: file (or defaults, or the
// resumed run's config.toml), then the command-line overrides.
func (o *runOptions) loadConfig(hw hardwareFlags) (config.Config, error) {
	cfg := config.Default()
	var err error
	switch {
	case o.resume != "":
		if cfg, err = config.Load(filepath.Join(o.resume, "config.toml")); err != nil {
			return cfg, fmt.Errorf("--resume: %w", err)
		}
		cfg.Output.Dir = o.resume
		return cfg, nil // a resumed run must be the run it was
	case o.configPath != "":
		if cfg, err = config.Load(o.configPath); err != nil {
			return cfg, err
		}
	}
	for i, m := range o.models {
		if m == "" {
			continue
		}
		name := strings.TrimSuffix(filepath.Base(m), filepath.Ext(m))
		name = strings.NewReplacer(":", "-", " ", "-").Replace(name)
		entry := config.Model{Name: name, Path: m}
		if _, statErr := os.Stat(m); statErr != nil && strings.Count(m, "/") >= 1 && !strings.HasPrefix(m, ".") && !strings.HasPrefix(m, "/") {
			entry = config.Model{Name: name, HF: m}
		}
		sources := cfg.Sources()
		if i < len(sources) {
			for j := range cfg.Models {
				if cfg.Models[j].Name == sources[i].Name {
					cfg.Models[j] = entry
				}
			}
		} else {
			cfg.Models = append(cfg.Models, entry)
		}
	}
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
	if hw.gpuLayers != "" {
		cfg.Hardware.GPULayers = hw.gpuLayers
	}
	if hw.threads > 0 {
		cfg.Hardware.Threads = hw.threads
	}
	if hw.workers > 0 {
		cfg.Hardware.Workers = hw.workers
	}
	if ps := cfg.Validate(); len(ps) > 0 {
		return cfg, ps.Err()
	}
	return cfg, nil
}

// engineOptions are the evolve.Options every front end uses.
func engineOptions(cfg config.Config, resume bool) evolve.Options {
	return evolve.Options{
		Resume:      resume,
		Codec:       llm.Codec{},
		Resolve:     resolveModel,
		PoolOptions: eval.PoolOptions{Env: workerEnv()},
	}
}

func (o *runOptions) execute(cmd *cobra.Command, hw hardwareFlags) error {
	cfg, err := o.loadConfig(hw)
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
	opt.Sink = p.event
	res, err := evolve.Run(ctx, cfg, opt)
	if err != nil {
		return err
	}
	path, err := report.Write(res.OutputDir)
	if err != nil {
		return err
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
		fmt.Fprintf(p.w, "evomerge: %s, population %d, up to %d generations / %d evaluations, seed %d\n",
			e.Optimizer, e.Population, e.Generations, e.Budget, e.Seed)
		fmt.Fprintf(p.w, "sources: %s (base %s); techniques: %s; fitness texts: %s; output: %s\n",
			strings.Join(e.Sources, ", "), orNone(e.Base), strings.Join(e.Techniques, ", "), strings.Join(e.Texts, ", "), e.OutputDir)
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
		fmt.Fprintf(p.w, "finished (%s) after %d evaluations in %s: best %s %s\n", r.Reason, r.Evaluations, r.Elapsed.Round(time.Second), r.Best.ID, r.Best.Summary)
		if len(r.Comparison) > 0 {
			writeComparison(p.w, r)
		}
		fmt.Fprintf(p.w, "wrote %s, %s, %s\n", r.BestModel, r.BestRecipe, filepath.Join(r.OutputDir, "history.jsonl"))
	}
}

// writeComparison prints the held-out table.
func writeComparison(w io.Writer, r *evolve.Result) {
	texts := slices.Sorted(maps.Keys(r.Comparison[0].Perplexity))
	fmt.Fprintf(w, "held-out perplexity (test texts the search never saw):\n  %-12s", "model")
	for _, t := range texts {
		fmt.Fprintf(w, " %10s", t)
	}
	fmt.Fprintf(w, " %10s %9s\n", "geo-mean", "coherence")
	for _, m := range r.Comparison {
		fmt.Fprintf(w, "  %-12s", m.Name)
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

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}
