package tui

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/x/ansi"
	"github.com/google/renameio/v2"

	"github.com/evomerge/evomerge/engine/export"
)

// Export (e) writes into the output directory:
//
//	tui-candidates.csv   every candidate seen, one row each
//	tui-candidates.json  the same with recipes and per-text perplexities
//	tui-best-recipe.toml the best candidate's recipe (when there is one)
//	tui-screen-TIME.txt  the screen as plain text
//
// The candidate files are engine/export's format, the one `report DIR`
// writes as candidates.csv/.json; they add the rows the history does not
// hold (cached repeats, candidates not yet scored). The data is copied in
// Update; the command only writes. Files are written to a temporary name
// and renamed, so a reader never sees half a file.

// The workbench's candidate exports, named apart from the report's.
const (
	candidatesCSVFile  = "tui-candidates.csv"
	candidatesJSONFile = "tui-candidates.json"
)

// exportData is a snapshot for the export command.
type exportData struct {
	dir        string
	cands      []export.Candidate
	texts      []string // the run's evaluation texts, in order
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
	d := exportData{dir: dir, texts: slices.Clone(rs.started.Texts), bestID: rs.bestID, screen: ansi.Strip(screen), at: at}
	for _, id := range rs.order {
		c := rs.cands[id]
		ec := export.Candidate{
			ID: c.info.ID, Generation: c.info.Generation, Technique: c.info.Technique, Origin: c.info.Origin,
			Parents: slices.Clone(c.info.Parents), Status: c.status,
			MergeSeconds: export.Seconds(c.mergeTime), EvalSeconds: export.Seconds(c.evalTime),
			Key: c.info.Key, Summary: c.info.Summary, Error: c.err, Recipe: c.info.Recipe,
		}
		if ec.Parents == nil {
			ec.Parents = []string{}
		}
		if c.hasScores() {
			ec.SetScores(c.scores, c.fitness, c.objectives)
		}
		d.cands = append(d.cands, ec)
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
		if err := renameio.WriteFile(p, data, 0o644); err != nil {
			return fmt.Errorf("export: %w", err)
		}
		files = append(files, p)
		return nil
	}
	csvData, err := export.CSV(d.cands, d.texts)
	if err != nil {
		return files, err
	}
	if err := write(candidatesCSVFile, csvData); err != nil {
		return files, err
	}
	js, err := export.JSON(d.cands)
	if err != nil {
		return files, err
	}
	if err := write(candidatesJSONFile, js); err != nil {
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

func trimRightLines(s string) string {
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		lines[i] = strings.TrimRight(l, " ")
	}
	return strings.Join(lines, "\n")
}
