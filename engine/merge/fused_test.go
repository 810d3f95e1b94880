package merge

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/evomerge/evomerge/engine/gguf"
	"github.com/evomerge/evomerge/engine/gguf/synth"
	"github.com/evomerge/evomerge/kernels"
)

// i32Codec stands for a codec-only type (a K-quant through engine/llm): it
// stores float32 bits under TypeI32, which kernels.Native does not handle,
// so tensors of that type go through the codec on both paths.
type i32Codec struct{ kernels.Native }

func (c i32Codec) CanDecode(t gguf.Type) bool { return t == gguf.TypeI32 || c.Native.CanDecode(t) }
func (c i32Codec) CanEncode(t gguf.Type) bool { return t == gguf.TypeI32 || c.Native.CanEncode(t) }

func (c i32Codec) Decode(t gguf.Type, dst []float32, src []byte) error {
	if t == gguf.TypeI32 {
		return c.Native.Decode(gguf.TypeF32, dst, src)
	}
	return c.Native.Decode(t, dst, src)
}

func (c i32Codec) Encode(t gguf.Type, dst []byte, src []float32, rowLen int) error {
	if t == gguf.TypeI32 {
		return c.Native.Encode(gguf.TypeF32, dst, src, rowLen)
	}
	return c.Native.Encode(t, dst, src, rowLen)
}

// fusedRecipes are the recipes of every fused method over a base and three
// models; "same" is a copy of the base (its task vector is all zeros, so
// magnitude thresholds fall in long runs of ties).
func fusedRecipes(base, a, b, same string) map[string]*Recipe {
	m3 := func(pa, pb, ps Params) []ModelRef {
		return []ModelRef{{Model: a, Params: pa}, {Model: b, Params: pb}, {Model: same, Params: ps}}
	}
	return map[string]*Recipe{
		"linear": {Method: "linear", Models: m3(Params{"weight": Scalar(0.5)}, Params{"weight": Gradient(0.2, 0.9)}, Params{"weight": Scalar(-0.1)})},
		"linear_zero_weight": {Method: "linear", Params: Params{"normalize": Scalar(0)},
			Models: m3(Params{"weight": Scalar(1)}, Params{"weight": Scalar(0)}, Params{"weight": Scalar(0)})},
		"linear_all_zero": {Method: "linear", Params: Params{"normalize": Scalar(0)},
			Models: m3(Params{"weight": Scalar(0)}, Params{"weight": Scalar(0)}, Params{"weight": Scalar(0)})},
		"task_arithmetic": {Method: "task_arithmetic", Base: base, Params: Params{"lambda": Scalar(0.8), "normalize": Scalar(1)},
			Models: m3(Params{"weight": Scalar(0.7)}, Params{"weight": Scalar(0.4)}, Params{"weight": Scalar(0.2)})},
		"ties": {Method: "ties", Base: base, Params: Params{"lambda": Scalar(0.9)},
			Models: m3(Params{"weight": Scalar(0.6), "density": Scalar(0.5)},
				Params{"weight": Scalar(0.4), "density": Gradient(0, 1)},
				Params{"weight": Scalar(0.3), "density": Scalar(0.37)})},
		"ties_unnormalized": {Method: "ties", Base: base, Params: Params{"normalize": Scalar(0)},
			Models: m3(Params{"weight": Scalar(-0.6), "density": Scalar(0.9)},
				Params{"weight": Scalar(0.4), "density": Scalar(0.01)},
				Params{"weight": Scalar(1), "density": Scalar(1)})},
		"breadcrumbs": {Method: "breadcrumbs", Base: base,
			Models: m3(Params{"weight": Scalar(0.5), "density": Scalar(0.6), "gamma": Scalar(0.05)},
				Params{"weight": Scalar(0.5), "density": Scalar(0.9), "gamma": Scalar(0.2)},
				Params{"weight": Scalar(0.5), "density": Scalar(0.3), "gamma": Scalar(0)})},
		"breadcrumbs_ties": {Method: "breadcrumbs_ties", Base: base, Params: Params{"lambda": Scalar(1.1)},
			Models: m3(Params{"weight": Scalar(0.5), "density": Scalar(0.6), "gamma": Scalar(0.01)},
				Params{"weight": Scalar(0.3), "density": Gradient(0.1, 0.95), "gamma": Scalar(0.3)},
				Params{"weight": Scalar(0.2), "density": Scalar(0.5), "gamma": Scalar(0.1)})},
	}
}

// execBytes runs plan p and returns the output file's bytes, checking
// that every tensor that is not a byte copy took the fused path, or none
// did with noFuse.
func execBytes(t *testing.T, p *Plan, out string, opt ExecOptions) []byte {
	t.Helper()
	st, err := p.Execute(context.Background(), out, opt)
	if err != nil {
		t.Fatal(err)
	}
	want := st.Tensors - st.RawCopies
	if opt.noFuse {
		want = 0
	}
	if st.Fused != want {
		t.Fatalf("%d of %d tensors fused (%d byte copies), want %d", st.Fused, st.Tensors, st.RawCopies, want)
	}
	data, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// TestFusedMatchesMerge: the fused block pipeline writes exactly the bytes
// of the decode → Method.Merge → encode path, for every fused method, input
// type (native and codec-only) and output type, on 1 and 3 threads, with
// and without a source cache (the second execution takes its magnitude
// profiles and decoded copies from the cache).
func TestFusedMatchesMerge(t *testing.T) {
	dir := t.TempDir()
	codec := i32Codec{}
	for _, typ := range []gguf.Type{gguf.TypeF32, gguf.TypeF16, gguf.TypeBF16, gguf.TypeQ8_0, gguf.TypeI32} {
		// 96×96 and wider tensors: several 1024-element blocks, a tail, and
		// more than one chunk on 3 threads for the larger ones.
		shape := synth.Model{Type: typ, Dim: 96, FFN: 160, Vocab: 700, Layers: 2, Codec: codec}
		model := func(name string, seed uint64) string {
			m := shape
			m.Seed = seed
			return writeSynth(t, dir, fmt.Sprintf("%s-%s", name, typ), m)
		}
		base, a, b := model("base", 10), model("a", 11), model("b", 12)
		same := model("same", 10)
		for name, r := range fusedRecipes(base, a, b, same) {
			outTypes := []string{"", "q8_0"}
			if typ == gguf.TypeF16 {
				outTypes = []string{"", "f16", "q8_0", "bf16", "f32", "i32"}
			}
			for _, outType := range outTypes {
				r := *r
				r.OutType = outType
				p, err := NewPlan(&r, PlanOptions{Codec: codec})
				if err != nil {
					t.Fatalf("%s %s→%s: %v", name, typ, outType, err)
				}
				out := filepath.Join(dir, "out.gguf")
				want := execBytes(t, p, out, ExecOptions{Codec: codec, noFuse: true})
				sources := NewSourceCache(1 << 30)
				for run, threads := range []int{1, 3} { // the second run hits the cache
					got := execBytes(t, p, out, ExecOptions{Codec: codec, Threads: threads, Sources: sources})
					if !bytes.Equal(got, want) {
						t.Fatalf("%s %s→%s, %d threads, run %d: the fused path's output differs from Method.Merge's", name, typ, outType, threads, run)
					}
				}
				st := sources.Stats()
				if strings.Contains(name, "ties") || strings.Contains(name, "breadcrumbs") {
					if st.ProfileMisses == 0 || st.ProfileHits == 0 {
						t.Errorf("%s %s: profiles %d hits %d misses, want both", name, typ, st.ProfileHits, st.ProfileMisses)
					}
				}
				if typ == gguf.TypeI32 && name != "linear_all_zero" && (st.DecodedHits == 0 || st.DecodedBytes == 0) {
					t.Errorf("%s %s: decoded copies %d hits, %d bytes", name, typ, st.DecodedHits, st.DecodedBytes)
				}
				p.Close()
			}
		}
	}
}

// writeModel writes a model with synth's header and the given values.
func writeModel(t *testing.T, path string, shape synth.Model, values func(name string, n int) []float32) {
	t.Helper()
	h := shape.Header(filepath.Base(path))
	fw, err := gguf.Create(path, h)
	if err != nil {
		t.Fatal(err)
	}
	defer fw.Abort()
	for _, ti := range h.Tensors {
		buf := make([]byte, ti.Bytes())
		if err := (kernels.Native{}).Encode(ti.Type, buf, values(ti.Name, int(ti.Elements())), int(ti.Shape[0])); err != nil {
			t.Fatal(err)
		}
		if err := fw.WriteTensor(ti.Name, buf); err != nil {
			t.Fatal(err)
		}
	}
	if err := fw.Commit(); err != nil {
		t.Fatal(err)
	}
}

// TestSampledProfiles: on tensors large enough to be profiled from a
// sample, the cuts are exact — also when the sample misleads (task vectors
// whose sampled windows hold only tiny entries), which the collection
// pass catches before falling back to a whole-tensor profile.
func TestSampledProfiles(t *testing.T) {
	dir := t.TempDir()
	shape := synth.Model{Type: gguf.TypeF16, Dim: 1024, FFN: 64, Vocab: 1100, Layers: 1}
	base := filepath.Join(dir, "base.gguf")
	writeModel(t, base, shape, func(name string, n int) []float32 { return synth.Values(1, name, n) })
	var models []string
	for k, mislead := range []bool{false, true} {
		path := filepath.Join(dir, fmt.Sprintf("m%d.gguf", k))
		writeModel(t, path, shape, func(name string, n int) []float32 {
			v, d := synth.Values(1, name, n), synth.Values(uint64(k+2), name, n)
			for j := range v {
				scale := float32(0.05)
				if mislead && (j/fusedWindow)%sampleStride == 0 {
					scale = 1e-4 // what the sample sees
				}
				v[j] += scale * d[j]
			}
			return v
		})
		models = append(models, path)
	}
	r := &Recipe{Method: "ties", Base: base, Models: []ModelRef{
		{Model: models[0], Params: Params{"weight": Scalar(0.6), "density": Scalar(0.3)}},
		{Model: models[1], Params: Params{"weight": Scalar(0.4), "density": Scalar(0.6)}}}}
	p, err := NewPlan(r, PlanOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if n := p.Tensors[0].Out.Elements(); n <= 2*sampleStride*fusedWindow {
		t.Fatalf("the embedding has %d elements: too few to be sampled", n)
	}
	out := filepath.Join(dir, "out.gguf")
	want := execBytes(t, p, out, ExecOptions{noFuse: true})
	sources := NewSourceCache(0)
	for run := range 2 {
		if got := execBytes(t, p, out, ExecOptions{Threads: 2, Sources: sources}); !bytes.Equal(got, want) {
			t.Fatalf("run %d: the fused output differs from Method.Merge's", run)
		}
	}
	if st := sources.Stats(); st.SampleMisses == 0 {
		t.Errorf("no sampled range missed (stats %+v): the misleading model did not test the fallback", st)
	}
}

// TestComputeTensor: each tensor computed alone equals what Execute wrote.
func TestComputeTensor(t *testing.T) {
	dir := t.TempDir()
	shape := synth.Model{Type: gguf.TypeF16, Dim: 96, FFN: 160, Vocab: 700, Layers: 2}
	var paths []string
	for i, name := range []string{"base", "a", "b", "same"} {
		m := shape
		m.Seed = []uint64{10, 11, 12, 10}[i]
		paths = append(paths, writeSynth(t, dir, name, m))
	}
	r := fusedRecipes(paths[0], paths[1], paths[2], paths[3])["ties"]
	r.Models = append(r.Models, ModelRef{Model: paths[1], Params: Params{"weight": Scalar(0.1)}}) // a second use of a: dare-free, still fused
	p, err := NewPlan(r, PlanOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	out := filepath.Join(dir, "out.gguf")
	execBytes(t, p, out, ExecOptions{})
	f, err := gguf.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for i, tp := range p.Tensors {
		dst := make([]byte, tp.Out.Bytes())
		if err := p.ComputeTensor(context.Background(), i, dst, ExecOptions{Threads: 2}); err != nil {
			t.Fatal(err)
		}
		ti, _ := f.Tensor(tp.Out.Name)
		want, err := f.ReadTensor(ti, nil)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(dst, want) {
			t.Fatalf("ComputeTensor(%s) differs from the executed file", tp.Out.Name)
		}
	}
	if err := p.ComputeTensor(context.Background(), 0, make([]byte, 3), ExecOptions{}); err == nil || !strings.Contains(err.Error(), "token_embd.weight") {
		t.Errorf("a short buffer: err = %v, want one naming the tensor", err)
	}
}

// TestFusedNonFiniteError: an overflow is reported at the same element as
// by the Method.Merge path.
func TestFusedNonFiniteError(t *testing.T) {
	dir := t.TempDir()
	a := writeSynth(t, dir, "a", synth.Model{Type: gguf.TypeF32, Seed: 1, Dim: 96, FFN: 160, Vocab: 700})
	b := writeSynth(t, dir, "b", synth.Model{Type: gguf.TypeF32, Seed: 2, Dim: 96, FFN: 160, Vocab: 700})
	r := &Recipe{Method: "linear", Params: Params{"normalize": Scalar(0)},
		Models: []ModelRef{{Model: a, Params: Params{"weight": Scalar(3e38)}}, {Model: b, Params: Params{"weight": Scalar(3e38)}}}}
	var msgs []string
	for _, noFuse := range []bool{true, false} {
		p, err := NewPlan(r, PlanOptions{})
		if err != nil {
			t.Fatal(err)
		}
		_, err = p.Execute(context.Background(), filepath.Join(dir, "out.gguf"), ExecOptions{Threads: 3, noFuse: noFuse})
		p.Close()
		if err == nil || !strings.Contains(err.Error(), "the merge produced") {
			t.Fatalf("noFuse=%v: err = %v, want an overflow error", noFuse, err)
		}
		msgs = append(msgs, err.Error())
	}
	if msgs[0] != msgs[1] {
		t.Errorf("the paths report differently:\n%s\n%s", msgs[0], msgs[1])
	}
}

// TestLimiterBoundsThreads: chunks cover [0, n) at the alignment, and no
// more than the limiter's threads run at once, however chunks nest in
// tensors.
func TestLimiterBoundsThreads(t *testing.T) {
	for _, tt := range []struct{ threads, n, align int }{{1, 1 << 20, 1024}, {3, 1<<20 + 7, 1024}, {4, 100, 32}, {8, 5 * parallelMin, 4096}, {2, 0, 1}} {
		l := newLimiter(tt.threads)
		parts := l.chunks(tt.n, tt.align)
		next := 0
		for _, p := range parts {
			if p[0] != next || (p[1] != tt.n && p[1]%tt.align != 0) || p[1] <= p[0] {
				t.Fatalf("%+v: chunks %v", tt, parts)
			}
			next = p[1]
		}
		if next != tt.n || len(parts) > tt.threads {
			t.Fatalf("%+v: chunks %v", tt, parts)
		}
	}
	l := newLimiter(3)
	var running, peak atomic.Int32
	ctx := context.Background()
	errs := make(chan error, 8)
	for range 8 { // eight tensors at once, each split into chunks
		go func() {
			errs <- l.forChunks(ctx, 8*parallelMin, 1024, func(from, to int) error {
				now := running.Add(1)
				for {
					p := peak.Load()
					if now <= p || peak.CompareAndSwap(p, now) {
						break
					}
				}
				for range 20000 { // hold the thread a little
					_ = from * to
				}
				running.Add(-1)
				return nil
			})
		}()
	}
	for range 8 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if p := peak.Load(); p > 3 || p < 1 {
		t.Fatalf("peak concurrency %d with 3 threads", p)
	}
}
