package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/evomerge/evomerge/engine/eval"
	"github.com/evomerge/evomerge/engine/evolve"
)

var (
	onGPU = eval.NewPlacement(eval.Health{Threads: 16, GPULayers: -1, Devices: []eval.Device{
		{Name: "CPU", Description: "AMD EPYC", Type: "cpu"}, {Name: "CUDA0", Description: "NVIDIA H200", Type: "gpu", MemoryTotal: 140 << 30}}},
		eval.ModelInfo{Offloaded: 7, Offloadable: 7}, 1)
	onCPU = eval.NewPlacement(eval.Health{Threads: 16, GPULayers: 0, Devices: []eval.Device{{Name: "CPU", Description: "AMD EPYC", Type: "cpu"}}},
		eval.ModelInfo{Offloadable: 7}, 1)
)

// history builds records with the given fitness per key (k0, k1, …) and
// the turnaround sec each.
func history(sec float64, fitness ...float64) []evolve.Record {
	var h []evolve.Record
	for i, f := range fitness {
		h = append(h, evolve.Record{ID: "c" + string(rune('0'+i)), Key: "k" + string(rune('0'+i)), Fitness: f, Status: evolve.StatusDone,
			MergeSec: sec / 4, EvalSec: sec * 3 / 4})
	}
	return h
}

// result is a summary whose winner is the best record of h.
func result(dev eval.Placement, h []evolve.Record) evolve.Result {
	best := h[0]
	for _, r := range h {
		if r.OK() && r.Fitness > best.Fitness {
			best = r
		}
	}
	return evolve.Result{Device: dev, Best: evolve.CandidateInfo{ID: best.ID, Key: best.Key}, BestFitness: best.Fitness}
}

func TestCompare(t *testing.T) {
	tests := []struct {
		name     string
		gpuDev   eval.Placement
		gpu, cpu []evolve.Record
		problems []string // substrings, one per expected problem
	}{
		{name: "agree within the tolerance", gpuDev: onGPU,
			gpu: history(1, -5.400, -5.100, -5.300), cpu: history(3, -5.401, -5.102, -5.299)},
		{name: "the GPU run ran on the CPU", gpuDev: onCPU,
			gpu: history(1, -5.4, -5.1), cpu: history(3, -5.4, -5.1), problems: []string{"did not use a GPU: CPU, 16 threads"}},
		{name: "a fitness beyond the tolerance", gpuDev: onGPU,
			gpu: history(1, -5.400, -5.100, -5.300), cpu: history(3, -5.420, -5.100, -5.300), problems: []string{"candidate c0: fitness differs by 0.02000"}},
		{name: "a tie for the winner", gpuDev: onGPU,
			gpu: history(1, -5.100, -5.101), cpu: history(3, -5.1015, -5.1005)},
		{name: "different winners", gpuDev: onGPU,
			gpu: history(1, -5.10, -5.20), cpu: history(3, -5.30, -5.19),
			problems: []string{"candidate c0: fitness differs by 0.20000", "different winners: c0", "best fitness -5.10000 on the GPU, -5.19000 on the CPU"}},
		{name: "different candidates", gpuDev: onGPU,
			gpu: history(1, -5.1, -5.2, -5.3), cpu: history(3, -5.1, -5.2), problems: []string{"candidate c2 () was evaluated only in the GPU run"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := compare(result(tc.gpuDev, tc.gpu), tc.gpu, result(onCPU, tc.cpu), tc.cpu, DefaultTolerance)
			if len(c.Problems) != len(tc.problems) {
				t.Fatalf("problems %q, want %d: %q", c.Problems, len(tc.problems), tc.problems)
			}
			for i, want := range tc.problems {
				if !strings.Contains(c.Problems[i], want) {
					t.Errorf("problem %q lacks %q", c.Problems[i], want)
				}
			}
			if c.GPUTurn != 1 || c.CPUTurn != 3 {
				t.Errorf("turnaround GPU %v CPU %v, want 1 and 3", c.GPUTurn, c.CPUTurn)
			}
			var out bytes.Buffer
			c.print(&out)
			if !strings.Contains(out.String(), "3.00× the CPU's speed") {
				t.Errorf("printed:\n%s", out.String())
			}
		})
	}
}

func TestMissingBinary(t *testing.T) {
	var out, errb bytes.Buffer
	if code := run([]string{"-bin", t.TempDir() + "/none"}, &out, &errb); code != 2 || !strings.Contains(errb.String(), "run make first") {
		t.Fatalf("exit %d, stderr %q", code, errb.String())
	}
}
