package cli

import (
	"strings"
	"testing"
	"time"

	"github.com/evomerge/evomerge/engine/evolve"
)

// TestHeadlessPrinterShowsEveryFinalStatus: the headless lines name every
// candidate's final status — skipped ones included, with the reason — and
// the end of the run counts the skipped.
func TestHeadlessPrinterShowsEveryFinalStatus(t *testing.T) {
	var out strings.Builder
	p := &headlessPrinter{w: &out}
	infos := []evolve.CandidateInfo{
		{ID: "g1-c00", Technique: "ties", Summary: "ties w=[0.5 0.5]"},
		{ID: "g1-c01", Technique: "linear", Summary: "linear w=[0.2 0.8]"},
		{ID: "g1-c02", Technique: "dfs", Summary: "dfs w=[0.1 0.9]"},
	}
	why := "not evaluated: the evaluation budget of 5 is spent"
	res := &evolve.Result{OutputDir: "out", Reason: "budget", Best: infos[0], Evaluations: 5, Skipped: []string{"g1-c01", "g1-c02"},
		BestModel: "out/best.gguf", BestRecipe: "out/best-recipe.toml", Elapsed: 3 * time.Second}
	for _, e := range []evolve.Event{
		evolve.RunStarted{Optimizer: "ga", Population: 3, Generations: 2, Budget: 5},
		evolve.GenerationStarted{Generation: 1, Candidates: infos},
		evolve.CandidateScored{Candidate: infos[0], Fitness: -2.5, Status: evolve.StatusDone, Evaluation: 5},
		evolve.CandidateScored{Candidate: infos[1], Status: evolve.StatusSkipped, Err: why, Evaluation: 5},
		evolve.CandidateScored{Candidate: infos[2], Status: evolve.StatusSkipped, Err: why, Evaluation: 5},
		evolve.Finished{Reason: "budget", Result: res},
	} {
		p.event(e)
	}
	s := out.String()
	for _, want := range []string{
		"g1-c01  linear w=[0.2 0.8]",
		"skipped: " + why,
		"finished (budget) after 5 evaluations in 3s (2 candidates skipped): best g1-c00",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("headless output lacks %q:\n%s", want, s)
		}
	}
	if strings.Count(s, "skipped: ") != 2 {
		t.Errorf("want one line per skipped candidate:\n%s", s)
	}
}
