package eval

import (
	"runtime"
	"slices"
	"testing"
)

// TestPoolOptionsSized: the one sizing rule splits the thread budget
// between the workers, takes every core when no budget is given, never
// gives a worker fewer than one thread, and keeps the other settings.
func TestPoolOptionsSized(t *testing.T) {
	cpus := runtime.NumCPU()
	base := PoolOptions{Env: []string{"A=1"}, LogLevel: "info", Command: []string{"w"}}
	for _, tc := range []struct {
		name                        string
		workers, threads, gpuLayers int
		wantWorkers, wantThreads    int
	}{
		{"budget split", 2, 8, 0, 2, 4},
		{"remainder dropped", 3, 8, 0, 3, 2},
		{"all cores", 1, 0, -1, 1, cpus},
		{"all cores split", 2, 0, 0, 2, max(1, cpus/2)},
		{"at least one worker", 0, 6, 0, 1, 6},
		{"at least one thread", 4, 2, 0, 4, 1},
		{"negative budget is all cores", 1, -3, 0, 1, cpus},
		{"gpu offload kept", 1, 4, 12, 1, 4},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := base.Sized(tc.workers, tc.threads, tc.gpuLayers)
			if got.Workers != tc.wantWorkers || got.Threads != tc.wantThreads || got.GPULayers != tc.gpuLayers {
				t.Errorf("Sized(%d, %d, %d) = %d workers × %d threads, %d GPU layers; want %d × %d, %d",
					tc.workers, tc.threads, tc.gpuLayers, got.Workers, got.Threads, got.GPULayers, tc.wantWorkers, tc.wantThreads, tc.gpuLayers)
			}
			if !slices.Equal(got.Env, base.Env) || got.LogLevel != base.LogLevel || !slices.Equal(got.Command, base.Command) {
				t.Errorf("Sized changed the other settings: %+v", got)
			}
		})
	}
}
