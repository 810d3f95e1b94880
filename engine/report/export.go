package report

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"maps"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/evomerge/evomerge/zoo"
)

// The exports written beside report.html.
const (
	ReportFile         = "report.html"
	CandidatesCSVFile  = "candidates.csv"
	CandidatesJSONFile = "candidates.json"
)

// textNames are the fitness texts: those configured, named as the engine
// names them (evolve.LoadTexts), then any other that a candidate was
// scored on.
func (r *Run) textNames() []string {
	var out []string
	used := map[string]int{}
	for _, ref := range r.Config.Evaluation.Texts {
		name := strings.TrimSuffix(filepath.Base(ref), filepath.Ext(ref))
		if d, _, ok := zoo.ParseTextRef(ref); ok {
			name = d
		}
		if used[name]++; used[name] > 1 {
			name = fmt.Sprintf("%s-%d", name, used[name])
		}
		out = append(out, name)
	}
	extra := map[string]bool{}
	for _, c := range r.Candidates {
		for k := range c.Scores.Perplexity {
			if !slices.Contains(out, k) {
				extra[k] = true
			}
		}
	}
	return append(out, slices.Sorted(maps.Keys(extra))...)
}

// CSV renders the candidates as CSV: one row per evaluated candidate.
// Perplexity columns are named "ppl_TEXT"; parents are separated by
// spaces; failed candidates have an empty fitness.
func (r *Run) CSV() ([]byte, error) {
	texts := r.textNames()
	head := []string{"id", "generation", "technique", "origin", "parents", "status", "fitness"}
	for _, t := range texts {
		head = append(head, "ppl_"+t)
	}
	head = append(head, "mean_log_ppl", "coherence", "task_accuracy", "merge_seconds", "eval_seconds", "key", "summary", "error")
	var buf bytes.Buffer
	w := csv.NewWriter(&buf)
	if err := w.Write(head); err != nil {
		return nil, err
	}
	f := func(x float64) string { return strconv.FormatFloat(x, 'g', -1, 64) }
	for _, c := range r.Candidates {
		row := []string{c.ID, strconv.Itoa(c.Generation), c.Technique, c.Origin, strings.Join(c.Parents, " "), string(c.Status), ""}
		if c.OK() {
			row[6] = f(c.Fitness)
		}
		for _, t := range texts {
			if p, ok := c.Scores.Perplexity[t]; ok {
				row = append(row, f(p))
			} else {
				row = append(row, "")
			}
		}
		score := func(x float64) string {
			if !c.OK() {
				return ""
			}
			return f(x)
		}
		row = append(row, score(c.Scores.MeanLogPPL), score(c.Scores.Coherence), score(c.Scores.TaskAccuracy),
			f(c.MergeSec), f(c.EvalSec), c.Key, c.Summary, c.Err)
		if err := w.Write(row); err != nil {
			return nil, err
		}
	}
	w.Flush()
	if err := w.Error(); err != nil {
		return nil, fmt.Errorf("report: writing CSV: %w", err)
	}
	return buf.Bytes(), nil
}

// JSON renders the candidates as an indented JSON array of Candidate.
func (r *Run) JSON() ([]byte, error) {
	cs := r.Candidates
	if cs == nil {
		cs = []Candidate{}
	}
	raw, err := json.MarshalIndent(cs, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("report: encoding candidates: %w", err)
	}
	return append(raw, '\n'), nil
}
