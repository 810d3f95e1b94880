package archtest

import (
	"bytes"
	"fmt"
	"maps"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/evomerge/evomerge/engine/eval"
	"github.com/evomerge/evomerge/engine/gguf"
	"github.com/evomerge/evomerge/engine/gguf/synth"
	"github.com/evomerge/evomerge/engine/llm"
	"github.com/evomerge/evomerge/engine/merge"
)

// quantSpec is a model of architecture a whose rows are multiples of
// 256, so every tensor can hold K-quant and IQ4_XS blocks.
func quantSpec(a synth.Arch, quant string) synth.Spec {
	s := synth.Spec{Arch: a, Layers: 2, Dim: 256, Heads: 4, KVHeads: 2, FFN: 256, Quant: quant, Seed: 11, Codec: llm.Codec{}}
	if a == synth.Gemma3 {
		s.Layers = 6 // its minimum (one global-attention layer)
	}
	return s
}

// dequantized writes a copy of the GGUF at path with every tensor decoded
// by ggml to F32: what a Python merge tool would work on.
func dequantized(t testing.TB, path, out string) {
	t.Helper()
	f, err := gguf.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := gguf.Header{Metadata: f.Metadata.Clone()}
	for _, ti := range f.Tensors {
		h.Tensors = append(h.Tensors, gguf.TensorInfo{Name: ti.Name, Shape: ti.Shape, Type: gguf.TypeF32})
	}
	fw, err := gguf.Create(out, h)
	if err != nil {
		t.Fatal(err)
	}
	defer fw.Abort()
	for _, ti := range f.Tensors {
		raw, err := f.ReadTensor(ti, nil)
		if err != nil {
			t.Fatal(err)
		}
		v := make([]float32, ti.Elements())
		if err := (llm.Codec{}).Decode(ti.Type, v, raw); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 4*len(v))
		if err := (llm.Codec{}).Encode(gguf.TypeF32, buf, v, int(ti.Shape[0])); err != nil {
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

func typesOf(t testing.TB, path string) map[string]gguf.TensorInfo {
	t.Helper()
	f, err := gguf.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := map[string]gguf.TensorInfo{}
	for _, ti := range f.Tensors {
		out[ti.Name] = ti
	}
	return out
}

func sameTensors(t *testing.T, a, b string) {
	t.Helper()
	fa, err := gguf.Open(a)
	if err != nil {
		t.Fatal(err)
	}
	defer fa.Close()
	fb, err := gguf.Open(b)
	if err != nil {
		t.Fatal(err)
	}
	defer fb.Close()
	if len(fa.Tensors) != len(fb.Tensors) {
		t.Fatalf("%d tensors against %d", len(fa.Tensors), len(fb.Tensors))
	}
	for _, ta := range fa.Tensors {
		tb, ok := fb.Tensor(ta.Name)
		if !ok || tb.Type != ta.Type || !slices.Equal(ta.Shape, tb.Shape) {
			t.Fatalf("%s: %v %s against %v %s", ta.Name, ta.Shape, ta.Type, tb.Shape, tb.Type)
		}
		ra, _ := fa.ReadTensor(ta, nil)
		rb, _ := fb.ReadTensor(tb, nil)
		if !bytes.Equal(ra, rb) {
			t.Errorf("%s (%s) differs between the merge of the quantized sources and the merge of their dequantized copies", ta.Name, ta.Type)
		}
	}
}

// TestQuantizedInputs: for every architecture, sources as people download
// them — llama-quantize's per-tensor mixes (Q4_K_M: Q4_K with Q6_K for the
// output and some attn_v and ffn_down; Q5_K_M; Q6_K; Q8_0; Q4_0; IQ4_XS),
// BF16, F16, F32, and types mixed across sources — load in llama.cpp and
// merge exactly as their ggml-dequantized F32 copies do: byte-identical
// when the output is F32, and identical again when both merges write the
// sources' type; out_type keep keeps the base's per-tensor types.
func TestQuantizedInputs(t *testing.T) {
	p := newPool(t)
	cases := map[string][]string{} // name → types of the base and the fine-tunes
	for _, q := range synth.Quants() {
		cases[q] = []string{q, q}
	}
	cases["mixed"] = []string{"Q4_K_M", "IQ4_XS", "BF16"}
	names := slices.Sorted(maps.Keys(cases))
	for _, a := range synth.Archs() {
		for _, name := range names {
			quants := cases[name]
			t.Run(string(a)+"/"+name, func(t *testing.T) { quantCell(t, p, a, name, quants) })
		}
	}
}

func quantCell(t *testing.T, p *eval.Pool, a synth.Arch, name string, quants []string) {
	dir := t.TempDir()
	var quantized, plain []string
	for i, q := range quants {
		s := quantSpec(a, q)
		if i > 0 {
			s = s.FineTune(uint64(200+i), 0.1)
		}
		path := filepath.Join(dir, fmt.Sprintf("m%d-%s.gguf", i, q))
		if err := s.Write(path, fmt.Sprintf("m%d", i)); err != nil {
			t.Fatal(err)
		}
		f32 := filepath.Join(dir, fmt.Sprintf("m%d-%s-f32.gguf", i, q))
		dequantized(t, path, f32)
		quantized, plain = append(quantized, path), append(plain, f32)
	}
	srcPPL := perplexity(t, p, quantized[0])
	if strings.HasSuffix(name, "_K_M") {
		kinds := map[gguf.Type]bool{}
		for _, ti := range typesOf(t, quantized[0]) {
			kinds[ti.Type] = true
		}
		if len(kinds) < 3 { // F32 vectors and at least two block types
			t.Fatalf("%s source holds only %v", name, kinds)
		}
	}
	recipe := func(models []string, method, outType string) *merge.Recipe {
		r := &merge.Recipe{Method: method, Base: models[0], OutType: outType, Seed: 3}
		if method == "slerp" {
			r.Params = merge.Params{"t": merge.Scalar(0.35)}
			r.Models = []merge.ModelRef{{Model: models[1]}}
			return r
		}
		for i, m := range models[1:] {
			r.Models = append(r.Models, merge.ModelRef{Model: m, Params: merge.Params{
				"weight": merge.Scalar(0.4 + 0.2*float64(i)), "density": merge.Scalar(0.5)}})
		}
		return r
	}
	outType := strings.TrimSuffix(strings.ToLower(quants[0]), "_m") // q4_k_m → q4_k
	merges := []struct{ method, out string }{{"ties", "f32"}, {"slerp", "f32"}}
	if outType != "f32" {
		merges = append(merges, struct{ method, out string }{"ties", outType})
	}
	for _, c := range merges {
		label := c.method + "-" + c.out
		q := mergeTo(t, recipe(quantized, c.method, c.out), dir, label+"-q")
		f := mergeTo(t, recipe(plain, c.method, c.out), dir, label+"-f")
		sameTensors(t, q, f)
		if c.out == outType && c.method == "ties" {
			want, _ := gguf.ParseType(c.out)
			for n, ti := range typesOf(t, q) {
				if len(ti.Shape) >= 2 && ti.Type != want {
					t.Errorf("%s: %s written as %s, want %s", label, n, ti.Type, want)
				}
			}
			t.Logf("%s %s: source perplexity %.1f, %s merge %.1f", a, name, srcPPL, label, perplexity(t, p, q))
		}
	}
	keep := mergeTo(t, recipe(quantized, "ties", "keep"), dir, "keep")
	got, want := typesOf(t, keep), typesOf(t, quantized[0])
	for n, ti := range want {
		if got[n].Type != ti.Type {
			t.Errorf("out_type keep: %s is %s, the base's %s", n, got[n].Type, ti.Type)
		}
	}
}
