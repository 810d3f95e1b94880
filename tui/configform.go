package tui

import (
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"charm.land/huh/v2"
	"charm.land/lipgloss/v2"

	"github.com/evomerge/evomerge/engine/config"
	"github.com/evomerge/evomerge/engine/merge"
	"github.com/evomerge/evomerge/themes"
	"github.com/evomerge/evomerge/zoo"
)

// The configuration forms. One table of fields (formFields) drives both
// the embedded config page and the standalone --generate-config, in
// either of huh's modes, so the two cannot drift apart.
//
// Fields edit strings in a draft; the draft converts to a config.Config
// on demand. Each field's validator converts the whole draft with the
// field's new value and runs config.Validate, then shows the problems
// whose key paths belong to the field right next to it. Validators run in
// the form's Update, so they must not touch the file system: the draft
// is validated with file references (evaluation texts, the tasks file)
// set aside, and the full check including those runs in a command when
// saving (see checkConfig).

// draft is the form's working copy of a configuration, as text.
type draft struct {
	base config.Config // settings the form does not show are kept from here

	models, baseName                  string
	techniques                        []string
	layerGroups, outType              string
	optimizer, population, gens       string
	tournament, mutationRate          string
	crossoverRate, elitism, patience  string
	maxEvals, seed                    string
	texts, testTexts, context, chunks string
	objPPL, objCoh, objTasks, tasks   string
	gpuLayers, threads, workers       string
	outputDir, theme                  string
	savePath                          string

	advanced                                bool
	mutationScale, techniqueRate, minImprov string
	cmaesTechnique, cmaesSigma              string
	esSigma, esRate                         string
	dfsRepeats, dfsMaxLayers, psMethod      string
	testChunks, coherenceTokens             string
	weightGenes, rotateWindows, pickWindows string
	finalists, promotions, mergeLower       string
	scoreFrom, esRateEnd, gradientRate      string
	tensorCache, sourceCache, tmpDir        string
	ranges                                  map[string]*string // by config.RangeKeys
}

func newDraft(c config.Config, path string) *draft {
	f := func(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }
	i := strconv.Itoa
	d := &draft{
		base:        c,
		models:      formatModels(c.Models),
		baseName:    c.Merge.Base,
		techniques:  slices.Clone(c.Merge.Techniques),
		layerGroups: i(c.Merge.LayerGroups), outType: c.Merge.OutType,
		optimizer: c.Evolution.Optimizer, population: i(c.Evolution.Population), gens: i(c.Evolution.Generations),
		tournament: i(c.Evolution.TournamentSize), mutationRate: f(c.Evolution.MutationRate),
		crossoverRate: f(c.Evolution.CrossoverRate), elitism: i(c.Evolution.Elitism), patience: i(c.Evolution.Patience),
		maxEvals: i(c.Evolution.MaxEvaluations), seed: strconv.FormatUint(c.Evolution.Seed, 10),
		texts: strings.Join(c.Evaluation.Texts, ", "), testTexts: strings.Join(c.Evaluation.TestTexts, ", "),
		context: i(c.Evaluation.Context), chunks: i(c.Evaluation.Chunks),
		objPPL: f(c.Evaluation.Objectives.Perplexity), objCoh: f(c.Evaluation.Objectives.Coherence),
		objTasks: f(c.Evaluation.Objectives.Tasks), tasks: c.Evaluation.Tasks,
		gpuLayers: c.Hardware.GPULayers, threads: i(c.Hardware.Threads), workers: i(c.Hardware.Workers),
		outputDir: c.Output.Dir, theme: c.UI.Theme, savePath: path,

		mutationScale: f(c.Evolution.MutationScale), techniqueRate: f(c.Evolution.TechniqueRate),
		minImprov: f(c.Evolution.MinImprovement), cmaesTechnique: c.Evolution.CMAESTechnique,
		cmaesSigma: f(c.Evolution.CMAESSigma), esSigma: f(c.Evolution.ESSigma), esRate: f(c.Evolution.ESRate), esRateEnd: f(c.Evolution.ESRateEnd), gradientRate: f(c.Evolution.GradientRate), dfsRepeats: i(c.Merge.DFSRepeats), dfsMaxLayers: i(c.Merge.DFSMaxLayers),
		psMethod: c.Merge.PSMethod, testChunks: i(c.Evaluation.TestChunks), coherenceTokens: i(c.Evaluation.CoherenceTokens),
		tensorCache: i(c.Hardware.TensorCacheMB), sourceCache: i(c.Hardware.SourceCacheMB), tmpDir: c.Hardware.TmpDir,
		weightGenes: c.Merge.WeightGenes, rotateWindows: strconv.FormatBool(c.Evaluation.RotateWindows),
		pickWindows: i(c.Evaluation.PickWindows), finalists: i(c.Evaluation.Finalists), promotions: i(c.Evaluation.Promotions), mergeLower: f(c.Evolution.MergeLower),
		scoreFrom: i(c.Evaluation.ScoreFrom),
	}
	if d.theme == "" {
		d.theme = themes.Dark
	}
	d.ranges = map[string]*string{}
	for _, k := range config.RangeKeys {
		r := c.Merge.Ranges.Key(k)
		v := f(r[0]) + ", " + f(r[1])
		d.ranges[k] = &v
	}
	return d
}

// fieldKind is how a field is edited.
type fieldKind int

const (
	kindInput fieldKind = iota
	kindText            // several entries (one per line or comma-separated)
	kindSelect
)

// formField is one editable setting.
type formField struct {
	group   string
	key     string // config key path; problems under it show at this field
	title   string
	desc    string
	kind    fieldKind
	options []string
	val     func(d *draft) *string
	apply   func(c *config.Config, v string) error
}

// Groups, in order. Advanced settings have their own group, shown only
// when asked for.
const (
	groupModels     = "Models"
	groupMerge      = "Merge"
	groupEvolution  = "Evolution"
	groupEvaluation = "Evaluation"
	groupHardware   = "Hardware and output"
	groupAdvanced   = "Advanced"
	groupSave       = "Save"
)

func intField(group, key, title, desc string, val func(d *draft) *string, set func(c *config.Config) *int) formField {
	return formField{group: group, key: key, title: title, desc: desc, val: val, apply: func(c *config.Config, v string) error {
		n, err := strconv.Atoi(strings.TrimSpace(v))
		if err != nil {
			return fmt.Errorf("%q is not a whole number", v)
		}
		*set(c) = n
		return nil
	}}
}

func floatField(group, key, title, desc string, val func(d *draft) *string, set func(c *config.Config) *float64) formField {
	return formField{group: group, key: key, title: title, desc: desc, val: val, apply: func(c *config.Config, v string) error {
		x, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
		if err != nil {
			return fmt.Errorf("%q is not a number", v)
		}
		*set(c) = x
		return nil
	}}
}

func stringField(group, key, title, desc string, val func(d *draft) *string, set func(c *config.Config) *string) formField {
	return formField{group: group, key: key, title: title, desc: desc, val: val, apply: func(c *config.Config, v string) error {
		*set(c) = strings.TrimSpace(v)
		return nil
	}}
}

func listField(group, key, title, desc string, val func(d *draft) *string, set func(c *config.Config) *[]string) formField {
	return formField{group: group, key: key, title: title, desc: desc, kind: kindInput, val: val, apply: func(c *config.Config, v string) error {
		*set(c) = splitList(v)
		return nil
	}}
}

func selectField(group, key, title, desc string, options []string, val func(d *draft) *string, set func(c *config.Config) *string) formField {
	f := stringField(group, key, title, desc, val, set)
	f.kind, f.options = kindSelect, options
	return f
}

// formFields is the table of every field the forms show.
func formFields() []formField {
	return append([]formField{
		{group: groupModels, key: "models", kind: kindText, title: "Models",
			desc: "One per line (alt+enter) or comma-separated: [name=]path.gguf, zoo:NAME, or a Hugging Face id (org/name, org/name:Q8_0, gpt2, a huggingface.co link; hf:org/name/file.gguf). Names default to the file or repository name. Zoo models left as they are stay in a run only when they fit the others.",
			val:  func(d *draft) *string { return &d.models },
			apply: func(c *config.Config, v string) error {
				ms, err := parseModels(v)
				if err != nil {
					return err
				}
				c.Models = keepFill(c.Models, ms)
				return nil
			}},
		stringField(groupModels, "merge.base", "Base model", "The name of the model task vectors are taken against. It must be one of the models above. Empty: the base every model names in its metadata (fetched when needed), else none; techniques that need a base are then left out.",
			func(d *draft) *string { return &d.baseName }, func(c *config.Config) *string { return &c.Merge.Base }),

		intField(groupMerge, "merge.layer_groups", "Layer groups", "Layers split into this many groups, each with its own weights (1–64).",
			func(d *draft) *string { return &d.layerGroups }, func(c *config.Config) *int { return &c.Merge.LayerGroups }),
		selectField(groupMerge, "merge.out_type", "Output tensor type", "keep = the base model's types.",
			[]string{"keep", "f32", "f16", "bf16", "q8_0", "q6_k", "q5_k", "q4_k", "q4_0"},
			func(d *draft) *string { return &d.outType }, func(c *config.Config) *string { return &c.Merge.OutType }),

		selectField(groupEvolution, "evolution.optimizer", "Optimizer", "auto: gradient where the models allow it, else es; gradient: exact gradients of task arithmetic; es: evolution strategy on one technique; ga: genetic algorithm with tournament selection; cmaes: CMA-ES on one technique; nsga2: multi-objective; random: random search.",
			config.Optimizers, func(d *draft) *string { return &d.optimizer }, func(c *config.Config) *string { return &c.Evolution.Optimizer }),
		intField(groupEvolution, "evolution.population", "Population", "Candidates per generation.",
			func(d *draft) *string { return &d.population }, func(c *config.Config) *int { return &c.Evolution.Population }),
		intField(groupEvolution, "evolution.generations", "Generations", "",
			func(d *draft) *string { return &d.gens }, func(c *config.Config) *int { return &c.Evolution.Generations }),
		intField(groupEvolution, "evolution.tournament_size", "Tournament size", "Candidates drawn per selection; the fittest becomes a parent.",
			func(d *draft) *string { return &d.tournament }, func(c *config.Config) *int { return &c.Evolution.TournamentSize }),
		floatField(groupEvolution, "evolution.mutation_rate", "Mutation rate", "Probability that a gene is perturbed (0–1).",
			func(d *draft) *string { return &d.mutationRate }, func(c *config.Config) *float64 { return &c.Evolution.MutationRate }),
		floatField(groupEvolution, "evolution.crossover_rate", "Crossover rate", "Probability that a child mixes two parents (0–1).",
			func(d *draft) *string { return &d.crossoverRate }, func(c *config.Config) *float64 { return &c.Evolution.CrossoverRate }),
		intField(groupEvolution, "evolution.elitism", "Elitism", "Best candidates copied unchanged into the next generation.",
			func(d *draft) *string { return &d.elitism }, func(c *config.Config) *int { return &c.Evolution.Elitism }),
		intField(groupEvolution, "evolution.patience", "Patience", "Generations without improvement before stopping (0 = never).",
			func(d *draft) *string { return &d.patience }, func(c *config.Config) *int { return &c.Evolution.Patience }),
		intField(groupEvolution, "evolution.max_evaluations", "Evaluation budget", "0 = population × generations.",
			func(d *draft) *string { return &d.maxEvals }, func(c *config.Config) *int { return &c.Evolution.MaxEvaluations }),
		{group: groupEvolution, key: "evolution.seed", title: "Seed", desc: "Fixes every random choice: the same seed reproduces the run.",
			val: func(d *draft) *string { return &d.seed },
			apply: func(c *config.Config, v string) error {
				n, err := strconv.ParseUint(strings.TrimSpace(v), 10, 64)
				if err != nil {
					return fmt.Errorf("%q is not a whole number ≥ 0", v)
				}
				c.Evolution.Seed = n
				return nil
			}},

		listField(groupEvaluation, "evaluation.texts", "Evaluation texts", "Comma-separated: zoo:DOMAIN[/SPLIT] for a bundled text, or file paths.",
			func(d *draft) *string { return &d.texts }, func(c *config.Config) *[]string { return &c.Evaluation.Texts }),
		listField(groupEvaluation, "evaluation.test_texts", "Held-out test texts", "Scored only for the final comparison.",
			func(d *draft) *string { return &d.testTexts }, func(c *config.Config) *[]string { return &c.Evaluation.TestTexts }),
		intField(groupEvaluation, "evaluation.context", "Context", "Perplexity window (tokens).",
			func(d *draft) *string { return &d.context }, func(c *config.Config) *int { return &c.Evaluation.Context }),
		intField(groupEvaluation, "evaluation.chunks", "Windows per text", "0 = all.",
			func(d *draft) *string { return &d.chunks }, func(c *config.Config) *int { return &c.Evaluation.Chunks }),
		intField(groupAdvanced, "evaluation.score_from", "Score from position", "First window position the search scores (0 = context/2, as llama-perplexity; reports always use that).",
			func(d *draft) *string { return &d.scoreFrom }, func(c *config.Config) *int { return &c.Evaluation.ScoreFrom }),
		floatField(groupEvaluation, "evaluation.objectives.perplexity", "Weight: perplexity", "Fitness = −w·mean(ln ppl) + coherence + tasks.",
			func(d *draft) *string { return &d.objPPL }, func(c *config.Config) *float64 { return &c.Evaluation.Objectives.Perplexity }),
		floatField(groupEvaluation, "evaluation.objectives.coherence", "Weight: coherence", "",
			func(d *draft) *string { return &d.objCoh }, func(c *config.Config) *float64 { return &c.Evaluation.Objectives.Coherence }),
		floatField(groupEvaluation, "evaluation.objectives.tasks", "Weight: task accuracy", "Needs a tasks file.",
			func(d *draft) *string { return &d.objTasks }, func(c *config.Config) *float64 { return &c.Evaluation.Objectives.Tasks }),
		stringField(groupEvaluation, "evaluation.tasks", "Tasks file", "Multiple-choice JSONL ({context, choices, answer}); empty for none.",
			func(d *draft) *string { return &d.tasks }, func(c *config.Config) *string { return &c.Evaluation.Tasks }),

		stringField(groupHardware, "hardware.gpu_layers", "GPU layers", "auto, or a number of layers to offload.",
			func(d *draft) *string { return &d.gpuLayers }, func(c *config.Config) *string { return &c.Hardware.GPULayers }),
		intField(groupHardware, "hardware.threads", "CPU threads", "0 = all.",
			func(d *draft) *string { return &d.threads }, func(c *config.Config) *int { return &c.Hardware.Threads }),
		intField(groupHardware, "hardware.workers", "Evaluation workers", "Worker processes evaluating in parallel.",
			func(d *draft) *string { return &d.workers }, func(c *config.Config) *int { return &c.Hardware.Workers }),
		stringField(groupHardware, "output.dir", "Output directory", "Where runs write best.gguf, the recipe, the history and the report: each run started here in a new run-<time> directory inside it (--run: in it).",
			func(d *draft) *string { return &d.outputDir }, func(c *config.Config) *string { return &c.Output.Dir }),
		selectField(groupHardware, "ui.theme", "Theme", "",
			themes.Names(), func(d *draft) *string { return &d.theme }, func(c *config.Config) *string { return &c.UI.Theme }),

		floatField(groupAdvanced, "evolution.mutation_scale", "Mutation scale", "σ of a gene perturbation, in gene units (0–1).",
			func(d *draft) *string { return &d.mutationScale }, func(c *config.Config) *float64 { return &c.Evolution.MutationScale }),
		floatField(groupAdvanced, "evolution.technique_switch_rate", "Technique switch rate", "Probability that a child switches technique.",
			func(d *draft) *string { return &d.techniqueRate }, func(c *config.Config) *float64 { return &c.Evolution.TechniqueRate }),
		floatField(groupAdvanced, "evolution.min_improvement", "Minimum improvement", "What counts as an improvement for patience.",
			func(d *draft) *string { return &d.minImprov }, func(c *config.Config) *float64 { return &c.Evolution.MinImprovement }),
		selectField(groupAdvanced, "evolution.cmaes_technique", "CMA-ES / ES technique", "The technique CMA-ES and ES tune (among the techniques); auto: "+strings.Join(config.AutoTechniques(), ", then ")+", the first the models allow, else the first technique.",
			append([]string{config.AutoTechnique}, techniqueNames()...), func(d *draft) *string { return &d.cmaesTechnique }, func(c *config.Config) *string { return &c.Evolution.CMAESTechnique }),
		floatField(groupAdvanced, "evolution.cmaes_sigma", "CMA-ES σ", "",
			func(d *draft) *string { return &d.cmaesSigma }, func(c *config.Config) *float64 { return &c.Evolution.CMAESSigma }),
		floatField(groupAdvanced, "evolution.es_sigma", "ES σ", "Perturbation of ES's antithetic pairs, in gene units.",
			func(d *draft) *string { return &d.esSigma }, func(c *config.Config) *float64 { return &c.Evolution.ESSigma }),
		floatField(groupAdvanced, "evolution.es_rate", "ES step", "Adam step size of ES's centre at the first generation.",
			func(d *draft) *string { return &d.esRate }, func(c *config.Config) *float64 { return &c.Evolution.ESRate }),
		floatField(groupAdvanced, "evolution.es_rate_end", "ES final step", "Adam step at the last generation, linear from the ES step (equal: constant).",
			func(d *draft) *string { return &d.esRateEnd }, func(c *config.Config) *float64 { return &c.Evolution.ESRateEnd }),
		floatField(groupAdvanced, "evolution.gradient_rate", "Gradient step", "Adam step size of the gradient optimizer, in gene units.",
			func(d *draft) *string { return &d.gradientRate }, func(c *config.Config) *float64 { return &c.Evolution.GradientRate }),
		intField(groupAdvanced, "merge.dfs_repeats", "DFS repeats", "Passes over the source layers in data-flow merges (1–8).",
			func(d *draft) *string { return &d.dfsRepeats }, func(c *config.Config) *int { return &c.Merge.DFSRepeats }),
		intField(groupAdvanced, "merge.dfs_max_layers", "DFS max layers", "0 = twice the sources' layers.",
			func(d *draft) *string { return &d.dfsMaxLayers }, func(c *config.Config) *int { return &c.Merge.DFSMaxLayers }),
		selectField(groupAdvanced, "merge.ps_method", "ps_dfs method", "The parameter-space technique whose merge ps_dfs paths may use.",
			config.PSMethods(),
			func(d *draft) *string { return &d.psMethod }, func(c *config.Config) *string { return &c.Merge.PSMethod }),
		intField(groupAdvanced, "evaluation.test_chunks", "Test windows", "Windows per held-out text in the final comparison (0 = all).",
			func(d *draft) *string { return &d.testChunks }, func(c *config.Config) *int { return &c.Evaluation.TestChunks }),
		{group: groupAdvanced, key: "evaluation.rotate_windows", kind: kindSelect, options: []string{"false", "true"}, title: "Rotate fitness windows",
			desc: "Draw each generation's windows afresh from the validation windows; pick the best on held-back ones.",
			val:  func(d *draft) *string { return &d.rotateWindows },
			apply: func(c *config.Config, v string) error {
				b, err := strconv.ParseBool(strings.TrimSpace(v))
				if err != nil {
					return fmt.Errorf("%q is not true or false", v)
				}
				c.Evaluation.RotateWindows = b
				return nil
			}},
		intField(groupAdvanced, "evaluation.pick_windows", "Held-back windows", "With rotated windows: windows per validation text kept for the final pick.",
			func(d *draft) *string { return &d.pickWindows }, func(c *config.Config) *int { return &c.Evaluation.PickWindows }),
		intField(groupAdvanced, "evaluation.finalists", "Finalists", "With rotated windows: generation bests compared on the held-back windows.",
			func(d *draft) *string { return &d.finalists }, func(c *config.Config) *int { return &c.Evaluation.Finalists }),
		intField(groupAdvanced, "evaluation.promotions", "Promotions", "With rotated windows: times a generation's best third is scored again on as many fresh windows (0–8; not with the gradient optimizer).",
			func(d *draft) *string { return &d.promotions }, func(c *config.Config) *int { return &c.Evaluation.Promotions }),
		selectField(groupAdvanced, "merge.weight_genes", "Weight genes", "groups: per layer group; kinds: per layer group and tensor kind (attention, MLP, norms).",
			[]string{"groups", "kinds"}, func(d *draft) *string { return &d.weightGenes }, func(c *config.Config) *string { return &c.Merge.WeightGenes }),
		floatField(groupAdvanced, "evolution.merge_lower", "Merges of lower performers", "Share of each GA population averaged from two lower-ranked candidates of one technique (0–0.9).",
			func(d *draft) *string { return &d.mergeLower }, func(c *config.Config) *float64 { return &c.Evolution.MergeLower }),
		intField(groupAdvanced, "evaluation.coherence_tokens", "Coherence tokens", "Tokens generated per coherence prompt (4–4096).",
			func(d *draft) *string { return &d.coherenceTokens }, func(c *config.Config) *int { return &c.Evaluation.CoherenceTokens }),
		intField(groupAdvanced, "hardware.tensor_cache_mb", "Tensor cache (MB)", "Merged tensors reused across candidates.",
			func(d *draft) *string { return &d.tensorCache }, func(c *config.Config) *int { return &c.Hardware.TensorCacheMB }),
		intField(groupAdvanced, "hardware.source_cache_mb", "Source cache (MB)", "Dequantised copies of K-quant/IQ source tensors, per worker.",
			func(d *draft) *string { return &d.sourceCache }, func(c *config.Config) *int { return &c.Hardware.SourceCacheMB }),
		stringField(groupAdvanced, "hardware.tmp_dir", "Temporary directory", "Where candidate models live while evaluated (empty: /dev/shm when it has room).",
			func(d *draft) *string { return &d.tmpDir }, func(c *config.Config) *string { return &c.Hardware.TmpDir }),

		stringField(groupSave, "save", "Save to", "The TOML file to write.",
			func(d *draft) *string { return &d.savePath }, func(*config.Config) *string { return new(string) }),
	}, rangeFields()...)
}

// techniqueNames are the techniques the evolution can search, from the
// merge registry in its order (aliases are accepted but not offered).
func techniqueNames() []string {
	var out []string
	for _, t := range merge.Techniques() {
		if t.Evolvable() {
			out = append(out, t.Name)
		}
	}
	return out
}

// techniqueOptions are the choices of the techniques multi-select: every
// technique the evolution can search, then any configured spelling that
// is not among them (an alias), so that editing keeps it.
func techniqueOptions(d *draft) []huh.Option[string] {
	names := techniqueNames()
	for _, t := range d.techniques {
		if !slices.Contains(names, t) {
			names = append(names, t)
		}
	}
	opts := make([]huh.Option[string], len(names))
	for i, t := range names {
		opts[i] = huh.NewOption(t, t)
	}
	return opts
}

// rangeFields edit merge.ranges, each described by the parameters that
// the registered techniques map onto it.
func rangeFields() []formField {
	users := map[string][]string{} // range key → "param of technique, …"
	for _, t := range merge.Techniques() {
		if !t.Evolvable() {
			continue
		}
		if t.Layout == merge.LayerPath {
			users["scale"] = append(users["scale"], "step scales of "+t.Name)
		}
		for _, g := range t.Genes() {
			p, _ := t.Param(g)
			users[g.Range()] = append(users[g.Range()], p.Name+" of "+t.Name)
		}
	}
	var out []formField
	for _, key := range config.RangeKeys {
		desc := "[min, max] its genes map onto"
		if u := users[key]; len(u) > 0 {
			desc += ": " + strings.Join(u, ", ")
		}
		out = append(out, formField{group: groupAdvanced, key: "merge.ranges." + key, title: "Range: " + key, desc: desc + ".",
			val: func(d *draft) *string { return d.ranges[key] },
			apply: func(c *config.Config, v string) error {
				r, err := parseRange(v)
				if err != nil {
					return err
				}
				*c.Merge.Ranges.Key(key) = r
				return nil
			}})
	}
	return out
}

// parseRange reads "min, max" (brackets allowed).
func parseRange(v string) ([2]float64, error) {
	parts := strings.Split(strings.Trim(strings.TrimSpace(v), "[]"), ",")
	var r [2]float64
	if len(parts) != 2 {
		return r, fmt.Errorf("%q: give min, max", v)
	}
	for i, p := range parts {
		x, err := strconv.ParseFloat(strings.TrimSpace(p), 64)
		if err != nil {
			return r, fmt.Errorf("%q: %q is not a number", v, strings.TrimSpace(p))
		}
		r[i] = x
	}
	return r, nil
}

// techniquesKey is the key of the techniques multi-select, which is not in
// the table (its value is a list, not a string).
const techniquesKey = "merge.techniques"

// configWith converts the draft to a configuration, with field override
// (if any) taking value instead of its draft value. Conversion errors of
// the override are returned; other fields that do not convert keep the
// base value (their own validators report them).
func (d *draft) configWith(fields []formField, override *formField, value string) (config.Config, error) {
	c := d.base
	c.Models = slices.Clone(c.Models)
	c.Merge.Techniques = keepOrder(d.base.Merge.Techniques, d.techniques)
	for i := range fields {
		f := &fields[i]
		if override != nil && f.key == override.key {
			continue
		}
		_ = f.apply(&c, *f.val(d))
	}
	if override != nil {
		if err := override.apply(&c, value); err != nil {
			return c, err
		}
	}
	return c, nil
}

// keepOrder returns the selected techniques with those of the original
// list first, in their original order (the multi-select reports them in
// its own order; the order is part of a reproducible run).
func keepOrder(orig, selected []string) []string {
	out := make([]string, 0, len(selected))
	for _, t := range orig {
		if slices.Contains(selected, t) {
			out = append(out, t)
		}
	}
	for _, t := range selected {
		if !slices.Contains(out, t) {
			out = append(out, t)
		}
	}
	return out
}

// config converts the whole draft; the error names every field that does
// not convert.
func (d *draft) config() (config.Config, error) {
	fields := formFields()
	c, _ := d.configWith(fields, nil, "")
	var ps config.Problems
	for _, f := range fields {
		var probe config.Config
		if err := f.apply(&probe, *f.val(d)); err != nil {
			ps = append(ps, config.Problem{Key: f.key, Msg: err.Error()})
		}
	}
	return c, ps.Err()
}

// problemsFor selects the problems under key.
func problemsFor(ps config.Problems, key string) config.Problems {
	var out config.Problems
	for _, p := range ps {
		if keyUnder(p.Key, key) {
			out = append(out, p)
		}
	}
	return out
}

func keyUnder(k, prefix string) bool {
	return k == prefix || strings.HasPrefix(k, prefix+".") || strings.HasPrefix(k, prefix+"[")
}

// problemsErr joins problems into one message for display next to a field.
func problemsErr(ps config.Problems, key string) error {
	if len(ps) == 0 {
		return nil
	}
	msgs := make([]string, len(ps))
	for i, p := range ps {
		m := p.Msg
		if p.Key != key {
			m = strings.TrimPrefix(strings.TrimPrefix(p.Key, key), ".") + ": " + m
		}
		msgs[i] = m
	}
	return fmt.Errorf("%s", strings.Join(msgs, "; "))
}

// pureValidate is config.Validate without the file-system checks: texts
// that are file paths and the tasks file are replaced by stand-ins, and
// the problems about them dropped. It is safe to call from Update.
func pureValidate(c config.Config) config.Problems {
	probe := c
	probe.Evaluation.Texts = standIns(c.Evaluation.Texts)
	probe.Evaluation.TestTexts = standIns(c.Evaluation.TestTexts)
	probe.Evaluation.Tasks = ""
	ps := probe.Validate()
	return slices.DeleteFunc(ps, func(p config.Problem) bool {
		return c.Evaluation.Tasks != "" && keyUnder(p.Key, "evaluation.tasks")
	})
}

func standIns(texts []string) []string {
	out := make([]string, len(texts))
	for i, t := range texts {
		if strings.HasPrefix(t, "zoo:") {
			out[i] = t
		} else {
			out[i] = "zoo:stand-in"
		}
	}
	return out
}

// validator returns the huh validator of f: conversion, then the
// configuration's own rules for f's keys. In accessible mode an empty
// answer keeps the shown default, so it is accepted.
func (d *draft) validator(fields []formField, f formField, accessible bool) func(string) error {
	return func(v string) error {
		if accessible && strings.TrimSpace(v) == "" {
			return nil
		}
		if f.key == "save" {
			if strings.TrimSpace(v) == "" {
				return fmt.Errorf("give a file name")
			}
			return nil
		}
		c, err := d.configWith(fields, &f, v)
		if err != nil {
			return err
		}
		return problemsErr(problemsFor(pureValidate(c), f.key), f.key)
	}
}

// formOptions tune buildForm.
type formOptions struct {
	accessible bool
	theme      themes.Theme
	only       map[string]bool // when set, only these field keys are asked
	advanced   bool            // include the advanced group (accessible mode asks separately)
	save       bool            // include the save-path group
	embedded   bool            // inside the workbench (its hint bar shows the keys)
}

// buildForm builds the huh form over d.
func buildForm(d *draft, o formOptions) *huh.Form {
	fields := formFields()
	byGroup := map[string][]huh.Field{}
	var order []string
	addTo := func(g string, f huh.Field) {
		if _, ok := byGroup[g]; !ok {
			order = append(order, g)
		}
		byGroup[g] = append(byGroup[g], f)
	}
	want := func(key string) bool { return o.only == nil || o.only[key] }
	for _, f := range fields {
		if f.group == groupSave && !o.save {
			continue
		}
		if f.group == groupAdvanced && !o.advanced {
			continue
		}
		if !want(f.key) {
			continue
		}
		title := f.title
		if o.accessible && f.kind != kindSelect {
			title = fmt.Sprintf("%s [%s]", f.title, *f.val(d))
		}
		switch f.kind {
		case kindSelect:
			opts := make([]huh.Option[string], 0, len(f.options)+1)
			if !slices.Contains(f.options, *f.val(d)) && *f.val(d) != "" {
				opts = append(opts, huh.NewOption(*f.val(d)+" (current)", *f.val(d)))
			}
			for _, v := range f.options {
				opts = append(opts, huh.NewOption(v, v))
			}
			// Static options only: OptionsFunc panics in accessible mode.
			addTo(f.group, huh.NewSelect[string]().Key(f.key).Title(title).Description(f.desc).
				Options(opts...).Value(f.val(d)))
		case kindText:
			if o.accessible {
				addTo(f.group, huh.NewInput().Key(f.key).Title(title).Description(f.desc).
					Value(f.val(d)).Validate(d.validator(fields, f, true)))
			} else {
				addTo(f.group, huh.NewText().Key(f.key).Title(title).Description(f.desc).Lines(4).
					Value(f.val(d)).Validate(d.validator(fields, f, false)))
			}
		default:
			addTo(f.group, huh.NewInput().Key(f.key).Title(title).Description(f.desc).
				Value(f.val(d)).Validate(d.validator(fields, f, o.accessible)))
		}
		if f.key == "merge.base" && want(techniquesKey) {
			// The techniques start the Merge group.
			opts := techniqueOptions(d)
			// No validator: in accessible mode a failing validator on a
			// multi-select loops forever at end of input. The techniques
			// are checked with the rest on save.
			addTo(groupMerge, huh.NewMultiSelect[string]().Key(techniquesKey).Title("Techniques").
				Description("The merge methods the genome may choose from (space toggles).").
				Options(opts...).Value(&d.techniques).Filterable(false).Height(min(len(opts)+2, 10)))
		}
	}
	if o.only != nil && o.only[techniquesKey] && !want("merge.base") {
		addTo(groupMerge, huh.NewMultiSelect[string]().Key(techniquesKey).Title("Techniques").
			Options(techniqueOptions(d)...).Value(&d.techniques).Filterable(false))
	}
	if !o.accessible && !o.advanced && o.only == nil {
		addTo(groupHardware, huh.NewConfirm().Key("advanced").Title("Edit advanced settings?").
			Description("Mutation scale, CMA-ES, data-flow merges, caches…").Value(&d.advanced))
		var adv []huh.Field
		for _, f := range fields {
			if f.group != groupAdvanced {
				continue
			}
			if f.kind == kindSelect {
				opts := []huh.Option[string]{}
				if !slices.Contains(f.options, *f.val(d)) && *f.val(d) != "" {
					opts = append(opts, huh.NewOption(*f.val(d)+" (current)", *f.val(d)))
				}
				for _, v := range f.options {
					opts = append(opts, huh.NewOption(v, v))
				}
				adv = append(adv, huh.NewSelect[string]().Key(f.key).Title(f.title).Description(f.desc).Options(opts...).Value(f.val(d)))
				continue
			}
			adv = append(adv, huh.NewInput().Key(f.key).Title(f.title).Description(f.desc).Value(f.val(d)).Validate(d.validator(fields, f, false)))
		}
		byGroup[groupAdvanced] = adv
		order = insertBefore(order, groupAdvanced, groupSave)
	}
	groups := make([]*huh.Group, 0, len(order))
	pages := 0
	for _, g := range order {
		if g != groupAdvanced || o.advanced {
			pages++
		}
	}
	page := 0
	for _, g := range order {
		title := g
		if g == groupAdvanced && !o.advanced {
			title += " (optional)"
		} else if pages > 1 {
			page++
			title = fmt.Sprintf("%s · page %d of %d", g, page, pages)
		}
		gr := huh.NewGroup(byGroup[g]...).Title(title)
		if g == groupAdvanced && !o.accessible && !o.advanced {
			gr = gr.WithHideFunc(func() bool { return !d.advanced })
		}
		groups = append(groups, gr)
	}
	form := huh.NewForm(groups...).WithShowHelp(!o.accessible && !o.embedded).WithTheme(huhTheme(o.theme, o.accessible))
	if o.accessible {
		form = form.WithAccessible(true)
	}
	return form
}

func insertBefore(order []string, g, before string) []string {
	i := slices.Index(order, before)
	if i < 0 {
		return append(order, g)
	}
	return slices.Insert(order, i, g)
}

// huhTheme dresses huh's forms in a workbench theme. Accessible mode is
// plain text: prompts go to pipes and screen readers.
func huhTheme(t themes.Theme, plain bool) huh.Theme {
	return huh.ThemeFunc(func(bool) *huh.Styles {
		s := huh.ThemeBase(t.Dark)
		if plain || t.Mono {
			return s
		}
		p := t.Palette
		f := &s.Focused
		f.Base = f.Base.BorderForeground(p.FocusBorder)
		f.Card = f.Base
		f.Title = f.Title.Foreground(p.Accent).Bold(true)
		f.NoteTitle = f.NoteTitle.Foreground(p.Accent).Bold(true)
		f.Description = f.Description.Foreground(p.Muted)
		f.ErrorIndicator = f.ErrorIndicator.Foreground(p.Bad)
		f.ErrorMessage = f.ErrorMessage.Foreground(p.Bad)
		f.SelectSelector = f.SelectSelector.Foreground(p.Accent)
		f.NextIndicator = f.NextIndicator.Foreground(p.Accent)
		f.PrevIndicator = f.PrevIndicator.Foreground(p.Accent)
		f.Option = f.Option.Foreground(p.Text)
		f.MultiSelectSelector = f.MultiSelectSelector.Foreground(p.Accent)
		f.SelectedOption = f.SelectedOption.Foreground(p.Good)
		f.SelectedPrefix = f.SelectedPrefix.Foreground(p.Good)
		f.UnselectedOption = f.UnselectedOption.Foreground(p.Text)
		f.UnselectedPrefix = f.UnselectedPrefix.Foreground(p.Muted)
		f.FocusedButton = f.FocusedButton.Foreground(p.SelectionFg).Background(p.SelectionBg).Bold(true)
		f.BlurredButton = f.BlurredButton.Foreground(p.Text).Background(p.BarBg)
		f.TextInput.Cursor = f.TextInput.Cursor.Foreground(p.Accent)
		f.TextInput.Placeholder = f.TextInput.Placeholder.Foreground(p.Muted)
		f.TextInput.Prompt = f.TextInput.Prompt.Foreground(p.Accent)
		f.TextInput.Text = f.TextInput.Text.Foreground(p.Text)
		s.Blurred = *f
		s.Blurred.Base = s.Blurred.Base.BorderStyle(lipgloss.HiddenBorder())
		s.Blurred.Card = s.Blurred.Base
		s.Blurred.Title = s.Blurred.Title.Foreground(p.Text).Bold(false)
		s.Blurred.MultiSelectSelector = s.Blurred.MultiSelectSelector.SetString("  ")
		s.Blurred.NextIndicator = s.Blurred.NextIndicator.SetString("")
		s.Blurred.PrevIndicator = s.Blurred.PrevIndicator.SetString("")
		s.Group.Title = s.Group.Title.Foreground(p.Accent).Bold(true)
		s.Group.Description = s.Group.Description.Foreground(p.Muted)
		s.Help.ShortKey = s.Help.ShortKey.Foreground(p.Accent)
		s.Help.ShortDesc = s.Help.ShortDesc.Foreground(p.Muted)
		s.Help.FullKey = s.Help.FullKey.Foreground(p.Accent)
		s.Help.FullDesc = s.Help.FullDesc.Foreground(p.Muted)
		return s
	})
}

// formatModels renders models for the form, one entry per line.
func formatModels(ms []config.Model) string {
	lines := make([]string, len(ms))
	for i, m := range ms {
		ref := m.Path
		if m.HF != "" {
			ref = m.HF
			if strings.Count(strings.TrimPrefix(ref, "hf://"), "/") >= 2 && !strings.HasPrefix(ref, "hf://") {
				ref = "hf:" + ref
			}
		} else if looksLikeHF(ref) {
			ref = "./" + ref // keep a path that reads like a hub id a path
		}
		if m.Name != defaultModelName(ref) {
			ref = m.Name + "=" + ref
		}
		lines[i] = ref
	}
	return strings.Join(lines, "\n")
}

// parseModels reads the models field: entries separated by newlines or
// commas, each [name=]reference. A reference is a Hugging Face id when it
// is written hf:… or hf://…, or has the form org/name (with an optional
// :QUANT or @revision) and does not end in .gguf; otherwise it is a path.
// No file is looked at.
func parseModels(v string) ([]config.Model, error) {
	var out []config.Model
	names := map[string]int{}
	for _, e := range splitList(v) {
		name, ref, hasName := strings.Cut(e, "=")
		if !hasName {
			ref, name = name, ""
		}
		name, ref = strings.TrimSpace(name), strings.TrimSpace(ref)
		if ref == "" {
			return nil, fmt.Errorf("%q: no path or Hugging Face id", e)
		}
		m := config.Model{Name: name}
		switch {
		case strings.HasPrefix(ref, "hf://"):
			m.HF = ref
		case strings.HasPrefix(ref, "hf:"):
			m.HF = strings.TrimPrefix(ref, "hf:")
		case looksLikeHF(ref):
			m.HF = ref
		default:
			m.Path = ref
		}
		if m.Name == "" {
			m.Name = defaultModelName(ref)
			if n := names[m.Name]; n > 0 {
				m.Name = fmt.Sprintf("%s-%d", m.Name, n+1)
			}
		}
		names[m.Name]++
		out = append(out, m)
	}
	return out, nil
}

// keepFill marks the models of parsed that are unchanged defaults of orig
// (same name and reference) as fillers again, so that the run treats them
// as the command line and the configuration file do (package modelset).
func keepFill(orig, parsed []config.Model) []config.Model {
	for i, m := range parsed {
		parsed[i].Fill = slices.ContainsFunc(orig, func(o config.Model) bool {
			return o.Fill && o.Name == m.Name && o.Ref() == m.Ref()
		})
	}
	return parsed
}

// looksLikeHF reports whether ref reads as org/name[:sel][@rev].
func looksLikeHF(ref string) bool {
	if ref == "" || strings.HasPrefix(ref, ".") || strings.HasPrefix(ref, "/") || strings.HasPrefix(ref, "~") {
		return false
	}
	head, _, _ := strings.Cut(ref, ":")
	head, _, _ = strings.Cut(head, "@")
	if strings.HasSuffix(strings.ToLower(head), ".gguf") {
		return false
	}
	parts := strings.Split(head, "/")
	return len(parts) == 2 && parts[0] != "" && parts[1] != ""
}

// defaultModelName derives a model name from a reference: a zoo model's
// name, the file name without .gguf, or the repository name.
func defaultModelName(ref string) string {
	if name, ok := zoo.ParseModelRef(ref); ok {
		return name
	}
	r := strings.TrimPrefix(strings.TrimPrefix(ref, "hf://"), "hf:")
	r, _, _ = strings.Cut(r, "@")
	if !strings.HasSuffix(strings.ToLower(r), ".gguf") {
		r, _, _ = strings.Cut(r, ":")
	}
	base := filepath.Base(r)
	if strings.HasSuffix(strings.ToLower(base), ".gguf") {
		base = base[:len(base)-len(".gguf")]
	}
	base = strings.Map(func(c rune) rune {
		if c == ' ' || c == '/' || c == '\\' || c == ':' {
			return '-'
		}
		return c
	}, base)
	if base == "" || base == "." {
		return "model"
	}
	return base
}

// splitList splits on newlines and commas, dropping empty entries.
func splitList(v string) []string {
	var out []string
	for _, line := range strings.Split(v, "\n") {
		for _, e := range strings.Split(line, ",") {
			if e = strings.TrimSpace(e); e != "" {
				out = append(out, e)
			}
		}
	}
	return out
}
