// Package config is evomerge's configuration: the TOML schema, defaults
// that run on the bundled zoo, and validation that reports every problem
// at once with its key path and the allowed values. Unknown keys are
// errors, so a typo never passes silently. evomerge.toml.example at the
// repository root documents every key; a test keeps the two in step.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"maps"
	"math"
	"net"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/BurntSushi/toml"

	"github.com/evomerge/evomerge/engine/merge"
	"github.com/evomerge/evomerge/zoo"
)

// Config is a whole evomerge configuration.
type Config struct {
	// Models are the sources: each a name and a GGUF path or Hugging Face id.
	Models     []Model    `toml:"models"`
	Merge      Merge      `toml:"merge"`
	Evolution  Evolution  `toml:"evolution"`
	Evaluation Evaluation `toml:"evaluation"`
	Hardware   Hardware   `toml:"hardware"`
	// Distributed opens the run's job queue to workers on other machines
	// (engine/dist); the defaults keep it inside this process.
	Distributed Distributed `toml:"distributed"`
	Output      Output      `toml:"output"`
	UI          UI          `toml:"ui"`
}

// Model is one input model. Path is a GGUF file, or zoo:NAME for a model
// of the bundled zoo; HF is a Hugging Face reference (org/name,
// org/name:Q8_0, org/name/file.gguf, a legacy id such as gpt2, a
// huggingface.co link). Give one.
type Model struct {
	Name string `toml:"name"`
	Path string `toml:"path,omitempty"`
	HF   string `toml:"hf,omitempty"`
	// Fill marks a default that only fills a place the user left empty:
	// a run keeps it only when it fits the user's models (see package
	// modelset). Default's models are fillers; a configuration file's and
	// the forms' are not. It is not written.
	Fill bool `toml:"-"`
}

// Ref is the model's location: Path or HF.
func (m Model) Ref() string {
	if m.Path != "" {
		return m.Path
	}
	return m.HF
}

// Merge configures the recipes the search explores.
type Merge struct {
	// Base names the model task vectors are taken against (ties, dare, task
	// arithmetic, slerp's t=0 end). It is a source like the others too.
	Base string `toml:"base"`
	// Techniques the genome may choose from.
	Techniques []string `toml:"techniques"`
	// LayerGroups splits the layers into this many groups, each with its own
	// weights, densities, t and λ (1 = one value for all layers).
	LayerGroups int `toml:"layer_groups"`
	// WeightGenes lays out the merge weights' genes: "groups" (one per
	// source and layer group) or "kinds" (one per source, layer group and
	// tensor kind — attention, MLP, norms — plus one each for the output
	// norm and the other tensors: embeddings, output; per layer when
	// LayerGroups is at least the depth).
	WeightGenes string `toml:"weight_genes"`
	// OutType is the tensor type of candidates and of best.gguf: "keep" (the
	// base's types) or a GGUF type name.
	OutType string `toml:"out_type"`
	// Ranges bound each continuous gene; genes in [0,1] map linearly into them.
	Ranges Ranges `toml:"ranges"`
	// DFSRepeats is r in the data-flow space: the candidate path runs over
	// every source layer r times, each slot in or out of the model.
	DFSRepeats int `toml:"dfs_repeats"`
	// DFSMaxLayers caps the layers of a data-flow candidate (0 = 2 × the
	// sources' layers).
	DFSMaxLayers int `toml:"dfs_max_layers"`
	// PSMethod is the parameter-space method ps_dfs merges with.
	PSMethod string `toml:"ps_method"`
	// TokenizerSource is the vocabulary candidates keep when the models'
	// vocabularies differ (mergekit's tokenizer_source): "base", "union"
	// or a model's name. Empty: "base" when the models differ only in
	// added tokens; identical vocabularies need nothing.
	TokenizerSource string `toml:"tokenizer_source"`
}

// Ranges are [min, max] for each continuous gene.
type Ranges struct {
	Weight [2]float64 `toml:"weight"`
	// TaskWeight bounds the weights of task vectors where a method does
	// not normalise them (task arithmetic, dare_ties, ...), in units of
	// 1/M for M merged models, so that 1 is the uniform average's share.
	TaskWeight [2]float64 `toml:"task_weight"`
	Density    [2]float64 `toml:"density"`
	T          [2]float64 `toml:"t"`
	Lambda     [2]float64 `toml:"lambda"`
	Scale      [2]float64 `toml:"scale"`
}

// RangeKeys name the gene ranges (merge.ranges.KEY), in order. The first
// five are the ranges of the merge registry's gene kinds (merge.Gene's
// Range); scale is the layer-path steps'.
var RangeKeys = []string{"weight", "task_weight", "density", "t", "lambda", "scale"}

// Key returns the range named key (one of RangeKeys), or nil.
func (r *Ranges) Key(key string) *[2]float64 {
	switch key {
	case "weight":
		return &r.Weight
	case "task_weight":
		return &r.TaskWeight
	case "density":
		return &r.Density
	case "t":
		return &r.T
	case "lambda":
		return &r.Lambda
	case "scale":
		return &r.Scale
	}
	return nil
}

// Evolution configures the search.
type Evolution struct {
	Optimizer      string  `toml:"optimizer"` // auto, gradient, es, ga, cmaes, nsga2, random
	Population     int     `toml:"population"`
	Generations    int     `toml:"generations"`
	TournamentSize int     `toml:"tournament_size"`
	MutationRate   float64 `toml:"mutation_rate"`  // per-gene probability
	MutationScale  float64 `toml:"mutation_scale"` // σ of a gene perturbation, in gene units [0,1]
	CrossoverRate  float64 `toml:"crossover_rate"`
	TechniqueRate  float64 `toml:"technique_switch_rate"` // probability a child switches technique
	Elitism        int     `toml:"elitism"`
	// MergeLower is the share of each new GA population made by merging
	// lower performers: the gene-wise mean of two candidates of one
	// technique from the lower half of the ranking.
	MergeLower     float64 `toml:"merge_lower"`
	Patience       int     `toml:"patience"`        // generations without improvement before stopping (0 = never)
	MinImprovement float64 `toml:"min_improvement"` // what counts as improvement
	MaxEvaluations int     `toml:"max_evaluations"` // evaluation budget (0 = population × generations)
	Seed           uint64  `toml:"seed"`
	// CMAESTechnique is the technique CMA-ES and ES tune (they search
	// continuous genes only); AutoTechnique ("auto") picks the first of
	// AutoTechniques that the run's models allow, else the first
	// technique they allow.
	CMAESTechnique string  `toml:"cmaes_technique"`
	CMAESSigma     float64 `toml:"cmaes_sigma"`
	// ESSigma is ES's perturbation (σ, in gene units), ESRate its Adam
	// step size at the first generation; the step moves linearly to
	// ESRateEnd at the last one (ESRateEnd = ESRate: constant).
	ESSigma   float64 `toml:"es_sigma"`
	ESRate    float64 `toml:"es_rate"`
	ESRateEnd float64 `toml:"es_rate_end"`
	// GradientRate is the gradient optimiser's Adam step size, in gene
	// units.
	GradientRate float64 `toml:"gradient_rate"`
}

// Evaluation configures fitness.
type Evaluation struct {
	// Texts scored by perplexity during the search: "zoo:DOMAIN[/SPLIT]" for
	// a bundled text or a file path.
	Texts []string `toml:"texts"`
	// TestTexts are held out: scored only for the final comparison.
	TestTexts []string `toml:"test_texts"`
	Context   int      `toml:"context"` // perplexity window n_ctx
	Chunks    int      `toml:"chunks"`  // windows per text per candidate (0 = all)
	// ScoreFrom is the first position of each window the search's
	// fitness scores (0: Context/2, llama-perplexity's convention). The
	// reported perplexities — the held-out comparison, --evaluate — always
	// use Context/2.
	ScoreFrom int `toml:"score_from"`
	// TestChunks limits the final evaluation (0 = all windows).
	TestChunks int `toml:"test_chunks"`
	// RotateWindows draws each generation's Chunks windows per text afresh
	// (seeded by the run's seed and the generation) from the validation
	// windows not held back, instead of always the first Chunks, so no
	// fixed windows can be fitted.
	RotateWindows bool `toml:"rotate_windows"`
	// PickWindows, with RotateWindows, is how many windows per validation
	// text are held back from selection; the run's best is then picked
	// among Finalists candidates (the best of the last generations) on
	// them.
	PickWindows int `toml:"pick_windows"`
	Finalists   int `toml:"finalists"`
	// Promotions, with RotateWindows, is how many times a generation's best
	// third is promoted after every candidate is scored on Chunks windows
	// per text: each promotion scores the promoted on as many fresh windows
	// as they have been scored on so far (successive halving; see
	// engine/evolve/promote.go). 0: none. The gradient optimizer, with
	// one candidate a generation, runs none.
	Promotions int `toml:"promotions"`
	// Tasks is a multiple-choice JSONL file ({context, choices, answer}).
	Tasks            string     `toml:"tasks"`
	CoherencePrompts []string   `toml:"coherence_prompts"`
	CoherenceTokens  int        `toml:"coherence_tokens"`
	Objectives       Objectives `toml:"objectives"`
}

// Objectives weigh the fitness: F = −perplexity·mean(ln ppl) +
// coherence·coherence + tasks·accuracy (higher is better). NSGA-II treats
// every objective with a non-zero weight as its own objective.
type Objectives struct {
	Perplexity float64 `toml:"perplexity"`
	Coherence  float64 `toml:"coherence"`
	Tasks      float64 `toml:"tasks"`
}

// PerplexityOnly reports whether perplexity is the only weighted
// objective (what the gradient optimizer follows).
func (o Objectives) PerplexityOnly() bool {
	return o.Perplexity > 0 && o.Coherence <= 0 && o.Tasks <= 0
}

// Hardware configures where evaluation runs.
type Hardware struct {
	// GPULayers is "auto" (all layers when a GPU backend is found), or a number.
	GPULayers string `toml:"gpu_layers"`
	Threads   int    `toml:"threads"` // CPU threads in total (0 = all)
	// Workers is the number of evaluation worker processes this machine
	// runs; 0 leaves evaluation to workers that join (distributed.listen
	// or distributed.server).
	Workers int `toml:"workers"`
	// TmpDir holds candidate models while they are evaluated ("" = /dev/shm
	// when it has room, else the system temp directory).
	TmpDir string `toml:"tmp_dir"`
	// TensorCacheMB bounds each worker's cache of merged tensors reused
	// across candidates.
	TensorCacheMB int `toml:"tensor_cache_mb"`
	// SourceCacheMB bounds each worker's float32 copies of source tensors
	// whose types the SIMD kernels cannot decode (K-quants, IQ types), so
	// candidates do not dequantise them again.
	SourceCacheMB int `toml:"source_cache_mb"`
}

// Distributed configures the run's job queue, a NATS JetStream server.
// By default the server runs inside the coordinator with no listener and
// the local workers are its only consumers.
type Distributed struct {
	// Listen ("HOST:PORT") opens the embedded server to workers on other
	// machines (`evomerge-tui worker --join nats://TOKEN@HOST:PORT`).
	Listen string `toml:"listen"`
	// Token is the secret workers join with; required with Listen.
	Token string `toml:"token"`
	// TLSCert and TLSKey (PEM files) make the listener speak TLS; workers
	// then join with tls://.
	TLSCert string `toml:"tls_cert"`
	TLSKey  string `toml:"tls_key"`
	// Server ("nats://[TOKEN@]HOST:PORT", or tls://) uses an existing
	// NATS server with JetStream instead of the embedded one.
	Server string `toml:"server"`
	// AckWaitSeconds is how long a job stays with a worker that stopped
	// reporting progress before it goes to another; workers report every
	// third of it.
	AckWaitSeconds int `toml:"ack_wait_seconds"`
	// MaxDeliver is how many times a job is handed out before it is
	// recorded as failed (a job that crashes every worker it reaches).
	MaxDeliver int `toml:"max_deliver"`
	// ShareMaxMB bounds the source files the coordinator sends to workers
	// through the run's object store when a worker has them neither in
	// its hub cache nor at the same path (0: never).
	ShareMaxMB int `toml:"share_max_mb"`
}

// Remote reports whether workers on other machines can take jobs.
func (d Distributed) Remote() bool { return d.Listen != "" || d.Server != "" }

// Output configures what a run writes.
type Output struct {
	Dir string `toml:"dir"`
}

// UI configures the workbench.
type UI struct {
	Theme string `toml:"theme"` // dark, light, high-contrast
}

// Known values. Techniques is TechniqueNames() as the program started;
// validation and the forms ask the merge registry, which is the source.
var (
	Techniques = TechniqueNames()
	Optimizers = []string{"auto", "gradient", "es", "ga", "cmaes", "nsga2", "random"}
	Themes     = []string{"dark", "light", "high-contrast"}
)

// TechniqueNames lists what merge.techniques accepts, from the merge
// registry in its order: every technique the evolution can search, each
// followed by its aliases.
func TechniqueNames() []string {
	var out []string
	for _, t := range merge.Techniques() {
		if t.Evolvable() {
			out = append(out, t.Spellings()...)
		}
	}
	return out
}

// PSMethods lists what merge.ps_method accepts: the parameter-space
// techniques the evolution can search.
func PSMethods() []string {
	var out []string
	for _, t := range merge.Techniques() {
		if isPSMethod(t) {
			out = append(out, t.Name)
		}
	}
	return out
}

func isPSMethod(t merge.Technique) bool { return t.Evolvable() && t.Layout == merge.Tensorwise }

// evolvable finds a technique merge.techniques may name.
func evolvable(name string) (merge.Technique, bool) {
	t, ok := merge.Find(name)
	return t, ok && t.Evolvable()
}

// Default returns a configuration that runs on the bundled zoo: the three
// domain experts as sources, stories15M as the base, fitness on an equal
// mix of the experts' validation texts, held-out test texts for the report.
//
// The zoo's models are references (zoo:NAME, found wherever the zoo is
// installed; see package zoo) marked Fill: a model the user gives takes a
// zoo model's place, and the zoo models left stay in the run only when
// they fit it. The texts are the zoo's bundled public-domain English prose
// (the King James Bible, Moby Dick, the State of the Union addresses): they
// are also the fitness texts for other models, unless evaluation.texts
// names others. Coherence prompts are left empty: a run chooses the zoo's
// for the zoo's models, generic ones otherwise.
func Default() Config {
	var models []Model
	for _, name := range zoo.Names() {
		models = append(models, Model{Name: name, Path: zoo.ModelRef(name), Fill: true})
	}
	return Config{
		Models: models,
		Merge: Merge{
			Base:        zoo.Base,
			Techniques:  []string{"linear", "slerp", "ties", "dare_ties", "task_arithmetic", "frankenmerge", "dfs", "ps_dfs"},
			LayerGroups: 6,
			WeightGenes: "kinds",
			OutType:     "keep",
			Ranges: Ranges{
				Weight: [2]float64{0, 1}, TaskWeight: [2]float64{0, 2}, Density: [2]float64{0.1, 1}, T: [2]float64{0, 1},
				Lambda: [2]float64{0.5, 1.5}, Scale: [2]float64{0.5, 1.5},
			},
			DFSRepeats: 2,
			PSMethod:   "ties",
		},
		Evolution: Evolution{
			Optimizer: "auto", Population: 10, Generations: 36, TournamentSize: 3,
			MutationRate: 0.25, MutationScale: 0.15, CrossoverRate: 0.6, TechniqueRate: 0.1,
			Elitism: 2, Patience: 4, MinImprovement: 0.001, Seed: 42,
			CMAESTechnique: AutoTechnique, CMAESSigma: 1.0 / 6, ESSigma: 0.05, ESRate: 0.03, ESRateEnd: 0.03, GradientRate: 0.015,
		},
		Evaluation: Evaluation{
			Texts:            []string{"zoo:bible/validation", "zoo:moby/validation", "zoo:sotu/validation"},
			TestTexts:        []string{"zoo:bible/test", "zoo:moby/test", "zoo:sotu/test"},
			Context:          256,
			Chunks:           4,
			TestChunks:       0,
			RotateWindows:    true,
			PickWindows:      16,
			Finalists:        4,
			CoherencePrompts: []string{},
			CoherenceTokens:  48,
			Objectives:       Objectives{Perplexity: 1},
		},
		Hardware:    Hardware{GPULayers: "auto", Workers: 1, TensorCacheMB: 512, SourceCacheMB: 1024},
		Distributed: Distributed{AckWaitSeconds: 30, MaxDeliver: 3, ShareMaxMB: 2048},
		Output:      Output{Dir: "out"},
		UI:          UI{Theme: "dark"},
	}
}

// Load reads a TOML file over the defaults: keys absent from the file keep
// their default values. Unknown keys and invalid values are reported
// together.
func Load(path string) (Config, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return Config{}, err
	}
	c, err := Parse(string(raw))
	if err != nil {
		return c, fmt.Errorf("%s: %w", path, err)
	}
	return c, nil
}

// Parse reads TOML text over the defaults and validates the result.
func Parse(text string) (Config, error) {
	c := Default()
	// Lists replace the defaults rather than merging into them.
	c.Models = nil
	md, err := toml.Decode(text, &c)
	if err != nil {
		return c, err
	}
	if !md.IsDefined("models") {
		c.Models = Default().Models
	} else if !md.IsDefined("merge", "base") {
		c.Merge.Base = "" // the zoo's base is not these models': detect it (package modelset)
	}
	var ps Problems
	for _, k := range md.Undecoded() {
		ps.add(k.String(), "unknown key")
	}
	ps = append(ps, c.Validate()...)
	return c, ps.Err()
}

// Encode writes c as TOML.
func (c Config) Encode() ([]byte, error) {
	var buf bytes.Buffer
	if err := toml.NewEncoder(&buf).Encode(c); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// Problem is one invalid setting.
type Problem struct {
	Key string // dotted key path, e.g. "evolution.population" or "models[2].path"
	Msg string
}

// Problems is every invalid setting of a configuration.
type Problems []Problem

func (ps *Problems) add(key, format string, args ...any) {
	*ps = append(*ps, Problem{Key: key, Msg: fmt.Sprintf(format, args...)})
}

// Err joins the problems into one error (nil when there are none).
func (ps Problems) Err() error {
	if len(ps) == 0 {
		return nil
	}
	lines := make([]string, len(ps))
	for i, p := range ps {
		lines[i] = p.Key + ": " + p.Msg
	}
	return &Error{Problems: ps, msg: fmt.Sprintf("invalid configuration (%d problems):\n  %s", len(ps), strings.Join(lines, "\n  "))}
}

// Error is returned for invalid configurations; forms use Problems to
// mark fields.
type Error struct {
	Problems Problems
	msg      string
}

func (e *Error) Error() string { return e.msg }

// ErrInvalid matches every configuration error (errors.Is).
var ErrInvalid = errors.New("invalid configuration")

func (e *Error) Is(target error) bool { return target == ErrInvalid }

// Validate checks every setting and returns all problems.
func (c Config) Validate() Problems {
	var ps Problems
	names := map[string]bool{}
	if len(c.Models) == 0 {
		ps.add("models", "at least one model is needed")
	}
	for i, m := range c.Models {
		at := fmt.Sprintf("models[%d]", i)
		switch {
		case m.Name == "":
			ps.add(at+".name", "missing")
		case names[m.Name]:
			ps.add(at+".name", "%q is used twice", m.Name)
		case strings.ContainsAny(m.Name, "/\\ "):
			ps.add(at+".name", "%q must not contain '/', '\\' or spaces (it names files)", m.Name)
		}
		names[m.Name] = true
		switch {
		case m.Path == "" && m.HF == "":
			ps.add(at, "give path (a GGUF file) or hf (a Hugging Face id)")
		case m.Path != "" && m.HF != "":
			ps.add(at, "give path or hf, not both")
		}
	}
	if c.Merge.Base != "" && !names[c.Merge.Base] {
		ps.add("merge.base", "%q is not one of the models (%s)", c.Merge.Base, strings.Join(slices.Sorted(maps.Keys(names)), ", "))
	}
	if ts := c.Merge.TokenizerSource; ts != "" && !slices.Contains(merge.TokenizerSources, ts) && !names[ts] {
		ps.add("merge.tokenizer_source", "%q is not base, union or one of the models (%s)", ts, strings.Join(slices.Sorted(maps.Keys(names)), ", "))
	}
	sources := len(c.Models)
	if c.Merge.Base != "" {
		sources--
	}
	if sources < 1 {
		ps.add("models", "at least one model besides the base is needed")
	}
	allowed := strings.Join(TechniqueNames(), ", ")
	if len(c.Merge.Techniques) == 0 {
		ps.add("merge.techniques", "at least one technique is needed (%s)", allowed)
	}
	// Whether a technique fits the models (a base, their number, their
	// depths) is decided when a run starts, from the models themselves:
	// package modelset drops what cannot run, with the reason.
	for i, name := range c.Merge.Techniques {
		if _, ok := evolvable(name); !ok {
			ps.add(fmt.Sprintf("merge.techniques[%d]", i), "unknown technique %q (allowed: %s)", name, allowed)
		}
	}
	if g := c.Merge.WeightGenes; g != "groups" && g != "kinds" {
		ps.add("merge.weight_genes", "%q is not \"groups\" or \"kinds\"", g)
	}
	if c.Merge.LayerGroups < 1 || c.Merge.LayerGroups > 64 {
		ps.add("merge.layer_groups", "%d is outside [1, 64]", c.Merge.LayerGroups)
	}
	if !validType(c.Merge.OutType) {
		ps.add("merge.out_type", "%q is not keep or a GGUF type (f32, f16, bf16, q8_0, q4_k, ...)", c.Merge.OutType)
	}
	rng := func(key string, r [2]float64, lo, hi float64) {
		if !(r[0] >= lo && r[1] <= hi && r[0] <= r[1]) {
			ps.add("merge.ranges."+key, "[%g, %g] must satisfy %g ≤ min ≤ max ≤ %g", r[0], r[1], lo, hi)
		}
	}
	rng("weight", c.Merge.Ranges.Weight, -10, 10)
	rng("task_weight", c.Merge.Ranges.TaskWeight, -10, 10)
	rng("density", c.Merge.Ranges.Density, 0, 1)
	rng("t", c.Merge.Ranges.T, 0, 1)
	rng("lambda", c.Merge.Ranges.Lambda, 0, 10)
	rng("scale", c.Merge.Ranges.Scale, 0, 10)
	if c.Merge.DFSRepeats < 1 || c.Merge.DFSRepeats > 8 {
		ps.add("merge.dfs_repeats", "%d is outside [1, 8]", c.Merge.DFSRepeats)
	}
	if c.Merge.DFSMaxLayers < 0 {
		ps.add("merge.dfs_max_layers", "must be ≥ 0")
	}
	if t, ok := merge.Find(c.Merge.PSMethod); !ok || !isPSMethod(t) {
		ps.add("merge.ps_method", "%q is not a parameter-space technique (%s)", c.Merge.PSMethod, strings.Join(PSMethods(), ", "))
	}

	e := c.Evolution
	if !slices.Contains(Optimizers, e.Optimizer) {
		ps.add("evolution.optimizer", "%q is not one of %s", e.Optimizer, strings.Join(Optimizers, ", "))
	}
	intIn := func(key string, v, lo, hi int) {
		if v < lo || v > hi {
			ps.add(key, "%d is outside [%d, %d]", v, lo, hi)
		}
	}
	floatIn := func(key string, v, lo, hi float64) {
		if math.IsNaN(v) || v < lo || v > hi {
			ps.add(key, "%g is outside [%g, %g]", v, lo, hi)
		}
	}
	intIn("evolution.population", e.Population, 2, 10000)
	intIn("evolution.generations", e.Generations, 1, 100000)
	intIn("evolution.tournament_size", e.TournamentSize, 1, max(1, e.Population))
	floatIn("evolution.mutation_rate", e.MutationRate, 0, 1)
	floatIn("evolution.mutation_scale", e.MutationScale, 0, 1)
	floatIn("evolution.crossover_rate", e.CrossoverRate, 0, 1)
	floatIn("evolution.technique_switch_rate", e.TechniqueRate, 0, 1)
	intIn("evolution.elitism", e.Elitism, 0, max(0, e.Population-1))
	floatIn("evolution.merge_lower", e.MergeLower, 0, 0.9)
	intIn("evolution.patience", e.Patience, 0, 100000)
	floatIn("evolution.min_improvement", e.MinImprovement, 0, math.Inf(1))
	intIn("evolution.max_evaluations", e.MaxEvaluations, 0, 10000000)
	floatIn("evolution.cmaes_sigma", e.CMAESSigma, 1e-6, 10)
	floatIn("evolution.es_sigma", e.ESSigma, 1e-6, 1)
	floatIn("evolution.es_rate", e.ESRate, 1e-6, 1)
	floatIn("evolution.es_rate_end", e.ESRateEnd, 0, 1)
	floatIn("evolution.gradient_rate", e.GradientRate, 1e-6, 1)
	if e.Optimizer == "gradient" && !c.Evaluation.Objectives.PerplexityOnly() {
		ps.add("evolution.optimizer", "gradient follows the gradient of perplexity alone: weight perplexity only, or choose another optimizer")
	}
	if e.CMAESTechnique != AutoTechnique && e.TunesOneTechnique() && !slices.ContainsFunc(c.Merge.Techniques, func(t string) bool { return SameTechnique(t, e.CMAESTechnique) }) {
		ps.add("evolution.cmaes_technique", "%q must be one of merge.techniques (%s) or auto", e.CMAESTechnique, strings.Join(c.Merge.Techniques, ", "))
	}

	v := c.Evaluation
	if len(v.Texts) == 0 && v.Objectives.Perplexity > 0 {
		ps.add("evaluation.texts", "perplexity needs at least one text")
	}
	for i, t := range v.Texts {
		checkText(&ps, fmt.Sprintf("evaluation.texts[%d]", i), t)
	}
	for i, t := range v.TestTexts {
		checkText(&ps, fmt.Sprintf("evaluation.test_texts[%d]", i), t)
	}
	intIn("evaluation.context", v.Context, 16, 1<<20)
	intIn("evaluation.chunks", v.Chunks, 0, 1<<20)
	if v.ScoreFrom != 0 {
		intIn("evaluation.score_from", v.ScoreFrom, 1, v.Context-2)
	}
	intIn("evaluation.test_chunks", v.TestChunks, 0, 1<<20)
	intIn("evaluation.pick_windows", v.PickWindows, 0, 1<<20)
	intIn("evaluation.finalists", v.Finalists, 1, 1000)
	intIn("evaluation.promotions", v.Promotions, 0, 8)
	if v.Promotions > 0 && !v.RotateWindows {
		ps.add("evaluation.promotions", "needs evaluation.rotate_windows = true (promotions draw fresh windows)")
	}
	if v.RotateWindows && v.Chunks == 0 {
		ps.add("evaluation.rotate_windows", "needs evaluation.chunks > 0 (the windows drawn per generation)")
	}
	intIn("evaluation.coherence_tokens", v.CoherenceTokens, 4, 4096)
	o := v.Objectives
	floatIn("evaluation.objectives.perplexity", o.Perplexity, 0, 1000)
	floatIn("evaluation.objectives.coherence", o.Coherence, 0, 1000)
	floatIn("evaluation.objectives.tasks", o.Tasks, 0, 1000)
	if o.Perplexity+o.Coherence+o.Tasks == 0 {
		ps.add("evaluation.objectives", "at least one objective needs a positive weight")
	}
	if o.Tasks > 0 && v.Tasks == "" {
		ps.add("evaluation.tasks", "objectives.tasks > 0 needs a tasks file")
	}
	if v.Tasks != "" {
		if _, err := os.Stat(v.Tasks); err != nil {
			ps.add("evaluation.tasks", "%v", err)
		}
	}

	h := c.Hardware
	if h.GPULayers != "auto" {
		if n, err := strconv.Atoi(h.GPULayers); err != nil || n < 0 {
			ps.add("hardware.gpu_layers", "%q: use auto or a number of layers ≥ 0", h.GPULayers)
		}
	}
	intIn("hardware.threads", h.Threads, 0, 4096)
	intIn("hardware.workers", h.Workers, 0, 256)
	if h.Workers == 0 && !c.Distributed.Remote() {
		ps.add("hardware.workers", "0 leaves evaluation to joined workers: set distributed.listen or distributed.server")
	}
	intIn("hardware.tensor_cache_mb", h.TensorCacheMB, 0, 1<<20)
	intIn("hardware.source_cache_mb", h.SourceCacheMB, 0, 1<<20)
	c.Distributed.validate(&ps)
	if c.Output.Dir == "" {
		ps.add("output.dir", "missing")
	}
	if !slices.Contains(Themes, c.UI.Theme) {
		ps.add("ui.theme", "%q is not one of %s", c.UI.Theme, strings.Join(Themes, ", "))
	}
	return ps
}

func (d Distributed) validate(ps *Problems) {
	if d.Listen != "" {
		host, port, err := net.SplitHostPort(d.Listen)
		if n, perr := strconv.Atoi(port); err != nil || perr != nil || n < 0 || n > 65535 {
			ps.add("distributed.listen", "%q is not HOST:PORT (e.g. 0.0.0.0:4222)", d.Listen)
		} else if host == "" {
			ps.add("distributed.listen", "%q has no host: give 0.0.0.0 for every interface", d.Listen)
		}
		if d.Token == "" {
			ps.add("distributed.token", "a listener needs a token (workers join with nats://TOKEN@HOST:PORT)")
		}
	}
	if d.Server != "" {
		u, err := url.Parse(d.Server)
		switch {
		case err != nil || u.Host == "":
			ps.add("distributed.server", "%q is not a URL like nats://HOST:4222", d.Server)
		case u.Scheme != "nats" && u.Scheme != "tls":
			ps.add("distributed.server", "%q: the scheme must be nats:// or tls://", d.Server)
		}
		if d.Listen != "" {
			ps.add("distributed.server", "give listen (embedded server) or server (an existing one), not both")
		}
	}
	if (d.TLSCert == "") != (d.TLSKey == "") {
		ps.add("distributed.tls_cert", "tls_cert and tls_key go together")
	}
	for key, f := range map[string]string{"distributed.tls_cert": d.TLSCert, "distributed.tls_key": d.TLSKey} {
		if f == "" {
			continue
		}
		if d.Listen == "" {
			ps.add(key, "TLS is for the listener: set distributed.listen")
		}
		if _, err := os.Stat(f); err != nil {
			ps.add(key, "%v", err)
		}
	}
	if d.AckWaitSeconds < 1 || d.AckWaitSeconds > 3600 {
		ps.add("distributed.ack_wait_seconds", "%d is outside [1, 3600]", d.AckWaitSeconds)
	}
	if d.MaxDeliver < 1 || d.MaxDeliver > 100 {
		ps.add("distributed.max_deliver", "%d is outside [1, 100]", d.MaxDeliver)
	}
	if d.ShareMaxMB < 0 || d.ShareMaxMB > 1<<20 {
		ps.add("distributed.share_max_mb", "%d is outside [0, 1048576]", d.ShareMaxMB)
	}
}

// TunesOneTechnique reports whether the optimizer searches the genes of
// one technique, CMAESTechnique (cmaes, es, gradient, and auto, which is
// es or gradient), rather than every technique of merge.techniques.
func (e Evolution) TunesOneTechnique() bool {
	return slices.Contains([]string{"cmaes", "es", "gradient", "auto"}, e.Optimizer)
}

// AutoTechnique is evolution.cmaes_technique's "the best the models allow".
const AutoTechnique = "auto"

// AutoTechniques are what AutoTechnique resolves to, in order of
// preference: the first that merge.techniques lists and the run's models
// allow (task arithmetic needs a base model); without either, the first
// technique the run keeps. Measured on the zoo, ES on
// task arithmetic beats ES on linear weights: the base's share is a
// degree of freedom a normalised average does not have.
func AutoTechniques() []string { return []string{"task_arithmetic", "linear"} }

// SameTechnique reports whether a and b name the same technique (aliases
// included).
func SameTechnique(a, b string) bool {
	ta, okA := merge.Find(a)
	tb, okB := merge.Find(b)
	return a == b || (okA && okB && ta.Name == tb.Name)
}

func checkText(ps *Problems, key, t string) {
	if strings.HasPrefix(t, "zoo:") {
		return // checked when loaded (the zoo package lists what is bundled)
	}
	if st, err := os.Stat(t); err != nil {
		ps.add(key, "%v", err)
	} else if st.IsDir() {
		ps.add(key, "%s is a directory", t)
	}
}

func validType(t string) bool {
	switch strings.ToLower(t) {
	case "keep", "f32", "f16", "bf16", "q8_0", "q4_0", "q4_1", "q5_0", "q5_1", "q2_k", "q3_k", "q4_k", "q5_k", "q6_k", "iq4_nl", "iq4_xs":
		return true
	}
	return false
}

// GPULayersN returns hardware.gpu_layers as a number (−1 for auto).
func (h Hardware) GPULayersN() int {
	if h.GPULayers == "auto" || h.GPULayers == "" {
		return -1
	}
	n, _ := strconv.Atoi(h.GPULayers)
	return n
}

// Sources are the models other than the base.
func (c Config) Sources() []Model {
	var out []Model
	for _, m := range c.Models {
		if m.Name != c.Merge.Base {
			out = append(out, m)
		}
	}
	return out
}

// BaseModel returns the base model, if one is configured.
func (c Config) BaseModel() (Model, bool) {
	for _, m := range c.Models {
		if m.Name == c.Merge.Base {
			return m, true
		}
	}
	return Model{}, false
}
