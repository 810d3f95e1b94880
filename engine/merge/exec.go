package merge

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"runtime"
	"sort"
	"strings"
	"time"

	"github.com/evomerge/evomerge/engine/gguf"
	"github.com/evomerge/evomerge/kernels"
)

// Execution streams tensor by tensor: up to Workers output tensors are
// computed at once, on Threads threads, and written in order, so peak
// memory is about Workers × (inputs + 1) × the largest encoded tensor
// (plus its float32 copies for tensors that go through Method.Merge, see
// fused.go), never whole models.

// ExecOptions configure execution.
type ExecOptions struct {
	Codec kernels.Codec // default kernels.Native
	// Threads is the number of threads the execution computes on (default
	// GOMAXPROCS): reads, kernels, decoding and encoding all share them
	// (parallel.go).
	Threads  int
	Workers  int            // output tensors in flight (default Threads)
	Progress func(Progress) // called after each tensor is written
	// Cache, if set, reuses encoded output tensors between executions whose
	// inputs, method, parameters and output type are identical (the
	// evolution engine's candidates share most of them).
	Cache TensorCache
	// Sources, if set, keeps work that depends only on the input tensors
	// (magnitude profiles, decoded copies of codec-only types) for later
	// executions from the same sources: one per tournament.
	Sources *SourceCache

	noFuse bool // tests: every tensor through Method.Merge
}

// TensorCache stores encoded output tensors by content key. The executor's
// workers call it concurrently; a Put may keep data (the executor then
// never reuses that buffer) or drop it.
type TensorCache interface {
	Get(key [32]byte) ([]byte, bool)
	Put(key [32]byte, data []byte)
}

// Progress reports execution progress.
type Progress struct {
	Tensor            string
	Done, Total       int
	Bytes, TotalBytes int64 // output bytes written / expected
	Elapsed           time.Duration
}

// Stats summarise an execution.
type Stats struct {
	Tensors     int           `json:"tensors"`
	InputBytes  int64         `json:"input_bytes"`
	OutputBytes int64         `json:"output_bytes"`
	Duration    time.Duration `json:"duration_ns"`
	CacheHits   int           `json:"cache_hits"`
	RawCopies   int           `json:"raw_copies"`
	Fused       int           `json:"fused"` // tensors computed block by block (fused.go)
}

// env is what the tensors of one execution share.
type env struct {
	codec   kernels.Codec
	cpu     limiter
	sources *SourceCache
	noFuse  bool
}

func newEnv(opt ExecOptions) *env {
	e := &env{codec: opt.Codec, sources: opt.Sources, noFuse: opt.noFuse}
	if e.codec == nil {
		e.codec = kernels.Native{}
	}
	threads := opt.Threads
	if threads <= 0 {
		threads = runtime.GOMAXPROCS(0)
	}
	e.cpu = newLimiter(threads)
	return e
}

// Execute writes the merged model to path atomically: nothing appears at
// path unless the whole merge succeeds.
func (p *Plan) Execute(ctx context.Context, path string, opt ExecOptions) (Stats, error) {
	fw, err := gguf.Create(path, p.Header)
	if err != nil {
		return Stats{}, err
	}
	defer fw.Abort()
	st, err := p.run(ctx, fw.Writer, opt)
	if err != nil {
		return st, err
	}
	if err := fw.Commit(); err != nil {
		return st, fmt.Errorf("writing %s: %w", path, err)
	}
	return st, nil
}

// WriteTo streams the merged model to w.
func (p *Plan) WriteTo(ctx context.Context, w io.Writer, opt ExecOptions) (Stats, error) {
	gw, err := gguf.NewWriter(w, p.Header)
	if err != nil {
		return Stats{}, err
	}
	st, err := p.run(ctx, gw, opt)
	if err != nil {
		return st, err
	}
	return st, gw.Close()
}

// ComputeTensor computes output tensor i (p.Tensors[i]) into dst, which
// must be p.Tensors[i].Out.Bytes() long: exactly the bytes Execute writes
// for it. It computes on opt.Threads threads with opt.Codec and
// opt.Sources, and consults and fills opt.Cache as Execute does (the
// cache keeps its own copy); opt.Workers and Progress are not used. Calls
// for different tensors may run concurrently. It is how an evaluation
// worker writes merged tensors straight into a loaded model.
func (p *Plan) ComputeTensor(ctx context.Context, i int, dst []byte, opt ExecOptions) error {
	if i < 0 || i >= len(p.Tensors) {
		return fmt.Errorf("tensor index %d out of range (%d tensors)", i, len(p.Tensors))
	}
	tp := &p.Tensors[i]
	if want := tp.Out.Bytes(); uint64(len(dst)) != want {
		return fmt.Errorf("tensor %s: buffer of %d bytes, the tensor has %d", tp.Out.Name, len(dst), want)
	}
	var key [32]byte
	if opt.Cache != nil {
		key = p.tensorKey(tp)
		if data, ok := opt.Cache.Get(key); ok {
			copy(dst, data)
			return nil
		}
	}
	if _, err := p.computeTensor(ctx, newEnv(opt), tp, dst); err != nil {
		return err
	}
	if opt.Cache != nil {
		opt.Cache.Put(key, bytes.Clone(dst))
	}
	return nil
}

// TensorKey identifies the content of output tensor i (see tensorKey):
// equal keys mean equal bytes, so a caller holding tensor i of an earlier
// plan with the same key need not compute it again.
func (p *Plan) TensorKey(i int) [32]byte { return p.tensorKey(&p.Tensors[i]) }

type result struct {
	data    []byte
	raw     bool
	fused   bool
	hit     bool
	recycle bool // data came from p.raw and nothing else holds it
	err     error
}

func (p *Plan) run(ctx context.Context, w *gguf.Writer, opt ExecOptions) (Stats, error) {
	e := newEnv(opt)
	workers := opt.Workers
	if workers <= 0 {
		workers = cap(e.cpu)
	}
	start := time.Now()
	st := Stats{Tensors: len(p.Tensors), InputBytes: p.InputBytes()}
	total := p.OutputBytes()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	results := make([]chan result, len(p.Tensors))
	for i := range results {
		results[i] = make(chan result, 1)
	}
	sem := make(chan struct{}, workers)
	go func() {
		for i := range p.Tensors {
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				return
			}
			go func() { results[i] <- p.produce(ctx, e, i, opt.Cache) }()
		}
	}()
	for i := range p.Tensors {
		var r result
		select {
		case r = <-results[i]:
		case <-ctx.Done():
			return st, ctx.Err()
		}
		if r.err != nil {
			return st, r.err
		}
		if err := w.WriteTensor(p.Tensors[i].Out.Name, r.data); err != nil {
			return st, err
		}
		if r.recycle {
			p.raw.put(r.data)
		}
		<-sem
		st.OutputBytes += int64(len(r.data))
		if r.hit {
			st.CacheHits++
		}
		if r.raw {
			st.RawCopies++
		}
		if r.fused {
			st.Fused++
		}
		if opt.Progress != nil {
			opt.Progress(Progress{Tensor: p.Tensors[i].Out.Name, Done: i + 1, Total: len(p.Tensors),
				Bytes: st.OutputBytes, TotalBytes: total, Elapsed: time.Since(start)})
		}
	}
	st.Duration = time.Since(start)
	return st, nil
}

// produce computes and encodes output tensor i.
func (p *Plan) produce(ctx context.Context, e *env, i int, cache TensorCache) result {
	if err := ctx.Err(); err != nil {
		return result{err: err}
	}
	tp := &p.Tensors[i]
	var key [32]byte
	if cache != nil {
		key = p.tensorKey(tp)
		if data, ok := cache.Get(key); ok {
			return result{data: data, hit: true}
		}
	}
	data := p.raw.get(int(tp.Out.Bytes()))
	how, err := p.computeTensor(ctx, e, tp, data)
	if err != nil {
		p.raw.put(data)
		return result{err: err}
	}
	r := result{data: data, raw: how == copyRoute, fused: how == fusedRoute, recycle: cache == nil}
	if cache != nil {
		cache.Put(key, data) // the cache keeps data: not recycled
	}
	return r
}

// route is how a tensor was computed.
type route int

const (
	mergeRoute route = iota // decoded float32 through Method.Merge
	fusedRoute              // block by block (fused.go)
	copyRoute               // an unconverted copy
)

// computeTensor computes tp, encoded, into dst: a byte copy when the
// tensor is an unconverted copy, the fused block pipeline where it applies
// (fused.go), else Method.Merge on decoded float32 tensors.
func (p *Plan) computeTensor(ctx context.Context, e *env, tp *TensorPlan, dst []byte) (route, error) {
	if ok, err := p.rawCopy(ctx, e, tp, dst); ok || err != nil {
		return copyRoute, err
	}
	if !e.noFuse {
		prog, ok, err := fusedFor(tp)
		if err != nil {
			return fusedRoute, err
		}
		if ok && p.fusable(tp, prog) {
			return fusedRoute, p.computeFused(ctx, e, tp, prog, dst)
		}
	}
	vals := p.floats.get(int(tp.Out.Elements()))
	defer p.floats.put(vals)
	if err := p.compute(ctx, e, tp, vals); err != nil {
		return mergeRoute, err
	}
	if j := kernels.NonFinite(vals); j >= 0 {
		return mergeRoute, fmt.Errorf("tensor %s: the merge produced %v at element %d", tp.Out.Name, vals[j], j)
	}
	if err := encodeParallel(ctx, e.cpu, e.codec, tp.Out.Type, dst, vals, int(tp.Out.Shape[0])); err != nil {
		return mergeRoute, fmt.Errorf("tensor %s: %w", tp.Out.Name, err)
	}
	return mergeRoute, nil
}

// rawCopy reads a copied tensor's stored bytes into dst when no conversion
// is needed, which keeps it bit-identical.
func (p *Plan) rawCopy(ctx context.Context, e *env, tp *TensorPlan, dst []byte) (bool, error) {
	if tp.Method != nil || tp.Scale != 1 || len(tp.Models) != 1 || tp.vocab {
		return false, nil
	}
	fs, ok := p.sources[tp.Models[0].Source].(*fileSource)
	if !ok {
		return false, nil
	}
	ti, ok := fs.info(tp.Models[0].Tensor)
	if !ok || ti.Type != tp.Out.Type || ti.Bytes() != uint64(len(dst)) {
		return false, nil // a missing tensor is reported by compute
	}
	return true, e.cpu.do(ctx, func() error {
		_, err := fs.f.ReadTensor(ti, dst)
		return err
	})
}

// compute evaluates a tensor plan into dst as float32 through
// Method.Merge.
func (p *Plan) compute(ctx context.Context, e *env, tp *TensorPlan, dst []float32) error {
	read := func(op Operand, buf []float32) error {
		return p.sources[op.Source].read(ctx, e, op.Tensor, buf)
	}
	off := tp.Offset
	shift := func(v []float32, d float32) {
		for i := range v {
			v[i] += d
		}
	}
	if tp.vocab {
		return p.computeEmbedding(read, tp, dst)
	}
	if tp.Method == nil {
		if err := read(tp.Models[0], dst); err != nil {
			return err
		}
		if off != 0 && tp.Scale != 1 {
			shift(dst, -off)
		}
	} else {
		in := &Input{Tensor: tp.Out.Name, Shape: tp.Out.Shape, Global: tp.Global, ModelParams: tp.ModelParams, Seed: tp.Seed,
			scratch: &p.floats}
		n := len(dst)
		defer func() { // after Merge: methods must not retain their inputs
			if in.Base != nil {
				p.floats.put(in.Base)
			}
			for _, buf := range append(in.Models, in.temps...) {
				p.floats.put(buf)
			}
		}()
		if tp.Base != nil {
			in.Base = p.floats.get(n)
			if err := read(*tp.Base, in.Base); err != nil {
				return err
			}
			if off != 0 {
				shift(in.Base, -off)
			}
		}
		for _, op := range tp.Models {
			buf := p.floats.get(n)
			in.Models = append(in.Models, buf)
			if err := read(op, buf); err != nil {
				return err
			}
			if off != 0 {
				shift(buf, -off)
			}
		}
		if err := e.cpu.do(ctx, func() error { return tp.Method.Merge(in, dst) }); err != nil {
			return err
		}
	}
	if tp.Scale != 1 {
		kernels.Scale(dst, dst, float32(tp.Scale))
	}
	if off != 0 && (tp.Method != nil || tp.Scale != 1) {
		shift(dst, off)
	}
	return nil
}

// computeEmbedding computes a tensor with one row per token: the
// operands' rows permuted into the output vocabulary (vocab.go), then the
// plan's method (or the copy) and scale.
func (p *Plan) computeEmbedding(read func(Operand, []float32) error, tp *TensorPlan, dst []float32) error {
	n := len(dst)
	var ops []Operand
	base := -1
	if tp.Base != nil {
		base = 0
		ops = append(ops, *tp.Base)
	}
	ops = append(ops, tp.Models...)
	bufs := make([][]float32, len(ops))
	for k := range bufs {
		bufs[k] = p.floats.get(n)
		defer p.floats.put(bufs[k])
	}
	if err := p.readEmbeddings(read, tp, ops, base, bufs); err != nil {
		return err
	}
	if tp.Method == nil {
		copy(dst, bufs[0])
	} else {
		in := &Input{Tensor: tp.Out.Name, Shape: tp.Out.Shape, Global: tp.Global, ModelParams: tp.ModelParams, Seed: tp.Seed,
			scratch: &p.floats, Models: bufs[len(bufs)-len(tp.Models):]}
		if base >= 0 {
			in.Base = bufs[0]
		}
		defer func() {
			for _, buf := range in.temps {
				p.floats.put(buf)
			}
		}()
		if err := tp.Method.Merge(in, dst); err != nil {
			return err
		}
	}
	if tp.Scale != 1 {
		s := float32(tp.Scale)
		for i := range dst {
			dst[i] *= s
		}
	}
	return nil
}

// tensorKey identifies an output tensor by everything that determines its
// bytes: the input files (path, size, modification time) and tensors, the
// method and resolved parameters, scale, seed and output type.
func (p *Plan) tensorKey(tp *TensorPlan) [32]byte {
	h := sha256.New()
	put := func(s string) { h.Write([]byte(s)); h.Write([]byte{0}) }
	num := func(f float64) { h.Write(binary.LittleEndian.AppendUint64(nil, math.Float64bits(f))) }
	operand := func(op Operand) {
		put(op.Source)
		put(op.Tensor)
		if fs, ok := p.sources[op.Source].(*fileSource); ok {
			put(fs.f.Path)
			num(float64(fs.f.Size))
			put(fs.identity())
		}
	}
	put(tp.Out.Name)
	put(tp.Out.Type.String())
	if tp.Method != nil {
		put(tp.Method.Name())
	}
	if tp.Base != nil {
		put("base")
		operand(*tp.Base)
	}
	for i, op := range tp.Models {
		operand(op)
		if i < len(tp.ModelParams) {
			putParams(put, num, tp.ModelParams[i])
		}
	}
	putParams(put, num, tp.Global)
	num(tp.Scale)
	num(float64(tp.Seed))
	num(float64(tp.Offset))
	if tp.vocab {
		h.Write(p.vocab.key[:])
	}
	var key [32]byte
	copy(key[:], h.Sum(nil))
	return key
}

func putParams(put func(string), num func(float64), m map[string]float64) {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		put(k)
		num(m[k])
	}
}

// DryRun describes the plan for humans: inputs, output, and each tensor's
// operation (identical consecutive operations folded).
func (p *Plan) DryRun() string {
	var b strings.Builder
	fmt.Fprintf(&b, "recipe: %s\n", p.Recipe.Describe())
	fmt.Fprintf(&b, "output: %d tensors, %.1f MiB (reads %.1f MiB)\n", len(p.Tensors), float64(p.OutputBytes())/(1<<20), float64(p.InputBytes())/(1<<20))
	for _, w := range p.Warnings {
		fmt.Fprintf(&b, "warning: %s\n", w)
	}
	for _, t := range p.Tensors {
		op := "copy " + t.Models[0].Source + ":" + t.Models[0].Tensor
		if t.Method != nil {
			var parts []string
			if t.Base != nil {
				parts = append(parts, "base "+shortName(t.Base.Source))
			}
			for i, m := range t.Models {
				parts = append(parts, fmt.Sprintf("%s%s", shortName(m.Source), fmtParams(t.ModelParams[i])))
			}
			op = fmt.Sprintf("%s%s(%s)", t.Method.Name(), fmtParams(t.Global), strings.Join(parts, ", "))
		}
		if t.Scale != 1 {
			op += fmt.Sprintf(" ×%g", t.Scale)
		}
		dims := make([]string, len(t.Out.Shape))
		for i, d := range t.Out.Shape {
			dims[i] = fmt.Sprint(d)
		}
		fmt.Fprintf(&b, "  %-28s %-6s %-11s %s\n", t.Out.Name, t.Out.Type, strings.Join(dims, "×"), op)
	}
	return b.String()
}

func fmtParams(m map[string]float64) string {
	if len(m) == 0 {
		return ""
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s=%.4g", k, m[k])
	}
	return "[" + strings.Join(parts, " ") + "]"
}
