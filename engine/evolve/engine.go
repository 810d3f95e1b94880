package evolve

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/google/renameio/v2"

	"github.com/evomerge/evomerge/engine/config"
	"github.com/evomerge/evomerge/engine/eval"
	"github.com/evomerge/evomerge/engine/gguf"
	"github.com/evomerge/evomerge/engine/merge"
	"github.com/evomerge/evomerge/kernels"
	"github.com/evomerge/evomerge/zoo"
)

// Options tune a run beyond its configuration.
type Options struct {
	Sink    Sink     // events (nil: discarded)
	Control *Control // pause/resume (nil: never paused)
	// Resume continues the run recorded in cfg.Output.Dir: every candidate
	// in its history.jsonl is replayed from the Record instead of being
	// evaluated again, so the run reaches exactly the state it would have
	// reached uninterrupted, then goes on.
	Resume bool
	// Pool evaluates candidates; nil starts one from cfg.Hardware with
	// PoolOptions (whose Command defaults to this executable's worker).
	Pool        *eval.Pool
	PoolOptions eval.PoolOptions
	// Codec encodes merged tensors (default kernels.Native; the CLI passes
	// engine/llm's, which writes every ggml type).
	Codec kernels.Codec
	// Resolve maps a model reference (path or Hugging Face id) to a local
	// file (default: the reference itself).
	Resolve func(ctx context.Context, ref string) (string, error)
	// Scorer replaces merging and evaluation (tests of the search itself).
	Scorer func(ctx context.Context, r *merge.Recipe) (Scores, error)
	// SkipFinal skips writing best.gguf and the held-out comparison.
	SkipFinal bool
}

// Record is one line of history.jsonl: a candidate and its outcome. Only
// real evaluations (and failures) are recorded; cached repeats of a recipe
// are not. It is the format resume replays and the report reads.
type Record struct {
	ID         string    `json:"id"`
	Generation int       `json:"generation"`
	Key        string    `json:"key"`
	Technique  string    `json:"technique"`
	Origin     string    `json:"origin"`
	Parents    []string  `json:"parents,omitempty"`
	Summary    string    `json:"summary"`
	Recipe     string    `json:"recipe"`
	Genome     Genome    `json:"genome"`
	Scores     Scores    `json:"scores"`
	Fitness    float64   `json:"fitness"`
	Objectives []float64 `json:"objectives,omitempty"`
	Status     Status    `json:"status"`
	Err        string    `json:"error,omitempty"`
	MergeSec   float64   `json:"merge_seconds"`
	EvalSec    float64   `json:"eval_seconds"`
	Time       time.Time `json:"time"`
}

// OK reports whether the candidate was scored (not failed).
func (r Record) OK() bool { return r.Status != StatusFailed }

type engine struct {
	cfg     config.Config
	opt     Options
	space   *Space
	ops     *operators
	paths   map[string]string // model name → local file
	pool    *eval.Pool
	texts   []eval.Text
	tasks   []eval.Task
	tmpDir  string
	salt    string
	tcache  *lruCache
	slots   chan struct{} // one per worker: evaluation time excludes queueing
	start   time.Time
	timings Timings
	device  eval.Placement // where candidates are evaluated

	mu          sync.Mutex // guards everything below and serialises events
	cache       map[string]*Record
	seen        map[string]bool // keys counted toward the budget in this run
	evaluations int
	budget      int
	history     *os.File
	best        *individual
	all         []*individual
}

// Run searches for the best merge recipe as configured and writes the
// results to cfg.Output.Dir. It is the Go API behind `evomerge-tui --run`:
//
//	cfg := config.Default()
//	cfg.Evolution.Generations = 4
//	res, err := evolve.Run(ctx, cfg, evolve.Options{Sink: func(e evolve.Event) { ... }})
func Run(ctx context.Context, cfg config.Config, opt Options) (res *Result, err error) {
	e := &engine{cfg: cfg, opt: opt, start: time.Now(), cache: map[string]*Record{}, seen: map[string]bool{}}
	if opt.Sink == nil {
		e.opt.Sink = func(Event) {}
	}
	if opt.Control == nil {
		e.opt.Control = &Control{}
	}
	if opt.Codec == nil {
		e.opt.Codec = kernels.Native{}
	}
	e.opt.Control.mu.Lock()
	e.opt.Control.notify = func(p bool) { e.emit(Paused{Paused: p}) }
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
		e.emit(fin)
	}()
	if ps := cfg.Validate(); len(ps) > 0 {
		return nil, ps.Err()
	}
	if err := e.setup(ctx); err != nil {
		return nil, err
	}
	defer e.teardown()
	return e.search(ctx)
}

func (e *engine) emit(ev Event) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.opt.Sink(ev)
}

func (e *engine) logf(level, format string, args ...any) {
	e.emit(Log{Level: level, Message: fmt.Sprintf(format, args...), Time: time.Now()})
}

// setup resolves models, lays out the genome, loads texts, opens the
// history and starts the evaluation workers.
func (e *engine) setup(ctx context.Context) error {
	cfg := e.cfg
	e.paths = map[string]string{}
	resolve := e.opt.Resolve
	if resolve == nil {
		resolve = func(_ context.Context, ref string) (string, error) { return ref, nil }
	}
	var problems []string
	layers := -1
	for _, m := range cfg.Models {
		p, err := resolve(ctx, m.Ref())
		if err != nil {
			problems = append(problems, fmt.Sprintf("model %s: %v", m.Name, err))
			continue
		}
		f, err := gguf.Open(p)
		if err != nil {
			problems = append(problems, fmt.Sprintf("model %s: %v", m.Name, err))
			continue
		}
		n, _ := f.Metadata.ArchUint("block_count")
		f.Close()
		switch {
		case layers < 0:
			layers = int(n)
		case int(n) != layers:
			problems = append(problems, fmt.Sprintf("model %s has %d layers, the others %d: layer-wise genes need equal depths", m.Name, n, layers))
		}
		e.paths[m.Name] = p
	}
	if len(problems) > 0 {
		return errors.New(strings.Join(problems, "\n"))
	}
	space, err := NewSpace(cfg, e.paths, layers)
	if err != nil {
		return err
	}
	e.space = space
	ev := cfg.Evolution
	e.ops = &operators{space: space, mutationRate: ev.MutationRate, mutationScale: ev.MutationScale,
		crossoverRate: ev.CrossoverRate, techniqueRate: ev.TechniqueRate, tournamentSize: ev.TournamentSize}
	e.ops.known = func(g Genome) bool {
		e.mu.Lock()
		defer e.mu.Unlock()
		return e.seen[e.genomeKey(g)]
	}
	e.budget = ev.MaxEvaluations
	if e.budget == 0 {
		e.budget = ev.Population * ev.Generations
	}
	if e.texts, err = LoadTexts(cfg.Evaluation.Texts); err != nil {
		return err
	}
	if cfg.Evaluation.Tasks != "" {
		f, err := os.Open(cfg.Evaluation.Tasks)
		if err != nil {
			return err
		}
		e.tasks, err = eval.ReadTasks(f)
		f.Close()
		if err != nil {
			return fmt.Errorf("%s: %w", cfg.Evaluation.Tasks, err)
		}
	}
	e.salt = e.evalSalt()
	if err := e.openHistory(); err != nil {
		return err
	}
	if e.opt.Scorer == nil || !e.opt.SkipFinal {
		if err := e.startPool(ctx); err != nil {
			return err
		}
		e.probeDevice(ctx)
	}
	e.tcache = newLRUCache(int64(cfg.Hardware.TensorCacheMB) << 20)
	e.slots = make(chan struct{}, e.poolSize())
	return nil
}

// LoadTexts reads evaluation texts: "zoo:DOMAIN[/SPLIT]" or file paths.
// Names are the domain or the file's base name, made unique.
func LoadTexts(refs []string) ([]eval.Text, error) {
	var out []eval.Text
	used := map[string]int{}
	for _, ref := range refs {
		var name, content string
		if d, split, ok := zoo.ParseTextRef(ref); ok {
			t, err := zoo.Text(d, split)
			if err != nil {
				return nil, err
			}
			name, content = d, t
		} else {
			b, err := os.ReadFile(ref)
			if err != nil {
				return nil, fmt.Errorf("evaluation text: %w", err)
			}
			name, content = strings.TrimSuffix(filepath.Base(ref), filepath.Ext(ref)), string(b)
		}
		if used[name]++; used[name] > 1 {
			name = fmt.Sprintf("%s-%d", name, used[name])
		}
		out = append(out, eval.Text{Name: name, Content: content})
	}
	return out, nil
}

// evalSalt captures every evaluation setting, so cached fitness is reused
// only when it would be computed the same way.
func (e *engine) evalSalt() string {
	h := sha256.New()
	v := e.cfg.Evaluation
	fmt.Fprintf(h, "ctx=%d chunks=%d obj=%v coh=%v/%d tasks=%d\n", v.Context, v.Chunks, v.Objectives, v.CoherencePrompts, v.CoherenceTokens, len(e.tasks))
	for _, t := range e.texts {
		fmt.Fprintf(h, "%s %x\n", t.Name, sha256.Sum256([]byte(t.Content)))
	}
	for _, t := range e.tasks {
		fmt.Fprintf(h, "%q %q %d\n", t.Context, t.Choices, t.Answer)
	}
	return hex.EncodeToString(h.Sum(nil))[:16]
}

// WorkerPoolOptions is the tournament's evaluation pool: base with the
// hardware's worker count, its thread budget (all cores when 0) split
// between the workers, and its GPU offload.
func WorkerPoolOptions(base eval.PoolOptions, h config.Hardware) eval.PoolOptions {
	po := base
	po.Workers = max(1, h.Workers)
	threads := h.Threads
	if threads == 0 {
		threads = runtime.NumCPU()
	}
	po.Threads = max(1, threads/po.Workers)
	po.GPULayers = h.GPULayersN()
	return po
}

func (e *engine) startPool(ctx context.Context) error {
	if e.opt.Pool != nil {
		e.pool = e.opt.Pool
		return nil
	}
	p, err := eval.NewPool(ctx, WorkerPoolOptions(e.opt.PoolOptions, e.cfg.Hardware))
	if err != nil {
		return err
	}
	e.pool = p
	return nil
}

// probeDevice finds out where candidates will be evaluated by loading
// one source (the base when there is one) in a worker, then unloading it.
// A source that does not load is reported by the evaluations; here it
// only costs the description.
func (e *engine) probeDevice(ctx context.Context) {
	name := e.space.BaseName
	if name == "" {
		name = e.space.Names[0]
	}
	pl, err := e.pool.Placement(ctx, e.paths[name])
	if err != nil {
		e.logf("warn", "could not tell where evaluation runs: %v", err)
		return
	}
	e.pool.Unload(ctx, e.paths[name])
	e.device = pl
}

// openHistory replays (with Resume) and opens history.jsonl for appending.
func (e *engine) openHistory() error {
	dir := e.cfg.Output.Dir
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	path := filepath.Join(dir, "history.jsonl")
	if e.opt.Resume {
		n, err := e.loadHistory(path)
		if err != nil {
			return err
		}
		e.logf("info", "resuming %s: %d evaluated candidates will be replayed", dir, n)
	} else if st, err := os.Stat(path); err == nil && st.Size() > 0 {
		return fmt.Errorf("%s already holds a run (%s): pass --resume %s to continue it, or choose another output directory", dir, path, dir)
	}
	if !e.opt.Resume {
		raw, err := e.cfg.Encode()
		if err != nil {
			return err
		}
		if err := renameio.WriteFile(filepath.Join(dir, "config.toml"), raw, 0o644); err != nil {
			return err
		}
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	e.history = f
	return nil
}

func (e *engine) loadHistory(path string) (int, error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	n := 0
	for sc.Scan() {
		var r Record
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			continue // a line cut short by a kill: that candidate is evaluated again
		}
		if r.Status == StatusDone || r.Status == StatusFailed {
			rc := r
			e.cache[r.Key] = &rc
			n++
		}
	}
	return n, sc.Err()
}

func (e *engine) teardown() {
	if e.history != nil {
		e.history.Close()
	}
	if e.pool != nil && e.opt.Pool == nil {
		e.pool.Close()
	}
	if e.tmpDir != "" {
		os.RemoveAll(e.tmpDir)
	}
}

// newOptimizer builds the configured optimiser.
func (e *engine) newOptimizer() optimizer {
	ev := e.cfg.Evolution
	rng := rand.New(rand.NewPCG(ev.Seed, 0x5eed5eed5eed5eed))
	switch ev.Optimizer {
	case "cmaes":
		return newCMAES(e.ops, ev.CMAESTechnique, ev.CMAESSigma, ev.Population, ev.Seed)
	case "nsga2":
		return &nsga2{op: e.ops, rng: rng, size: ev.Population, key: e.genomeKey}
	case "random":
		return &randomSearch{op: e.ops, rng: rng, size: ev.Population}
	}
	return &ga{op: e.ops, rng: rng, size: ev.Population, elitism: ev.Elitism, key: e.genomeKey}
}

func (e *engine) search(ctx context.Context) (*Result, error) {
	ev := e.cfg.Evolution
	opt := e.newOptimizer()
	defer opt.close()
	names := slices.Clone(e.space.Names)
	if e.space.BaseName != "" {
		names = append(names, e.space.BaseName)
	}
	textNames := make([]string, len(e.texts))
	for i, t := range e.texts {
		textNames[i] = t.Name
	}
	e.emit(RunStarted{Optimizer: ev.Optimizer, Seed: ev.Seed, Sources: names, Base: e.space.BaseName,
		Techniques: e.space.Techniques, Genes: e.space.Len(), Population: ev.Population, Generations: ev.Generations,
		Budget: e.budget, Texts: textNames, OutputDir: e.cfg.Output.Dir, Resumed: len(e.cache), Time: e.start, Device: e.device})

	reason := "generations"
	stalled := 0
	gens := 0
	bestSoFar := math.Inf(-1)
	for gen := 0; gen < ev.Generations; gen++ {
		inds := opt.ask(gen)
		if inds == nil {
			reason = "converged"
			break
		}
		if err := e.evaluate(ctx, gen, inds); err != nil {
			return nil, err
		}
		opt.tell(gen, inds)
		gens = gen + 1
		// Generation statistics over successful candidates.
		var sum float64
		genBest, worst, ok := math.Inf(-1), math.Inf(1), 0
		for _, ind := range inds {
			if ind.failed {
				continue
			}
			ok++
			sum += ind.fitness
			genBest, worst = max(genBest, ind.fitness), min(worst, ind.fitness)
		}
		if e.best != nil && e.best.fitness > bestSoFar+ev.MinImprovement {
			stalled = 0
		} else if gen > 0 {
			stalled++
		}
		if e.best != nil {
			bestSoFar = max(bestSoFar, e.best.fitness)
		}
		done := GenerationDone{Generation: gen, Evaluations: e.evaluations, Elapsed: time.Since(e.start), Stalled: stalled}
		if ok > 0 {
			done.GenBest, done.Mean, done.Worst = genBest, sum/float64(ok), worst
		}
		if e.best != nil {
			done.Best, done.BestID = e.best.fitness, e.best.id
		}
		for _, f := range opt.front() {
			done.Front = append(done.Front, f.id)
		}
		e.emit(done)
		if err := e.checkpoint(gen, done); err != nil {
			return nil, err
		}
		if e.evaluations >= e.budget {
			reason = "budget"
			break
		}
		if ev.Patience > 0 && stalled >= ev.Patience {
			reason = "patience"
			break
		}
	}
	if e.best == nil {
		return nil, errors.New("no candidate could be evaluated; see the log for the errors")
	}
	res := &Result{OutputDir: e.cfg.Output.Dir, Reason: reason, Best: e.info(e.best), BestFitness: e.best.fitness,
		BestScores: e.cache[e.best.key].Scores, Evaluations: e.evaluations, Generations: gens,
		Seed: ev.Seed, Optimizer: ev.Optimizer, Device: e.device}
	for _, f := range opt.front() {
		res.Front = append(res.Front, e.info(f))
	}
	if !e.opt.SkipFinal {
		if err := e.finish(ctx, res); err != nil {
			return res, err
		}
	}
	res.Elapsed = time.Since(e.start)
	res.Timings.Overhead = res.Elapsed - e.timings.Merge - e.timings.Evaluate - e.timings.FinalEval
	res.Timings.Merge, res.Timings.Evaluate, res.Timings.FinalEval = e.timings.Merge, e.timings.Evaluate, e.timings.FinalEval
	res.Timings.CacheHits, res.Timings.TensorHits = e.timings.CacheHits, e.timings.TensorHits
	if err := writeJSON(filepath.Join(e.cfg.Output.Dir, "summary.json"), res); err != nil {
		return res, err
	}
	return res, nil
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
	return recipeKey(text, e.salt)
}

func (e *engine) info(ind *individual) CandidateInfo {
	rec := e.cache[ind.key]
	ci := CandidateInfo{ID: ind.id, Technique: ind.genome.Technique, Parents: ind.parents, Origin: ind.origin, Key: ind.key}
	if rec != nil {
		ci.Generation, ci.Summary, ci.Recipe = rec.Generation, rec.Summary, rec.Recipe
	}
	return ci
}

func (e *engine) checkpoint(gen int, d GenerationDone) error {
	cp := map[string]any{"generation": gen, "evaluations": d.Evaluations, "best_id": d.BestID, "best_fitness": d.Best,
		"stalled": d.Stalled, "time": time.Now().UTC()}
	return writeJSON(filepath.Join(e.cfg.Output.Dir, "checkpoint.json"), cp)
}

func writeJSON(path string, v any) error {
	raw, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return renameio.WriteFile(path, append(raw, '\n'), 0o644)
}

// evaluate scores a generation: cached candidates at once, the others on
// the worker pool, one more in flight than there are workers so that a
// merge overlaps an evaluation.
func (e *engine) evaluate(ctx context.Context, gen int, inds []*individual) error {
	type job struct {
		recipe *merge.Recipe
		inds   []*individual
	}
	var infos []CandidateInfo
	jobs := map[string]*job{}
	var order []string
	for i, ind := range inds {
		ind.id = fmt.Sprintf("g%d-c%02d", gen, i)
		r, err := e.space.Decode(ind.genome)
		var text []byte
		if err == nil {
			text, err = r.Encode()
		}
		if err != nil {
			ind.failed = true
			ind.key = "invalid-" + ind.id
			rec := &Record{ID: ind.id, Generation: gen, Key: ind.key, Technique: ind.genome.Technique, Origin: ind.origin,
				Parents: ind.parents, Genome: ind.genome, Status: StatusFailed, Err: err.Error(), Time: time.Now()}
			e.mu.Lock()
			e.cache[ind.key] = rec
			e.mu.Unlock()
			infos = append(infos, CandidateInfo{ID: ind.id, Generation: gen, Technique: ind.genome.Technique, Origin: ind.origin, Parents: ind.parents, Summary: err.Error()})
			continue
		}
		ind.key = recipeKey(text, e.salt)
		infos = append(infos, CandidateInfo{ID: ind.id, Generation: gen, Technique: ind.genome.Technique, Origin: ind.origin,
			Parents: ind.parents, Summary: e.space.Summary(ind.genome, r), Recipe: string(text), Key: ind.key})
		if j, ok := jobs[ind.key]; ok {
			j.inds = append(j.inds, ind)
			continue
		}
		jobs[ind.key] = &job{recipe: r, inds: []*individual{ind}}
		order = append(order, ind.key)
	}
	e.emit(GenerationStarted{Generation: gen, Candidates: infos})
	for i, ind := range inds {
		if ind.failed {
			e.emit(CandidateScored{Candidate: infos[i], Status: StatusFailed, Err: e.cache[ind.key].Err})
		}
	}

	// Resolve cache hits and the budget in candidate order (deterministic).
	var work []*job
	for _, key := range order {
		j := jobs[key]
		e.mu.Lock()
		rec, cached := e.cache[key]
		first := !e.seen[key]
		if first && !cached && e.evaluations >= e.budget {
			e.mu.Unlock()
			for _, ind := range j.inds {
				ind.failed = true
			}
			continue // over budget: not evaluated
		}
		if first {
			e.seen[key] = true
			e.evaluations++
		}
		e.mu.Unlock()
		if cached {
			if !first {
				e.mu.Lock()
				e.timings.CacheHits++
				e.mu.Unlock()
			}
			e.apply(j.inds, rec, gen, infos, first)
			continue
		}
		work = append(work, j)
	}

	sem := make(chan struct{}, max(1, e.poolSize()+1))
	var wg sync.WaitGroup
	var firstErr error
	var errMu sync.Mutex
	for _, j := range work {
		e.opt.Control.wait(ctx.Done())
		if ctx.Err() != nil {
			break
		}
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			lead := j.inds[0]
			rec, err := e.score(ctx, gen, lead, j.recipe, infos[slices.Index(inds, lead)])
			if err != nil {
				errMu.Lock()
				if firstErr == nil {
					firstErr = err
				}
				errMu.Unlock()
				return
			}
			e.apply(j.inds, rec, gen, infos, true)
		}()
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return err
	}
	return firstErr
}

func (e *engine) poolSize() int {
	if e.pool == nil {
		return 1
	}
	return e.pool.Size()
}

// apply copies a record's outcome to the individuals that share its key
// and reports each.
func (e *engine) apply(inds []*individual, rec *Record, gen int, infos []CandidateInfo, fresh bool) {
	for k, ind := range inds {
		ind.failed = rec.Status == StatusFailed
		ind.fitness, ind.objs = rec.Fitness, rec.Objectives
		status := rec.Status
		if k > 0 || !fresh || rec.Generation != gen || rec.ID != ind.id {
			if status == StatusDone {
				status = StatusCached
			}
		}
		e.mu.Lock()
		e.all = append(e.all, ind)
		if !ind.failed && (e.best == nil || ind.fitness > e.best.fitness) {
			e.best = ind
		}
		n := e.evaluations
		e.mu.Unlock()
		var info CandidateInfo
		for _, ci := range infos {
			if ci.ID == ind.id {
				info = ci
			}
		}
		e.emit(CandidateScored{Candidate: info, Scores: rec.Scores, Fitness: rec.Fitness, Objectives: rec.Objectives,
			Status: status, Err: rec.Err, MergeTime: time.Duration(rec.MergeSec * float64(time.Second)),
			EvalTime: time.Duration(rec.EvalSec * float64(time.Second)), Evaluation: n})
	}
}

// score merges and evaluates one candidate and records it in the history.
// Only cancellation is returned as an error; a candidate that cannot be
// merged or evaluated is recorded as failed.
func (e *engine) score(ctx context.Context, gen int, ind *individual, r *merge.Recipe, info CandidateInfo) (*Record, error) {
	rec := &Record{ID: ind.id, Generation: gen, Key: ind.key, Technique: ind.genome.Technique, Origin: ind.origin,
		Parents: ind.parents, Summary: info.Summary, Recipe: info.Recipe, Genome: ind.genome, Time: time.Now()}
	progress := func(s Status, f float64) { e.emit(CandidateProgress{ID: ind.id, Status: s, Fraction: f}) }
	var scores Scores
	var err error
	if e.opt.Scorer != nil {
		progress(StatusEvaluating, 0)
		t0 := time.Now()
		scores, err = e.opt.Scorer(ctx, r)
		rec.EvalSec = time.Since(t0).Seconds()
	} else {
		scores, err = e.measure(ctx, ind.id, r, rec, progress)
	}
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	if err != nil {
		rec.Status, rec.Err = StatusFailed, err.Error()
		e.logf("warn", "%s (%s) failed: %v", ind.id, info.Summary, err)
	} else {
		rec.Status, rec.Scores = StatusDone, scores
		rec.Fitness, rec.Objectives = e.fitness(scores)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.cache[rec.Key] = rec
	e.timings.Merge += time.Duration(rec.MergeSec * float64(time.Second))
	e.timings.Evaluate += time.Duration(rec.EvalSec * float64(time.Second))
	line, jerr := json.Marshal(rec)
	if jerr != nil {
		return nil, jerr
	}
	if _, werr := e.history.Write(append(line, '\n')); werr != nil {
		return nil, fmt.Errorf("writing history: %w", werr)
	}
	return rec, nil
}

// fitness combines the scores: F = −w_ppl·mean(ln ppl) + w_coh·coherence
// + w_tasks·accuracy. The objective vector (all maximised) holds each
// weighted objective separately, for NSGA-II.
func (e *engine) fitness(s Scores) (float64, []float64) {
	o := e.cfg.Evaluation.Objectives
	var f float64
	var objs []float64
	if o.Perplexity > 0 {
		f -= o.Perplexity * s.MeanLogPPL
		objs = append(objs, -s.MeanLogPPL)
	}
	if o.Coherence > 0 {
		f += o.Coherence * s.Coherence
		objs = append(objs, s.Coherence)
	}
	if o.Tasks > 0 {
		f += o.Tasks * s.TaskAccuracy
		objs = append(objs, s.TaskAccuracy)
	}
	return f, objs
}

// candidateDir returns the scratch directory for candidate models: tmpfs
// when it has room for the models in flight, else the system temp dir.
func (e *engine) candidateDir() (string, error) {
	e.mu.Lock()
	dir, created, err := e.candidateDirLocked()
	e.mu.Unlock()
	if created {
		e.logf("info", "candidates are merged into %s (at most %d at a time)", dir, e.poolSize()+1)
	}
	return dir, err
}

func (e *engine) candidateDirLocked() (string, bool, error) {
	if e.tmpDir != "" {
		return e.tmpDir, false, nil
	}
	root := e.cfg.Hardware.TmpDir
	if root == "" {
		root = os.TempDir()
		var largest int64
		for _, p := range e.paths {
			if st, err := os.Stat(p); err == nil {
				largest = max(largest, st.Size())
			}
		}
		need := uint64(largest) * uint64(e.poolSize()+2) * 2
		if free, err := freeBytes("/dev/shm"); err == nil && free > need {
			root = "/dev/shm"
		}
	}
	dir, err := os.MkdirTemp(root, "evomerge-candidates-")
	if err != nil {
		return "", false, err
	}
	e.tmpDir = dir
	return dir, true, nil
}

// measure merges a candidate (unless it is a source model) and evaluates it.
func (e *engine) measure(ctx context.Context, id string, r *merge.Recipe, rec *Record, progress func(Status, float64)) (Scores, error) {
	model, direct := directModel(r)
	if !direct {
		dir, err := e.candidateDir()
		if err != nil {
			return Scores{}, err
		}
		model = filepath.Join(dir, id+".gguf")
		defer os.Remove(model)
		progress(StatusMerging, 0)
		t0 := time.Now()
		plan, err := merge.NewPlan(r, merge.PlanOptions{Codec: e.opt.Codec})
		if err != nil {
			return Scores{}, fmt.Errorf("planning: %w", err)
		}
		st, err := plan.Execute(ctx, model, merge.ExecOptions{Codec: e.opt.Codec, Workers: max(1, runtime.NumCPU()/2),
			Cache: e.tcache, Progress: func(p merge.Progress) { progress(StatusMerging, float64(p.Done)/float64(p.Total)) }})
		plan.Close()
		rec.MergeSec = time.Since(t0).Seconds()
		if err != nil {
			return Scores{}, fmt.Errorf("merging: %w", err)
		}
		e.mu.Lock()
		e.timings.TensorHits += st.CacheHits
		e.mu.Unlock()
	}
	progress(StatusQueued, 1)
	select {
	case e.slots <- struct{}{}:
	case <-ctx.Done():
		return Scores{}, ctx.Err()
	}
	defer func() { <-e.slots }()
	t0 := time.Now()
	defer func() { rec.EvalSec = time.Since(t0).Seconds() }()
	progress(StatusEvaluating, 0)
	return e.scoreModel(ctx, model, e.texts, e.cfg.Evaluation.Chunks, func(f float64) { progress(StatusEvaluating, f) })
}

// scoreModel measures every configured objective of one model file.
func (e *engine) scoreModel(ctx context.Context, model string, texts []eval.Text, chunks int, progress func(float64)) (Scores, error) {
	v := e.cfg.Evaluation
	var s Scores
	if len(texts) > 0 && (v.Objectives.Perplexity > 0 || chunks != v.Chunks) {
		total := float64(len(texts))
		done := map[string]float64{}
		var mu sync.Mutex
		reply, err := e.pool.Perplexity(ctx, model, texts, eval.PerplexityOptions{Context: v.Context, Chunks: chunks},
			func(text string, d, t int) {
				mu.Lock()
				done[text] = float64(d) / float64(max(t, 1))
				var sum float64
				for _, x := range done {
					sum += x
				}
				mu.Unlock()
				if progress != nil {
					progress(sum / total)
				}
			})
		if err != nil {
			return s, err
		}
		s.Perplexity = map[string]float64{}
		for _, t := range reply.Texts {
			s.Perplexity[t.Name] = t.Perplexity
			s.MeanLogPPL += math.Log(t.Perplexity) / float64(len(reply.Texts))
		}
	}
	if v.Objectives.Coherence > 0 {
		c, err := e.coherence(ctx, model)
		if err != nil {
			return s, err
		}
		s.Coherence = c.Score
	}
	if v.Objectives.Tasks > 0 && len(e.tasks) > 0 {
		t, err := e.pool.Tasks(ctx, model, e.tasks)
		if err != nil {
			return s, err
		}
		s.TaskAccuracy = t.Accuracy
	}
	return s, nil
}

func (e *engine) coherence(ctx context.Context, model string) (eval.CoherenceResult, error) {
	opt := eval.DefaultCoherence()
	if len(e.cfg.Evaluation.CoherencePrompts) > 0 {
		opt.Prompts = e.cfg.Evaluation.CoherencePrompts
	}
	opt.MaxTokens = e.cfg.Evaluation.CoherenceTokens
	opt.Reference = e.space.Base
	if opt.Reference == "" {
		opt.Reference = e.space.Sources[0]
	}
	return e.pool.Coherence(ctx, model, opt)
}

// sortedKeys returns a map's keys in order (for stable output).
func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
