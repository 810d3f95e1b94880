package evolve

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/evomerge/evomerge/engine/merge"
)

// TestSearchConcurrency: Search evaluates one candidate at a time and
// keeps one more in flight, as Run does with a one-worker pool.
func TestSearchConcurrency(t *testing.T) {
	cfg := testConfig(t)
	cfg.Evolution.Generations = 2
	var running, peak atomic.Int32
	score := func(ctx context.Context, r *merge.Recipe) (Scores, error) {
		n := running.Add(1)
		for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
		}
		time.Sleep(2 * time.Millisecond)
		running.Add(-1)
		return landscape(ctx, r)
	}
	if _, err := Search(context.Background(), cfg, Options{}, score); err != nil {
		t.Fatal(err)
	}
	if peak.Load() != 2 {
		t.Errorf("%d candidates scored at once, want 2", peak.Load())
	}
}

// TestSearchCancelled: cancelling in the middle of a generation stops the
// run with context.Canceled; Finished is the last event and says so; the
// history holds only whole records.
func TestSearchCancelled(t *testing.T) {
	cfg := testConfig(t)
	ctx, cancel := context.WithCancel(context.Background())
	var calls atomic.Int32
	score := func(ctx context.Context, r *merge.Recipe) (Scores, error) {
		if calls.Add(1) == 3 {
			cancel()
			<-ctx.Done()
			return Scores{}, ctx.Err()
		}
		return landscape(ctx, r)
	}
	var events []Event
	_, err := Search(ctx, cfg, Options{Sink: func(e Event) { events = append(events, e) }}, score)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled search: %v", err)
	}
	fin, ok := events[len(events)-1].(Finished)
	if !ok || fin.Reason != "cancelled" || !errors.Is(fin.Err, context.Canceled) {
		t.Errorf("last event %#v, want Finished with reason cancelled", events[len(events)-1])
	}
	for _, e := range events {
		if _, ok := e.(GenerationDone); ok {
			t.Error("generation 0 was reported done")
		}
	}
	recs := readHistory(t, cfg.Output.Dir)
	if len(recs) < 2 || len(recs) > 3 {
		t.Errorf("%d records in the history, want the 2 or 3 scored before the cancel", len(recs))
	}
}

// TestRunReportsSetupErrors: errors before the search starts — an invalid
// configuration, a missing model — still end the event stream with
// Finished, and leave no run behind.
func TestRunReportsSetupErrors(t *testing.T) {
	cfg := testConfig(t)
	cfg.Evolution.Population = 0
	var last Event
	if _, err := Search(context.Background(), cfg, Options{Sink: func(e Event) { last = e }}, landscape); err == nil {
		t.Fatal("invalid configuration accepted")
	}
	if f, ok := last.(Finished); !ok || f.Reason != "error" {
		t.Errorf("last event %#v", last)
	}
	cfg = testConfig(t)
	cfg.Models[0].Path = filepath.Join(t.TempDir(), "missing.gguf")
	_, err := Run(context.Background(), cfg, Options{Sink: func(e Event) { last = e }})
	if err == nil || !strings.Contains(err.Error(), "model a: ") || !strings.Contains(err.Error(), cfg.Models[0].Path) {
		t.Fatalf("missing model: %v, want an error naming model a and its file", err)
	}
	if f, ok := last.(Finished); !ok || f.Reason != "error" {
		t.Errorf("last event %#v", last)
	}
	if _, err := os.Stat(filepath.Join(cfg.Output.Dir, historyFile)); !os.IsNotExist(err) {
		t.Errorf("a failed setup left a history: %v", err)
	}
	if _, err := Search(context.Background(), cfg, Options{}, nil); err == nil {
		t.Error("Search without a score function accepted")
	}
}
