package evolve

import (
	"context"
	"errors"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/evomerge/evomerge/engine/eval"
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

// TestSearchESBudget: ES's generations hold its centre and pairs (9 of a
// population of 10), and the budget the run announces is theirs: a run
// of 3 generations announces 27 evaluations, makes them and ends on its
// generations, not on the budget.
func TestSearchESBudget(t *testing.T) {
	cfg := testConfig(t)
	cfg.Evolution.Optimizer, cfg.Evolution.Population, cfg.Evolution.Generations = "es", 10, 3
	var started RunStarted
	res, err := Search(context.Background(), cfg, Options{Sink: func(e Event) {
		if s, ok := e.(RunStarted); ok {
			started = s
		}
	}}, landscape)
	if err != nil {
		t.Fatal(err)
	}
	if started.Budget != 27 || res.Evaluations != 27 || res.Reason != "generations" {
		t.Errorf("announced %d evaluations, made %d, stopped on %q; want 27, 27, generations", started.Budget, res.Evaluations, res.Reason)
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
	// Results still on their way through the job queue when the run is
	// cancelled are not recorded (a resumed run scores them again), so
	// the history holds whole records of at most the 3 scored.
	recs := readHistory(t, cfg.Output.Dir)
	if len(recs) > 3 {
		t.Errorf("%d records in the history, want at most the 3 scored before the cancel", len(recs))
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
	if err == nil || err.Error() != "model a ("+cfg.Models[0].Path+"): no such file" {
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

// TestNonFiniteScoresRankLast: a candidate whose perplexity is +Inf or
// NaN (a broken merge) is recorded as failed with the reason and its
// measured values, ranks below every scored candidate, and the run goes
// on; the history keeps those values and replays.
func TestNonFiniteScoresRankLast(t *testing.T) {
	cfg := testConfig(t)
	cfg.Merge.Techniques = []string{"linear", "ties", "dfs"}
	cfg.Evolution.Generations = 3
	score := func(ctx context.Context, r *merge.Recipe) (Scores, error) {
		switch r.Method {
		case "dfs":
			return Scores{Perplexity: map[string]float64{"synthetic": math.Inf(1)}, MeanLogPPL: math.Inf(1)}, nil
		case "linear":
			return Scores{Perplexity: map[string]float64{"synthetic": math.NaN()}, MeanLogPPL: math.NaN()}, nil
		}
		return landscape(ctx, r)
	}
	var scored []CandidateScored
	res, err := Search(context.Background(), cfg, Options{Sink: func(e Event) {
		if s, ok := e.(CandidateScored); ok {
			scored = append(scored, s)
		}
	}}, score)
	if err != nil {
		t.Fatal(err)
	}
	if res.Best.Technique != "ties" || math.IsInf(res.BestFitness, 0) || math.IsNaN(res.BestFitness) {
		t.Fatalf("best %s with fitness %v, want a ties candidate with a finite fitness", res.Best.Technique, res.BestFitness)
	}
	seen := map[string]bool{}
	for _, s := range scored {
		tech := s.Candidate.Technique
		if tech == "ties" {
			continue
		}
		seen[tech] = true
		want := map[string]string{"dfs": "perplexity +Inf on synthetic", "linear": "perplexity NaN on synthetic"}[tech]
		if s.Status != StatusFailed || !strings.Contains(s.Err, want) {
			t.Errorf("%s (%s): status %s, error %q; want failed naming %q", s.Candidate.ID, tech, s.Status, s.Err, want)
		}
	}
	if !seen["dfs"] || !seen["linear"] {
		t.Fatalf("techniques seen: %v; the test needs dfs and linear candidates", seen)
	}
	recs := readHistory(t, cfg.Output.Dir)
	for _, r := range recs {
		switch r.Technique {
		case "dfs":
			if r.Status != StatusFailed || !math.IsInf(r.Scores.Perplexity["synthetic"], 1) || !math.IsInf(r.Scores.MeanLogPPL, 1) {
				t.Errorf("history %s: status %s, scores %+v; want failed with perplexity +Inf", r.ID, r.Status, r.Scores)
			}
		case "linear":
			if r.Status != StatusFailed || !math.IsNaN(r.Scores.Perplexity["synthetic"]) {
				t.Errorf("history %s: status %s, scores %+v; want failed with perplexity NaN", r.ID, r.Status, r.Scores)
			}
		}
	}
	replayed, err := replayHistory(cfg.Output.Dir)
	if err != nil || len(replayed) != len(recs) {
		t.Fatalf("replayed %d of %d records: %v", len(replayed), len(recs), err)
	}
}

// TestBudgetSkipsCandidates: when the evaluation budget runs out in the
// middle of a generation, the candidates left over get the final status
// skipped, with the reason, in the events and in summary.json; every
// candidate announced ends with exactly one final status.
func TestBudgetSkipsCandidates(t *testing.T) {
	cfg := testConfig(t)
	cfg.Evolution.Population = 4
	cfg.Evolution.Generations = 3
	cfg.Evolution.MaxEvaluations = 5
	announced := map[string]bool{}
	final := map[string][]CandidateScored{}
	res, err := Search(context.Background(), cfg, Options{Sink: func(e Event) {
		switch e := e.(type) {
		case GenerationStarted:
			for _, c := range e.Candidates {
				announced[c.ID] = true
			}
		case CandidateScored:
			final[e.Candidate.ID] = append(final[e.Candidate.ID], e)
		}
	}}, landscape)
	if err != nil {
		t.Fatal(err)
	}
	var skipped []string
	for id := range announced {
		switch got := final[id]; {
		case len(got) != 1:
			t.Errorf("%s: %d final statuses, want 1", id, len(got))
		case got[0].Status == StatusSkipped:
			if got[0].Candidate.Summary == "" || !strings.Contains(got[0].Err, "evaluation budget of 5 is spent") {
				t.Errorf("%s skipped with candidate %+v, reason %q", id, got[0].Candidate, got[0].Err)
			}
			skipped = append(skipped, id)
		}
	}
	slices.Sort(skipped)
	if len(skipped) == 0 || res.Reason != "budget" || res.Evaluations != 5 {
		t.Fatalf("skipped %v, reason %s after %d evaluations; want candidates skipped when the budget of 5 ran out", skipped, res.Reason, res.Evaluations)
	}
	if !slices.Equal(res.Skipped, skipped) {
		t.Errorf("result lists skipped %v, the events %v", res.Skipped, skipped)
	}
	if sum := readSummaryFile(t, cfg.Output.Dir); !slices.Equal(sum.Skipped, skipped) {
		t.Errorf("summary.json lists skipped %v, want %v", sum.Skipped, skipped)
	}
}

// TestWorkerStartFailureStopsTheRun: when no evaluation worker can be
// started the run stops with that reason (it does not record every
// remaining candidate as failed, nor wait), its history holds only the
// real outcomes, and --resume then reaches the uninterrupted run's result.
func TestWorkerStartFailureStopsTheRun(t *testing.T) {
	cfg := testConfig(t)
	cfg.Evolution.Generations = 4
	cfg.Evolution.Patience = 0
	full := runSynthetic(t, cfg, Options{})

	cfg.Output.Dir += "-stopped"
	var calls atomic.Int32
	broken := func(ctx context.Context, r *merge.Recipe) (Scores, error) {
		if calls.Add(1) > 12 {
			return Scores{}, &eval.StartError{Attempts: 3, Err: errors.New("evaluation worker did not start (exit status 1): out of memory")}
		}
		return landscape(ctx, r)
	}
	var last Event
	_, err := Search(context.Background(), cfg, Options{Sink: func(e Event) { last = e }}, broken)
	var se *eval.StartError
	if !errors.As(err, &se) || !strings.Contains(err.Error(), "out of memory") || !strings.Contains(err.Error(), "--resume "+cfg.Output.Dir) {
		t.Fatalf("the run ended with %v; want the *StartError with its reason and how to resume", err)
	}
	if f, ok := last.(Finished); !ok || f.Reason != "error" || !errors.As(f.Err, &se) {
		t.Errorf("last event %#v, want Finished with the error", last)
	}
	for _, r := range readHistory(t, cfg.Output.Dir) {
		if r.Status != StatusDone {
			t.Errorf("history holds %s with status %s (%s): only real outcomes belong there", r.ID, r.Status, r.Err)
		}
	}
	resumed, err := Search(context.Background(), cfg, Options{Resume: true}, landscape)
	if err != nil {
		t.Fatal(err)
	}
	if resumed.Best.Key != full.Best.Key || resumed.BestFitness != full.BestFitness || resumed.Evaluations != full.Evaluations {
		t.Fatalf("resumed run: best %s %.6f after %d evaluations; uninterrupted: %s %.6f after %d",
			resumed.Best.Key, resumed.BestFitness, resumed.Evaluations, full.Best.Key, full.BestFitness, full.Evaluations)
	}
}

// TestPatienceStopsAStalledRun: the run stops once the best fitness has
// not improved by more than min_improvement for patience generations —
// on a flat landscape after patience+1 generations, on one that improves
// by less than min_improvement likewise — and a run that keeps improving
// goes to its last generation. Each generation reports how long the best
// has stalled.
func TestPatienceStopsAStalledRun(t *testing.T) {
	var calls atomic.Int64
	flat := func(context.Context, *merge.Recipe) (Scores, error) {
		return Scores{MeanLogPPL: 2, Perplexity: map[string]float64{"synthetic": math.Exp(2)}}, nil
	}
	// Every evaluation is a little better than the one before: the best
	// improves by 1e-4 per candidate, 4e-4 per generation of 4.
	creeping := func(context.Context, *merge.Recipe) (Scores, error) {
		l := 2 - 1e-4*float64(calls.Add(1))
		return Scores{MeanLogPPL: l, Perplexity: map[string]float64{"synthetic": math.Exp(l)}}, nil
	}
	for _, tt := range []struct {
		name           string
		score          ScoreFunc
		patience       int
		minImprovement float64
		reason         string
		generations    int
	}{
		{"flat", flat, 3, 0, "patience", 4},
		{"improving less than min_improvement", creeping, 2, 0.001, "patience", 3},
		{"improving", creeping, 2, 0, "generations", 8},
		{"patience 0 never stops", flat, 0, 0, "generations", 8},
	} {
		t.Run(tt.name, func(t *testing.T) {
			calls.Store(0)
			cfg := testConfig(t)
			cfg.Evolution.Population = 4
			cfg.Evolution.Generations = 8
			cfg.Evolution.Patience = tt.patience
			cfg.Evolution.MinImprovement = tt.minImprovement
			var stalled []int
			res, err := Search(context.Background(), cfg, Options{Sink: func(e Event) {
				if d, ok := e.(GenerationDone); ok {
					stalled = append(stalled, d.Stalled)
				}
			}}, tt.score)
			if err != nil {
				t.Fatal(err)
			}
			if res.Reason != tt.reason || res.Generations != tt.generations {
				t.Fatalf("stopped (%s) after %d generations, stalled %v; want %s after %d", res.Reason, res.Generations, stalled, tt.reason, tt.generations)
			}
			if tt.reason == "patience" {
				want := make([]int, tt.generations)
				for i := range want {
					want[i] = i
				}
				if !slices.Equal(stalled, want) {
					t.Errorf("stalled counts %v, want %v", stalled, want)
				}
			}
		})
	}
}
