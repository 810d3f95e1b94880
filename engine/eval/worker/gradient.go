package worker

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/evomerge/evomerge/engine/eval"
	"github.com/evomerge/evomerge/engine/gguf"
	"github.com/evomerge/evomerge/engine/llm"
	"github.com/evomerge/evomerge/engine/llm/gradshape"
	"github.com/evomerge/evomerge/engine/merge"
)

// Gradient candidates (eval.CandidateRequest.Gradient). The resident worker
// builds engine/llm's coefficient-gradient graph at the first such
// candidate — the base and every source as F32 copies, one coefficient
// per tensor and source — and keeps it while later candidates name the
// same base, models and windows. A candidate is then not merged at all:
// its recipe's task-vector coefficients (merge.Recipe.TaskVectorCoefficients)
// are the graph's input, and each window gives its loss and the loss's
// gradient in them. Memory is (1 + 3·M) times the model in F32 plus the
// graph's arena, so this suits small models; the engine only asks for it
// where it fits (evolve's optimizer "auto").

// gradState is the graph and the layout of its coefficients.
type gradState struct {
	key     string
	names   []string // every tensor, sorted: coefficient t·M + i is model i's in names[t]
	changed []bool   // per name: some model differs from the base there
	models  int
	spec    gradshape.Spec
	g       *llm.Gradient
}

func (gs *gradState) close() {
	if gs != nil && gs.g != nil {
		gs.g.Close()
	}
}

// gradientState returns the graph for the recipe's base and models and
// windows of n tokens scored from first, building it when the held one
// is for others.
func (r *resident) gradientState(rc *merge.Recipe, n, first, threads int) (*gradState, error) {
	models := make([]string, len(rc.Models))
	for i, m := range rc.Models {
		models[i] = m.Model
	}
	key := fmt.Sprintf("%s\x00%s\x00%d/%d", rc.Base, strings.Join(models, "\x00"), n, first)
	if r.grad != nil && r.grad.key == key {
		return r.grad, nil
	}
	r.grad.close()
	r.grad = nil
	// The layout follows the base's tensor names, sorted.
	f, err := gguf.Open(rc.Base)
	if err != nil {
		return nil, err
	}
	names := make([]string, len(f.Tensors))
	for i, ti := range f.Tensors {
		names[i] = ti.Name
	}
	f.Close()
	slices.Sort(names)
	index := make(map[string]int, len(names))
	for t, name := range names {
		index[name] = t
	}
	spec, weights, err := llm.GradientWeights(rc.Base, models, func(name string, s int) int { return index[name]*len(models) + s })
	if err != nil {
		if errors.Is(err, gradshape.ErrArch) {
			return nil, inputError{err}
		}
		return nil, err
	}
	gs := &gradState{key: key, names: names, models: len(models), spec: spec, changed: make([]bool, len(names))}
	for t, name := range names {
		gs.changed[t] = slices.ContainsFunc(weights[name].Deltas, func(d []float32) bool { return d != nil })
	}
	if gs.g, err = llm.NewGradient(spec, weights, len(names)*len(models), n, first, threads); err != nil {
		return nil, err
	}
	r.grad = gs
	return gs, nil
}

// tokenized is a text's tokens, kept by name for the next gradient
// candidate (the generations of a run send the same texts).
type tokenized struct {
	hash   uint64
	tokens []int
}

// tokenize returns the template's tokens of t (with BOS), reusing those
// of the last text of its name when the content is the same.
func (r *resident) tokenize(t eval.Text) ([]int, error) {
	h := fnv.New64a()
	h.Write([]byte(t.Content))
	sum := h.Sum64()
	if k, ok := r.tokens[t.Name]; ok && k.hash == sum {
		return k.tokens, nil
	}
	toks, err := r.model.Tokenize(t.Content, true)
	if err != nil {
		return nil, err
	}
	if r.tokens == nil {
		r.tokens = map[string]tokenized{}
	}
	r.tokens[t.Name] = tokenized{sum, toks}
	return toks, nil
}

// candidateGradient scores a gradient candidate (rc resolved to paths).
func (s *server) candidateGradient(ctx context.Context, id uint64, cr *eval.CandidateRequest, rc *merge.Recipe) (any, error) {
	r := s.res
	switch {
	case len(cr.Texts) == 0:
		return nil, inputErrorf("candidate: a gradient needs texts")
	case len(cr.Tasks) > 0 || cr.Coherence != nil:
		return nil, inputErrorf("candidate: a gradient is of perplexity alone, not of tasks or coherence")
	}
	start, startCPU := time.Now(), cpuTime()
	opt := eval.PerplexityOptions{}
	if cr.Perplexity != nil {
		opt = *cr.Perplexity
	}
	// Every text's windows, cut as the perplexity scorer cuts them.
	type textWindows struct {
		tokens []int
		set    eval.WindowSet
	}
	var texts []textWindows
	for _, t := range cr.Texts {
		toks, err := r.tokenize(t)
		if err != nil {
			return nil, fmt.Errorf("text %s: tokenizing: %w", t.Name, err)
		}
		set, err := eval.SelectWindows(len(toks), opt, opt.Windows[t.Name], r.model.TrainContext())
		if err != nil {
			return nil, inputErrorf("text %s: %w", t.Name, err)
		}
		if len(texts) > 0 && (set.Context != texts[0].set.Context || set.First != texts[0].set.First) {
			return nil, inputErrorf("text %s: windows of another length than the first text's", t.Name)
		}
		texts = append(texts, textWindows{toks, set})
	}
	gs, err := r.gradientState(rc, texts[0].set.Context, texts[0].set.First, s.opt.Threads)
	if err != nil {
		return nil, err
	}
	coef := make([]float32, len(gs.names)*gs.models)
	for t, name := range gs.names {
		c, err := rc.TaskVectorCoefficients(name, gs.spec.Layers)
		if err != nil {
			return nil, inputErrorf("candidate gradient: %w", err)
		}
		for i, x := range c {
			coef[t*gs.models+i] = float32(x)
		}
	}
	reply := eval.CandidateReply{Path: eval.PathGradient, MergeSeconds: time.Since(start).Seconds(), MergeCPUSeconds: (cpuTime() - startCPU).Seconds()}
	evalStart, evalCPU := time.Now(), cpuTime()
	sum := make([]float64, len(coef))
	grad := make([]float32, len(coef))
	window := make([]int32, texts[0].set.Context)
	var pr eval.PerplexityReply
	for k, tw := range texts {
		set, name := tw.set, cr.Texts[k].Name
		scored := set.Context - 1 - set.First
		t0 := time.Now()
		res := eval.PerplexityResult{Tokens: len(set.Windows) * scored, Chunks: len(set.Windows), Available: set.Available}
		weight := 1 / float64(len(texts)*len(set.Windows))
		for j, c := range set.Windows {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			for i := range window {
				window[i] = int32(tw.tokens[c*set.Context+i])
			}
			if r.model.AddsBOS() {
				window[0] = int32(r.model.BOS())
			}
			loss, err := gs.g.Window(coef, window, grad)
			if err != nil {
				return nil, fmt.Errorf("text %s window %d: %w", name, c, err)
			}
			res.Windows = append(res.Windows, eval.WindowNLL{Index: c, NLL: loss * float64(scored), Tokens: scored})
			res.NLL += loss * float64(scored)
			for i, x := range grad {
				sum[i] += weight * float64(x)
			}
			s.send(eval.Response{ID: id, Event: eval.EventProgress, Text: name, Done: j + 1, Total: len(set.Windows)})
		}
		res.NLL /= float64(res.Tokens)
		res.Perplexity = math.Exp(res.NLL)
		pr.Texts = append(pr.Texts, eval.TextPerplexity{Name: name, PerplexityResult: res, Seconds: time.Since(t0).Seconds()})
	}
	gr := &eval.GradientReply{}
	for t, name := range gs.names {
		if !gs.changed[t] {
			continue
		}
		d := sum[t*gs.models : (t+1)*gs.models]
		for _, x := range d {
			if math.IsNaN(x) || math.IsInf(x, 0) {
				return nil, fmt.Errorf("candidate gradient: not finite in %s", name)
			}
		}
		gr.Tensors = append(gr.Tensors, name)
		gr.D = append(gr.D, d)
	}
	reply.Perplexity, reply.Gradient = &pr, gr
	reply.EvalSeconds, reply.EvalCPUSeconds = time.Since(evalStart).Seconds(), (cpuTime() - evalCPU).Seconds()
	return reply, nil
}
