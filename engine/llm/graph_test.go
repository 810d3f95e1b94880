package llm

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"math"
	"testing"

	"github.com/evomerge/evomerge/engine/gguf"
	"github.com/evomerge/evomerge/engine/merge"
	"github.com/evomerge/evomerge/zoo"
)

// graphText is scored by both models (any English text does).
const graphText = "Once upon a time, there was a little girl named Lily. She loved to play outside in the sun. " +
	"One day, she saw a big red ball in the park. She ran to it and kicked it very hard. The ball flew over the " +
	"trees and landed in a pond. Lily was sad, but her friend Tom came and helped her get the ball back."

// graphRecipes: linear (base ignored but given, so the output takes the
// base's F16 types), task arithmetic and TIES at density 1 over the zoo, whose experts hold
// Q8_0 block weights and the base F16.
func graphRecipes() map[string]*merge.Recipe {
	ex := zoo.Experts()
	w := func(v float64) merge.Params { return merge.Params{"weight": merge.Scalar(v)} }
	base := zoo.Model(zoo.Base)
	return map[string]*merge.Recipe{
		"linear": {Method: "linear", Base: base, Models: []merge.ModelRef{
			{Model: zoo.Model(ex[0]), Params: w(0.5)}, {Model: zoo.Model(ex[1]), Params: w(0.3)}, {Model: zoo.Model(ex[2]), Params: w(0.2)}}},
		"task_arithmetic": {Method: "task_arithmetic", Base: base, Params: merge.Params{"lambda": merge.Scalar(0.9)},
			Models: []merge.ModelRef{{Model: zoo.Model(ex[0]), Params: w(0.7)}, {Model: zoo.Model(ex[2]), Params: w(0.4)}}},
		// TIES without sparsification: sign election and disjoint mean.
		"ties": {Method: "ties", Base: base, Params: merge.Params{"lambda": merge.Scalar(1.1)}, Models: []merge.ModelRef{
			{Model: zoo.Model(ex[0]), Params: merge.Params{"weight": merge.Scalar(0.5), "density": merge.Scalar(1)}},
			{Model: zoo.Model(ex[1]), Params: merge.Params{"weight": merge.Scalar(0.3), "density": merge.Scalar(1)}},
			{Model: zoo.Model(ex[2]), Params: merge.Params{"weight": merge.Scalar(-0.2), "density": merge.Scalar(1)}}}},
	}
}

// TestGraphMergeMatchesGo merges the zoo as ggml graphs on the CPU backend
// into a resident model and checks every graph-merged weight against the
// Go merger's bytes (merge.Plan.ComputeTensor into the same type), then
// the perplexity of the graph-merged model against the Go-merged one's.
//
// Tolerance: both compute in F32 with one rounding per operation, summing
// the terms in the same order, and round to the weight's type the same
// way, so the bytes should be equal; what may differ is how a compiler
// treats a multiply followed by an add (fused or not), which moves an F32
// result by at most its last bit and, rounded to F16, almost never shows.
// The test allows at most 1 ULP of the weight's type (F16 or F32) on at
// most 1% of a tensor's elements, and perplexities equal to 1e-4
// relative. Measured on the zoo: no element differs and the perplexities
// are equal.
func TestGraphMergeMatchesGo(t *testing.T) {
	for name, r := range graphRecipes() {
		t.Run(name, func(t *testing.T) { checkGraphMerge(t, r, 0) })
	}
}

// TestGraphMergeOnGPU is the same check with every layer on a GPU: the
// graph runs on the GPU backend, and the weights it cannot reach (the
// token embeddings llama.cpp keeps in host memory) are merged by the Go
// merger as the worker does.
func TestGraphMergeOnGPU(t *testing.T) {
	if len(GPUs()) == 0 {
		t.Skip("needs a GPU backend (none loaded): the graph merge on a GPU is checked on machines with one")
	}
	for name, r := range graphRecipes() {
		t.Run(name, func(t *testing.T) { checkGraphMerge(t, r, -1) })
	}
}

func checkGraphMerge(t *testing.T, r *merge.Recipe, gpuLayers int) {
	ctx := context.Background()
	plan, err := merge.NewPlan(r, merge.PlanOptions{Codec: Codec{}})
	if err != nil {
		t.Fatalf("%v (run `make zoo`)", err)
	}
	defer plan.Close()
	load := func() (*Model, map[string]Weight) {
		m, err := Load(zoo.Model(zoo.Base), ModelParams{GPULayers: gpuLayers, Writable: true})
		if err != nil {
			t.Fatal(err)
		}
		ws, err := m.Weights()
		if err != nil {
			t.Fatal(err)
		}
		byName := map[string]Weight{}
		for _, w := range ws {
			byName[w.Name] = w
		}
		return m, byName
	}
	graphModel, graphWeights := load()
	defer graphModel.Close()
	goModel, goWeights := load()
	defer goModel.Close()

	g, err := NewGraphMerger(graphModel, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	if onCPU := g.Device() == "CPU"; onCPU != (gpuLayers == 0) {
		t.Fatalf("graph merger on %s with %d GPU layers", g.Device(), gpuLayers)
	}
	files := map[string]*gguf.File{}
	defer func() {
		for _, f := range files {
			f.Close()
		}
	}()
	upload := func(op merge.Operand) GraphOperand {
		gop := GraphOperand{Source: op.Source, Tensor: op.Tensor}
		if g.Uploaded(gop) {
			return gop
		}
		f := files[op.Source]
		if f == nil {
			if f, err = gguf.Open(op.Source); err != nil {
				t.Fatal(err)
			}
			files[op.Source] = f
		}
		ti, _ := f.Tensor(op.Tensor)
		data, err := f.ReadTensor(ti, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := g.Upload(gop, ti.Type, ti.Shape, data); err != nil {
			t.Fatal(err)
		}
		return gop
	}

	tmpl, err := gguf.Open(zoo.Model(zoo.Base))
	if err != nil {
		t.Fatal(err)
	}
	defer tmpl.Close()
	graphed, changed, elements, differ, maxULP := 0, 0, 0, 0, uint32(0)
	for i, tp := range plan.Tensors {
		want := make([]byte, tp.Out.Bytes())
		if err := plan.ComputeTensor(ctx, i, want, merge.ExecOptions{Codec: Codec{}, Threads: 2}); err != nil {
			t.Fatal(err)
		}
		if err := goModel.SetWeight(goWeights[tp.Out.Name], want); err != nil {
			t.Fatal(err)
		}
		gw := graphWeights[tp.Out.Name]
		form, ok, err := plan.SumForm(i)
		if err != nil {
			t.Fatal(err)
		}
		if !ok {
			t.Fatalf("tensor %s has no sum form", tp.Out.Name)
		}
		if !g.Eligible(gw) {
			if gpuLayers == 0 {
				t.Fatalf("tensor %s (%s in %s) is not graph-eligible", tp.Out.Name, gw.Type, gw.Buffer)
			}
			t.Logf("tensor %s (%s in %s) is not graph-eligible: merged by Go", tp.Out.Name, gw.Type, gw.Buffer)
			if err := graphModel.SetWeight(gw, want); err != nil {
				t.Fatal(err)
			}
			continue
		}
		gf := GraphForm{Scale: float32(form.Scale), Consensus: form.Consensus, Normalize: form.Normalize, Lambda: form.Lambda}
		if form.Base != nil {
			b := upload(*form.Base)
			gf.Base = &b
		}
		for _, term := range form.Terms {
			gf.Terms = append(gf.Terms, GraphTerm{GraphOperand: upload(term.Operand), Coef: term.Coef})
		}
		if err := g.Merge(gw, gf); err != nil {
			t.Fatal(err)
		}
		got := make([]byte, gw.Bytes)
		if err := graphModel.GetWeight(gw, got); err != nil {
			t.Fatal(err)
		}
		if ti, _ := tmpl.Tensor(tp.Out.Name); !bytes.Equal(got, mustRead(t, tmpl, ti)) {
			changed++
		}
		n, d, u := ulpDiff(t, gw.Type, got, want)
		if u > 1 || d*100 > n {
			t.Errorf("tensor %s (%s): %d of %d elements differ from the Go merger's, by up to %d ULP", tp.Out.Name, gw.Type, d, n, u)
		}
		graphed++
		elements += n
		differ += d
		maxULP = max(maxULP, u)
	}
	if changed < graphed/2 {
		t.Errorf("only %d of %d graph-merged weights differ from the template's", changed, graphed)
	}
	t.Logf("%d tensors merged by graphs (%d MB of sources uploaded): %d of %d elements differ from the Go merger's, by at most %d ULP",
		graphed, g.SourceBytes()>>20, differ, elements, maxULP)

	pg, pgo := graphPerplexity(t, graphModel), graphPerplexity(t, goModel)
	if rel := math.Abs(pg-pgo) / pgo; rel > 1e-4 {
		t.Errorf("perplexity: graph-merged %.6f, Go-merged %.6f (relative difference %.2g > 1e-4)", pg, pgo, rel)
	} else {
		t.Logf("perplexity: graph-merged %.6f, Go-merged %.6f (relative difference %.2g)", pg, pgo, rel)
	}
}

func mustRead(t *testing.T, f *gguf.File, ti gguf.TensorInfo) []byte {
	t.Helper()
	b, err := f.ReadTensor(ti, nil)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// ulpDiff counts the elements of two F16/F32 tensors that differ and the
// largest difference in units of the last place (the distance of their
// bit patterns on the monotone integer line).
func ulpDiff(t *testing.T, typ gguf.Type, a, b []byte) (n, differ int, maxULP uint32) {
	t.Helper()
	var size int
	var ord func([]byte) int64
	switch typ {
	case gguf.TypeF16, gguf.TypeBF16:
		size = 2
		ord = func(p []byte) int64 {
			v := int64(binary.LittleEndian.Uint16(p))
			if v&0x8000 != 0 {
				return -(v & 0x7fff)
			}
			return v
		}
	case gguf.TypeF32:
		size = 4
		ord = func(p []byte) int64 {
			v := int64(binary.LittleEndian.Uint32(p))
			if v&0x80000000 != 0 {
				return -(v & 0x7fffffff)
			}
			return v
		}
	default:
		t.Fatalf("no ULP comparison for %s", typ)
	}
	for j := 0; j+size <= len(a); j += size {
		n++
		if d := ord(a[j:]) - ord(b[j:]); d != 0 {
			differ++
			maxULP = max(maxULP, uint32(max(d, -d)))
		}
	}
	return n, differ, maxULP
}

// graphPerplexity is exp of the mean negative log-likelihood of
// graphText's tokens, in float64.
func graphPerplexity(t *testing.T, m *Model) float64 {
	t.Helper()
	toks, err := m.Tokenize(graphText, true)
	if err != nil {
		t.Fatal(err)
	}
	c, err := m.NewContext(ContextParams{Size: 128, Threads: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	toks = toks[:min(len(toks), 128)]
	logits, err := c.Decode(toks, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	nv := c.VocabSize()
	var nll float64
	for i := 0; i+1 < len(toks); i++ {
		row := logits[i*nv : (i+1)*nv]
		mx := math.Inf(-1)
		for _, x := range row {
			mx = math.Max(mx, float64(x))
		}
		var s float64
		for _, x := range row {
			s += math.Exp(float64(x) - mx)
		}
		nll += mx + math.Log(s) - float64(row[toks[i+1]])
	}
	return math.Exp(nll / float64(len(toks)-1))
}

// TestGraphCopyConvertsAndRefuses: a one-term copy of a Q8_0 source into
// an F16 weight (dequantized to F32, rounded to F16) equals the codec's
// decode and encode; a source of a type the graph cannot read, a source
// of another shape and a missing source are refused, leaving the weight
// as it was.
func TestGraphCopyConvertsAndRefuses(t *testing.T) {
	m, err := Load(zoo.Model(zoo.Base), ModelParams{GPULayers: 0, Writable: true})
	if err != nil {
		t.Fatalf("%v (run `make zoo`)", err)
	}
	defer m.Close()
	ws, err := m.Weights()
	if err != nil {
		t.Fatal(err)
	}
	g, err := NewGraphMerger(m, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	expert := zoo.Model(zoo.Experts()[0])
	f, err := gguf.Open(expert)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	const name = "blk.0.attn_q.weight"
	ti, _ := f.Tensor(name)
	var w Weight
	for _, x := range ws {
		if x.Name == name {
			w = x
		}
	}
	if ti.Type != gguf.TypeQ8_0 || w.Type != gguf.TypeF16 {
		t.Fatalf("zoo: %s is %s in the expert and %s in the base; the test wants Q8_0 and F16", name, ti.Type, w.Type)
	}
	src := mustRead(t, f, ti)
	op := GraphOperand{Source: expert, Tensor: name}
	if err := g.Upload(op, ti.Type, ti.Shape, src); err != nil {
		t.Fatal(err)
	}
	if err := g.Merge(w, GraphForm{Terms: []GraphTerm{{GraphOperand: op, Coef: 1}}, Scale: 1}); err != nil {
		t.Fatal(err)
	}
	vals := make([]float32, ti.Elements())
	if err := (Codec{}).Decode(ti.Type, vals, src); err != nil {
		t.Fatal(err)
	}
	want := make([]byte, w.Bytes)
	if err := (Codec{}).Encode(w.Type, want, vals, int(ti.Shape[0])); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, w.Bytes)
	if err := m.GetWeight(w, got); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatal("the Q8_0 source copied into the F16 weight differs from the codec's decode and encode")
	}

	q4 := GraphOperand{Source: "q4", Tensor: name}
	if err := g.Upload(q4, gguf.TypeQ4_0, ti.Shape, make([]byte, gguf.TypeQ4_0.RowBytes(ti.Elements()))); !errors.Is(err, ErrGraphIneligible) {
		t.Errorf("uploading a Q4_0 source: %v, want ErrGraphIneligible", err)
	}
	other := GraphOperand{Source: "short", Tensor: name}
	if err := g.Upload(other, gguf.TypeF32, []uint64{ti.Shape[0]}, make([]byte, 4*ti.Shape[0])); err != nil {
		t.Fatal(err)
	}
	for _, form := range []GraphForm{
		{Terms: []GraphTerm{{GraphOperand: other, Coef: 0.5}}, Scale: 1},
		{Terms: []GraphTerm{{GraphOperand: GraphOperand{Source: "nowhere", Tensor: name}, Coef: 1}}, Scale: 1},
		{Scale: 1},
	} {
		if err := g.Merge(w, form); err == nil {
			t.Errorf("merging %+v was accepted", form)
		}
	}
	if err := m.GetWeight(w, got); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Error("a refused merge changed the weight")
	}
}
