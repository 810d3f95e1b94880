package evolve

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/google/renameio/v2"

	"github.com/evomerge/evomerge/engine/eval"
)

// A run's directory holds config.toml (written when the run starts),
// history.jsonl (one Record per evaluated candidate, appended as each
// finishes), checkpoint.json (after every generation) and summary.json (at
// the end). history.jsonl is what resume replays and what the report reads;
// the JSON files are replaced whole (temp file and rename), so a killed run
// leaves either the old or the new one.

// Record is one line of history.jsonl: a candidate and its outcome. Only
// real evaluations (and failures) are recorded; cached repeats of a recipe
// are not. It is the format resume replays and the report reads.
type Record struct {
	ID         string   `json:"id"`
	Generation int      `json:"generation"`
	Key        string   `json:"key"`
	Technique  string   `json:"technique"`
	Origin     string   `json:"origin"`
	Parents    []string `json:"parents,omitempty"`
	Summary    string   `json:"summary"`
	Recipe     string   `json:"recipe"`
	Genome     Genome   `json:"genome"`
	Scores     Scores   `json:"scores"`
	// Windows are the validation windows per text the scores are on, when
	// the run rotates them (nil: the first evaluation.chunks).
	Windows map[string][]int `json:"windows,omitempty"`
	Fitness float64          `json:"fitness"`
	// Gradient is ∂Fitness/∂gene of Genome, for a candidate of the
	// gradient optimiser (gradient.go), so that --resume replays its steps.
	Gradient   []float64 `json:"gradient,omitempty"`
	Objectives []float64 `json:"objectives,omitempty"`
	Status     Status    `json:"status"`
	Err        string    `json:"error,omitempty"`
	MergeSec   float64   `json:"merge_seconds"`
	EvalSec    float64   `json:"eval_seconds"`
	Time       time.Time `json:"time"`

	// wantGradient asks the measurer for the derivative of the mean
	// log-perplexity in the recipe's task-vector coefficients, which it
	// leaves in coefGradient (the evaluator: eval.CandidateRequest.Gradient).
	wantGradient bool
	coefGradient *eval.GradientReply
}

// OK reports whether the candidate was scored (not failed).
func (r Record) OK() bool { return r.Status.Scored() }

const historyFile = "history.jsonl"

// history appends records to history.jsonl. Its lock covers the file only:
// a slow disk holds up other writers of the history, never the scheduler's
// bookkeeping or the events.
type history struct {
	mu sync.Mutex
	f  *os.File
}

// openHistory opens dir's history.jsonl for appending, creating it if need
// be. A last line cut short by a kill is dropped first (replay skips it
// anyway): appended after it, the next record would share its line and be
// lost to the next replay.
func openHistory(dir string) (*history, error) {
	path := filepath.Join(dir, historyFile)
	if err := dropPartialLine(path); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	return &history{f: f}, nil
}

// dropPartialLine truncates path after its last newline (a missing file
// is left alone).
func dropPartialLine(path string) error {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	end := st.Size()
	buf := make([]byte, 64<<10)
	for end > 0 {
		n := min(int64(len(buf)), end)
		if _, err := f.ReadAt(buf[:n], end-n); err != nil {
			return fmt.Errorf("reading %s: %w", path, err)
		}
		if i := bytes.LastIndexByte(buf[:n], '\n'); i >= 0 {
			end = end - n + int64(i) + 1
			break
		}
		end -= n
	}
	if end == st.Size() {
		return nil
	}
	if err := f.Truncate(end); err != nil {
		return fmt.Errorf("dropping the cut last line of %s: %w", path, err)
	}
	return nil
}

// append writes one record as a line.
func (h *history) append(rec *Record) error {
	line, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, err := h.f.Write(append(line, '\n')); err != nil {
		return fmt.Errorf("writing history: %w", err)
	}
	return nil
}

func (h *history) close() error { return h.f.Close() }

// replayHistory reads the finished records (done or failed) of dir's
// history.jsonl in file order; a missing file holds none. A line that does
// not parse — the last one, cut short when a run was killed — is skipped,
// so that candidate is evaluated again.
func replayHistory(dir string) ([]*Record, error) {
	f, err := os.Open(filepath.Join(dir, historyFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	var out []*Record
	for sc.Scan() {
		var r Record
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			continue
		}
		if r.Status == StatusDone || r.Status == StatusFailed {
			out = append(out, &r)
		}
	}
	return out, sc.Err()
}

// refuseExistingRun fails when dir's history.jsonl already holds a run: a
// new run must not append to it.
func refuseExistingRun(dir string) error {
	path := filepath.Join(dir, historyFile)
	if st, err := os.Stat(path); err == nil && st.Size() > 0 {
		return fmt.Errorf("%s already holds a run (%s): pass --resume %s to continue it, or choose another output directory", dir, path, dir)
	}
	return nil
}

// writeCheckpoint records the state after generation gen in checkpoint.json.
func writeCheckpoint(dir string, gen int, d GenerationDone) error {
	cp := map[string]any{"generation": gen, "evaluations": d.Evaluations, "best_id": d.BestID, "best_fitness": d.Best,
		"stalled": d.Stalled, "time": time.Now().UTC()}
	return writeJSON(filepath.Join(dir, "checkpoint.json"), cp)
}

// writeJSON replaces path with v as indented JSON.
func writeJSON(path string, v any) error {
	raw, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return renameio.WriteFile(path, append(raw, '\n'), 0o644)
}
