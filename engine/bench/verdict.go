package bench

import (
	"context"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/evomerge/evomerge/engine/config"
	"github.com/evomerge/evomerge/engine/eval"
	"github.com/evomerge/evomerge/engine/evolve"
	"github.com/evomerge/evomerge/engine/llm"
	"github.com/evomerge/evomerge/engine/modelset"
)

// verdictBench runs the default configuration — what `make run` runs —
// once per seed in Options.VerdictSeeds and reports the winner's geo-mean
// perplexity on every window of the test texts against the uniform
// average's (the baseline, from the same run), with the run's paired
// bootstrap verdict and its wall time next to the load average. It is the
// comparison that decides whether the defaults' winner is better than
// uniform on text it never saw; it takes a whole tournament per seed, so
// it runs only when asked for (`bench --verdict-seeds 42,1,2`). With
// Options.HeldOutCache the sources' and the uniform average's held-out
// scores are measured once for all seeds.
func verdictBench(ctx context.Context, o *Options) ([]Row, error) {
	var rows []Row
	for _, seed := range o.VerdictSeeds {
		dir, err := os.MkdirTemp(o.Dir, "evomerge-verdict-")
		if err != nil {
			return nil, err
		}
		cfg := config.Default()
		cfg.Evolution.Seed = seed
		cfg.Output.Dir = dir
		load0 := loadAverage()
		t0 := time.Now()
		res, err := evolve.Run(ctx, cfg, evolve.Options{Codec: llm.Codec{}, Resolve: modelset.Resolver(nil),
			PoolOptions: eval.PoolOptions{Command: []string{o.Exe, "worker"}, Env: o.Env}, HeldOutCache: o.HeldOutCache})
		wall := time.Since(t0)
		os.RemoveAll(dir)
		if err != nil {
			return nil, fmt.Errorf("seed %d: %w", seed, err)
		}
		var best, uniform float64
		for _, m := range res.Comparison {
			switch m.Kind {
			case "best":
				best = m.GeoMean
			case "uniform":
				uniform = m.GeoMean
			}
		}
		var verdicts []string
		for _, v := range res.Verdict {
			verdicts = append(verdicts, v.String())
		}
		o.logf("seed %d: best %.2f, uniform %.2f in %s; %s", seed, best, uniform, wall.Round(time.Second), strings.Join(verdicts, "; "))
		rows = append(rows,
			ratioRow("verdict", fmt.Sprintf("make run defaults, seed %d: best geo-mean perplexity, all test windows", seed), best, "perplexity",
				uniform, "uniform average", strings.Join(verdicts, "; ")),
			Row{Group: "verdict", Name: fmt.Sprintf("make run defaults, seed %d: wall time", seed), Value: wall.Seconds(), Unit: "s",
				Note: fmt.Sprintf("%d evaluations; load average %s at the start, %s at the end", res.Evaluations, load0, loadAverage())})
	}
	return rows, nil
}

// loadAverage is the 1-minute load average ("?" where unknown).
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if f := strings.Fields(string(b)); err == nil && len(f) > 0 {
		return f[0]
	}
	return "?"
}
