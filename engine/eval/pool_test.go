package eval

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"
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

// fakePool starts workers of the fake kind (main_test.go); the starts
// after the first maxStarts fail.
func fakePool(t *testing.T, workers, maxStarts int) *Pool {
	t.Helper()
	starts := filepath.Join(t.TempDir(), "starts")
	p, err := NewPool(context.Background(), PoolOptions{Workers: workers, Threads: 1, Command: []string{os.Args[0]},
		Env: []string{"EVOMERGE_FAKE_WORKER=1", "EVOMERGE_FAKE_STARTS=" + starts, fmt.Sprintf("EVOMERGE_FAKE_MAX_STARTS=%d", maxStarts)}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	return p
}

// TestPoolStopsWhenNoWorkerStarts: a worker that dies is replaced; when
// no replacement starts (after a bounded number of attempts) the pool
// goes on with the workers it has, and once it has none every job fails
// at once with a *StartError giving the reason — no job waits forever.
func TestPoolStopsWhenNoWorkerStarts(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	p := fakePool(t, 2, 2)
	if _, err := p.Do(ctx, &Request{Op: OpLoad, Model: "ok"}, nil); err != nil {
		t.Fatalf("a job on a healthy pool: %v", err)
	}
	var crash *CrashError
	if _, err := p.Do(ctx, &Request{Op: OpLoad, Model: "crash"}, nil); !errors.As(err, &crash) {
		t.Fatalf("a job that kills its worker: %v, want a *CrashError", err)
	}
	// One worker is left: jobs still run while its lost peer fails to start.
	for range 3 {
		if _, err := p.Do(ctx, &Request{Op: OpLoad, Model: "ok"}, nil); err != nil {
			t.Fatalf("a job on the worker left: %v", err)
		}
	}
	if _, err := p.Do(ctx, &Request{Op: OpLoad, Model: "crash"}, nil); !errors.As(err, &crash) {
		t.Fatalf("a job that kills the last worker: %v, want a *CrashError", err)
	}
	start := time.Now()
	_, err := p.Do(ctx, &Request{Op: OpLoad, Model: "ok"}, nil)
	var se *StartError
	if !errors.As(err, &se) || se.Attempts != 3 || !strings.Contains(err.Error(), "out of memory") {
		t.Fatalf("a job on a pool whose workers cannot start: %v after %v; want a *StartError with the reason", err, time.Since(start))
	}
	t.Logf("%v (after %v)", err, time.Since(start).Round(time.Millisecond))
	if _, err := p.Do(ctx, &Request{Op: OpLoad, Model: "ok"}, nil); !errors.As(err, &se) {
		t.Fatalf("the next job: %v, want the same *StartError", err)
	}
}

// TestPoolReportsWhyTheFirstWorkerDidNotStart: a worker that exits at
// once fails NewPool with its reason.
func TestPoolReportsWhyTheFirstWorkerDidNotStart(t *testing.T) {
	starts := filepath.Join(t.TempDir(), "starts")
	_, err := NewPool(context.Background(), PoolOptions{Workers: 1, Threads: 1, Command: []string{os.Args[0]},
		Env: []string{"EVOMERGE_FAKE_WORKER=1", "EVOMERGE_FAKE_STARTS=" + starts, "EVOMERGE_FAKE_MAX_STARTS=0"}})
	if err == nil || !strings.Contains(err.Error(), "evaluation worker did not start") || !strings.Contains(err.Error(), "out of memory") {
		t.Fatalf("NewPool: %v, want the worker's reason", err)
	}
}
