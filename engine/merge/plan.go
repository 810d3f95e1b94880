package merge

import (
	"errors"
	"fmt"
	"hash/fnv"
	"math"
	"os"
	"slices"
	"sort"
	"strings"
	"sync"

	"github.com/evomerge/evomerge/engine/gguf"
	"github.com/evomerge/evomerge/kernels"
)

// Plan is a checked merge, ready to execute: every output tensor with its
// inputs, method and resolved parameters, and the output header. Planning
// reads only headers; every problem in the recipe or the inputs is
// reported at once, before any tensor data is touched.
type Plan struct {
	Recipe   *Recipe
	Header   gguf.Header
	Tensors  []TensorPlan
	Warnings []string // e.g. output types that fell back

	sources map[string]source // model key (path or sub-recipe name) → source
	files   []*gguf.File      // opened files, closed by Close
	refKey  string            // the model whose metadata the output takes

	// Structural merges: the output's block count and, per output block,
	// the block it came from (for per-layer metadata arrays).
	outLayers   int
	layerOrigin []Operand

	// vocab, when the models' vocabularies differ, is the output
	// vocabulary and each model's row permutation (vocab.go).
	vocab *vocabPlan

	// Recycled buffers for execution (scratch.go, fused.go).
	floats  scratch[float32]
	raw     scratch[byte]
	hists   scratch[kernels.MagHistogram]
	collect sync.Pool // *collected
}

// TensorPlan computes one output tensor: with Method nil it is a copy of
// Models[0] (times Scale); otherwise Method merges Base and Models.
type TensorPlan struct {
	Out         gguf.TensorInfo
	Method      Method
	Base        *Operand
	Models      []Operand
	Global      map[string]float64
	ModelParams []map[string]float64
	Scale       float64 // multiplies the result (1 = none)
	Seed        uint64
	// Offset is subtracted from every input and added back to the result
	// (Gemma's norm weights are stored plus one; see normOffset).
	Offset float32

	vocab bool // rows are tokens, permuted into the plan's vocabulary
}

// Operand is one input tensor.
type Operand struct {
	Source string // model key
	Tensor string
}

// PlanOptions configure planning.
type PlanOptions struct {
	// Codec decides which output types can be written (default: the
	// pure-Go kernels.Native; pass engine/llm's codec for every ggml type).
	Codec kernels.Codec
}

// NewPlan checks recipe against the model files and plans the merge. The
// plan holds the input files open until Close.
func NewPlan(r *Recipe, opt PlanOptions) (*Plan, error) {
	if opt.Codec == nil {
		opt.Codec = kernels.Native{}
	}
	p := &Plan{Recipe: r, sources: map[string]source{}}
	if err := p.build(r, opt); err != nil {
		p.Close()
		return nil, err
	}
	return p, nil
}

// Close releases the input files.
func (p *Plan) Close() {
	for _, f := range p.files {
		f.Close()
	}
	p.files = nil
	for _, s := range p.sources {
		if sp, ok := s.(*planSource); ok {
			sp.plan.Close()
		}
	}
}

// InputBytes is the size of all input tensor data the plan reads.
func (p *Plan) InputBytes() int64 {
	var n int64
	for _, t := range p.Tensors {
		for _, op := range t.operands() {
			if info, ok := p.sources[op.Source].info(op.Tensor); ok {
				n += int64(info.Bytes())
			}
		}
	}
	return n
}

// OutputBytes is the size of the output tensor data.
func (p *Plan) OutputBytes() int64 {
	var n int64
	for _, t := range p.Tensors {
		n += int64(t.Out.Bytes())
	}
	return n
}

func (t *TensorPlan) operands() []Operand {
	ops := slices.Clone(t.Models)
	if t.Base != nil {
		ops = append(ops, *t.Base)
	}
	return ops
}

func (p *Plan) build(r *Recipe, opt PlanOptions) error {
	var errs problems
	// Sub-recipes first: they become sources named by their key.
	names := make([]string, 0, len(r.Sources))
	for name := range r.Sources {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		sub, err := NewPlan(r.Sources[name], opt)
		if err != nil {
			errs.add("sources."+name, "%v", err)
			continue
		}
		p.sources[name] = newPlanSource(sub)
	}
	for _, m := range r.modelNames() {
		if _, ok := p.sources[m]; ok {
			continue
		}
		f, err := gguf.Open(m)
		if err != nil {
			if errors.Is(err, os.ErrNotExist) {
				errs.add("model "+m, "file not found")
			} else {
				errs.add("model "+m, "%v", err)
			}
			continue
		}
		p.files = append(p.files, f)
		p.sources[m] = newFileSource(f, opt.Codec, &p.raw)
	}
	if err := errs.err(); err != nil {
		return err
	}
	if len(p.sources) == 0 {
		return errors.New("invalid recipe: no models")
	}
	ref := p.reference()
	if ref == nil {
		return errors.New("invalid recipe: no model file among the inputs")
	}
	p.checkCompatible(ref, &errs)
	p.planVocab(ref, &errs)
	if err := errs.err(); err != nil {
		return err
	}

	t, known := Find(r.Method)
	switch {
	case known && !t.InRecipes():
		errs.add("merge_method", "%s is a technique of the evolution; its recipes use %s", r.Method, t.Writes)
	case known && t.Layout == LayerPath:
		p.planDFS(t, ref, &errs)
	case len(r.Slices) > 0:
		p.planSlices(ref, &errs)
	case known && t.Layout == Slices:
		p.planPassthrough(t, ref, &errs)
	default:
		p.planParameterSpace(ref, &errs)
	}
	p.applyVocab()
	p.checkOperands(&errs)
	if err := errs.err(); err != nil {
		return err
	}
	p.chooseTypes(ref, opt.Codec)
	md, err := p.outputMetadata(ref)
	if err != nil {
		return err
	}
	p.Header = gguf.Header{Version: 3, Metadata: md}
	for _, t := range p.Tensors {
		p.Header.Tensors = append(p.Header.Tensors, t.Out)
	}
	return nil
}

// reference picks the model whose metadata and non-block tensors the
// output takes: the base, else the first model (a sub-recipe stands for
// its own reference file).
func (p *Plan) reference() *gguf.File {
	for _, m := range p.Recipe.modelNames() {
		if f := p.sources[m].file(); f != nil {
			p.refKey = m
			return f
		}
	}
	return nil
}

// checkCompatible compares architectures with ref (vocabularies: planVocab).
func (p *Plan) checkCompatible(ref *gguf.File, errs *problems) {
	arch := ref.Metadata.Architecture()
	for _, m := range p.Recipe.modelNames() {
		f := p.sources[m].file()
		if f == nil || f == ref {
			continue
		}
		if a := f.Metadata.Architecture(); a != arch {
			errs.add("model "+m, "architecture %q differs from %q of %s", a, arch, ref.Path)
		}
	}
}

func blockCount(f *gguf.File) int {
	n, ok := f.Metadata.ArchUint("block_count")
	if !ok {
		return 0
	}
	return int(n)
}

// planParameterSpace: every tensor of the reference merged across models.
func (p *Plan) planParameterSpace(ref *gguf.File, errs *problems) {
	r := p.Recipe
	m, ok := Lookup(r.Method)
	if !ok {
		errs.add("merge_method", "unknown method %q (known: %s)", r.Method, strings.Join(RecipeMethods(), ", "))
		return
	}
	models := slices.Clone(r.Models)
	base := r.Base
	switch m.Base() {
	case BaseRequired, BaseOptional:
		if base == "" && m.Base() == BaseRequired {
			errs.add("base_model", "%s needs a base model", m.Name())
			return
		}
		// A base listed among the models contributes nothing beyond the base.
		models = slices.DeleteFunc(models, func(mr ModelRef) bool { return mr.Model == base })
	case BaseIgnored:
		base = ""
	}
	lo, hi := m.Models()
	if len(models) < lo || (hi > 0 && len(models) > hi) {
		want := fmt.Sprintf("at least %d", lo)
		if hi == lo {
			want = fmt.Sprintf("exactly %d", lo)
		} else if hi > 0 {
			want = fmt.Sprintf("%d to %d", lo, hi)
		}
		errs.add("models", "%s takes %s models besides the base, got %d", m.Name(), want, len(models))
		return
	}
	checkParamNames(m, r.Params, "parameters", Global, errs)
	for i, mr := range models {
		checkParamNames(m, mr.Params, fmt.Sprintf("models[%d] (%s).parameters", i, mr.Model), PerModel, errs)
	}
	layers := blockCount(ref)
	arch := ref.Metadata.Architecture()
	for _, ti := range ref.Tensors {
		layer := LayerOf(ti.Name)
		if layer < 0 && nonBlockRole(ti.Name) == roleFixed {
			p.Tensors = append(p.Tensors, TensorPlan{Out: outInfo(ti), Models: []Operand{{Source: p.refKey, Tensor: ti.Name}}, Scale: 1})
			continue
		}
		tp := TensorPlan{Out: outInfo(ti), Method: m, Scale: 1, Seed: tensorSeed(r.Seed, ti.Name), Offset: normOffset(arch, ti.Name)}
		if base != "" {
			tp.Base = &Operand{Source: base, Tensor: ti.Name}
		}
		for _, mr := range models {
			tp.Models = append(tp.Models, Operand{Source: mr.Model, Tensor: ti.Name})
		}
		tp.Global, tp.ModelParams = resolveParams(m, r.Params, nil, models, ti.Name, layer, layers)
		p.Tensors = append(p.Tensors, tp)
	}
	p.checkRanges(errs)
}

// outLayer is one block of a structural merge's output.
type outLayer struct {
	sources []Operand // the same block index of each source model (Tensor holds a name prefix "blk.N.")
	method  Method
	base    int // index in sources of the slice's base, or -1
	params  []Params
	slice   Params // the slice's parameters (over global)
	global  Params
	index   int // position within its slice (for gradients)
	count   int // layers in its slice
	scale   float64
	// residualScale multiplies only the block's output projections (dfs).
	residualScale float64
}

// planSlices stacks layer slices; multi-source slices merge their sources.
func (p *Plan) planSlices(ref *gguf.File, errs *problems) {
	r := p.Recipe
	var out []outLayer
	var method Method
	if t, ok := Find(r.Method); !ok || t.Layout != Slices {
		m, ok := Lookup(r.Method)
		if !ok {
			errs.add("merge_method", "unknown method %q for slices (known: %s)", r.Method, strings.Join(slicesMethods(), ", "))
			return
		}
		method = m
	}
	// The tensors outside the blocks follow mergekit's planner (plan.py,
	// plan_module): the embedding side is merged over the first slice's
	// sources, the output side over the last slice's, with the slice's
	// parameters read at gradient position 0. A slice of one source
	// copies them, as passthrough does.
	var ends [2]outLayer
	for i, s := range r.Slices {
		at := fmt.Sprintf("slices[%d]", i)
		n := s.Sources[0].To - s.Sources[0].From
		baseIdx := -1
		for j, src := range s.Sources {
			sat := fmt.Sprintf("%s.sources[%d] (%s)", at, j, src.Model)
			if src.To-src.From != n {
				errs.add(sat, "covers %d layers but the slice's first source covers %d", src.To-src.From, n)
			}
			if f := p.sources[src.Model].file(); f != nil && src.To > blockCount(f) {
				errs.add(sat, "layer_range [%d, %d) exceeds the model's %d layers", src.From, src.To, blockCount(f))
			}
			if src.Model == r.Base {
				baseIdx = j
			}
		}
		if len(s.Sources) > 1 && method == nil {
			errs.add(at, "%d sources need a merge method; passthrough takes one source per slice", len(s.Sources))
			continue
		}
		if method != nil && len(s.Sources) > 1 {
			if method.Base() == BaseRequired && baseIdx < 0 {
				errs.add(at, "%s needs the base model %q among the slice's sources", method.Name(), r.Base)
			}
			checkParamNames(method, mergedParams(r.Params, s.Params), at+".parameters", Global, errs)
			for j, src := range s.Sources {
				checkParamNames(method, src.Params, fmt.Sprintf("%s.sources[%d].parameters", at, j), PerModel, errs)
			}
		}
		for k := -1; k < n; k++ {
			ol := outLayer{method: method, base: baseIdx, slice: s.Params, global: r.Params, index: k, count: n, scale: 1, residualScale: 1}
			if len(s.Sources) == 1 {
				ol.method = nil
			}
			for _, src := range s.Sources {
				prefix := fmt.Sprintf("blk.%d.", src.From+k)
				if k < 0 {
					prefix = "" // the slice's sources for tensors outside the blocks
				}
				ol.sources = append(ol.sources, Operand{Source: src.Model, Tensor: prefix})
				ol.params = append(ol.params, src.Params)
			}
			switch {
			case k >= 0:
				out = append(out, ol)
			case i == 0 && i == len(r.Slices)-1:
				ends = [2]outLayer{ol, ol}
			case i == 0:
				ends[0] = ol
			case i == len(r.Slices)-1:
				ends[1] = ol
			}
		}
	}
	if len(*errs) > 0 {
		return
	}
	p.planStructural(ref, out, &ends, errs)
}

// planStructural emits the reference's leading non-block tensors, the
// output blocks renumbered, then its trailing non-block tensors. With
// ends (slices), the embedding side comes from ends[0] and the output side
// from ends[1]; without (a layer path), from the reference.
func (p *Plan) planStructural(ref *gguf.File, out []outLayer, ends *[2]outLayer, errs *problems) {
	emitted := false
	for _, ti := range ref.Tensors {
		if LayerOf(ti.Name) >= 0 {
			if !emitted {
				for k, ol := range out {
					p.planBlock(k, ol, errs)
				}
				emitted = true
			}
			continue
		}
		role := nonBlockRole(ti.Name)
		if ends == nil || role == roleFixed {
			p.Tensors = append(p.Tensors, TensorPlan{Out: outInfo(ti), Models: []Operand{{Source: p.refKey, Tensor: ti.Name}}, Scale: 1})
			continue
		}
		side := ends[0]
		if role == roleOutput {
			side = ends[1]
		}
		p.Tensors = append(p.Tensors, p.planTensor(outInfo(ti), side, ti.Name))
	}
	p.outLayers = len(out)
	p.layerOrigin = make([]Operand, len(out))
	for k, ol := range out {
		p.layerOrigin[k] = ol.sources[0]
	}
	p.checkRanges(errs)
}

// planBlock adds the tensors of output block k.
func (p *Plan) planBlock(k int, ol outLayer, errs *problems) {
	first := p.sources[ol.sources[0].Source]
	prefix := ol.sources[0].Tensor
	var names []gguf.TensorInfo
	for _, ti := range first.tensors() {
		if strings.HasPrefix(ti.Name, prefix) {
			names = append(names, ti)
		}
	}
	if len(names) == 0 {
		errs.add("model "+ol.sources[0].Source, "has no tensors for block %q", strings.TrimSuffix(prefix, "."))
		return
	}
	for _, ti := range names {
		suffix := strings.TrimPrefix(ti.Name, prefix)
		out := outInfo(ti)
		out.Name = fmt.Sprintf("blk.%d.%s", k, suffix)
		p.Tensors = append(p.Tensors, p.planTensor(out, ol, suffix))
	}
}

// planTensor plans output tensor out from tensor prefix+suffix of each of
// ol's sources (prefix is the source's Tensor field): a copy of the one
// source, or ol's method over them.
func (p *Plan) planTensor(out gguf.TensorInfo, ol outLayer, suffix string) TensorPlan {
	tp := TensorPlan{Out: out, Method: ol.method, Scale: ol.scale, Seed: tensorSeed(p.Recipe.Seed, out.Name)}
	if f := p.sources[ol.sources[0].Source].file(); f != nil {
		tp.Offset = normOffset(f.Metadata.Architecture(), out.Name)
	}
	if ol.residualScale != 0 && isResidualOutput(suffix) {
		tp.Scale *= ol.residualScale
	}
	var models []ModelRef
	for j, src := range ol.sources {
		op := Operand{Source: src.Source, Tensor: src.Tensor + suffix}
		if ol.method != nil && j == ol.base && ol.method.Base() != BaseIgnored {
			tp.Base = &op
			continue
		}
		tp.Models = append(tp.Models, op)
		models = append(models, ModelRef{Model: src.Source, Params: ol.params[j]})
	}
	if ol.method != nil {
		tp.Global, tp.ModelParams = resolveParams(ol.method, ol.global, ol.slice, models, out.Name, ol.index, ol.count)
	} else {
		tp.Scale *= paramOr("scale", out.Name, ol.index, ol.count, 1, ol.params[0], ol.slice, ol.global)
	}
	return tp
}

// checkOperands verifies every input tensor exists with the output's shape
// (an embedding: the output's row length and the source's vocabulary).
func (p *Plan) checkOperands(errs *problems) {
	reported := map[string]bool{}
	for _, t := range p.Tensors {
		for _, op := range t.operands() {
			info, ok := p.sources[op.Source].info(op.Tensor)
			key := op.Source + "\x00" + op.Tensor
			want := t.Out.Shape
			if t.vocab { // the source's own vocabulary size
				want = []uint64{t.Out.Shape[0], uint64(p.vocab.size[op.Source])}
			}
			switch {
			case reported[key]:
			case !ok:
				errs.add("model "+op.Source, "has no tensor %q (needed for %s)", op.Tensor, t.Out.Name)
				reported[key] = true
			case !slices.Equal(info.Shape, want):
				errs.add("model "+op.Source, "tensor %q is %v, expected %v", op.Tensor, info.Shape, want)
				reported[key] = true
			}
		}
	}
}

// checkRanges validates every resolved parameter against its spec, once
// per distinct problem.
func (p *Plan) checkRanges(errs *problems) {
	seen := map[string]bool{}
	report := func(msg string) {
		if !seen[msg] {
			seen[msg] = true
			*errs = append(*errs, msg)
		}
	}
	for _, t := range p.Tensors {
		if t.Method == nil {
			continue
		}
		check := func(where string, values map[string]float64, scope Scope) {
			for _, spec := range t.Method.Params() {
				if spec.Scope != scope {
					continue
				}
				v, set := values[spec.Name]
				switch {
				case !set && spec.Required:
					report(fmt.Sprintf("%s: %s needs parameter %s", where, t.Method.Name(), spec.Name))
				case !set:
				case math.IsNaN(v) || v < spec.Min || v > spec.Max:
					report(fmt.Sprintf("%s: %s = %g is outside [%g, %g] (%s)", where, spec.Name, v, spec.Min, spec.Max, spec.Doc))
				case spec.Bool && v != 0 && v != 1:
					report(fmt.Sprintf("%s: %s must be true or false", where, spec.Name))
				}
			}
		}
		check("parameters", t.Global, Global)
		for i, mp := range t.ModelParams {
			check(fmt.Sprintf("model %s", t.Models[i].Source), mp, PerModel)
		}
	}
}

// checkParamNames rejects parameters the method does not read, or set at
// the wrong level (a per-model weight at the top level is allowed: it
// applies to every model, as in mergekit).
func checkParamNames(m Method, ps Params, at string, scope Scope, errs *problems) {
	for name := range ps {
		spec, ok := Spec(m, name)
		switch {
		case !ok:
			var known []string
			for _, s := range m.Params() {
				known = append(known, s.Name)
			}
			errs.add(at+"."+name, "%s has no parameter %q (it takes: %s)", m.Name(), name, strings.Join(known, ", "))
		case scope == PerModel && spec.Scope == Global:
			errs.add(at+"."+name, "%s is a global parameter of %s; set it under the top-level parameters", name, m.Name())
		}
	}
}

// resolveParams applies precedence per-model > slice/global, gradients and
// filters for one tensor.
func resolveParams(m Method, global, slice Params, models []ModelRef, tensor string, layer, layers int) (map[string]float64, []map[string]float64) {
	g := map[string]float64{}
	perModel := make([]map[string]float64, len(models))
	for i := range perModel {
		perModel[i] = map[string]float64{}
	}
	for _, spec := range m.Params() {
		if spec.Scope == Global {
			if v, ok := lookupParam(spec.Name, tensor, layer, layers, slice, global); ok {
				g[spec.Name] = v
			}
			continue
		}
		for i, mr := range models {
			if v, ok := lookupParam(spec.Name, tensor, layer, layers, mr.Params, slice, global); ok {
				perModel[i][spec.Name] = v
			}
		}
	}
	return g, perModel
}

func lookupParam(name, tensor string, layer, layers int, levels ...Params) (float64, bool) {
	for _, ps := range levels {
		if v, ok := ps[name]; ok {
			if x, ok := v.At(tensor, layer, layers); ok {
				return x, true
			}
		}
	}
	return 0, false
}

// mergedParams is the union of the levels' parameters, an earlier level's
// value winning (for checking names; resolving values goes through
// lookupParam, which falls through a level whose filters do not match).
func mergedParams(levels ...Params) Params {
	out := Params{}
	for i := len(levels) - 1; i >= 0; i-- {
		for k, v := range levels[i] {
			out[k] = v
		}
	}
	return out
}

// paramOr resolves a parameter through levels (most specific first), or
// returns def.
func paramOr(name, tensor string, layer, layers int, def float64, levels ...Params) float64 {
	if v, ok := lookupParam(name, tensor, layer, layers, levels...); ok {
		return v
	}
	return def
}

func outInfo(ti gguf.TensorInfo) gguf.TensorInfo {
	return gguf.TensorInfo{Name: ti.Name, Shape: slices.Clone(ti.Shape), Type: ti.Type}
}

// tensorSeed derives a per-tensor seed, so random sparsification is
// reproducible and independent across tensors.
func tensorSeed(seed uint64, name string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(name))
	return kernels.SubSeed(seed, h.Sum64())
}
