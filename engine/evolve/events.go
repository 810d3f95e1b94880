package evolve

import (
	"fmt"
	"sync"
	"time"

	"github.com/evomerge/evomerge/engine/eval"
	"github.com/evomerge/evomerge/engine/modelset"
)

// The engine reports everything it does as typed events, delivered in
// order to one Sink. The TUI, the headless printer, the report and the
// tests all consume the same stream. Events are values: a consumer may keep
// them. Terminal events (Finished) are always delivered; consumers that
// cannot keep up should coalesce CandidateProgress, never drop Finished.

// Event is one of the types below.
type Event interface{ event() }

// Sink receives events. The engine calls it from one goroutine at a time,
// in order; it must not block for long.
type Sink func(Event)

// Status is where a candidate is in its life.
type Status string

const (
	StatusQueued     Status = "queued"
	StatusMerging    Status = "merging"
	StatusEvaluating Status = "evaluating"
	StatusDone       Status = "done"
	StatusCached     Status = "cached" // fitness known from an identical earlier candidate
	StatusFailed     Status = "failed"
	// StatusSkipped: never evaluated, because the evaluation budget ran
	// out in the candidate's generation (Result.Skipped lists them).
	StatusSkipped Status = "skipped"
)

// Scored reports whether a candidate with this status has scores (done
// or cached; not failed, skipped or still on its way).
func (s Status) Scored() bool { return s == StatusDone || s == StatusCached }

// RunStarted opens a run.
type RunStarted struct {
	Optimizer   string
	Tuned       string // the one technique cmaes and es search ("": every technique)
	Seed        uint64
	Sources     []string // model names, base last if any
	Files       []string // the Sources' local files, in the same order
	Base        string
	Techniques  []string
	Genes       int // continuous genes per genome
	Population  int
	Generations int
	Budget      int // maximum evaluations
	Texts       []string
	OutputDir   string
	Resumed     int // evaluations replayed from a checkpoint
	Time        time.Time
	// Models are the sources as resolved, then the base; BaseNote says how
	// the base was chosen or why there is none; Dropped are the configured
	// techniques that cannot run on these models and LeftOut the zoo models
	// that do not fit them, each with the reason (package modelset).
	Models   []modelset.Model
	BaseNote string
	Dropped  []modelset.Dropped
	LeftOut  []modelset.Dropped
	// Device is where candidates are evaluated (zero when no evaluation
	// workers run, as with a Scorer).
	Device eval.Placement
}

// GenerationStarted announces the candidates of a generation.
type GenerationStarted struct {
	Generation int
	Candidates []CandidateInfo
}

// CandidateInfo identifies a candidate and its recipe.
type CandidateInfo struct {
	ID         string   `json:"id"` // "g3-c07"
	Generation int      `json:"generation"`
	Technique  string   `json:"technique"`
	Summary    string   `json:"summary"`           // one line, e.g. "ties λ=1.1 w=[0.6 0.3 0.5]"
	Parents    []string `json:"parents,omitempty"` // IDs; empty for the initial population
	Origin     string   `json:"origin"`            // "initial", "source", "uniform", "elite", "crossover", "mutation", "merge-lower", "cmaes", "random"
	Recipe     string   `json:"recipe"`            // the recipe as TOML
	Key        string   `json:"key"`               // recipe hash; equal keys are the same candidate
}

// CandidateProgress reports a candidate's status change or progress
// (Fraction in [0,1] within the status). High rate: coalesce freely.
type CandidateProgress struct {
	ID       string
	Status   Status
	Fraction float64
}

// Scores are a candidate's measured objectives.
type Scores struct {
	Perplexity   map[string]float64 `json:"perplexity,omitempty"` // per text name
	MeanLogPPL   float64            `json:"mean_log_ppl"`         // mean of ln ppl over texts
	Coherence    float64            `json:"coherence,omitempty"`
	TaskAccuracy float64            `json:"task_accuracy,omitempty"`
}

// CandidateScored is a candidate's final status: its evaluation finished
// (done, or cached from an identical candidate), failed (Err says why), or
// never ran because the budget was spent (skipped, Err says so).
type CandidateScored struct {
	Candidate  CandidateInfo
	Scores     Scores
	Fitness    float64   // scalar fitness, higher is better
	Objectives []float64 // NSGA-II objective vector (all maximised)
	Rank       int       // NSGA-II front (0 = Pareto front); 0 for other optimisers
	Status     Status    // done, cached, failed or skipped
	Err        string
	MergeTime  time.Duration
	EvalTime   time.Duration
	Evaluation int // running count of evaluations (cached ones excluded)
}

// GenerationDone summarises a generation.
type GenerationDone struct {
	Generation  int
	Best        float64 // best fitness so far (all generations)
	GenBest     float64 // best of this generation
	Mean, Worst float64 // over this generation's successful candidates
	BestID      string
	Front       []string // NSGA-II: IDs on the Pareto front so far
	Evaluations int
	Elapsed     time.Duration
	Stalled     int // generations without improvement
}

// Log is a message for the log pane.
type Log struct {
	Level   string // "debug", "info", "warn", "error"
	Message string
	Time    time.Time
}

// Paused reports that the engine paused (true) or resumed (false).
type Paused struct{ Paused bool }

// Finished closes a run; Err is set when it failed or was cancelled.
type Finished struct {
	Reason  string // "generations", "patience", "budget", "cancelled", "error"
	Best    CandidateInfo
	Fitness float64
	Result  *Result // nil when the run failed before a result existed
	Err     error
	Elapsed time.Duration
}

func (RunStarted) event()        {}
func (GenerationStarted) event() {}
func (CandidateProgress) event() {}
func (CandidateScored) event()   {}
func (GenerationDone) event()    {}
func (Log) event()               {}
func (Paused) event()            {}
func (Finished) event()          {}

// emitter delivers a run's events to its sink one at a time, in order. Its
// lock serialises the sink only; no other state of the run is behind it.
type emitter struct {
	mu   sync.Mutex
	sink Sink
}

func newEmitter(sink Sink) *emitter {
	if sink == nil {
		sink = func(Event) {}
	}
	return &emitter{sink: sink}
}

func (em *emitter) emit(ev Event) {
	em.mu.Lock()
	defer em.mu.Unlock()
	em.sink(ev)
}

func (em *emitter) logf(level, format string, args ...any) {
	em.emit(Log{Level: level, Message: fmt.Sprintf(format, args...), Time: time.Now()})
}

// OptimizerText names an optimizer and, for cmaes and es, the technique
// it searches: "es on task_arithmetic".
func OptimizerText(optimizer, tuned string) string {
	if tuned == "" {
		return optimizer
	}
	return optimizer + " on " + tuned
}
