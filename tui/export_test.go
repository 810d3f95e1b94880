package tui

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"hash/fnv"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/evomerge/evomerge/engine/config"
	"github.com/evomerge/evomerge/engine/evolve"
	"github.com/evomerge/evomerge/engine/export"
	"github.com/evomerge/evomerge/engine/gguf"
	"github.com/evomerge/evomerge/engine/gguf/synth"
	"github.com/evomerge/evomerge/engine/merge"
	"github.com/evomerge/evomerge/engine/report"
)

// TestExportMatchesReport runs real tournaments (the evolve engine over
// synthetic models, scored by a made-up scorer instead of llama.cpp),
// folds their events into the workbench's run state as the dashboard
// does, and checks that the workbench's export and `report DIR` write the
// same candidate files. A random search evaluates every candidate once,
// so the files must be byte-identical; the genetic algorithm carries
// elites over as cached repeats, which only the workbench lists, so
// without those rows the two must agree.
func TestExportMatchesReport(t *testing.T) {
	for _, tt := range []struct {
		optimizer string
		cached    bool // the run must have cached repeats
	}{{"random", false}, {"ga", true}} {
		t.Run(tt.optimizer, func(t *testing.T) {
			runDir, rs := exportRun(t, tt.optimizer)
			run, err := report.Load(runDir)
			if err != nil {
				t.Fatal(err)
			}
			repCSV, err := run.CSV()
			if err != nil {
				t.Fatal(err)
			}
			repJSON, err := run.JSON()
			if err != nil {
				t.Fatal(err)
			}
			outDir := t.TempDir()
			if _, err := writeExport(snapshotExport(&rs, outDir, "screen", time.Now())); err != nil {
				t.Fatal(err)
			}
			tuiCSV := readBytes(t, filepath.Join(outDir, candidatesCSVFile))
			tuiJSON := readBytes(t, filepath.Join(outDir, candidatesJSONFile))

			var cands []export.Candidate
			if err := json.Unmarshal(tuiJSON, &cands); err != nil {
				t.Fatal(err)
			}
			cached := slices.ContainsFunc(cands, func(c export.Candidate) bool { return c.Status == evolve.StatusCached })
			if cached != tt.cached {
				t.Fatalf("run has cached repeats: %v, want %v", cached, tt.cached)
			}
			if len(run.Candidates) < 10 || !slices.ContainsFunc(run.Candidates, func(r evolve.Record) bool { return !r.OK() }) {
				t.Fatalf("fixture too plain: %d candidates, none failed", len(run.Candidates))
			}
			if !tt.cached {
				if !bytes.Equal(tuiCSV, repCSV) {
					t.Errorf("CSV differs:\nworkbench:\n%s\nreport:\n%s", tuiCSV, repCSV)
				}
				if !bytes.Equal(tuiJSON, repJSON) {
					t.Errorf("JSON differs:\nworkbench:\n%s\nreport:\n%s", tuiJSON, repJSON)
				}
				return
			}

			// Without the cached repeats, the same rows and the same records.
			tuiRows, repRows := readCSV(t, tuiCSV), readCSV(t, repCSV)
			status := slices.Index(tuiRows[0], "status")
			tuiRows = slices.DeleteFunc(tuiRows, func(r []string) bool { return r[status] == string(evolve.StatusCached) })
			if !reflect.DeepEqual(tuiRows, repRows) {
				t.Errorf("CSV rows differ:\nworkbench: %q\nreport:    %q", tuiRows, repRows)
			}
			var repCands []export.Candidate
			if err := json.Unmarshal(repJSON, &repCands); err != nil {
				t.Fatal(err)
			}
			cands = slices.DeleteFunc(cands, func(c export.Candidate) bool { return c.Status == evolve.StatusCached })
			if !reflect.DeepEqual(cands, repCands) {
				t.Errorf("JSON records differ:\nworkbench: %+v\nreport:    %+v", cands, repCands)
			}
		})
	}
}

// exportRun runs a small tournament and returns its output directory and
// the workbench state its events produce.
func exportRun(t *testing.T, optimizer string) (string, runState) {
	t.Helper()
	dir := t.TempDir()
	cfg := config.Default()
	cfg.Models = nil
	for i, name := range []string{"bible", "moby", "sotu", "stories15M"} {
		p := filepath.Join(dir, "models", name+".gguf")
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := (synth.Model{Layers: 3, Type: gguf.TypeF16, Seed: uint64(i + 1)}).Write(p, name); err != nil {
			t.Fatal(err)
		}
		cfg.Models = append(cfg.Models, config.Model{Name: name, Path: p})
	}
	cfg.Merge.Base = "stories15M"
	cfg.Merge.Techniques = []string{"linear", "slerp", "ties", "task_arithmetic"}
	cfg.Evolution.Optimizer = optimizer
	cfg.Evolution.Population = 8
	cfg.Evolution.Generations = 3
	cfg.Evolution.Patience = 0
	cfg.Evaluation.Objectives = config.Objectives{Perplexity: 1, Coherence: 0.5}
	cfg.Output.Dir = filepath.Join(dir, "run")
	rs := newRunState()
	sink := func(e evolve.Event) { rs.apply(e) } // the engine calls its sink from one goroutine at a time
	if _, err := evolve.Search(context.Background(), cfg, evolve.Options{Sink: sink}, exportScorer); err != nil {
		t.Fatal(err)
	}
	return cfg.Output.Dir, rs
}

// exportScorer gives each recipe deterministic perplexities per text and a
// coherence; about one recipe in four fails.
func exportScorer(_ context.Context, r *merge.Recipe) (evolve.Scores, error) {
	// The luck is drawn from the recipe with its files named without the
	// test's temporary directory, so the fixture is the same in every run.
	named := *r
	named.Base = filepath.Base(r.Base)
	named.Models = slices.Clone(r.Models)
	for i := range named.Models {
		named.Models[i].Model = filepath.Base(named.Models[i].Model)
	}
	text, err := named.Encode()
	if err != nil {
		return evolve.Scores{}, err
	}
	h := fnv.New64a()
	h.Write(text)
	x := h.Sum64()
	if x%4 == 0 {
		return evolve.Scores{}, errors.New(`merging: synthetic failure, "quoted", with a comma`)
	}
	s := evolve.Scores{Perplexity: map[string]float64{}}
	for i, d := range []string{"bible", "moby", "sotu"} {
		p := math.Exp(2 + float64((x>>(8*i))&0xff)/100)
		s.Perplexity[d] = p
		s.MeanLogPPL += math.Log(p) / 3
	}
	s.Coherence = float64((x>>40)&0xff) / 255
	return s, nil
}

func readBytes(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func readCSV(t *testing.T, data []byte) [][]string {
	t.Helper()
	rows, err := csv.NewReader(bytes.NewReader(data)).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) == 0 || !strings.HasPrefix(strings.Join(rows[0], ","), "id,generation,") {
		t.Fatalf("CSV header %v", rows)
	}
	return rows
}
