package merge

import (
	"context"
	"fmt"
	"io"
	"math"
	"slices"
	"sync"

	"github.com/evomerge/evomerge/engine/gguf"
	"github.com/evomerge/evomerge/kernels"
)

// Fused execution. For the methods whose arithmetic is element-wise once
// their magnitude thresholds are known — linear, task_arithmetic, ties,
// breadcrumbs, breadcrumbs_ties — and for converting copies, the executor
// does not decode whole tensors to float32 and call Method.Merge: it
// streams each output tensor on the execution's threads: every chunk of
// the tensor is read from the page cache a window of fusedWindow elements
// at a time (small buffers that stay in cache and are reused, never a
// whole input tensor), and worked through in blocks of fusedBlock elements
// that stay in L1 — decode a block of every input (SIMD), combine, check,
// encode the output block. Each input element is read once — twice for
// the inputs of a task vector whose magnitude threshold must be found
// (the collection pass, see findCuts and kernels/magcut.go), plus an
// eighth when its profile is not cached yet (a sample) — and no
// tensor-sized float32 buffer exists unless an input or the output has a
// type only the codec handles: the encoded output tensor is the only
// tensor-sized buffer.
//
// The per-element arithmetic is the method's, with the same kernels in
// the same order, so the output is bit-identical to Method.Merge's
// (TestFusedMatchesMerge). The parameters are resolved by the same code:
// linearTerms and taskArithCoefs serve both paths. DARE and DELLA draw
// random numbers in index order (and DELLA ranks rows), which does not
// split into parallel blocks, and the other methods need whole-tensor
// reductions first: they go through Method.Merge.

// fusedBlock is the number of elements of a block: a multiple of every
// native type's block size (Q8_0: 32); a block of each input, the task
// vectors of a few models and the output fit in L1. fusedWindow is the
// number of elements read from each input at a time (128 KB of F16).
const (
	fusedBlock  = 1024
	fusedWindow = 64 * fusedBlock
)

// fusedTerm is one model's part of a fused program.
type fusedTerm struct {
	model int     // index into TensorPlan.Models
	coef  float32 // weight (sum), coefficient c_i (task arithmetic) or w_i (consensus)
	// Magnitude sparsification of the task vector (task arithmetic):
	// keep the top `keep` entries but not the top `top` (breadcrumbs
	// outliers); keep < 0 means no sparsification.
	keep, top int
}

// fusedProgram is a tensor's arithmetic in block form.
type fusedProgram struct {
	copy      bool // out = Models[0]
	taskArith bool // out = B + Σ c_i·δ'_i, or B + λ·consensus; else out = Σ coef_i·x_i
	consensus bool
	normalize bool // of the consensus
	lambda    float32
	terms     []fusedTerm
}

// paramInput is the Input that parameter resolution sees: everything but
// the data.
func paramInput(tp *TensorPlan) *Input {
	return &Input{Tensor: tp.Out.Name, Shape: tp.Out.Shape, Global: tp.Global, ModelParams: tp.ModelParams,
		Seed: tp.Seed, Models: make([][]float32, len(tp.Models))}
}

// fusedFor returns tp's fused program, or ok = false when tp goes through
// Method.Merge (or is a raw copy). Parameter errors are returned as
// Method.Merge would return them.
func fusedFor(tp *TensorPlan) (prog fusedProgram, ok bool, err error) {
	n := int(tp.Out.Elements())
	switch m := tp.Method.(type) {
	case nil:
		return fusedProgram{copy: true, terms: []fusedTerm{{model: 0, keep: -1}}}, len(tp.Models) == 1, nil
	case linear:
		idx, ws, err := linearTerms(m, paramInput(tp))
		if err != nil {
			return prog, false, err
		}
		for k, i := range idx {
			prog.terms = append(prog.terms, fusedTerm{model: i, coef: ws[k], keep: -1})
		}
		return prog, true, nil
	case taskArith:
		if tp.Base == nil || len(tp.Models) == 0 || (m.sparsify != sparsifyNone && m.sparsify != sparsifyMagnitude && m.sparsify != sparsifyOutliers) {
			return prog, false, nil
		}
		p, err := m.params(paramInput(tp))
		if err != nil {
			return prog, false, err
		}
		prog = fusedProgram{taskArith: true, consensus: m.consensus, normalize: p.normalize, lambda: float32(p.lambda)}
		coefs := taskArithCoefs(&p)
		for i := range tp.Models {
			t := fusedTerm{model: i, coef: coefs[i], keep: -1}
			if m.consensus {
				t.coef = float32(p.weight[i])
			}
			if m.sparsify != sparsifyNone && p.density[i] < 1 {
				t.keep = kernels.FractionCount(p.density[i], n)
				if m.sparsify == sparsifyOutliers {
					t.top = min(kernels.FractionCount(p.gamma[i], n), n-t.keep)
				}
			}
			prog.terms = append(prog.terms, t)
		}
		return prog, true, nil
	}
	return prog, false, nil
}

// linearTerms resolves linear's weights: the models in the sum and their
// weights (divided by their sum when normalize). Models weighted exactly 0
// are left out: mathematically the same, but 0·x would turn an infinity
// into NaN and −0 into +0, so a weight-1/weight-0 merge would not reproduce
// its source bit for bit. No terms means a zero tensor.
func linearTerms(m linear, in *Input) (idx []int, ws []float32, err error) {
	r := paramReader{m: m, in: in}
	w := r.perModel("weight")
	normalize := r.flag("normalize")
	if r.err != nil {
		return nil, nil, r.err
	}
	if normalize {
		var sum float64
		for _, v := range w {
			sum += v
		}
		if math.Abs(sum) < linearSumMin {
			return nil, nil, methodError(m, in, "the weights %v sum to %g and normalize divides by that sum: change the weights or set normalize: false", w, sum)
		}
		for i := range w {
			w[i] /= sum
		}
	}
	for i, v := range w {
		if v != 0 {
			idx, ws = append(idx, i), append(ws, float32(v))
		}
	}
	return idx, ws, nil
}

// taskArithCoefs returns the coefficient of each model's task vector
// without consensus: λ·w_i/divisor, the divisor being Σ w when normalize
// (1 when |Σ w| < 1e-8, as mergekit).
func taskArithCoefs(p *taskArithParams) []float32 {
	divisor := 1.0
	if p.normalize {
		var sum float64
		for _, w := range p.weight {
			sum += w
		}
		if math.Abs(sum) >= taDivisorMin {
			divisor = sum
		}
	}
	c := make([]float32, len(p.weight))
	for i, w := range p.weight {
		c[i] = float32(p.lambda * w / divisor)
	}
	return c
}

// fusedInput is one input tensor of a fused tensor: read window by window
// (native types), or decoded whole by the codec.
type fusedInput struct {
	typ     gguf.Type
	size    typeSize
	src     *io.SectionReader // native types
	f32     []float32         // codec-only types: from p.floats, or the source cache's copy
	recycle bool              // f32 goes back to p.floats
}

// typeSize converts element counts to bytes for a type without the map
// lookup of gguf.Type.RowBytes (which the block loops would do per block).
type typeSize struct{ block, bytes int }

func sizeOf(t gguf.Type) typeSize { return typeSize{int(t.BlockSize()), int(t.BlockBytes())} }

// of is the storage size of n elements (n a multiple of the block size).
func (s typeSize) of(n int) int { return n / s.block * s.bytes }

// nativeBlockType reports whether the fused path decodes and encodes t
// block by block itself (bit-identical to kernels.Native, which every
// codec uses for these types).
func nativeBlockType(t gguf.Type) bool { return kernels.Native{}.CanDecode(t) }

// fusedTensor is one fused tensor in execution. Its inputs are the models
// (by TensorPlan.Models index) and, last, the base.
type fusedTensor struct {
	p    *Plan
	e    *env
	tp   *TensorPlan
	prog fusedProgram
	n    int
	in   []fusedInput
	base int           // index of the base in in, -1 without
	keep []kernels.Cut // per term
	top  []kernels.Cut
}

// computeFused computes tp with prog into dst (tp.Out.Bytes() long).
func (p *Plan) computeFused(ctx context.Context, e *env, tp *TensorPlan, prog fusedProgram, dst []byte) error {
	ft := &fusedTensor{p: p, e: e, tp: tp, prog: prog, n: int(tp.Out.Elements()), base: -1}
	defer ft.release()
	if err := ft.open(ctx); err != nil {
		return err
	}
	if err := ft.findCuts(ctx); err != nil {
		return err
	}
	out := tp.Out
	if nativeBlockType(out.Type) {
		size := sizeOf(out.Type)
		return e.cpu.forChunks(ctx, ft.n, fusedBlock, func(from, to int) error {
			return ft.run(from, to, func(lo, hi int, v []float32) {
				encodeBlock(out.Type, dst[size.of(lo):size.of(hi)], v)
			})
		})
	}
	// An output type only the codec writes: compute in float32, then encode.
	vals := p.floats.get(ft.n)
	defer p.floats.put(vals)
	err := e.cpu.forChunks(ctx, ft.n, fusedBlock, func(from, to int) error {
		return ft.run(from, to, func(lo, hi int, v []float32) { copy(vals[lo:hi], v) })
	})
	if err != nil {
		return err
	}
	if err := encodeParallel(ctx, e.cpu, e.codec, out.Type, dst, vals, int(out.Shape[0])); err != nil {
		return fmt.Errorf("tensor %s: %w", out.Name, err)
	}
	return nil
}

func encodeBlock(t gguf.Type, dst []byte, v []float32) {
	switch t {
	case gguf.TypeF16:
		kernels.EncodeF16(dst, v)
	case gguf.TypeBF16:
		kernels.EncodeBF16(dst, v)
	case gguf.TypeQ8_0:
		kernels.EncodeQ8_0(dst, v)
	default: // F32
		kernels.EncodeF32(dst, v)
	}
}

// open prepares the inputs the program reads: a section reader for native
// types, float32 values (from the source cache, or decoded by the codec)
// for the others.
func (ft *fusedTensor) open(ctx context.Context) error {
	tp := ft.tp
	ft.in = make([]fusedInput, len(tp.Models), len(tp.Models)+1)
	for _, t := range ft.prog.terms {
		if err := ft.openInput(ctx, tp.Models[t.model], &ft.in[t.model]); err != nil {
			return err
		}
	}
	if ft.prog.taskArith {
		ft.base = len(ft.in)
		ft.in = append(ft.in, fusedInput{})
		return ft.openInput(ctx, *tp.Base, &ft.in[ft.base])
	}
	return nil
}

func (ft *fusedTensor) openInput(ctx context.Context, op Operand, in *fusedInput) error {
	p, e := ft.p, ft.e
	fs := p.sources[op.Source].(*fileSource) // fusable checked
	ti, _ := fs.info(op.Tensor)
	in.typ, in.size = ti.Type, sizeOf(ti.Type)
	if nativeBlockType(ti.Type) {
		in.src = fs.f.TensorReader(ti)
		return nil
	}
	// Decoded by the codec: the source cache's copy, or decoded now (and
	// kept by the cache if its budget allows).
	var key [32]byte
	admit := false
	if e.sources != nil {
		key, _ = p.operandKey(op)
		if v, ok := e.sources.decodedCopy(key); ok {
			in.f32 = v
			return nil
		}
		admit = e.sources.admits(ft.n)
	}
	if admit {
		in.f32 = make([]float32, ft.n)
	} else {
		in.f32 = p.floats.get(ft.n)
	}
	in.recycle = true
	if err := fs.read(ctx, e, op.Tensor, in.f32); err != nil {
		return err
	}
	if admit && e.sources.putDecoded(key, in.f32) {
		in.recycle = false
	}
	return nil
}

// release hands the decoded inputs back.
func (ft *fusedTensor) release() {
	for _, in := range ft.in {
		if in.recycle {
			ft.p.floats.put(in.f32)
		}
	}
}

// window holds, for one chunk worker, the encoded bytes of elements
// [lo, hi) of the inputs it reads.
type window struct {
	ft     *fusedTensor
	lo, hi int
	raw    [][]byte // by input; nil for inputs not read
}

// newWindow returns a window over the inputs in use (indices into ft.in).
func (ft *fusedTensor) newWindow(use []int) *window {
	w := &window{ft: ft, raw: make([][]byte, len(ft.in))}
	for _, k := range use {
		if in := &ft.in[k]; in.src != nil {
			w.raw[k] = ft.p.raw.get(in.size.of(fusedWindow))
		}
	}
	return w
}

func (w *window) release() {
	for _, b := range w.raw {
		if b != nil {
			w.ft.p.raw.put(b)
		}
	}
}

// load reads elements [lo, hi) of every input of the window (lo a
// multiple of fusedBlock, hi − lo ≤ fusedWindow).
func (w *window) load(lo, hi int) error {
	w.lo, w.hi = lo, hi
	for k, b := range w.raw {
		if b == nil {
			continue
		}
		in := &w.ft.in[k]
		b = b[:in.size.of(hi-lo)]
		if n, err := in.src.ReadAt(b, int64(in.size.of(lo))); n < len(b) {
			return fmt.Errorf("tensor %s: reading input %d: %w", w.ft.tp.Out.Name, k, err)
		}
	}
	return nil
}

// block returns elements [lo, hi) of input k (inside the loaded window)
// as float32, decoded into buf when the input is encoded.
func (w *window) block(k, lo, hi int, buf []float32) []float32 {
	in := &w.ft.in[k]
	if in.f32 != nil {
		return in.f32[lo:hi]
	}
	buf = buf[:hi-lo]
	src := w.raw[k][in.size.of(lo-w.lo):in.size.of(hi-w.lo)]
	switch in.typ {
	case gguf.TypeF16:
		kernels.DecodeF16(buf, src)
	case gguf.TypeBF16:
		kernels.DecodeBF16(buf, src)
	case gguf.TypeQ8_0:
		kernels.DecodeQ8_0(buf, src)
	default: // F32
		kernels.DecodeF32(buf, src)
	}
	return buf
}

// scan runs fn on every block of [from, to), loading the inputs in use
// window by window.
func (ft *fusedTensor) scan(from, to int, use []int, fn func(w *window, lo, hi int) error) error {
	return ft.scanRanges([][2]int{{from, to}}, use, fn)
}

// scanRanges is scan over several ranges, in order.
func (ft *fusedTensor) scanRanges(ranges [][2]int, use []int, fn func(w *window, lo, hi int) error) error {
	w := ft.newWindow(use)
	defer w.release()
	for _, r := range ranges {
		for wlo := r[0]; wlo < r[1]; wlo += fusedWindow {
			whi := min(wlo+fusedWindow, r[1])
			if err := w.load(wlo, whi); err != nil {
				return err
			}
			for lo := wlo; lo < whi; lo += fusedBlock {
				if err := fn(w, lo, min(lo+fusedBlock, whi)); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// fusable reports whether every operand of tp can be read by the fused
// path: a tensor of a file with the output's element count.
func (p *Plan) fusable(tp *TensorPlan, prog fusedProgram) bool {
	if tp.vocab || tp.Offset != 0 {
		return false // rows permuted into another vocabulary, or a stored offset (vocab.go, arch.go)
	}
	n := tp.Out.Elements()
	ok := func(op Operand) bool {
		fs, isFile := p.sources[op.Source].(*fileSource)
		if !isFile {
			return false
		}
		ti, found := fs.info(op.Tensor)
		return found && ti.Elements() == n && (nativeBlockType(ti.Type) || fs.codec.CanDecode(ti.Type))
	}
	if prog.taskArith && !ok(*tp.Base) {
		return false
	}
	for _, t := range prog.terms {
		if !ok(tp.Models[t.model]) {
			return false
		}
	}
	return true
}

// collected is a bucket's entries gathered by a collection pass.
type collected struct {
	keys []uint32
	idx  []int
}

func (p *Plan) getCollected() *collected {
	if c, ok := p.collect.Get().(*collected); ok {
		c.keys, c.idx = c.keys[:0], c.idx[:0]
		return c
	}
	return &collected{}
}

// Magnitude profiles of large tensors come from a sample: every
// sampleStride-th window, a range of sampleMargin (a fraction of the
// tensor) either side of the rank's sample position. The collection pass
// counts exactly and checks the range (kernels.Holds); a range that misses
// falls back to a profile of the whole tensor, which cannot miss.
const (
	sampleStride = 8
	sampleMargin = 0.01
)

// findCuts finds the magnitude cuts of the sparsified terms: a key range
// per needed rank from the task vector's profile (cached, or profiled from
// a sample now), one pass collecting each range and counting the entries
// above it, and an exact selection in it.
func (ft *fusedTensor) findCuts(ctx context.Context) error {
	terms := ft.prog.terms
	ft.keep = make([]kernels.Cut, len(terms))
	ft.top = make([]kernels.Cut, len(terms))
	var needs []cutNeed
	for i, t := range terms {
		ft.keep[i], ft.top[i] = kernels.CutAll, kernels.CutNone
		if t.keep < 0 {
			continue
		}
		for _, r := range [...]struct {
			rank int
			cut  *kernels.Cut
		}{{t.top + t.keep, &ft.keep[i]}, {t.top, &ft.top[i]}} {
			switch {
			case r.rank <= 0:
				*r.cut = kernels.CutNone
			case r.rank >= ft.n:
				*r.cut = kernels.CutAll
			default:
				needs = append(needs, cutNeed{term: i, rank: r.rank, cut: r.cut})
			}
		}
	}
	if len(needs) == 0 {
		return nil
	}
	// Profiles: cached, or profiled now from a sample.
	profiles := make([]*kernels.MagProfile, len(terms))
	var missing []int
	for _, nd := range needs {
		i := nd.term
		if profiles[i] != nil || slices.Contains(missing, i) {
			continue
		}
		if ft.e.sources != nil {
			if key, ok := ft.p.profileKey(ft.tp.Models[terms[i].model], *ft.tp.Base); ok {
				if prof, hit := ft.e.sources.profile(key); hit {
					profiles[i] = prof
					continue
				}
			}
		}
		missing = append(missing, i)
	}
	stride := 1
	if ft.n > 2*sampleStride*fusedWindow {
		stride = sampleStride
	}
	if err := ft.profile(ctx, missing, profiles, stride); err != nil {
		return err
	}
	if err := ft.collect(ctx, needs, profiles); err != nil {
		return err
	}
	// Ranges a sample got wrong: profile those task vectors whole.
	var retry []cutNeed
	missing = missing[:0]
	for _, nd := range needs {
		if !nd.held {
			retry = append(retry, nd)
			if !slices.Contains(missing, nd.term) {
				missing = append(missing, nd.term)
			}
		}
	}
	if len(retry) == 0 {
		return nil
	}
	if ft.e.sources != nil {
		ft.e.sources.sampleMissed()
	}
	if err := ft.profile(ctx, missing, profiles, 1); err != nil {
		return err
	}
	if err := ft.collect(ctx, retry, profiles); err != nil {
		return err
	}
	for _, nd := range retry {
		if !nd.held {
			return fmt.Errorf("tensor %s: internal: the magnitude range of a whole-tensor profile misses rank %d", ft.tp.Out.Name, nd.rank)
		}
	}
	return nil
}

// cutNeed is one magnitude cut to find: rank rank of term's task vector.
type cutNeed struct {
	term, rank int
	cut        *kernels.Cut
	held       bool // found: the collected range held the rank
}

// collect runs the collection pass for needs (those of a term adjacent)
// and selects each cut whose range holds its rank.
func (ft *fusedTensor) collect(ctx context.Context, needs []cutNeed, profiles []*kernels.MagProfile) error {
	terms := ft.prog.terms
	ranges := make([][2]uint32, len(needs))
	expect := make([]int, len(needs)) // entries expected in each range
	use := []int{ft.base}
	for k, nd := range needs {
		prof := profiles[nd.term]
		margin := sampleMargin
		if prof.N == ft.n {
			margin = 0
		}
		ranges[k][0], ranges[k][1] = prof.Range(nd.rank, ft.n, margin)
		expect[k] = prof.Count(ranges[k][0], ranges[k][1], ft.n)
		if k == 0 || needs[k-1].term != nd.term {
			use = append(use, terms[nd.term].model)
		}
	}
	parts := ft.e.cpu.chunks(ft.n, fusedBlock)
	got := make([][]*collected, len(parts)) // [part][need]
	above := make([][]int, len(parts))
	defer func() {
		for _, cs := range got {
			for _, c := range cs {
				ft.p.collect.Put(c)
			}
		}
	}()
	err := ft.forParts(ctx, parts, func(pi, from, to int) error {
		cs := make([]*collected, len(needs))
		for k := range cs {
			c := ft.p.getCollected()
			want := int(float64(expect[k])*1.25*float64(to-from)/float64(ft.n)) + 64 // no regrowth
			c.keys, c.idx = slices.Grow(c.keys, want), slices.Grow(c.idx, want)
			cs[k] = c
		}
		got[pi], above[pi] = cs, make([]int, len(needs))
		buf := ft.p.floats.get(3 * fusedBlock)
		defer ft.p.floats.put(buf)
		bBuf, xBuf, d := buf[:fusedBlock], buf[fusedBlock:2*fusedBlock], buf[2*fusedBlock:]
		return ft.scan(from, to, use, func(w *window, lo, hi int) error {
			b := w.block(ft.base, lo, hi, bBuf)
			for k, nd := range needs {
				if k == 0 || needs[k-1].term != nd.term {
					kernels.Sub(d[:hi-lo], w.block(terms[nd.term].model, lo, hi, xBuf), b)
				}
				c := cs[k]
				var a int
				c.keys, c.idx, a = kernels.CollectRange(c.keys, c.idx, d[:hi-lo], lo, ranges[k][0], ranges[k][1])
				above[pi][k] += a
			}
			return nil
		})
	})
	if err != nil {
		return err
	}
	all := ft.p.getCollected()
	defer ft.p.collect.Put(all)
	for k := range needs {
		nd := &needs[k]
		n, total := 0, 0
		for pi := range parts {
			total += len(got[pi][k].keys)
		}
		all.keys, all.idx = slices.Grow(all.keys[:0], total), slices.Grow(all.idx[:0], total)
		for pi := range parts {
			all.keys, all.idx = append(all.keys, got[pi][k].keys...), append(all.idx, got[pi][k].idx...)
			n += above[pi][k]
		}
		if nd.held = kernels.Holds(len(all.keys), nd.rank, n); nd.held {
			*nd.cut = kernels.SelectCut(all.keys, all.idx, nd.rank, n)
		}
	}
	return nil
}

// profile profiles the task vectors of the given terms from every
// stride-th window (stride 1: the whole tensor) and stores the profiles
// in the source cache.
func (ft *fusedTensor) profile(ctx context.Context, terms []int, profiles []*kernels.MagProfile, stride int) error {
	if len(terms) == 0 {
		return nil
	}
	var windows [][2]int
	for k, lo := 0, 0; lo < ft.n; k, lo = k+1, lo+fusedWindow {
		if k%stride == 0 {
			windows = append(windows, [2]int{lo, min(lo+fusedWindow, ft.n)})
		}
	}
	parts := min(cap(ft.e.cpu), len(windows))
	hists := make([][]kernels.MagHistogram, parts)
	defer func() {
		for _, h := range hists {
			if h != nil {
				ft.p.hists.put(h)
			}
		}
	}()
	use := []int{ft.base}
	for _, i := range terms {
		use = append(use, ft.prog.terms[i].model)
	}
	spans := make([][2]int, parts) // indices into windows
	for pi := range spans {
		spans[pi] = [2]int{len(windows) * pi / parts, len(windows) * (pi + 1) / parts}
	}
	err := ft.forParts(ctx, spans, func(pi, from, to int) error {
		h := ft.p.hists.get(len(terms))
		clear(h)
		hists[pi] = h
		buf := ft.p.floats.get(3 * fusedBlock)
		defer ft.p.floats.put(buf)
		bBuf, xBuf, d := buf[:fusedBlock], buf[fusedBlock:2*fusedBlock], buf[2*fusedBlock:]
		return ft.scanRanges(windows[from:to], use, func(w *window, lo, hi int) error {
			b := w.block(ft.base, lo, hi, bBuf)
			for k, i := range terms {
				kernels.Sub(d[:hi-lo], w.block(ft.prog.terms[i].model, lo, hi, xBuf), b)
				h[k].Add(d[:hi-lo])
			}
			return nil
		})
	})
	if err != nil {
		return err
	}
	for k, i := range terms {
		for pi := 1; pi < parts; pi++ {
			hists[0][k].Merge(&hists[pi][k])
		}
		profiles[i] = hists[0][k].Profile()
		if ft.e.sources != nil {
			if key, ok := ft.p.profileKey(ft.tp.Models[ft.prog.terms[i].model], *ft.tp.Base); ok {
				ft.e.sources.putProfile(key, profiles[i])
			}
		}
	}
	return nil
}

// forParts runs fn on each part in parallel, each holding a thread, and
// returns the first part's error.
func (ft *fusedTensor) forParts(ctx context.Context, parts [][2]int, fn func(pi, from, to int) error) error {
	errs := make([]error, len(parts))
	var wg sync.WaitGroup
	for pi, part := range parts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[pi] = ft.e.cpu.do(ctx, func() error { return fn(pi, part[0], part[1]) })
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// run computes elements [from, to) block by block and hands each finished
// block to emit (the element range and its float32 values).
func (ft *fusedTensor) run(from, to int, emit func(lo, hi int, v []float32)) error {
	prog, terms := &ft.prog, ft.prog.terms
	nd := 0
	if prog.consensus {
		nd = len(terms)
	} else if prog.taskArith {
		nd = 1
	}
	buf := ft.p.floats.get((3 + nd) * fusedBlock)
	defer ft.p.floats.put(buf)
	outBuf, bBuf, xBuf := buf[:fusedBlock], buf[fusedBlock:2*fusedBlock], buf[2*fusedBlock:3*fusedBlock]
	delta := buf[3*fusedBlock:]
	var deltas [][]float32
	var ws []float32
	if prog.consensus {
		deltas = make([][]float32, nd)
		ws = make([]float32, nd)
		for i := range terms {
			ws[i] = terms[i].coef
		}
	}
	var use []int
	for _, t := range terms {
		use = append(use, t.model)
	}
	if ft.base >= 0 {
		use = append(use, ft.base)
	}
	scale := float32(ft.tp.Scale)
	return ft.scan(from, to, use, func(w *window, lo, hi int) error {
		m := hi - lo
		out := outBuf[:m]
		switch {
		case prog.copy:
			copy(out, w.block(0, lo, hi, xBuf))
		case !prog.taskArith:
			if len(terms) == 0 {
				clear(out)
				break
			}
			kernels.Scale(out, w.block(terms[0].model, lo, hi, xBuf), terms[0].coef)
			for _, t := range terms[1:] {
				kernels.Axpy(out, w.block(t.model, lo, hi, xBuf), t.coef)
			}
		case prog.consensus:
			b := w.block(ft.base, lo, hi, bBuf)
			for i, t := range terms {
				d := delta[i*fusedBlock : i*fusedBlock+m]
				kernels.Sub(d, w.block(t.model, lo, hi, xBuf), b)
				if t.keep >= 0 {
					kernels.KeepBand(d, lo, ft.keep[i], ft.top[i])
				}
				deltas[i] = d
			}
			kernels.SignConsensus(out, deltas, ws, prog.normalize)
			kernels.AddScaled(out, b, prog.lambda)
		default:
			b := w.block(ft.base, lo, hi, bBuf)
			copy(out, b)
			for i, t := range terms {
				x := w.block(t.model, lo, hi, xBuf)
				if t.keep < 0 {
					kernels.AxpyDiff(out, x, b, t.coef)
					continue
				}
				d := delta[:m]
				kernels.Sub(d, x, b)
				kernels.KeepBand(d, lo, ft.keep[i], ft.top[i])
				kernels.Axpy(out, d, t.coef)
			}
		}
		if ft.tp.Scale != 1 {
			kernels.Scale(out, out, scale)
		}
		if j := kernels.NonFinite(out); j >= 0 {
			return fmt.Errorf("tensor %s: the merge produced %v at element %d", ft.tp.Out.Name, out[j], lo+j)
		}
		emit(lo, hi, out)
		return nil
	})
}
