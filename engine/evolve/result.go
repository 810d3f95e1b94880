package evolve

import (
	"time"

	"github.com/evomerge/evomerge/engine/eval"
	"github.com/evomerge/evomerge/engine/modelset"
)

// Result is what a run produced. It is also written as summary.json.
type Result struct {
	OutputDir string `json:"output_dir"`
	// Models, BaseNote, Techniques, Dropped and LeftOut are what the run
	// merged: the models as resolved (the base last), how the base was
	// chosen, the techniques searched, and the techniques and zoo models
	// left out with the reason for each.
	Models      []modelset.Model   `json:"models"`
	BaseNote    string             `json:"base_note"`
	Techniques  []string           `json:"techniques"`
	Dropped     []modelset.Dropped `json:"dropped_techniques,omitempty"`
	LeftOut     []modelset.Dropped `json:"left_out_models,omitempty"`
	Reason      string             `json:"reason"` // why the search stopped
	Best        CandidateInfo      `json:"best"`
	BestFitness float64            `json:"best_fitness"`
	BestScores  Scores             `json:"best_scores"`
	BestModel   string             `json:"best_model"`  // path of best.gguf
	BestRecipe  string             `json:"best_recipe"` // path of best-recipe.toml
	Front       []CandidateInfo    `json:"pareto_front,omitempty"`
	Comparison  []ModelScore       `json:"comparison"` // on the held-out test texts
	// Finalists, when validation windows rotate, are the candidates of
	// the final pick, scored on PickWindows, which selection never used.
	Finalists   []Finalist       `json:"finalists,omitempty"`
	PickWindows map[string][]int `json:"pick_windows,omitempty"`
	// Verdict compares the best model with the uniform average and with
	// the best source on every held-out window (see verdict.go).
	Verdict     []Verdict `json:"verdict,omitempty"`
	Evaluations int       `json:"evaluations"`
	// Skipped lists the candidates never evaluated because the evaluation
	// budget ran out in their generation (status skipped).
	Skipped     []string `json:"skipped,omitempty"`
	Generations int      `json:"generations"`
	Seed        uint64   `json:"seed"`
	Optimizer   string   `json:"optimizer"`
	// Tuned is the one technique cmaes and es search (empty for the
	// others, which search every technique).
	Tuned   string         `json:"tuned,omitempty"`
	Elapsed time.Duration  `json:"elapsed_ns"`
	Timings Timings        `json:"timings"`
	Device  eval.Placement `json:"device"` // where candidates were evaluated
}

// ModelScore is one model's held-out scores in the final comparison.
type ModelScore struct {
	Name       string             `json:"name"`
	Kind       string             `json:"kind"`       // "source", "base", "uniform", "best"
	Perplexity map[string]float64 `json:"perplexity"` // per test text
	StdErr     map[string]float64 `json:"perplexity_stderr"`
	GeoMean    float64            `json:"geo_mean_perplexity"` // over the test texts
	Tokens     int                `json:"tokens"`
	Coherence  float64            `json:"coherence"`
	Sample     string             `json:"sample"` // a generation from a fixed prompt
	// Windows are the per-window scores behind Perplexity, per test text.
	Windows map[string][]eval.WindowNLL `json:"windows,omitempty"`
	// CoherenceError and SampleError say why the coherence or the sample
	// could not be measured (Coherence is then 0, Sample empty).
	CoherenceError string `json:"coherence_error,omitempty"`
	SampleError    string `json:"sample_error,omitempty"`
}

// Timings are aggregate costs of the run.
type Timings struct {
	Merge     time.Duration `json:"merge_ns"`
	Evaluate  time.Duration `json:"evaluate_ns"`
	Overhead  time.Duration `json:"overhead_ns"` // everything else: selection, bookkeeping, I/O
	FinalEval time.Duration `json:"final_eval_ns"`
	CacheHits int           `json:"fitness_cache_hits"`
	// TensorHits counts merged tensors the workers reused rather than
	// computed: already held by their resident model, or found in their
	// tensor cache (hardware.tensor_cache_mb).
	TensorHits int `json:"tensor_cache_hits"`
}
