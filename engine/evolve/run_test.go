package evolve

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/evomerge/evomerge/engine/eval"
	"github.com/evomerge/evomerge/engine/eval/evaltest"
)

// fakeRun runs the whole tournament — merges, the worker pool, best.gguf,
// the held-out comparison — with as many stand-in workers of behaviour b.
func fakeRun(t *testing.T, b evaltest.Behaviour, opt Options, workers int) (*Result, []Event, error) {
	t.Helper()
	cfg := testConfig(t)
	cfg.Merge.Techniques = []string{"linear", "ties"}
	cfg.Evolution.Population = 4
	cfg.Evolution.Generations = 2
	cfg.Hardware.Workers, cfg.Hardware.Threads = workers, workers
	cmd, env := evaltest.Worker(b)
	opt.PoolOptions = eval.PoolOptions{Command: cmd, Env: env}
	var events []Event
	opt.Sink = func(e Event) { events = append(events, e) }
	res, err := Run(context.Background(), cfg, opt)
	return res, events, err
}

// TestHeldOutFailuresAreKept: when a model's sample generation or
// coherence fails in the held-out comparison, the run still finishes,
// the comparison keeps the reason for each (summary.json), and the log
// says so.
func TestHeldOutFailuresAreKept(t *testing.T) {
	res, events, err := fakeRun(t, evaltest.Behaviour{Fail: map[string]string{
		eval.OpGenerate:  "sampling: the fake worker cannot generate",
		eval.OpCoherence: "coherence: the fake worker cannot judge",
	}}, Options{}, 1)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Comparison) != 6 {
		t.Fatalf("%d models compared, want 3 sources, the base, the uniform average and the best", len(res.Comparison))
	}
	for _, m := range res.Comparison {
		if m.Sample != "" || !strings.Contains(m.SampleError, "the fake worker cannot generate") ||
			!strings.Contains(m.CoherenceError, "the fake worker cannot judge") {
			t.Errorf("%s: sample %q (error %q), coherence error %q; want both reasons kept", m.Name, m.Sample, m.SampleError, m.CoherenceError)
		}
	}
	var warned []string
	for _, e := range events {
		if l, ok := e.(Log); ok && l.Level == "warn" && strings.Contains(l.Message, "the fake worker cannot generate") {
			warned = append(warned, l.Message)
		}
	}
	if len(warned) != 6 {
		t.Errorf("%d warnings about the sample generation, want one per model: %q", len(warned), warned)
	}
	if _, err := os.Stat(filepath.Join(res.OutputDir, "best.gguf")); err != nil {
		t.Errorf("no best.gguf: %v", err)
	}
	sum := readSummaryFile(t, res.OutputDir)
	for _, m := range sum.Comparison {
		if m.SampleError == "" || m.CoherenceError == "" {
			t.Errorf("summary.json: %s lacks the reasons (%q, %q)", m.Name, m.SampleError, m.CoherenceError)
		}
	}
}

// TestHeldOutWithWorkers: three workers score the held-out models
// concurrently and the comparison lists them in one worker's order, with
// the same scores for the models both runs share (the stand-in scores a
// file by its bytes, and a merged file records its sources' paths, which
// differ between the runs' directories).
func TestHeldOutWithWorkers(t *testing.T) {
	one, _, err := fakeRun(t, evaltest.Behaviour{}, Options{}, 1)
	if err != nil {
		t.Fatal(err)
	}
	three, _, err := fakeRun(t, evaltest.Behaviour{}, Options{}, 3)
	if err != nil {
		t.Fatal(err)
	}
	if len(one.Comparison) != 6 || len(three.Comparison) != len(one.Comparison) {
		t.Fatalf("%d and %d models compared, want 6", len(one.Comparison), len(three.Comparison))
	}
	for i, m := range three.Comparison {
		o := one.Comparison[i]
		same := m.Kind != "source" && m.Kind != "base" || m.GeoMean == o.GeoMean && m.Sample == o.Sample
		if m.Name != o.Name || m.Kind != o.Kind || m.Tokens != o.Tokens || m.GeoMean == 0 || !same {
			t.Errorf("model %d: %s %s geo-mean %v (%d tokens) with 3 workers, %s %s %v (%d) with one", i, m.Name, m.Kind, m.GeoMean, m.Tokens, o.Name, o.Kind, o.GeoMean, o.Tokens)
		}
	}
}

func readSummaryFile(t *testing.T, dir string) Result {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(dir, "summary.json"))
	if err != nil {
		t.Fatal(err)
	}
	var r Result
	if err := json.Unmarshal(raw, &r); err != nil {
		t.Fatal(err)
	}
	return r
}
