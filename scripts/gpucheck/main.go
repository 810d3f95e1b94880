// Command gpucheck is `make gpu-check`: it checks that evaluation on this
// machine's GPU reaches the CPU's results and measures how much sooner.
//
//  1. A short zoo tournament runs twice, with --gpu-layers auto and with
//     --gpu-layers 0 (the workers then load no GPU backend at all, so the
//     second run is a pure CPU baseline). The random optimiser proposes
//     candidates that do not depend on fitness values, so with one seed
//     both runs evaluate the same recipes.
//  2. The GPU run must have run on the GPU (summary.json's device); every
//     candidate scored in both runs must have the same fitness within the
//     tolerance; the two winners must be the same candidate, or a tie
//     within the tolerance; and the best fitness must agree within it.
//  3. It prints the turnaround: mean merge + evaluation seconds per
//     candidate and the whole run's wall time, GPU against CPU.
//  4. It runs `evomerge-tui bench` without the merge and overhead groups:
//     evaluation tokens/s through the workers against a bare llama.cpp
//     loop on the same GPU, GPU against CPU, and candidate turnaround on
//     the GPU and the CPU for the zoo and for generated ~1 GB models.
//
// The Makefile builds the CUDA backend first and stops, saying why, on a
// machine without nvcc or an NVIDIA GPU. Exit status 0 means every check
// passed.
package main

import (
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"time"

	"github.com/evomerge/evomerge/engine/evolve"
	"github.com/evomerge/evomerge/engine/report"
)

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }

// DefaultTolerance is the largest fitness difference accepted between the
// GPU and the CPU: fitness is −(mean ln perplexity) over the fitness texts,
// so 0.005 is half a percent of perplexity — above the rounding of GPU
// kernels, far below the differences between the zoo's candidates.
const DefaultTolerance = 0.005

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("gpucheck", flag.ContinueOnError)
	fs.SetOutput(stderr)
	bin := fs.String("bin", "bin/evomerge-tui", "the evomerge-tui to check")
	out := fs.String("out", filepath.Join("out", "gpu-check-"+time.Now().Format("20060102-150405")), "directory for both runs and bench.json")
	population := fs.Int("population", 8, "tournament population")
	generations := fs.Int("generations", 2, "tournament generations")
	seed := fs.Int("seed", 7, "evolution seed (both runs)")
	tol := fs.Float64("tolerance", DefaultTolerance, "largest accepted fitness difference, GPU vs CPU")
	bench := fs.Bool("bench", true, "also run the evaluation, turnaround and in-place benchmarks")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if _, err := os.Stat(*bin); err != nil {
		fmt.Fprintf(stderr, "gpu-check: %v (run make first)\n", err)
		return 2
	}
	runs := map[string]*report.Run{}
	walls := map[string]time.Duration{}
	for _, side := range []struct{ name, layers string }{{"gpu", "auto"}, {"cpu", "0"}} {
		dir := filepath.Join(*out, side.name)
		fmt.Fprintf(stdout, "gpu-check: tournament with --gpu-layers %s → %s\n", side.layers, dir)
		start := time.Now()
		cmd := exec.Command(*bin, "--run", "--headless", "--optimizer", "random", "--population", strconv.Itoa(*population),
			"--generations", strconv.Itoa(*generations), "--evolution-seed", strconv.Itoa(*seed), "--gpu-layers", side.layers, "--output", dir)
		cmd.Stdout, cmd.Stderr = stdout, stderr
		if err := cmd.Run(); err != nil {
			fmt.Fprintf(stderr, "gpu-check: the --gpu-layers %s tournament failed: %v\n", side.layers, err)
			return 1
		}
		walls[side.name] = time.Since(start)
		r, err := report.Load(dir)
		if err != nil {
			fmt.Fprintf(stderr, "gpu-check: %v\n", err)
			return 1
		}
		runs[side.name] = r
	}
	c := compare(runs["gpu"].Result, runs["gpu"].Candidates, runs["cpu"].Result, runs["cpu"].Candidates, *tol)
	c.GPUWall, c.CPUWall = walls["gpu"], walls["cpu"]
	c.print(stdout)
	ok := len(c.Problems) == 0
	if *bench {
		fmt.Fprintf(stdout, "\ngpu-check: evomerge-tui bench (evaluation, turnaround, in place; GPU rows against CPU rows and a bare llama.cpp loop)\n")
		cmd := exec.Command(*bin, "bench", "--skip", "merge,overhead", "--gpu-layers", "auto", "-o", filepath.Join(*out, "bench.json"))
		cmd.Stdout, cmd.Stderr = stdout, stderr
		if err := cmd.Run(); err != nil {
			fmt.Fprintf(stderr, "gpu-check: bench failed: %v\n", err)
			ok = false
		}
	}
	if !ok {
		fmt.Fprintln(stdout, "\ngpu-check: FAILED")
		return 1
	}
	fmt.Fprintln(stdout, "\ngpu-check: passed")
	return 0
}

// comparison is the GPU run against the CPU run.
type comparison struct {
	Tolerance        float64
	GPUDevice        string
	CPUDevice        string
	GPUBest, CPUBest evolve.CandidateInfo
	GPUFit, CPUFit   float64
	Common           int     // candidates scored in both runs
	MaxDiff          float64 // largest |fitness GPU − fitness CPU| among them
	MaxDiffID        string
	GPUTurn, CPUTurn float64 // mean merge + evaluation seconds per candidate
	GPUWall, CPUWall time.Duration
	Problems         []string // failed checks; none means passed
}

// compare checks the GPU run (gpu, gh) against the CPU run (cpu, ch).
func compare(gpu evolve.Result, gh []evolve.Record, cpu evolve.Result, ch []evolve.Record, tol float64) comparison {
	c := comparison{Tolerance: tol, GPUDevice: gpu.Device.String(), CPUDevice: cpu.Device.String(),
		GPUBest: gpu.Best, CPUBest: cpu.Best, GPUFit: gpu.BestFitness, CPUFit: cpu.BestFitness}
	problem := func(format string, args ...any) { c.Problems = append(c.Problems, fmt.Sprintf(format, args...)) }
	if !gpu.Device.OnGPU() {
		problem("the --gpu-layers auto run did not use a GPU: %s", c.GPUDevice)
	}
	if cpu.Device.OnGPU() {
		problem("the --gpu-layers 0 run used a GPU: %s", c.CPUDevice)
	}
	byKey := func(h []evolve.Record) map[string]evolve.Record {
		m := map[string]evolve.Record{}
		for _, r := range h {
			m[r.Key] = r
		}
		return m
	}
	gk, ck := byKey(gh), byKey(ch)
	c.MaxDiff = -1
	for k, g := range gk {
		cr, both := ck[k]
		switch {
		case !both:
			problem("candidate %s (%s) was evaluated only in the GPU run", g.ID, g.Summary)
		case g.OK() != cr.OK():
			problem("candidate %s (%s) failed in one run only: GPU %q, CPU %q", g.ID, g.Summary, g.Err, cr.Err)
		case g.OK():
			c.Common++
			if d := math.Abs(g.Fitness - cr.Fitness); d > c.MaxDiff {
				c.MaxDiff, c.MaxDiffID = d, g.ID
			}
		}
	}
	for k, cr := range ck {
		if _, both := gk[k]; !both {
			problem("candidate %s (%s) was evaluated only in the CPU run", cr.ID, cr.Summary)
		}
	}
	if c.Common == 0 {
		problem("no candidate was scored in both runs")
	} else if c.MaxDiff > tol {
		problem("candidate %s: fitness differs by %.5f between GPU and CPU (tolerance %g)", c.MaxDiffID, c.MaxDiff, tol)
	}
	if gpu.Best.Key != cpu.Best.Key {
		// A tie: the CPU's winner scores within the tolerance of the GPU's
		// winner in the GPU run.
		if r, ok := gk[cpu.Best.Key]; !ok || math.Abs(r.Fitness-gpu.BestFitness) > tol {
			problem("different winners: %s (%s) on the GPU, %s (%s) on the CPU", gpu.Best.ID, gpu.Best.Summary, cpu.Best.ID, cpu.Best.Summary)
		}
	}
	if d := math.Abs(gpu.BestFitness - cpu.BestFitness); d > tol {
		problem("best fitness %.5f on the GPU, %.5f on the CPU: differs by %.5f (tolerance %g)", gpu.BestFitness, cpu.BestFitness, d, tol)
	}
	c.GPUTurn, c.CPUTurn = meanTurnaround(gh), meanTurnaround(ch)
	return c
}

// meanTurnaround is the mean merge + evaluation time of the scored candidates.
func meanTurnaround(h []evolve.Record) float64 {
	var sum float64
	n := 0
	for _, r := range h {
		if r.OK() {
			sum += r.MergeSec + r.EvalSec
			n++
		}
	}
	if n == 0 {
		return 0
	}
	return sum / float64(n)
}

func (c comparison) print(w io.Writer) {
	fmt.Fprintf(w, "\ngpu-check: GPU run: %s\n", c.GPUDevice)
	fmt.Fprintf(w, "gpu-check: CPU run: %s\n", c.CPUDevice)
	same := "the same candidate"
	if c.GPUBest.Key != c.CPUBest.Key {
		same = fmt.Sprintf("GPU %s, CPU %s", c.GPUBest.ID, c.CPUBest.ID)
	}
	fmt.Fprintf(w, "winner:      %s (%s): fitness %.5f on the GPU, %.5f on the CPU (tolerance %g)\n", c.GPUBest.ID, same, c.GPUFit, c.CPUFit, c.Tolerance)
	if c.Common > 0 {
		fmt.Fprintf(w, "candidates:  %d scored in both runs; largest fitness difference %.5f (%s)\n", c.Common, c.MaxDiff, c.MaxDiffID)
	}
	if c.GPUTurn > 0 {
		fmt.Fprintf(w, "turnaround:  %.2f s per candidate on the GPU, %.2f s on the CPU (merge + evaluation, mean): %.2f× the CPU's speed\n", c.GPUTurn, c.CPUTurn, c.CPUTurn/c.GPUTurn)
	}
	if c.GPUWall > 0 {
		fmt.Fprintf(w, "whole run:   %s on the GPU, %s on the CPU (with start-up and the held-out comparison): %.2f×\n",
			c.GPUWall.Round(100*time.Millisecond), c.CPUWall.Round(100*time.Millisecond), c.CPUWall.Seconds()/c.GPUWall.Seconds())
	}
	for _, p := range c.Problems {
		fmt.Fprintf(w, "FAIL: %s\n", p)
	}
}
