// Package bench measures what users of evomerge wait for — merge
// throughput, evaluation throughput, candidate turnaround and the search's
// own overhead — each next to a baseline measured in the same run, because
// these machines are noisy and only ratios carry over between them:
//
//   - merges against the I/O floor — reading every input with large reads
//     on all threads and writing an output of the same size as the merge
//     does, with no arithmetic — and against the machine's streaming
//     memory bandwidth (floor.go);
//   - evaluation through the worker pool against a bare llama.cpp decode
//     loop in this process (the pool's overhead), and 2 workers against 1;
//   - GPU evaluation against CPU, when a GPU backend is present.
//
// Merges run as child processes (`evomerge-tui merge`), so their peak
// resident memory is measured per merge from the child's rusage.
package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/google/renameio/v2"
)

// Row is one measurement, with its baseline when it has one.
type Row struct {
	Group        string  `json:"group"`
	Name         string  `json:"name"`
	Value        float64 `json:"value"`
	Unit         string  `json:"unit"`
	Baseline     float64 `json:"baseline,omitempty"`
	BaselineName string  `json:"baseline_name,omitempty"`
	Ratio        float64 `json:"ratio,omitempty"` // Value / Baseline
	Note         string  `json:"note,omitempty"`
}

// Result is a whole benchmark run (bench.json).
type Result struct {
	Time    time.Time `json:"time"`
	Machine string    `json:"machine"`
	Rows    []Row     `json:"rows"`
}

// Options configure a run.
type Options struct {
	Exe       string // this executable (merges and workers run as its children)
	Dir       string // scratch directory for generated models
	ModelMB   int    // size of each generated model for the merge benchmarks
	Model     string // a real GGUF for the evaluation benchmarks (the zoo's base)
	Threads   int    // CPU threads (default all)
	GPULayers int    // −1: GPU rows when a GPU backend is found; 0: CPU only
	Env       []string
	Skip      map[string]bool // groups to skip: "merge", "eval", "turnaround", "inplace", "overhead", "distributed"
	// VerdictSeeds, when set, runs the "verdict" group: the default
	// configuration's tournament once per seed (see verdictBench).
	VerdictSeeds []uint64
	// HeldOutCache is evolve.Options.HeldOutCache for those tournaments.
	HeldOutCache string
	Log          io.Writer // progress lines (may be nil)
}

func (o *Options) logf(format string, args ...any) {
	if o.Log != nil {
		fmt.Fprintf(o.Log, format+"\n", args...)
	}
}

// Run runs every benchmark group not skipped.
func Run(ctx context.Context, opt Options) (*Result, error) {
	if opt.Threads <= 0 {
		opt.Threads = runtime.NumCPU()
	}
	if opt.ModelMB <= 0 {
		opt.ModelMB = 256
	}
	host, _ := os.Hostname()
	res := &Result{Time: time.Now().UTC(), Machine: fmt.Sprintf("%s, %d CPUs, %s/%s", host, runtime.NumCPU(), runtime.GOOS, runtime.GOARCH)}
	groups := []struct {
		name string
		run  func(context.Context, *Options) ([]Row, error)
	}{
		{"merge", mergeBench},
		{"eval", evalBench},
		{"turnaround", turnaroundBench},
		{"inplace", inplaceBench},
		{"overhead", overheadBench},
		{"distributed", distBench},
		{"verdict", verdictBench},
	}
	for _, g := range groups {
		if opt.Skip[g.name] || g.name == "verdict" && len(opt.VerdictSeeds) == 0 {
			continue
		}
		opt.logf("== %s", g.name)
		rows, err := g.run(ctx, &opt)
		if err != nil {
			return res, fmt.Errorf("bench %s: %w", g.name, err)
		}
		res.Rows = append(res.Rows, rows...)
	}
	return res, nil
}

// WriteJSON writes the result atomically.
func (r *Result) WriteJSON(path string) error {
	raw, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	return renameio.WriteFile(path, append(raw, '\n'), 0o644)
}

// Table renders the result for a terminal.
func (r *Result) Table(w io.Writer) {
	fmt.Fprintf(w, "evomerge bench — %s — %s\n", r.Machine, r.Time.Format(time.RFC3339))
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	group := ""
	for _, row := range r.Rows {
		if row.Group != group {
			group = row.Group
			fmt.Fprintf(tw, "\n%s\t\t\t\t\n", strings.ToUpper(group))
		}
		base, ratio := "", ""
		if row.BaselineName != "" {
			base = fmt.Sprintf("%s %s", fmtNum(row.Baseline), row.BaselineName)
			ratio = fmt.Sprintf("×%.2f", row.Ratio)
		}
		fmt.Fprintf(tw, "  %s\t%s %s\t%s\t%s\t%s\n", row.Name, fmtNum(row.Value), row.Unit, ratio, base, row.Note)
	}
	tw.Flush()
}

func fmtNum(v float64) string {
	switch {
	case v >= 1000:
		return fmt.Sprintf("%.0f", v)
	case v >= 10:
		return fmt.Sprintf("%.1f", v)
	}
	return fmt.Sprintf("%.3g", v)
}

func ratioRow(group, name string, value float64, unit string, base float64, baseName, note string) Row {
	r := Row{Group: group, Name: name, Value: value, Unit: unit, Baseline: base, BaselineName: baseName, Note: note}
	if base != 0 {
		r.Ratio = value / base
	}
	return r
}
