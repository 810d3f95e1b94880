// Package export writes a run's candidates as CSV and JSON for other
// programs: one row per candidate, one column order, full precision. The
// report (`report DIR` writes candidates.csv and candidates.json beside
// report.html) and the workbench's export (tui-candidates.csv and .json)
// both write through it, so the same run exports the same bytes from
// either; a test runs a tournament and compares them.
//
// The report builds rows from history.jsonl (FromRecord), the workbench
// from the engine's events. The workbench also lists what the history does
// not hold: cached repeats of an evaluated recipe and candidates still
// queued or running.
//
// Rows are in candidate order (generation, then candidate number) whatever
// order the evaluations finished in. Columns:
//
//	id, generation, technique, origin, parents (space-separated), status,
//	fitness, ppl_TEXT for each evaluation text, mean_log_ppl, coherence,
//	task_accuracy, merge_seconds, eval_seconds, key, summary, error
//
// Scores are empty unless the candidate was scored (done or cached).
// Perplexity columns follow the run's text order (eval.TextNames), then
// any other text a candidate was scored on, sorted. Seconds are rounded to
// the millisecond. The JSON holds the same fields plus the NSGA-II
// objectives and the recipe.
package export

import (
	"bytes"
	"cmp"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/evomerge/evomerge/engine/evolve"
)

// Candidate is one exported row.
type Candidate struct {
	ID         string        `json:"id"`
	Generation int           `json:"generation"`
	Technique  string        `json:"technique"`
	Origin     string        `json:"origin"`
	Parents    []string      `json:"parents"`
	Status     evolve.Status `json:"status"`
	// Scores: nil (and absent from the JSON) unless the candidate was
	// scored.
	Fitness      *float64           `json:"fitness,omitempty"`
	Perplexity   map[string]float64 `json:"perplexity,omitempty"` // per text name
	MeanLogPPL   *float64           `json:"mean_log_ppl,omitempty"`
	Coherence    *float64           `json:"coherence,omitempty"`
	TaskAccuracy *float64           `json:"task_accuracy,omitempty"`
	Objectives   []float64          `json:"objectives,omitempty"`

	MergeSeconds float64 `json:"merge_seconds"`
	EvalSeconds  float64 `json:"eval_seconds"`
	Key          string  `json:"key"`
	Summary      string  `json:"summary"`
	Error        string  `json:"error,omitempty"`
	Recipe       string  `json:"recipe"`
}

// SetScores fills in the scores of a scored candidate.
func (c *Candidate) SetScores(s evolve.Scores, fitness float64, objectives []float64) {
	c.Fitness, c.MeanLogPPL = &fitness, &s.MeanLogPPL
	c.Coherence, c.TaskAccuracy = &s.Coherence, &s.TaskAccuracy
	if len(s.Perplexity) > 0 {
		c.Perplexity = maps.Clone(s.Perplexity)
	}
	c.Objectives = slices.Clone(objectives)
}

// Seconds is a duration as exported: seconds, rounded to the millisecond.
func Seconds(d time.Duration) float64 { return d.Round(time.Millisecond).Seconds() }

// FromRecord is the row of a history record.
func FromRecord(r evolve.Record) Candidate {
	c := Candidate{
		ID: r.ID, Generation: r.Generation, Technique: r.Technique, Origin: r.Origin,
		Parents: parents(r.Parents), Status: r.Status,
		// The engine's events carry these durations converted exactly so;
		// rounding the same durations keeps the two sources identical.
		MergeSeconds: Seconds(time.Duration(r.MergeSec * float64(time.Second))),
		EvalSeconds:  Seconds(time.Duration(r.EvalSec * float64(time.Second))),
		Key:          r.Key, Summary: r.Summary, Error: r.Err, Recipe: r.Recipe,
	}
	if r.OK() {
		c.SetScores(r.Scores, r.Fitness, r.Objectives)
	}
	return c
}

func parents(p []string) []string {
	if p == nil {
		return []string{}
	}
	return slices.Clone(p)
}

// CSV renders the candidates, in candidate order, with a perplexity
// column for each text (texts first, in their order, then any other).
func CSV(cands []Candidate, texts []string) ([]byte, error) {
	cands = sorted(cands)
	texts = textColumns(cands, texts)
	head := []string{"id", "generation", "technique", "origin", "parents", "status", "fitness"}
	for _, t := range texts {
		head = append(head, "ppl_"+t)
	}
	head = append(head, "mean_log_ppl", "coherence", "task_accuracy", "merge_seconds", "eval_seconds", "key", "summary", "error")
	var buf bytes.Buffer
	w := csv.NewWriter(&buf)
	if err := w.Write(head); err != nil {
		return nil, fmt.Errorf("export: writing CSV: %w", err)
	}
	for _, c := range cands {
		row := []string{c.ID, strconv.Itoa(c.Generation), c.Technique, c.Origin, strings.Join(c.Parents, " "), string(c.Status), opt(c.Fitness)}
		for _, t := range texts {
			if p, ok := c.Perplexity[t]; ok {
				row = append(row, num(p))
			} else {
				row = append(row, "")
			}
		}
		row = append(row, opt(c.MeanLogPPL), opt(c.Coherence), opt(c.TaskAccuracy),
			num(c.MergeSeconds), num(c.EvalSeconds), c.Key, c.Summary, c.Error)
		if err := w.Write(row); err != nil {
			return nil, fmt.Errorf("export: writing CSV: %w", err)
		}
	}
	w.Flush()
	if err := w.Error(); err != nil {
		return nil, fmt.Errorf("export: writing CSV: %w", err)
	}
	return buf.Bytes(), nil
}

// JSON renders the candidates, in candidate order, as an indented array.
func JSON(cands []Candidate) ([]byte, error) {
	cands = sorted(cands)
	if cands == nil {
		cands = []Candidate{}
	}
	raw, err := json.MarshalIndent(cands, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("export: encoding candidates: %w", err)
	}
	return append(raw, '\n'), nil
}

// num is a value at full precision: parsing it gives back the float64.
func num(x float64) string { return strconv.FormatFloat(x, 'g', -1, 64) }

func opt(x *float64) string {
	if x == nil {
		return ""
	}
	return num(*x)
}

// textColumns is texts followed by every other text a candidate was
// scored on, sorted.
func textColumns(cands []Candidate, texts []string) []string {
	extra := map[string]bool{}
	for _, c := range cands {
		for t := range c.Perplexity {
			if !slices.Contains(texts, t) {
				extra[t] = true
			}
		}
	}
	return append(slices.Clone(texts), slices.Sorted(maps.Keys(extra))...)
}

// sorted returns the candidates in candidate order: by generation, then
// by ID with numbers compared as numbers ("g1-c9" before "g1-c10").
func sorted(cands []Candidate) []Candidate {
	out := slices.Clone(cands)
	slices.SortStableFunc(out, func(a, b Candidate) int {
		return cmp.Or(cmp.Compare(a.Generation, b.Generation), compareNatural(a.ID, b.ID))
	})
	return out
}

// compareNatural orders strings piecewise: runs of digits by their value,
// everything else byte by byte.
func compareNatural(a, b string) int {
	for a != "" && b != "" {
		da, db := digits(a), digits(b)
		if da > 0 && db > 0 {
			na, nb := strings.TrimLeft(a[:da], "0"), strings.TrimLeft(b[:db], "0")
			if c := cmp.Or(cmp.Compare(len(na), len(nb)), strings.Compare(na, nb)); c != 0 {
				return c
			}
			a, b = a[da:], b[db:]
			continue
		}
		if c := cmp.Compare(a[0], b[0]); c != 0 {
			return c
		}
		a, b = a[1:], b[1:]
	}
	return cmp.Compare(len(a), len(b))
}

// digits is the length of the run of ASCII digits that s starts with.
func digits(s string) int {
	n := 0
	for n < len(s) && '0' <= s[n] && s[n] <= '9' {
		n++
	}
	return n
}
