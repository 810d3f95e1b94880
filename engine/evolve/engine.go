package evolve

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/google/renameio/v2"

	"github.com/evomerge/evomerge/engine/config"
	"github.com/evomerge/evomerge/engine/eval"
	"github.com/evomerge/evomerge/engine/format"
	"github.com/evomerge/evomerge/engine/modelset"
	"github.com/evomerge/evomerge/kernels"
)

// The engine is a driver over parts that each own one concern:
//
//	engine.go       the generation loop (ask, evaluate, tell, stop), the result
//	schedule.go     a generation's candidates: dedupe, cache and budget, dispatch
//	ledger.go       outcomes by recipe key, the budget, the best so far
//	evaluator.go    scoring one candidate: merge, then the worker pool
//	scratch.go      the scratch directory for candidates merged through files
//	queue.go        the run's job queue (engine/dist): local and joined workers
//	history.go      the run directory: history.jsonl, checkpoints, summary
//	texts.go        evaluation texts and tasks, the evaluation salt
//	events.go       the event stream; control.go pause and resume
//	final.go        best.gguf and the held-out comparison
//	windows.go      rotated fitness windows and the final pick; promote.go
//	                promotions (successive halving) within a generation
//	verdict.go      the paired bootstrap verdict; heldout.go its cache
//	space.go        the genome layout and its decoding into recipes
//	genome.go       genomes and the variation operators
//	optimizer.go    the optimiser interface, one file per method; adam.go
//	                the centre moved by Adam that ES and gradient share; gradient.go also
//	                carries a worker's gradient to the genes and chooses
//	                optimizer "auto"
//
// A part with shared state has a lock of its own that guards that part
// alone: the history's covers its file, the emitter's the sink, the
// ledger's — which every candidate goes through — its maps, and is never
// held across IO or while an event is delivered.

// Options tune a run beyond its configuration.
type Options struct {
	Sink    Sink     // events (nil: discarded)
	Control *Control // pause/resume (nil: never paused)
	// Resume continues the run recorded in cfg.Output.Dir: every candidate
	// in its history.jsonl is replayed from the Record instead of being
	// evaluated again, so the run reaches exactly the state it would have
	// reached uninterrupted, then goes on.
	Resume bool
	// PoolOptions are the evaluation workers' settings (Command defaults to
	// this executable's worker); the pool is sized from cfg.Hardware by
	// eval.PoolOptions.Sized.
	PoolOptions eval.PoolOptions
	// Codec encodes merged tensors (default kernels.Native; the CLI passes
	// engine/llm's, which writes every ggml type).
	Codec kernels.Codec
	// Resolve maps a model reference (zoo:NAME, a path or a Hugging Face
	// reference) to a local file (default: modelset.Resolver(nil), which
	// downloads from the hub configured by the environment).
	Resolve func(ctx context.Context, ref string) (string, error)
	// Windows is the number of validation windows per text, which
	// SearchWindows needs with evaluation.rotate_windows (Run measures it).
	Windows map[string]int
	// HeldOutCache is a directory that keeps the held-out scores of the
	// sources, the base and the uniform average across runs ("": none;
	// see heldout.go).
	HeldOutCache string
}

type engine struct {
	cfg    config.Config // the effective configuration (package modelset's)
	opt    Options
	models *modelset.Set
	start  time.Time
	events *emitter
	paths  map[string]string // model name → local file
	space  *Space
	ops    *operators
	texts  []string // names of the evaluation texts
	salt   string   // evaluation settings, part of every recipe key
	ledger *ledger
	// plan divides the validation windows when they rotate (nil: the
	// first chunks always); windows are the current generation's.
	plan    *windowPlan
	windows map[string][]int
	// history, measurer: set up by Run and Search alike; ev and scratch
	// only by Run (nil in Search).
	history  *history
	measurer measurer
	ev       *evaluator
	queue    *queue
	scratch  *scratch
	final    time.Duration  // the held-out comparison's time
	skipped  []string       // candidates the spent budget left unevaluated
	device   eval.Placement // where candidates are evaluated (Run only)
}

// Run searches for the best merge recipe as configured and writes the
// results to cfg.Output.Dir. It is the Go API behind `evomerge-tui --run`:
//
//	cfg := config.Default()
//	cfg.Evolution.Generations = 4
//	res, err := evolve.Run(ctx, cfg, evolve.Options{Sink: func(e evolve.Event) { ... }})
func Run(ctx context.Context, cfg config.Config, opt Options) (*Result, error) {
	return run(ctx, cfg, opt, nil)
}

// Search runs the search alone: score replaces merging and evaluation, no
// worker is started, and neither best.gguf nor the held-out comparison is
// written (history.jsonl, checkpoint.json and summary.json are). Events,
// resume and the result are Run's. score is told no windows, so
// evaluation.rotate_windows does not apply (SearchWindows is Search with
// windows). It serves tests of the search and the measurement of the
// engine's own overhead.
func Search(ctx context.Context, cfg config.Config, opt Options, score ScoreFunc) (*Result, error) {
	if score == nil {
		return nil, errors.New("evolve.Search: no score function")
	}
	return run(ctx, cfg, opt, score)
}

// SearchWindows is Search with a score function told which validation
// windows to score (see windows.go); opt.Windows gives the windows each
// text holds.
func SearchWindows(ctx context.Context, cfg config.Config, opt Options, score WindowScoreFunc) (*Result, error) {
	if score == nil {
		return nil, errors.New("evolve.SearchWindows: no score function")
	}
	return run(ctx, cfg, opt, score)
}

func run(ctx context.Context, cfg config.Config, opt Options, score measurer) (res *Result, err error) {
	e := &engine{cfg: cfg, opt: opt, start: time.Now(), events: newEmitter(opt.Sink)}
	if opt.Control == nil {
		e.opt.Control = &Control{}
	}
	if opt.Codec == nil {
		e.opt.Codec = kernels.Native{}
	}
	e.opt.Control.mu.Lock()
	e.opt.Control.notify = func(p bool) { e.events.emit(Paused{Paused: p}) }
	e.opt.Control.mu.Unlock()
	defer func() {
		fin := Finished{Result: res, Err: err, Elapsed: time.Since(e.start)}
		if res != nil {
			fin.Reason, fin.Best, fin.Fitness = res.Reason, res.Best, res.BestFitness
		} else if errors.Is(err, context.Canceled) {
			fin.Reason = "cancelled"
		} else {
			fin.Reason = "error"
		}
		e.events.emit(fin)
	}()
	if ps := cfg.Validate(); len(ps) > 0 {
		return nil, ps.Err()
	}
	err = e.setup(ctx, score)
	defer e.teardown()
	if err != nil {
		return nil, err
	}
	res, err = e.search(ctx)
	if err == nil && e.queue != nil {
		e.queue.finished = true
	}
	return res, err
}

// tuned is the technique the optimizer searches alone (cmaes and es:
// evolution.cmaes_technique as package modelset resolved it), or "".
func (e *engine) tuned() string {
	if e.cfg.Evolution.TunesOneTechnique() {
		return e.cfg.Evolution.CMAESTechnique
	}
	return ""
}

// setup resolves models, lays out the genome, loads texts, opens the
// history and, for Run, starts the evaluation workers.
func (e *engine) setup(ctx context.Context, score measurer) error {
	set, err := modelset.Prepare(ctx, e.cfg, e.opt.Resolve)
	if err != nil {
		return err
	}
	e.models, e.cfg, e.paths = set, set.Config, set.Paths()
	cfg := e.cfg
	if e.space, err = NewSpace(cfg, e.paths, set.Layers()); err != nil {
		return err
	}
	e.space.Depths = set.Depths()
	if err := e.space.ResolveTokenizer(cfg.Merge.TokenizerSource, e.paths); err != nil {
		return err
	}
	ev := cfg.Evolution
	e.ops = &operators{space: e.space, mutationRate: ev.MutationRate, mutationScale: ev.MutationScale,
		crossoverRate: ev.CrossoverRate, techniqueRate: ev.TechniqueRate, tournamentSize: ev.TournamentSize}
	e.ops.known = func(g Genome) bool { return e.ledger.known(e.genomeKey(g)) }
	if ev.Optimizer == "auto" || ev.Optimizer == "gradient" {
		choice, why := e.autoOptimizer(score != nil)
		if ev.Optimizer == "gradient" && choice != "gradient" {
			return fmt.Errorf("evolution.optimizer = gradient: %s", strings.TrimPrefix(why, "evolution strategy: "))
		}
		if ev.Optimizer == "auto" {
			e.events.logf("info", "optimizer auto: %s", why)
		}
		ev.Optimizer = choice
		e.cfg.Evolution.Optimizer = choice
		cfg = e.cfg
	}
	if ev.Optimizer == "gradient" && cfg.Evaluation.Promotions > 0 {
		// Its one candidate a generation has nobody to be promoted over,
		// and more llama.cpp windows would not change its step.
		e.events.logf("info", "evaluation.promotions = %d: not used by the gradient optimizer (one candidate a generation)", cfg.Evaluation.Promotions)
		e.cfg.Evaluation.Promotions = 0
		cfg = e.cfg
	}
	budget := ev.MaxEvaluations
	if budget == 0 {
		budget = generationCost(generationSize(ev), cfg.Evaluation.Promotions) * ev.Generations
	}
	e.ledger = newLedger(budget)
	texts, err := eval.LoadTexts(cfg.Evaluation.Texts)
	if err != nil {
		return err
	}
	tasks, err := loadTasks(cfg.Evaluation.Tasks)
	if err != nil {
		return err
	}
	e.salt = evalSalt(cfg.Evaluation, texts, tasks)
	e.texts = make([]string, len(texts))
	for i, t := range texts {
		e.texts[i] = t.Name
	}
	if err := e.openRunDir(); err != nil {
		return err
	}
	if score != nil {
		e.measurer = score
		if _, plain := score.(ScoreFunc); plain {
			return nil // it sees no windows: rotate_windows does not apply
		}
		return e.planWindows(e.opt.Windows)
	}
	reference := e.space.Base
	if reference == "" {
		reference = e.space.Sources[0]
	}
	var pool *eval.Pool
	if cfg.Hardware.Workers > 0 {
		if pool, err = eval.NewPool(ctx, e.opt.PoolOptions.Sized(cfg.Hardware.Workers, cfg.Hardware.Threads, cfg.Hardware.GPULayersN())); err != nil {
			return err
		}
	}
	e.ev = newEvaluator(cfg.Evaluation, pool, texts, tasks, reference, cfg.Distributed.Remote(), cfg.Evolution.Population)
	e.measurer = e.ev
	e.scratch = &scratch{root: cfg.Hardware.TmpDir, inFlight: max(1, cfg.Hardware.Workers) + 1, logf: e.events.logf}
	for _, p := range e.paths {
		e.scratch.models = append(e.scratch.models, p)
	}
	if pool != nil {
		e.device = probeDevice(ctx, pool, reference, e.events.logf)
	}
	dir, err := e.scratch.scratchDir()
	if err != nil {
		return err
	}
	paths := slices.Sorted(maps.Values(e.paths))
	prepReq := eval.PrepareRequest{Sources: sources(paths), Template: reference, Scratch: dir,
		CacheBytes: int64(cfg.Hardware.TensorCacheMB) << 20, SourceCacheBytes: int64(cfg.Hardware.SourceCacheMB) << 20}
	if pool != nil {
		prep, err := pool.Prepare(ctx, prepReq)
		if err != nil {
			return fmt.Errorf("preparing the evaluation workers: %w", err)
		}
		e.events.logf("info", "workers keep %s loaded and merge candidates into it in place (%s, %s in %d weights)",
			prep.Template, strings.Join(prep.Buffers, "+"), format.Bytes(prep.Bytes), prep.Weights)
	}
	if e.queue, err = e.openQueue(ctx, prepReq, pool); err != nil {
		return err
	}
	e.ev.queue = e.queue.coord
	if !cfg.Evaluation.RotateWindows {
		return nil
	}
	if pool == nil {
		// hardware.workers = 0: one local worker counts the windows (and
		// later runs the held-out comparison).
		if pool, err = eval.NewPool(ctx, e.opt.PoolOptions.Sized(1, cfg.Hardware.Threads, cfg.Hardware.GPULayersN())); err != nil {
			return err
		}
		e.ev.pool = pool
	}
	// How many windows each text holds: one window of the reference.
	probe, err := pool.Perplexity(ctx, reference, texts, eval.PerplexityOptions{Context: cfg.Evaluation.Context, Chunks: 1}, nil)
	if err != nil {
		return fmt.Errorf("counting the validation windows: %w", err)
	}
	available := map[string]int{}
	for _, t := range probe.Texts {
		available[t.Name] = t.Available
	}
	return e.planWindows(available)
}

// planWindows divides the validation windows when they rotate.
func (e *engine) planWindows(available map[string]int) error {
	v := e.cfg.Evaluation
	if !v.RotateWindows {
		return nil
	}
	for _, name := range e.texts {
		if available[name] == 0 {
			return fmt.Errorf("rotate_windows: the number of windows of validation text %s is unknown", name)
		}
	}
	plan, notes, err := newWindowPlan(e.cfg.Evolution.Seed, available, v.Chunks, v.PickWindows)
	if err != nil {
		return err
	}
	for _, n := range notes {
		e.events.logf("warn", "%s", n)
	}
	e.plan = plan
	return nil
}

// probeDevice finds out where candidates will be evaluated by loading a
// source (the reference: the base when there is one) in a worker, then
// unloading it. A source that does not load is reported by the
// evaluations; here it only costs the description.
func probeDevice(ctx context.Context, pool *eval.Pool, model string, logf func(level, format string, args ...any)) eval.Placement {
	pl, err := pool.Placement(ctx, model)
	if err != nil {
		logf("warn", "could not tell where evaluation runs: %v", err)
		return eval.Placement{}
	}
	pool.Unload(ctx, model)
	return pl
}

// openRunDir prepares the output directory: with Resume it replays
// history.jsonl into the ledger; otherwise it refuses a directory that
// holds a run and writes config.toml. Then it opens the history for
// appending.
func (e *engine) openRunDir() error {
	dir := e.cfg.Output.Dir
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if e.opt.Resume {
		recs, err := replayHistory(dir)
		if err != nil {
			return err
		}
		e.ledger.restore(recs)
		e.events.logf("info", "resuming %s: %d evaluated candidates will be replayed", dir, len(recs))
	} else {
		if err := refuseExistingRun(dir); err != nil {
			return err
		}
		raw, err := e.cfg.Encode()
		if err != nil {
			return err
		}
		if err := renameio.WriteFile(filepath.Join(dir, "config.toml"), raw, 0o644); err != nil {
			return err
		}
	}
	h, err := openHistory(dir)
	if err != nil {
		return err
	}
	e.history = h
	return nil
}

func (e *engine) teardown() {
	if e.history != nil {
		e.history.close()
	}
	if e.queue != nil {
		e.queue.close()
	}
	if e.ev != nil && e.ev.pool != nil {
		e.ev.pool.Close()
	}
	if e.scratch != nil {
		e.scratch.close()
	}
}

// search is the generation loop: the optimiser proposes a generation, the
// scheduler scores it, the optimiser learns the scores; the loop stops at
// the last generation, when the budget is spent, when the best fitness has
// stalled for Patience generations or when the optimiser has converged.
func (e *engine) search(ctx context.Context) (*Result, error) {
	ev := e.cfg.Evolution
	opt := newOptimizer(ev, e.ops, e.genomeKey)
	defer opt.close()
	names := slices.Clone(e.space.Names)
	if e.space.BaseName != "" {
		names = append(names, e.space.BaseName)
	}
	files := make([]string, len(names))
	for i, n := range names {
		files[i] = e.paths[n]
	}
	e.events.emit(RunStarted{Optimizer: ev.Optimizer, Tuned: e.tuned(), Seed: ev.Seed, Sources: names, Files: files, Base: e.space.BaseName,
		Techniques: e.space.Techniques, Genes: e.space.Len(), Population: ev.Population, Generations: ev.Generations,
		Budget: e.ledger.budget, Texts: e.texts, OutputDir: e.cfg.Output.Dir, Resumed: e.ledger.size(), Time: e.start,
		Models: e.models.Models, BaseNote: e.models.BaseNote, Dropped: e.models.Dropped, LeftOut: e.models.LeftOut,
		Device: e.device})

	reason := "generations"
	stalled := 0
	gens := 0
	bestSoFar := math.Inf(-1)
	var finalists []*individual // each generation's best
	for gen := 0; gen < ev.Generations; gen++ {
		if e.plan != nil {
			e.windows = e.plan.generation(gen)
		}
		inds := opt.ask(gen)
		if inds == nil {
			reason = "converged"
			break
		}
		if err := e.evaluate(ctx, gen, inds); err != nil {
			return nil, e.stopped(err)
		}
		if err := e.promote(ctx, gen, inds); err != nil {
			return nil, e.stopped(err)
		}
		opt.tell(gen, inds)
		lead := generationBest(inds)
		if l, ok := opt.(leaderer); ok {
			lead = l.leader(inds)
		}
		if lead != nil {
			finalists = append(finalists, lead)
		}
		gens = gen + 1
		best, evaluations, spent := e.ledger.state()
		if e.plan != nil {
			// Rotated windows: fitness compares within a generation only,
			// so the best so far is the generation's and nothing stalls.
			best = lead
		} else {
			if best != nil && best.fitness > bestSoFar+ev.MinImprovement {
				stalled = 0
			} else if gen > 0 {
				stalled++
			}
			if best != nil {
				bestSoFar = max(bestSoFar, best.fitness)
			}
		}
		done := generationDone(gen, inds, best, evaluations)
		done.Elapsed, done.Stalled = time.Since(e.start), stalled
		for _, f := range opt.front() {
			done.Front = append(done.Front, f.id)
		}
		e.events.emit(done)
		if err := writeCheckpoint(e.cfg.Output.Dir, gen, done); err != nil {
			return nil, err
		}
		if spent && gen < ev.Generations-1 {
			reason = "budget"
			break
		}
		if ev.Patience > 0 && stalled >= ev.Patience {
			reason = "patience"
			break
		}
	}
	best, evaluations, _ := e.ledger.state()
	if e.plan != nil && len(finalists) > 0 {
		best = finalists[len(finalists)-1]
	}
	if best == nil {
		return nil, errors.New("no candidate could be evaluated; see the log for the errors")
	}
	res := &Result{OutputDir: e.cfg.Output.Dir, Models: e.models.Models, BaseNote: e.models.BaseNote,
		Techniques: e.space.Techniques, Dropped: e.models.Dropped, LeftOut: e.models.LeftOut,
		Reason: reason, Evaluations: evaluations, Skipped: e.skipped, Generations: gens,
		Seed: ev.Seed, Optimizer: ev.Optimizer, Tuned: e.tuned(), Device: e.device}
	if e.plan != nil && len(finalists) > 0 && e.cfg.Evaluation.PickWindows > 0 && e.plan.canPick() {
		picked, err := e.pickFinal(ctx, finalists, res)
		if err != nil {
			return nil, e.stopped(err)
		}
		if picked != nil {
			best = picked
		}
	}
	res.Best, res.BestFitness, res.BestScores = e.info(best), best.fitness, e.ledger.lookup(best.key).Scores
	for _, f := range opt.front() {
		res.Front = append(res.Front, e.info(f))
	}
	if e.ev != nil {
		if err := e.finish(ctx, best, res); err != nil {
			return res, e.stopped(err)
		}
	}
	res.Elapsed = time.Since(e.start)
	res.Timings = e.ledger.costs()
	res.Timings.FinalEval = e.final
	if e.ev != nil {
		res.Timings.TensorHits = e.ev.reused()
	}
	res.Timings.Overhead = res.Elapsed - res.Timings.Merge - res.Timings.Evaluate - res.Timings.FinalEval
	if err := writeJSON(filepath.Join(e.cfg.Output.Dir, "summary.json"), res); err != nil {
		return res, err
	}
	return res, nil
}

// stopped adds to an error that stops the run for want of evaluation
// workers how to go on: the history holds every outcome so far.
func (e *engine) stopped(err error) error {
	var noWorkers *eval.StartError
	if !errors.As(err, &noWorkers) {
		return err
	}
	return fmt.Errorf("%w (the run's history is kept: once workers can start, --resume %s continues it)", err, e.cfg.Output.Dir)
}

// generationDone summarises a generation's successful candidates, on the
// windows they all share (a promoted candidate's first fitness), and the
// best so far.
func generationDone(gen int, inds []*individual, best *individual, evaluations int) GenerationDone {
	var sum float64
	genBest, worst, ok := math.Inf(-1), math.Inf(1), 0
	for _, ind := range inds {
		if ind.failed {
			continue
		}
		f := ind.fitness
		if ind.rung > 0 {
			f = ind.first
		}
		ok++
		sum += f
		genBest, worst = max(genBest, f), min(worst, f)
	}
	done := GenerationDone{Generation: gen, Evaluations: evaluations}
	if ok > 0 {
		done.GenBest, done.Mean, done.Worst = genBest, sum/float64(ok), worst
	}
	if best != nil {
		done.Best, done.BestID = best.fitness, best.id
	}
	return done
}

// generationBest is a generation's best scored candidate (nil: none): the
// one promoted furthest, then the fittest.
func generationBest(inds []*individual) *individual {
	var best *individual
	for _, ind := range inds {
		if !ind.failed && (best == nil || better(ind, best)) {
			best = ind
		}
	}
	return best
}

// keySalt is what a recipe key adds to the recipe: the evaluation settings
// and, when windows rotate, the current generation's windows.
func (e *engine) keySalt() string {
	if e.windows == nil {
		return e.salt
	}
	return e.salt + "\x00" + windowsKey(e.windows)
}

// genomeKey is the cache key of a genome's recipe ("" if it does not decode).
func (e *engine) genomeKey(g Genome) string {
	r, err := e.space.Decode(g)
	if err != nil {
		return ""
	}
	text, err := r.Encode()
	if err != nil {
		return ""
	}
	return recipeKey(text, e.keySalt())
}

func (e *engine) info(ind *individual) CandidateInfo {
	rec := e.ledger.lookup(ind.key)
	ci := CandidateInfo{ID: ind.id, Technique: ind.genome.Technique, Parents: ind.parents, Origin: ind.origin, Key: ind.key}
	if rec != nil {
		ci.Generation, ci.Summary, ci.Recipe = rec.Generation, rec.Summary, rec.Recipe
	}
	return ci
}
