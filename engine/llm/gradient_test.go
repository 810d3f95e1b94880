package llm

import (
	"context"
	"errors"
	"fmt"
	"math"
	"path/filepath"
	"strings"
	"testing"

	"github.com/evomerge/evomerge/engine/gguf"
	"github.com/evomerge/evomerge/engine/gguf/synth"
	"github.com/evomerge/evomerge/engine/llm/gradshape"
	"github.com/evomerge/evomerge/engine/merge"
	"github.com/evomerge/evomerge/zoo"
)

// zooCoefficient is the coefficient of expert s for a tensor: 20 per
// expert — the output norm, then per layer the norms, attention, MLP —
// and one for the rest (the embeddings).
func zooCoefficient(name string, s int) int {
	slot := 19
	var l int
	switch {
	case name == "output_norm.weight":
		slot = 0
	case strings.HasPrefix(name, "blk."):
		fmt.Sscanf(name, "blk.%d.", &l)
		switch {
		case strings.Contains(name, "_norm"):
			slot = 1 + l
		case strings.Contains(name, "attn"):
			slot = 7 + l
		default:
			slot = 13 + l
		}
	}
	return 20*s + slot
}

// zooGradient builds the coefficient graph of the zoo's experts over the
// base, for windows of 256 tokens scored from 128.
func zooGradient(t testing.TB) *Gradient {
	t.Helper()
	var experts []string
	for _, e := range zoo.Experts() {
		experts = append(experts, zoo.Model(e))
	}
	spec, weights, err := GradientWeights(zoo.Model(zoo.Base), experts, zooCoefficient)
	if err != nil {
		t.Fatalf("%v (run `make zoo`)", err)
	}
	g, err := NewGradient(spec, weights, 60, 256, 128, 2)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(g.Close)
	return g
}

// TestGradientMatchesLlamaAndDifferences: on the zoo (three experts over
// stories15M), the graph's loss at the uniform average's coefficients
// equals llama.cpp's on the same merge written as an F32 file (mean NLL
// of positions 128…254 of a window, to 1e-4), and its gradient equals
// central differences of its own loss at a point away from the uniform
// one (to 3% or 2e-4), for coefficients of an output norm, a block norm,
// attention and MLP; the embeddings, which the experts did not change,
// have none. The arena is sized within 4 times what the graph uses.
func TestGradientMatchesLlamaAndDifferences(t *testing.T) {
	g := zooGradient(t)
	// ggml aborts when the arena is too small, so what can go wrong is an
	// arena far larger than the graph.
	if used, mem := g.used(), g.mem; used < mem/4 {
		t.Errorf("the graph uses %d MB of an arena of %d MB", used>>20, mem>>20)
	}
	// The uniform average as a file, scored by llama.cpp.
	ex := zoo.Experts()
	r := &merge.Recipe{Method: "task_arithmetic", Base: zoo.Model(zoo.Base), OutType: "f32"}
	for _, e := range ex {
		r.Models = append(r.Models, merge.ModelRef{Model: zoo.Model(e), Params: merge.Params{"weight": merge.Scalar(1.0 / 3)}})
	}
	out := filepath.Join(t.TempDir(), "uniform.gguf")
	if _, _, err := merge.Run(context.Background(), r, out, Codec{}, merge.ExecOptions{}); err != nil {
		t.Fatal(err)
	}
	m, c := scoringContext(t, out)
	window := gradientWindow(t, m, 256)
	want := llamaLoss(t, c, window, 128)

	coef := make([]float32, 60)
	for i := range coef {
		coef[i] = 1.0 / 3
	}
	grad := make([]float32, 60)
	got, err := g.Window(coef, window, grad)
	if err != nil {
		t.Fatal(err)
	}
	if math.Abs(got-want) > 1e-4*want {
		t.Fatalf("graph loss %.6f, llama.cpp %.6f", got, want)
	}
	t.Logf("loss at the uniform average: graph %.6f, llama.cpp %.6f", got, want)

	for i := range coef {
		coef[i] = 0.2 + 0.3*float32(i%7)/6
	}
	if _, err := g.Window(coef, window, grad); err != nil {
		t.Fatal(err)
	}
	checkDifferences(t, g, coef, window, grad, []int{0, 3, 9, 27, 35, 54})
	for _, i := range []int{19, 39, 59} {
		if grad[i] != 0 {
			t.Errorf("embedding coefficient %d has gradient %v; the experts share the base's embeddings", i, grad[i])
		}
	}
}

// TestGradientRefuses: tensors the graph does not build, and bad input,
// are errors (gradshape's tests cover the metadata).
func TestGradientRefuses(t *testing.T) {
	f, err := gguf.Open(zoo.Model(zoo.Base))
	if err != nil {
		t.Fatalf("%v (run `make zoo`)", err)
	}
	md := f.Metadata
	f.Close()
	spec, err := gradshape.Of(md)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := NewGradient(spec, map[string]GradientWeight{}, 1, 256, 128, 1); err == nil || !strings.Contains(err.Error(), "no tensor") {
		t.Errorf("no weights: %v", err)
	}
	bias := map[string]GradientWeight{"blk.0.attn_q.bias": {Shape: []uint64{288}, Base: make([]float32, 288)}}
	if _, err := NewGradient(spec, bias, 1, 256, 128, 1); !errors.Is(err, gradshape.ErrArch) {
		t.Errorf("a bias: %v, want gradshape.ErrArch", err)
	}
	if _, err := NewGradient(spec, nil, 1, 256, 255, 1); err == nil {
		t.Error("scoring from the last position was accepted")
	}
	if _, err := NewGradient(spec, nil, 1, 512, 128, 1); err == nil {
		t.Error("windows longer than the model's context were accepted")
	}
}

// BenchmarkGradientWindow measures the loss and gradient of one window of
// 256 tokens (127 scored) on the zoo's coefficient graph, and
// BenchmarkDecodeWindow scoring the same window with llama.cpp (the
// uniform average as an F32 file): their ratio is what a gradient costs
// in evaluations. go test -bench Window -run ^$ ./engine/llm
func BenchmarkGradientWindow(b *testing.B) {
	g := zooGradient(b)
	window := benchWindow(b)
	coef, grad := make([]float32, 60), make([]float32, 60)
	for i := range coef {
		coef[i] = 1.0 / 3
	}
	b.ResetTimer()
	for range b.N {
		if _, err := g.Window(coef, window, grad); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecodeWindow(b *testing.B) {
	_, c := scoringContext(b, zoo.Model(zoo.Experts()[0])) // Q8_0 blocks, as candidates
	in := make([]int, 256)
	for i, t := range benchWindow(b) {
		in[i] = int(t)
	}
	b.ResetTimer()
	for range b.N {
		c.Clear()
		if _, err := c.Decode(in, 0, 128); err != nil {
			b.Fatal(err)
		}
	}
}

// scoringContext loads a model and a context of 256 tokens on 2 threads,
// both freed when the test ends.
func scoringContext(tb testing.TB, path string) (*Model, *Context) {
	m, err := Load(path, ModelParams{})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(m.Close)
	c, err := m.NewContext(ContextParams{Size: 256, Threads: 2})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(c.Close)
	return m, c
}

// gradientWindow is a window of n tokens of graphText, tokenized by m.
func gradientWindow(tb testing.TB, m *Model, n int) []int32 {
	toks, err := m.Tokenize(strings.Repeat(graphText+" ", 12), true)
	if err != nil || len(toks) < n {
		tb.Fatalf("%d tokens, %v", len(toks), err)
	}
	w := make([]int32, n)
	for i := range w {
		w[i] = int32(toks[i])
	}
	return w
}

// llamaLoss is llama.cpp's mean negative log-likelihood of the window's
// tokens after positions from … n−2, the graph's loss.
func llamaLoss(tb testing.TB, c *Context, window []int32, from int) float64 {
	in := make([]int, len(window))
	for i, tok := range window {
		in[i] = int(tok)
	}
	logits, err := c.Decode(in, 0, from)
	if err != nil {
		tb.Fatal(err)
	}
	var loss float64
	V, n := c.VocabSize(), len(window)-1-from
	for j := range n {
		row := logits[j*V : (j+1)*V]
		mx := float64(row[argmax(row)])
		var z float64
		for _, x := range row {
			z += math.Exp(float64(x) - mx)
		}
		loss += mx + math.Log(z) - float64(row[in[from+1+j]])
	}
	return loss / float64(n)
}

// benchWindow is gradientWindow with the base's tokenizer.
func benchWindow(b *testing.B) []int32 {
	m, err := Load(zoo.Model(zoo.Base), ModelParams{})
	if err != nil {
		b.Fatal(err)
	}
	defer m.Close()
	return gradientWindow(b, m, 256)
}

// TestGradientGQA: on generated llama models with grouped-query attention
// (4 query heads sharing 2 key-value heads) and rope frequency factors, two
// fine-tunes over their base, the graph's loss equals llama.cpp's on the
// merge written as an F32 file, and its gradient central differences of
// its own loss.
func TestGradientGQA(t *testing.T) {
	dir := t.TempDir()
	spec := synth.Spec{Arch: synth.Llama, Layers: 2, Heads: 4, KVHeads: 2, Seed: 3}
	base := filepath.Join(dir, "base.gguf")
	if err := spec.Write(base, "base"); err != nil {
		t.Fatal(err)
	}
	var sources []string
	for i := range 2 {
		p := filepath.Join(dir, fmt.Sprintf("ft%d.gguf", i))
		if err := spec.FineTune(uint64(10+i), 0.2).Write(p, fmt.Sprintf("ft%d", i)); err != nil {
			t.Fatal(err)
		}
		sources = append(sources, p)
	}
	gs, weights, err := GradientWeights(base, sources, func(_ string, s int) int { return s })
	if err != nil {
		t.Fatal(err)
	}
	if gs.KVHeads != 2 || gs.Heads != 4 {
		t.Fatalf("spec %+v", gs)
	}
	const n, from = 64, 32
	g, err := NewGradient(gs, weights, 2, n, from, 2)
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	coef := []float32{0.4, 0.7}
	r := &merge.Recipe{Method: "task_arithmetic", Base: base, OutType: "f32"}
	for i, s := range sources {
		r.Models = append(r.Models, merge.ModelRef{Model: s, Params: merge.Params{"weight": merge.Scalar(float64(coef[i]))}})
	}
	out := filepath.Join(dir, "merged.gguf")
	if _, _, err := merge.Run(context.Background(), r, out, Codec{}, merge.ExecOptions{}); err != nil {
		t.Fatal(err)
	}
	m, c := scoringContext(t, out)
	window := gradientWindow(t, m, n)
	want := llamaLoss(t, c, window, from)
	grad := make([]float32, 2)
	got, err := g.Window(coef, window, grad)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("loss: graph %.6f, llama.cpp %.6f; gradient %v", got, want, grad)
	if math.Abs(got-want) > 1e-4*want {
		t.Errorf("graph loss %.6f, llama.cpp %.6f", got, want)
	}
	checkDifferences(t, g, coef, window, grad, []int{0, 1})
}

// checkDifferences compares the gradient at coef (grad) with central
// differences of the graph's loss for the coefficients listed: within 3%
// or 2e-4.
func checkDifferences(t *testing.T, g *Gradient, coef []float32, window []int32, grad []float32, idx []int) {
	t.Helper()
	scratch := make([]float32, len(coef))
	const h = 0.01
	for _, i := range idx {
		c2 := append([]float32(nil), coef...)
		c2[i] += h
		lp, _ := g.Window(c2, window, scratch)
		c2[i] -= 2 * h
		lm, _ := g.Window(c2, window, scratch)
		fd := (lp - lm) / (2 * h)
		if math.Abs(fd-float64(grad[i])) > max(0.03*math.Abs(fd), 2e-4) {
			t.Errorf("coefficient %d: gradient %.6f, central difference %.6f", i, grad[i], fd)
		}
		t.Logf("coefficient %2d: gradient %+.6f, central difference %+.6f", i, grad[i], fd)
	}
}
