package evolve

import (
	"context"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/evomerge/evomerge/engine/merge"
	"github.com/evomerge/evomerge/engine/modelset"
)

func testRecords() []*Record {
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	return []*Record{
		{ID: "g0-c00", Key: "k0", Technique: "linear", Origin: "source", Summary: "linear a=1", Recipe: "merge_method = \"linear\"\n",
			Genome: Genome{Technique: "linear", Genes: []float64{1, 0, 0.5}}, Status: StatusDone, Fitness: -2.5,
			Scores: Scores{Perplexity: map[string]float64{"bible": 12.5}, MeanLogPPL: 2.5}, MergeSec: 0, EvalSec: 1.25, Time: t0},
		{ID: "g0-c01", Key: "k1", Technique: "ties", Origin: "initial", Parents: []string{"g0-c00"}, Status: StatusFailed,
			Err: "merging: no", Genome: Genome{Technique: "ties", Genes: []float64{0.1}}, Time: t0.Add(time.Second)},
		{ID: "g1-c00", Generation: 1, Key: "k2", Technique: "ties", Origin: "crossover", Parents: []string{"g0-c00", "g0-c01"},
			Status: StatusDone, Fitness: -2, Objectives: []float64{-2}, Scores: Scores{MeanLogPPL: 2}, Time: t0.Add(2 * time.Second)},
	}
}

// TestHistoryRoundTrip: what append writes, replay reads back unchanged,
// in order; a last line cut short by a kill is skipped (that candidate
// will be evaluated again), as are records that are neither done nor
// failed; a missing history replays as empty.
func TestHistoryRoundTrip(t *testing.T) {
	dir := t.TempDir()
	if recs, err := replayHistory(dir); err != nil || recs != nil {
		t.Fatalf("missing history: %v, %v", recs, err)
	}
	h, err := openHistory(dir)
	if err != nil {
		t.Fatal(err)
	}
	want := testRecords()
	for _, r := range want {
		if err := h.append(r); err != nil {
			t.Fatal(err)
		}
	}
	queued := &Record{ID: "g1-c01", Key: "k3", Status: StatusQueued}
	if err := h.append(queued); err != nil {
		t.Fatal(err)
	}
	if err := h.close(); err != nil {
		t.Fatal(err)
	}
	got, err := replayHistory(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("replayed\n%+v\nwant\n%+v", got, want)
	}

	// A kill while writing the next line leaves half of it.
	line, _ := json.Marshal(&Record{ID: "g1-c02", Key: "k4", Status: StatusDone})
	f, err := os.OpenFile(filepath.Join(dir, historyFile), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.Write(line[:len(line)/2])
	f.Close()
	if got, err = replayHistory(dir); err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("with a truncated last line: %d records, %v", len(got), err)
	}

	// A resumed run opens the history again: the fragment is dropped, so
	// the records it appends stand on lines of their own.
	h, err = openHistory(dir)
	if err != nil {
		t.Fatal(err)
	}
	more := []*Record{{ID: "g1-c02", Key: "k4", Status: StatusDone}, {ID: "g1-c03", Key: "k5", Status: StatusFailed}}
	for _, r := range more {
		if err := h.append(r); err != nil {
			t.Fatal(err)
		}
	}
	h.close()
	if got, _ = replayHistory(dir); !reflect.DeepEqual(got, append(want, more...)) {
		t.Errorf("after appending past a cut line: %d records, want %d", len(got), len(want)+len(more))
	}
}

// TestRunDirectory: a new run refuses a directory that holds one, and
// writes config.toml; a resumed run reads the history and leaves the
// configuration alone.
func TestRunDirectory(t *testing.T) {
	dir := t.TempDir()
	if err := refuseExistingRun(dir); err != nil {
		t.Fatalf("empty directory refused: %v", err)
	}
	os.WriteFile(filepath.Join(dir, historyFile), nil, 0o644)
	if err := refuseExistingRun(dir); err != nil {
		t.Fatalf("empty history refused: %v", err)
	}
	os.WriteFile(filepath.Join(dir, historyFile), []byte("{}\n"), 0o644)
	err := refuseExistingRun(dir)
	if err == nil || !strings.Contains(err.Error(), "--resume "+dir) {
		t.Fatalf("a directory with a history: %v", err)
	}

	cfg := testConfig(t)
	cfg.Evolution.Generations = 2
	res := runSynthetic(t, cfg, Options{})
	raw, err := os.ReadFile(filepath.Join(cfg.Output.Dir, "config.toml"))
	if err != nil {
		t.Fatal(err)
	}
	// The run's configuration is the effective one: the models and
	// techniques modelset kept, the coherence prompts it chose.
	set, err := modelset.Prepare(context.Background(), cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	if want, _ := set.Config.Encode(); string(raw) != string(want) {
		t.Error("config.toml is not the run's configuration")
	}
	var cp map[string]any
	if b, err := os.ReadFile(filepath.Join(cfg.Output.Dir, "checkpoint.json")); err != nil || json.Unmarshal(b, &cp) != nil ||
		cp["generation"] != 1.0 || cp["evaluations"] != float64(res.Evaluations) || cp["best_id"] != res.Best.ID {
		t.Errorf("checkpoint.json %v (%v), want generation 1 with the result's best and evaluations", cp, err)
	}
	os.WriteFile(filepath.Join(cfg.Output.Dir, "config.toml"), []byte("# edited\n"), 0o644)
	if _, err := Search(context.Background(), cfg, Options{Resume: true}, landscape); err != nil {
		t.Fatal(err)
	}
	if raw, _ := os.ReadFile(filepath.Join(cfg.Output.Dir, "config.toml")); string(raw) != "# edited\n" {
		t.Error("resuming rewrote config.toml")
	}
}

// TestResumeAfterTruncatedHistory: a run killed while writing a record
// resumes to the uninterrupted run's result, evaluating the lost
// candidate again and replaying the others.
func TestResumeAfterTruncatedHistory(t *testing.T) {
	cfg := testConfig(t)
	cfg.Evolution.Generations = 4
	cfg.Evolution.Patience = 0
	full := runSynthetic(t, cfg, Options{})
	hist := filepath.Join(cfg.Output.Dir, historyFile)
	raw, err := os.ReadFile(hist)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.SplitAfter(strings.TrimSuffix(string(raw), "\n"), "\n")
	// Keep the first half of the records and half of the next line.
	keep := len(lines) / 2
	cut := strings.Join(lines[:keep], "") + lines[keep][:len(lines[keep])/2]
	if err := os.WriteFile(hist, []byte(cut), 0o644); err != nil {
		t.Fatal(err)
	}
	var replayed int
	var scored atomic.Int32
	count := func(ctx context.Context, r *merge.Recipe) (Scores, error) {
		scored.Add(1)
		return landscape(ctx, r)
	}
	res, err := Search(context.Background(), cfg, Options{Resume: true, Sink: func(e Event) {
		if s, ok := e.(RunStarted); ok {
			replayed = s.Resumed
		}
	}}, count)
	if err != nil {
		t.Fatal(err)
	}
	if replayed != keep {
		t.Errorf("%d records replayed, want %d", replayed, keep)
	}
	if res.Best.Key != full.Best.Key || res.BestFitness != full.BestFitness || res.Evaluations != full.Evaluations {
		t.Errorf("resumed: best %s %.6f after %d evaluations; uninterrupted: %s %.6f after %d",
			res.Best.Key, res.BestFitness, res.Evaluations, full.Best.Key, full.BestFitness, full.Evaluations)
	}
	if want := len(lines) - keep; int(scored.Load()) != want {
		t.Errorf("%d candidates evaluated on resume, want the %d lost ones", scored.Load(), want)
	}
	// Every line parses (readHistory fails on one that does not), and
	// every candidate is in it once.
	if a := readHistory(t, cfg.Output.Dir); len(a) != len(lines) {
		t.Errorf("history after resuming holds %d records, want %d", len(a), len(lines))
	}
}

// TestRunFilesCarryNonFinite: records and results with infinite values
// (a broken model's) go through JSON — history.jsonl's and summary.json's
// encoding — and come back unchanged, every field included.
func TestRunFilesCarryNonFinite(t *testing.T) {
	inf := math.Inf(1)
	rec := testRecords()[0]
	rec.Status, rec.Err = StatusFailed, "perplexity +Inf on bible"
	rec.Scores = Scores{Perplexity: map[string]float64{"bible": inf, "moby": 3}, MeanLogPPL: inf, Coherence: 0.5, TaskAccuracy: 0.25}
	rec.Fitness, rec.Objectives = math.Inf(-1), []float64{math.Inf(-1), 0.5, 0.25}
	raw, err := json.Marshal(rec)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"bible":"+Inf"`, `"moby":3`, `"mean_log_ppl":"+Inf"`, `"fitness":"-Inf"`, `"objectives":["-Inf",0.5,0.25]`, `"coherence":0.5`} {
		if !strings.Contains(string(raw), want) {
			t.Errorf("record %s lacks %s", raw, want)
		}
	}
	var back Record
	if err := json.Unmarshal(raw, &back); err != nil || !reflect.DeepEqual(&back, rec) {
		t.Fatalf("record read back\n%+v\nwant\n%+v (%v)", back, *rec, err)
	}

	res := &Result{OutputDir: "out", Reason: "generations", Best: CandidateInfo{ID: "g0-c00"}, BestFitness: -2.5,
		BestScores: Scores{Perplexity: map[string]float64{"bible": 12.5}, MeanLogPPL: 2.5}, Evaluations: 4, Generations: 1,
		Comparison: []ModelScore{{Name: "moby", Kind: "source", Perplexity: map[string]float64{"bible": inf}, StdErr: map[string]float64{"bible": math.Inf(1)},
			GeoMean: inf, Tokens: 254, Coherence: 0.125, Sample: "Once upon a time"}}}
	raw, err = json.Marshal(res)
	if err != nil {
		t.Fatal(err)
	}
	var rback Result
	if err := json.Unmarshal(raw, &rback); err != nil || !reflect.DeepEqual(&rback, res) {
		t.Fatalf("result read back\n%+v\nwant\n%+v (%v)", rback, *res, err)
	}
}
