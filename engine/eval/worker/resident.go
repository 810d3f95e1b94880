package worker

import (
	"context"
	"errors"
	"fmt"
	"os"
	"reflect"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/evomerge/evomerge/engine/eval"
	"github.com/evomerge/evomerge/engine/gguf"
	"github.com/evomerge/evomerge/engine/llm"
	"github.com/evomerge/evomerge/engine/merge"
)

// Merging in place. After OpPrepare the worker holds the run's template
// model loaded with its weights in memory llama.cpp allocated (not mapped
// from the file), and one long-lived context per context size. A
// candidate's recipe is planned over the sources exactly as the file
// merger plans it; when the plan's output tensors match the template's
// weights one-to-one — same names, shapes and types, and the same
// metadata apart from the name, file type and provenance the merger
// writes — each output tensor's bytes are computed by the merge executor
// (merge.Plan.ComputeTensor) and written over the weight with
// ggml_backend_tensor_set (llm.Model.SetWeight): what llama.cpp itself
// does when it loads those bytes from a file without mmap. The model then
// computes exactly what a load of the merged file computes, so the scores
// are the file path's.
//
// Each weight's contents are tracked: the template's own bytes, or the
// bytes of a merged tensor identified by its merge.Plan.TensorKey. A
// tensor whose key is what the weight already holds is neither computed
// nor written; a tensor the candidate copies unchanged from the template
// is restored from the template's file if a previous candidate changed it.
//
// Recipes that change the layer structure (stacked slices, dfs paths),
// write other types than the template holds (out_type), carry sub-recipes
// (ps_dfs) or whose metadata differs take the file path inside the worker.
//
// Graph merge (PrepareRequest.GraphMerge; by default on when every layer
// of the template is on a GPU): a weight whose tensor is a weighted sum of
// its inputs (merge.Plan.SumForm: linear, task arithmetic and TIES without
// sparsification, copies) and that lives in the device's own buffers is
// computed by a ggml graph on that device (llm.GraphMerger) from source
// tensors uploaded there on first use and kept for the run, and written
// into the weight by the graph itself: no bytes cross to the host. The
// other weights take the Go kernels as above. The graph computes what
// ComputeTensor computes (the same F32 operations in the same order;
// tests check it byte for byte on the CPU backend), except at non-finite
// values: a result that overflows the weight's type is written as ±Inf
// instead of failing the candidate, and TIES elects + where the task
// vectors sum to NaN. On the CPU the Go kernels are the default:
// they stream the sources from the page cache, where the graph holds a
// copy of every source tensor it uses. The uploaded sources take their
// files' size in device memory; when the device is full, the weights
// needing a source that did not fit take the Go kernels.
//
// GPU: with a GPU backend the template is offloaded like any model and
// SetWeight uploads. The resident contexts are never freed (the process
// exit frees them), so in-place candidates avoid llama_free, which crashed
// on GPU contexts (see Options.Retire); only file-path candidates and a
// prepare that replaces another run's template free contexts, and those
// retire the worker under Retire as every other job does.

// resident is the state behind OpPrepare and OpCandidate.
type resident struct {
	spec     eval.PrepareRequest
	paths    map[string]string // source name → path
	template string            // the template's path
	file     *gguf.File        // the template's file: its metadata, and bytes for restores
	model    *llm.Model        // loaded writable
	weights  map[string][]llm.Weight
	holds    map[string]holding
	contexts map[int]*llm.Context // by size
	refs     map[string]*refModel // coherence references, by path
	bufs     bufPool
	cache    *merge.LRU // merged tensors by key (nil: no cache)
	sources  *merge.SourceCache
	gpu      int                   // layers to offload (llm.ModelParams.GPULayers)
	graph    *llm.GraphMerger      // nil: the Go kernels merge every weight
	srcFiles map[string]*gguf.File // sources opened for graph uploads, by path
	grad     *gradState            // the gradient graph (gradient.go); nil until asked
	tokens   map[string]tokenized  // the gradient candidates' texts, by name
}

// holding is what a weight holds: the template's bytes, a merged tensor's
// (by key), or unknown bytes after a failed write.
type holding struct {
	valid    bool
	template bool
	key      [32]byte
}

// refModel is a coherence reference kept loaded (read-only) with its own
// long-lived contexts.
type refModel struct {
	model    *llm.Model
	contexts map[int]*llm.Context
}

// inputError marks a request the worker cannot act on (bad recipe,
// unknown source): eval.KindInput.
type inputError struct{ err error }

func (e inputError) Error() string { return e.err.Error() }
func (e inputError) Unwrap() error { return e.err }

func inputErrorf(format string, args ...any) error { return inputError{fmt.Errorf(format, args...)} }

// prepare loads the run's template (unless this worker already holds the
// same sources).
func (s *server) prepare(req *eval.Request) (any, error) {
	if req.Prepare == nil {
		return nil, inputErrorf("prepare: no sources given")
	}
	spec := *req.Prepare
	spec.Sources = slices.Clone(spec.Sources)
	switch spec.GraphMerge {
	case "", eval.GraphMergeAuto, eval.GraphMergeOn, eval.GraphMergeOff:
	default:
		return nil, inputErrorf("prepare: graph_merge %q: want %q, %q or %q (the default)", spec.GraphMerge, eval.GraphMergeOn, eval.GraphMergeOff, eval.GraphMergeAuto)
	}
	paths := map[string]string{}
	for i := range spec.Sources {
		src := &spec.Sources[i]
		if src.Path == "" {
			return nil, inputErrorf("prepare: source %d (%q) has no path", i, src.Name)
		}
		if src.Name == "" {
			src.Name = src.Path
		}
		if _, dup := paths[src.Name]; dup {
			return nil, inputErrorf("prepare: source name %q given twice", src.Name)
		}
		paths[src.Name] = src.Path
	}
	if len(spec.Sources) == 0 {
		return nil, inputErrorf("prepare: no sources given")
	}
	if spec.Template == "" {
		spec.Template = spec.Sources[0].Name
	}
	template, ok := paths[spec.Template]
	if !ok {
		return nil, inputErrorf("prepare: template %q is not among the sources", spec.Template)
	}
	if s.res != nil && reflect.DeepEqual(s.res.spec, spec) {
		return s.res.describe(0), nil
	}
	// Every source must be a readable GGUF file before anything is loaded.
	for _, src := range spec.Sources {
		f, err := gguf.Open(src.Path)
		if err != nil {
			return nil, loadError{fmt.Errorf("source %s: %w", src.Name, err)}
		}
		f.Close()
	}
	if s.res != nil {
		s.used = true // freeing contexts: retire afterwards under Retire
		s.res.close()
		s.res = nil
	}
	start := time.Now()
	r, err := newResident(spec, paths, template, s.opt.GPULayers, s.opt.Threads)
	if err != nil {
		return nil, err
	}
	s.res = r
	return r.describe(time.Since(start).Seconds()), nil
}

func newResident(spec eval.PrepareRequest, paths map[string]string, template string, gpuLayers, threads int) (*resident, error) {
	f, err := gguf.Open(template)
	if err != nil {
		return nil, loadError{err}
	}
	m, err := llm.Load(template, llm.ModelParams{GPULayers: gpuLayers, Writable: true})
	if err != nil {
		f.Close()
		return nil, loadError{err}
	}
	r := &resident{spec: spec, paths: paths, template: template, file: f, model: m, gpu: gpuLayers,
		weights: map[string][]llm.Weight{}, holds: map[string]holding{}, contexts: map[int]*llm.Context{}, refs: map[string]*refModel{},
		srcFiles: map[string]*gguf.File{}}
	if spec.CacheBytes > 0 {
		r.cache = merge.NewLRU(spec.CacheBytes)
	}
	r.sources = merge.NewSourceCache(spec.SourceCacheBytes)
	ws, err := m.Weights()
	if err != nil {
		r.close()
		return nil, err
	}
	for _, w := range ws {
		r.weights[w.Name] = append(r.weights[w.Name], w)
		r.holds[w.Name] = holding{valid: true, template: true}
	}
	onGPU := m.Offloaded() > 0 && m.Offloaded() == m.OffloadableLayers()
	switch {
	case spec.GraphMerge == eval.GraphMergeOn:
		if r.graph, err = llm.NewGraphMerger(m, threads); err != nil {
			r.close()
			return nil, fmt.Errorf("graph merge: %w", err)
		}
	case spec.GraphMerge != eval.GraphMergeOff && onGPU:
		// Auto: without a backend for the device the Go kernels merge.
		if r.graph, err = llm.NewGraphMerger(m, threads); err != nil {
			r.graph = nil
		}
	}
	return r, nil
}

func (r *resident) describe(seconds float64) eval.PrepareReply {
	out := eval.PrepareReply{Template: r.template, Weights: len(r.weights), Buffers: []string{}, Seconds: seconds}
	for _, ws := range r.weights {
		out.Bytes += int64(ws[0].Bytes)
		for _, w := range ws {
			if !slices.Contains(out.Buffers, w.Buffer) {
				out.Buffers = append(out.Buffers, w.Buffer)
			}
		}
	}
	sort.Strings(out.Buffers)
	if r.graph != nil {
		out.GraphDevice = r.graph.Device()
	}
	return out
}

func (r *resident) close() {
	for _, c := range r.contexts {
		c.Close()
	}
	for _, ref := range r.refs {
		for _, c := range ref.contexts {
			c.Close()
		}
		ref.model.Close()
	}
	if r.graph != nil {
		r.graph.Close()
	}
	r.grad.close()
	for _, f := range r.srcFiles {
		f.Close()
	}
	r.model.Close()
	r.file.Close()
}

// context returns the long-lived context of this size (0: the training
// context), sized as a session's so the arithmetic is the same.
func contextFor(m *llm.Model, contexts map[int]*llm.Context, size, threads int) (*llm.Context, error) {
	if size <= 0 {
		size = m.TrainContext()
	}
	if c, ok := contexts[size]; ok {
		return c, nil
	}
	c, err := m.NewContext(llm.ContextParams{Size: size, Batch: min(size, 512), Threads: threads})
	if err != nil {
		return nil, err
	}
	contexts[size] = c
	return c, nil
}

// candidate merges and scores one recipe.
func (s *server) candidate(ctx context.Context, req *eval.Request) (any, error) {
	cr := req.Candidate
	r := s.res
	switch {
	case cr == nil:
		return nil, inputErrorf("candidate: no candidate given")
	case r == nil:
		return nil, inputErrorf("candidate: %v", eval.ErrNotPrepared)
	case cr.Path != "" && cr.Path != eval.PathInPlace && cr.Path != eval.PathFile:
		return nil, inputErrorf("candidate: unknown path %q (want %q or %q)", cr.Path, eval.PathInPlace, eval.PathFile)
	}
	start, startCPU := time.Now(), cpuTime()
	recipe, err := merge.ParseRecipe(cr.Recipe)
	if err != nil {
		return nil, inputErrorf("candidate recipe: %w", err)
	}
	if err := r.resolve(recipe); err != nil {
		return nil, inputError{err}
	}
	if cr.Gradient {
		return s.candidateGradient(ctx, req.ID, cr, recipe)
	}
	plan, err := merge.NewPlan(recipe, merge.PlanOptions{Codec: llm.Codec{}})
	if err != nil {
		return nil, inputErrorf("candidate recipe: %w", err)
	}
	defer plan.Close()
	reply := eval.CandidateReply{Path: eval.PathInPlace, Fallback: r.blocker(plan)}
	if cr.Path == eval.PathFile {
		reply.Fallback = "the file path was requested"
	}
	if reply.Fallback != "" {
		if cr.Path == eval.PathInPlace {
			return nil, inputErrorf("candidate cannot be merged in place: %s", reply.Fallback)
		}
		reply.Path = eval.PathFile
		return s.candidateFile(ctx, req, plan, reply, start, startCPU)
	}
	progress := func(done, total int) {
		s.send(eval.Response{ID: req.ID, Event: eval.EventProgress, Text: eval.ProgressMerge, Done: done, Total: total})
	}
	hits := r.cacheHits()
	if err := r.apply(ctx, plan, s.opt.Threads, &reply, progress); err != nil {
		return nil, err
	}
	reply.CacheHits = r.cacheHits() - hits
	reply.MergeSeconds, reply.MergeCPUSeconds = time.Since(start).Seconds(), (cpuTime() - startCPU).Seconds()
	evalStart, evalCPU := time.Now(), cpuTime()
	open := func(size int) (*session, func(), error) {
		c, err := contextFor(r.model, r.contexts, size, s.opt.Threads)
		if err != nil {
			return nil, nil, err
		}
		return &session{Model: r.model, ctx: c}, func() {}, nil
	}
	if err := s.score(ctx, req.ID, cr, &reply, open, r.reference); err != nil {
		return nil, err
	}
	reply.EvalSeconds, reply.EvalCPUSeconds = time.Since(evalStart).Seconds(), (cpuTime() - evalCPU).Seconds()
	return reply, nil
}

// resolve rewrites the recipe's model names (and its sub-recipes') to the
// sources' paths; a name that is neither a source nor a sub-recipe is an
// error.
func (r *resident) resolve(rc *merge.Recipe) error {
	var problems []string
	name := func(m string) string {
		if m == "" || rc.Sources[m] != nil {
			return m
		}
		if p, ok := r.paths[m]; ok {
			return p
		}
		problems = append(problems, fmt.Sprintf("model %q is not among the prepared sources", m))
		return m
	}
	rc.Base = name(rc.Base)
	for i := range rc.Models {
		rc.Models[i].Model = name(rc.Models[i].Model)
	}
	for i := range rc.Slices {
		for j := range rc.Slices[i].Sources {
			rc.Slices[i].Sources[j].Model = name(rc.Slices[i].Sources[j].Model)
		}
	}
	for i := range rc.Layers {
		rc.Layers[i].Model = name(rc.Layers[i].Model)
	}
	for k, sub := range rc.Sources {
		if err := r.resolve(sub); err != nil {
			problems = append(problems, fmt.Sprintf("sources.%s: %v", k, err))
		}
	}
	if len(problems) > 0 {
		return errors.New(strings.Join(problems, "; "))
	}
	return nil
}

// blocker says why the plan cannot be merged into the template, or "".
func (r *resident) blocker(p *merge.Plan) string {
	if len(p.Recipe.Sources) > 0 {
		return "the recipe merges sub-recipes on the fly"
	}
	if len(p.Tensors) != len(r.weights) {
		return fmt.Sprintf("the merge has %d tensors, the loaded model %d (the layer structure changes)", len(p.Tensors), len(r.weights))
	}
	for _, tp := range p.Tensors {
		ws, ok := r.weights[tp.Out.Name]
		switch {
		case !ok:
			return fmt.Sprintf("tensor %s is not in the loaded model (the layer structure changes)", tp.Out.Name)
		case !slices.Equal(trimOnes(ws[0].Shape), trimOnes(tp.Out.Shape)):
			return fmt.Sprintf("tensor %s is %v in the merge, %v in the loaded model", tp.Out.Name, tp.Out.Shape, ws[0].Shape)
		case ws[0].Type != tp.Out.Type:
			return fmt.Sprintf("tensor %s is written as %s, the loaded model holds %s", tp.Out.Name, tp.Out.Type, ws[0].Type)
		}
	}
	if key := metadataDifference(r.file.Metadata, p.Header.Metadata); key != "" {
		return fmt.Sprintf("metadata %s differs from the loaded model's", key)
	}
	return ""
}

// metadataDifference returns the first key llama.cpp could read that
// differs between a and b. Keys the merger rewrites for provenance
// (general.* other than the architecture, evomerge.*) are ignored: they
// do not change what the model computes.
func metadataDifference(a, b gguf.Metadata) string {
	relevant := func(key string) bool {
		return key == "general.architecture" || !(strings.HasPrefix(key, "general.") || strings.HasPrefix(key, "evomerge."))
	}
	for _, kv := range a {
		if !relevant(kv.Key) {
			continue
		}
		v, ok := b.Get(kv.Key)
		if !ok || !reflect.DeepEqual(v, kv.Value) {
			return kv.Key
		}
	}
	for _, kv := range b {
		if relevant(kv.Key) && a.Index(kv.Key) < 0 {
			return kv.Key
		}
	}
	return ""
}

func trimOnes(shape []uint64) []uint64 {
	for len(shape) > 1 && shape[len(shape)-1] == 1 {
		shape = shape[:len(shape)-1]
	}
	return shape
}

// wanted is what weight i must hold for the plan.
func (r *resident) wanted(p *merge.Plan, i int) holding {
	tp := &p.Tensors[i]
	if tp.Method == nil && tp.Scale == 1 && tp.Base == nil && len(tp.Models) == 1 &&
		tp.Models[0].Source == r.template && tp.Models[0].Tensor == tp.Out.Name {
		return holding{valid: true, template: true}
	}
	return holding{valid: true, key: p.TensorKey(i)}
}

// execOptions are the executor's options for this run's candidates:
// ggml's codec, the run's tensor and source caches, and threads threads.
func (r *resident) execOptions(threads int) merge.ExecOptions {
	opt := merge.ExecOptions{Codec: llm.Codec{}, Threads: threads, Sources: r.sources}
	if r.cache != nil {
		opt.Cache = r.cache
	}
	return opt
}

// cacheHits is the number of tensors taken from the cache so far.
func (r *resident) cacheHits() int {
	if r.cache == nil {
		return 0
	}
	return r.cache.Hits()
}

// apply makes every weight hold the plan's tensor: tensors are computed
// (or, for restores, read from the template's file) on up to `workers`
// goroutines and written in order from this one.
func (r *resident) apply(ctx context.Context, p *merge.Plan, workers int, reply *eval.CandidateReply, progress func(done, total int)) error {
	var todo []int
	want := make([]holding, len(p.Tensors))
	for i := range p.Tensors {
		want[i] = r.wanted(p, i)
		if r.holds[p.Tensors[i].Out.Name] == want[i] {
			reply.Kept++
		} else {
			todo = append(todo, i)
		}
	}
	total, done := len(todo), 0
	if r.graph != nil {
		var rest []int
		for _, i := range todo {
			if want[i].template {
				rest = append(rest, i)
				continue
			}
			if err := ctx.Err(); err != nil {
				return err
			}
			ok, err := r.graphMerge(p, i)
			if err != nil {
				return err
			}
			if !ok {
				rest = append(rest, i)
				continue
			}
			r.holds[p.Tensors[i].Out.Name] = want[i]
			reply.Written++
			reply.Graph++
			done++
			if progress != nil {
				progress(done, total)
			}
		}
		todo = rest
	}
	ctx, cancel := context.WithCancel(ctx)
	var inflight sync.WaitGroup
	defer inflight.Wait() // after cancel: nothing outlives the plan
	defer cancel()
	type result struct {
		data []byte
		err  error
	}
	results := make([]chan result, len(todo))
	for k := range results {
		results[k] = make(chan result, 1)
	}
	sem := make(chan struct{}, max(1, workers))
	inflight.Add(1) // the feeder, so Wait never races an Add from zero
	go func() {
		defer inflight.Done()
		for k, i := range todo {
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				return
			}
			inflight.Add(1)
			go func() {
				defer inflight.Done()
				tp := &p.Tensors[i]
				buf := r.bufs.get(int(tp.Out.Bytes()))
				var err error
				if want[i].template {
					var ti gguf.TensorInfo
					ti, _ = r.file.Tensor(tp.Out.Name)
					_, err = r.file.ReadTensor(ti, buf)
				} else {
					err = p.ComputeTensor(ctx, i, buf, r.execOptions(1)) // `workers` tensors at once, a thread each
				}
				results[k] <- result{buf, err}
			}()
		}
	}()
	for k, i := range todo {
		var res result
		select {
		case res = <-results[k]:
		case <-ctx.Done():
			return ctx.Err()
		}
		if res.err != nil {
			return res.err
		}
		name := p.Tensors[i].Out.Name
		r.holds[name] = holding{} // unknown until every copy is written
		for _, w := range r.weights[name] {
			if err := r.model.SetWeight(w, res.data); err != nil {
				return err
			}
		}
		r.holds[name] = want[i]
		if want[i].template {
			reply.Restored++
		} else {
			reply.Written++
		}
		r.bufs.put(res.data)
		<-sem
		if progress != nil {
			progress(done+k+1, total)
		}
	}
	return nil
}

// graphMerge computes tensor i of p with the graph merger straight into
// its weight, uploading the source tensors it needs that are not on the
// device yet; ok = false when the tensor is not a weighted sum, its
// weight is not in the device's buffers (or has copies) or a source has
// a type the graph cannot read: the Go kernels merge it.
func (r *resident) graphMerge(p *merge.Plan, i int) (ok bool, err error) {
	tp := &p.Tensors[i]
	ws := r.weights[tp.Out.Name]
	if len(ws) != 1 || !r.graph.Eligible(ws[0]) {
		return false, nil
	}
	form, ok, err := p.SumForm(i)
	if err != nil || !ok {
		return false, err
	}
	ops := make([]merge.Operand, 0, len(form.Terms)+1)
	for _, t := range form.Terms {
		ops = append(ops, t.Operand)
	}
	if form.Base != nil {
		ops = append(ops, *form.Base)
	}
	for _, op := range ops {
		if ok, err := r.graphUpload(op); !ok || err != nil {
			return false, err
		}
	}
	gf := llm.GraphForm{Scale: float32(form.Scale), Consensus: form.Consensus, Normalize: form.Normalize, Lambda: form.Lambda}
	for _, t := range form.Terms {
		gf.Terms = append(gf.Terms, llm.GraphTerm{GraphOperand: llm.GraphOperand{Source: t.Source, Tensor: t.Tensor}, Coef: t.Coef})
	}
	if form.Base != nil {
		gf.Base = &llm.GraphOperand{Source: form.Base.Source, Tensor: form.Base.Tensor}
	}
	r.holds[tp.Out.Name] = holding{} // unknown until the graph has run
	if err := r.graph.Merge(ws[0], gf); errors.Is(err, llm.ErrGraphIneligible) {
		return false, nil // the weight is untouched: the Go kernels merge it
	} else if err != nil {
		return false, fmt.Errorf("graph merge of tensor %s: %w", tp.Out.Name, err)
	}
	return true, nil
}

// graphUpload puts a source tensor on the graph merger's device (once);
// ok = false when its type is not one the graph reads.
func (r *resident) graphUpload(op merge.Operand) (ok bool, err error) {
	gop := llm.GraphOperand{Source: op.Source, Tensor: op.Tensor}
	if r.graph.Uploaded(gop) {
		return true, nil
	}
	f := r.srcFiles[op.Source]
	if f == nil {
		if f, err = gguf.Open(op.Source); err != nil {
			return false, fmt.Errorf("graph merge: %w", err)
		}
		r.srcFiles[op.Source] = f
	}
	ti, found := f.Tensor(op.Tensor)
	if !found {
		return false, fmt.Errorf("graph merge: %s has no tensor %s", op.Source, op.Tensor)
	}
	if !llm.GraphSourceTypes[ti.Type] {
		return false, nil
	}
	data, err := f.ReadTensor(ti, nil)
	if err != nil {
		return false, fmt.Errorf("graph merge: %w", err)
	}
	if err := r.graph.Upload(gop, ti.Type, ti.Shape, data); errors.Is(err, llm.ErrGraphNoMemory) {
		return false, nil // the device is full: the Go kernels merge what needs this source
	} else if err != nil {
		return false, fmt.Errorf("graph merge: %w", err)
	}
	return true, nil
}

// reference opens the coherence reference (a source name or a path):
// loaded once, read-only, with long-lived contexts.
func (r *resident) reference(path string, size, threads int) (*session, error) {
	if p, ok := r.paths[path]; ok {
		path = p
	}
	ref := r.refs[path]
	if ref == nil {
		m, err := llm.Load(path, llm.ModelParams{GPULayers: r.gpu})
		if err != nil {
			return nil, loadError{fmt.Errorf("coherence reference: %w", err)}
		}
		ref = &refModel{model: m, contexts: map[int]*llm.Context{}}
		r.refs[path] = ref
	}
	c, err := contextFor(ref.model, ref.contexts, size, threads)
	if err != nil {
		return nil, err
	}
	return &session{Model: ref.model, ctx: c}, nil
}

// score measures every objective the request sets on sessions from open
// (size 0: the model's training context); ref opens the coherence
// reference.
func (s *server) score(ctx context.Context, id uint64, cr *eval.CandidateRequest, reply *eval.CandidateReply,
	open func(size int) (*session, func(), error), ref func(path string, size, threads int) (*session, error)) error {
	if len(cr.Texts) > 0 {
		opt := eval.PerplexityOptions{}
		if cr.Perplexity != nil {
			opt = *cr.Perplexity
		}
		if opt.Context == 0 {
			opt.Context = 256
		}
		sess, done, err := open(opt.Context)
		if err != nil {
			return err
		}
		opt.Overlap = overlapScoring(sess)
		var pr eval.PerplexityReply
		for i, t := range cr.Texts {
			opt.Progress = func(d, total int) {
				s.send(eval.Response{ID: id, Event: eval.EventProgress, Text: t.Name, Done: d, Total: total})
			}
			start := time.Now()
			res, err := eval.PerplexityText(ctx, sess, t, opt)
			if err != nil {
				done()
				return fmt.Errorf("text %d (%s): %w", i, t.Name, err)
			}
			pr.Texts = append(pr.Texts, eval.TextPerplexity{Name: t.Name, PerplexityResult: res, Seconds: time.Since(start).Seconds()})
		}
		done()
		reply.Perplexity = &pr
	}
	if len(cr.Tasks) > 0 {
		sess, done, err := open(0)
		if err != nil {
			return err
		}
		res, err := eval.ScoreTasks(ctx, sess, cr.Tasks, nil)
		done()
		if err != nil {
			return err
		}
		reply.Tasks = &res
	}
	if cr.Coherence != nil {
		opt := *cr.Coherence
		gen, done, err := open(0)
		if err != nil {
			return err
		}
		defer done()
		judge := gen
		if opt.Reference != "" {
			if judge, err = ref(opt.Reference, 0, s.opt.Threads); err != nil {
				return err
			}
		}
		res, err := eval.Coherence(ctx, gen, judge, opt)
		if err != nil {
			return err
		}
		reply.Coherence = &res
	}
	return nil
}

// candidateFile is the file path: the plan merged to a temporary file by
// the file merger, loaded as a model and scored, then deleted.
func (s *server) candidateFile(ctx context.Context, req *eval.Request, plan *merge.Plan, reply eval.CandidateReply, start time.Time, startCPU time.Duration) (any, error) {
	r := s.res
	dir := r.spec.Scratch
	if dir == "" {
		dir = os.TempDir()
	}
	f, err := os.CreateTemp(dir, "evomerge-candidate-*.gguf")
	if err != nil {
		return nil, fmt.Errorf("candidate file: %w", err)
	}
	path := f.Name()
	f.Close()
	defer os.Remove(path)
	opt := r.execOptions(s.opt.Threads)
	opt.Progress = func(p merge.Progress) {
		s.send(eval.Response{ID: req.ID, Event: eval.EventProgress, Text: eval.ProgressMerge, Done: p.Done, Total: p.Total})
	}
	st, err := plan.Execute(ctx, path, opt)
	reply.CacheHits = st.CacheHits
	if err != nil {
		return nil, fmt.Errorf("merging the candidate: %w", err)
	}
	l, err := s.model(path)
	if err != nil {
		return nil, err
	}
	s.used = true // under Retire the process exits after the reply, freeing the model
	defer func() {
		if !s.opt.Retire { // with Retire the process exits after the reply
			s.unload(path)
		}
	}()
	reply.MergeSeconds, reply.MergeCPUSeconds = time.Since(start).Seconds(), (cpuTime() - startCPU).Seconds()
	evalStart, evalCPU := time.Now(), cpuTime()
	open := func(size int) (*session, func(), error) {
		sess, err := s.session(l.path, size)
		if err != nil {
			return nil, nil, err
		}
		return sess, sess.close, nil
	}
	if err := s.score(ctx, req.ID, req.Candidate, &reply, open, r.reference); err != nil {
		return nil, err
	}
	reply.EvalSeconds, reply.EvalCPUSeconds = time.Since(evalStart).Seconds(), (cpuTime() - evalCPU).Seconds()
	return reply, nil
}

// bufPool recycles tensor-sized byte buffers by length.
type bufPool struct {
	mu   sync.Mutex
	free map[int][][]byte
}

func (b *bufPool) get(n int) []byte {
	b.mu.Lock()
	defer b.mu.Unlock()
	if l := b.free[n]; len(l) > 0 {
		buf := l[len(l)-1]
		b.free[n] = l[:len(l)-1]
		return buf
	}
	return make([]byte, n)
}

func (b *bufPool) put(buf []byte) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.free == nil {
		b.free = map[int][][]byte{}
	}
	b.free[len(buf)] = append(b.free[len(buf)], buf)
}
