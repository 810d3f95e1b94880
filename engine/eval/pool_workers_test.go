package eval_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/evomerge/evomerge/engine/eval"
	"github.com/evomerge/evomerge/engine/eval/evaltest"
)

// The test binary doubles as a stand-in evaluation worker (evaltest).
func TestMain(m *testing.M) {
	evaltest.ServeIfWorker()
	os.Exit(m.Run())
}

// fakePool starts workers of the stand-in kind; the starts after the
// first maxStarts fail.
func fakePool(t *testing.T, workers, maxStarts int) *eval.Pool {
	t.Helper()
	cmd, env := evaltest.Worker(evaltest.Behaviour{Crash: "crash.gguf",
		StartsFile: filepath.Join(t.TempDir(), "starts"), MaxStarts: maxStarts})
	p, err := eval.NewPool(context.Background(), eval.PoolOptions{Workers: workers, Threads: 1, Command: cmd, Env: env})
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
	dir := t.TempDir()
	ok, crash := filepath.Join(dir, "ok.gguf"), filepath.Join(dir, "crash.gguf")
	for _, p := range []string{ok, crash} {
		if err := os.WriteFile(p, []byte(p), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	p := fakePool(t, 2, 2)
	if _, err := p.Load(ctx, ok); err != nil {
		t.Fatalf("a job on a healthy pool: %v", err)
	}
	var ce *eval.CrashError
	if _, err := p.Load(ctx, crash); !errors.As(err, &ce) {
		t.Fatalf("a job that kills its worker: %v, want a *CrashError", err)
	}
	// One worker is left: jobs still run while its lost peer fails to start.
	for range 3 {
		if _, err := p.Load(ctx, ok); err != nil {
			t.Fatalf("a job on the worker left: %v", err)
		}
	}
	if _, err := p.Load(ctx, crash); !errors.As(err, &ce) {
		t.Fatalf("a job that kills the last worker: %v, want a *CrashError", err)
	}
	start := time.Now()
	_, err := p.Load(ctx, ok)
	var se *eval.StartError
	if !errors.As(err, &se) || se.Attempts != 3 || !strings.Contains(err.Error(), "out of memory") {
		t.Fatalf("a job on a pool whose workers cannot start: %v after %v; want a *StartError with the reason", err, time.Since(start))
	}
	t.Logf("%v (after %v)", err, time.Since(start).Round(time.Millisecond))
	if _, err := p.Load(ctx, ok); !errors.As(err, &se) {
		t.Fatalf("the next job: %v, want the same *StartError", err)
	}
}

// TestPoolReportsWhyTheFirstWorkerDidNotStart: a worker that exits at
// once fails NewPool with its reason.
func TestPoolReportsWhyTheFirstWorkerDidNotStart(t *testing.T) {
	cmd, env := evaltest.Worker(evaltest.Behaviour{StartsFile: filepath.Join(t.TempDir(), "starts"), MaxStarts: 0})
	_, err := eval.NewPool(context.Background(), eval.PoolOptions{Workers: 1, Threads: 1, Command: cmd, Env: env})
	if err == nil || !strings.Contains(err.Error(), "evaluation worker did not start (exit status 1)") || !strings.Contains(err.Error(), "out of memory") {
		t.Fatalf("NewPool: %v, want the worker's reason", err)
	}
}
