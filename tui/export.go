package tui

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/x/ansi"

	"github.com/evomerge/evomerge/engine/evolve"
)

// Export (e) writes into the output directory:
//
//	tui-candidates.csv   every candidate seen, one row each
//	tui-candidates.json  the same with recipes and per-text perplexities
//	tui-best-recipe.toml the best candidate's recipe (when there is one)
//	tui-screen-TIME.txt  the screen as plain text
//
// The data is copied in Update; the command only writes. Files are
// written to a temporary name and renamed, so a reader never sees half a
// file.

// candidateRecord is one exported candidate.
type candidateRecord struct {
	ID           string             `json:"id"`
	Generation   int                `json:"generation"`
	Technique    string             `json:"technique"`
	Summary      string             `json:"summary"`
	Origin       string             `json:"origin"`
	Parents      []string           `json:"parents"`
	Status       string             `json:"status"`
	Fitness      *float64           `json:"fitness,omitempty"`
	MeanLogPPL   *float64           `json:"mean_log_ppl,omitempty"`
	Perplexity   map[string]float64 `json:"perplexity,omitempty"`
	Coherence    float64            `json:"coherence,omitempty"`
	TaskAccuracy float64            `json:"task_accuracy,omitempty"`
	Objectives   []float64          `json:"objectives,omitempty"`
	Rank         int                `json:"rank"`
	Error        string             `json:"error,omitempty"`
	MergeSeconds float64            `json:"merge_seconds"`
	EvalSeconds  float64            `json:"eval_seconds"`
	Key          string             `json:"key"`
	Recipe       string             `json:"recipe"`
}

// exportData is a snapshot for the export command.
type exportData struct {
	dir        string
	records    []candidateRecord
	bestID     string
	bestRecipe string
	screen     string
	at         time.Time
}

// exportedMsg reports the files written (or why not).
type exportedMsg struct {
	files []string
	err   error
}

// snapshotExport copies what the export needs from the run state.
func snapshotExport(rs *runState, dir, screen string, at time.Time) exportData {
	d := exportData{dir: dir, bestID: rs.bestID, screen: ansi.Strip(screen), at: at}
	for _, id := range rs.order {
		c := rs.cands[id]
		r := candidateRecord{
			ID: c.info.ID, Generation: c.info.Generation, Technique: c.info.Technique, Summary: c.info.Summary,
			Origin: c.info.Origin, Parents: slices.Clone(c.info.Parents), Status: string(c.status),
			Coherence: c.scores.Coherence, TaskAccuracy: c.scores.TaskAccuracy, Objectives: slices.Clone(c.objectives),
			Rank: c.rank, Error: c.err, MergeSeconds: c.mergeTime.Seconds(), EvalSeconds: c.evalTime.Seconds(),
			Key: c.info.Key, Recipe: c.info.Recipe,
		}
		if r.Parents == nil {
			r.Parents = []string{}
		}
		if c.scored && c.status != evolve.StatusFailed {
			f, l := c.fitness, c.scores.MeanLogPPL
			r.Fitness, r.MeanLogPPL = &f, &l
			if len(c.scores.Perplexity) > 0 {
				r.Perplexity = map[string]float64{}
				for k, v := range c.scores.Perplexity {
					r.Perplexity[k] = v
				}
			}
		}
		d.records = append(d.records, r)
		if id == rs.bestID {
			d.bestRecipe = c.info.Recipe
		}
	}
	if d.bestRecipe == "" && rs.finished != nil {
		d.bestRecipe = rs.finished.Best.Recipe
	}
	return d
}

func exportCmd(d exportData) tea.Cmd {
	return func() tea.Msg {
		files, err := writeExport(d)
		return exportedMsg{files: files, err: err}
	}
}

func writeExport(d exportData) ([]string, error) {
	if d.dir == "" {
		d.dir = "."
	}
	if err := os.MkdirAll(d.dir, 0o755); err != nil {
		return nil, fmt.Errorf("export: %w", err)
	}
	var files []string
	write := func(name string, data []byte) error {
		p := filepath.Join(d.dir, name)
		if err := writeFileAtomic(p, data); err != nil {
			return fmt.Errorf("export: %w", err)
		}
		files = append(files, p)
		return nil
	}
	csvData, err := candidatesCSV(d.records)
	if err != nil {
		return files, fmt.Errorf("export: %w", err)
	}
	if err := write("tui-candidates.csv", csvData); err != nil {
		return files, err
	}
	js, err := json.MarshalIndent(d.records, "", "  ")
	if err != nil {
		return files, fmt.Errorf("export: encoding candidates: %w", err)
	}
	if err := write("tui-candidates.json", append(js, '\n')); err != nil {
		return files, err
	}
	if strings.TrimSpace(d.bestRecipe) != "" {
		head := fmt.Sprintf("# best candidate %s, exported by evomerge-tui\n", d.bestID)
		if err := write("tui-best-recipe.toml", []byte(head+d.bestRecipe)); err != nil {
			return files, err
		}
	}
	name := "tui-screen-" + d.at.Format("20060102-150405") + ".txt"
	if err := write(name, []byte(trimRightLines(d.screen)+"\n")); err != nil {
		return files, err
	}
	return files, nil
}

// candidatesCSV renders the records as CSV with one perplexity column per
// evaluation text.
func candidatesCSV(recs []candidateRecord) ([]byte, error) {
	textSet := map[string]bool{}
	for _, r := range recs {
		for k := range r.Perplexity {
			textSet[k] = true
		}
	}
	texts := make([]string, 0, len(textSet))
	for k := range textSet {
		texts = append(texts, k)
	}
	slices.Sort(texts)
	var buf bytes.Buffer
	w := csv.NewWriter(&buf)
	head := []string{"id", "generation", "technique", "origin", "parents", "status", "fitness", "mean_log_ppl",
		"coherence", "task_accuracy", "rank", "merge_seconds", "eval_seconds", "error", "summary", "key"}
	for _, t := range texts {
		head = append(head, "ppl_"+t)
	}
	if err := w.Write(head); err != nil {
		return nil, err
	}
	f := func(p *float64) string {
		if p == nil {
			return ""
		}
		return strconv.FormatFloat(*p, 'g', -1, 64)
	}
	g := func(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }
	for _, r := range recs {
		row := []string{r.ID, strconv.Itoa(r.Generation), r.Technique, r.Origin, strings.Join(r.Parents, " "), r.Status,
			f(r.Fitness), f(r.MeanLogPPL), g(r.Coherence), g(r.TaskAccuracy), strconv.Itoa(r.Rank),
			g(r.MergeSeconds), g(r.EvalSeconds), r.Error, r.Summary, r.Key}
		for _, t := range texts {
			if v, ok := r.Perplexity[t]; ok {
				row = append(row, g(v))
			} else {
				row = append(row, "")
			}
		}
		if err := w.Write(row); err != nil {
			return nil, err
		}
	}
	w.Flush()
	return buf.Bytes(), w.Error()
}

// writeFileAtomic writes data to a temporary file beside path and renames
// it over path.
func writeFileAtomic(path string, data []byte) error {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	name := tmp.Name()
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		os.Remove(name)
		return err
	}
	if err := tmp.Close(); err != nil {
		os.Remove(name)
		return err
	}
	if err := os.Chmod(name, 0o644); err != nil {
		os.Remove(name)
		return err
	}
	if err := os.Rename(name, path); err != nil {
		os.Remove(name)
		return err
	}
	return nil
}

func trimRightLines(s string) string {
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		lines[i] = strings.TrimRight(l, " ")
	}
	return strings.Join(lines, "\n")
}
