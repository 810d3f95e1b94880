package archtest

import (
	"bytes"
	"fmt"
	"maps"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/evomerge/evomerge/engine/gguf"
	"github.com/evomerge/evomerge/engine/gguf/synth"
	"github.com/evomerge/evomerge/engine/llm"
	"github.com/evomerge/evomerge/engine/merge"
)

// quantSpec is a qwen2 model whose rows are multiples of 256, so every
// tensor can hold K-quant and IQ4_XS blocks.
func quantSpec(quant string) synth.Spec {
	return synth.Spec{Arch: synth.Qwen2, Layers: 4, Dim: 256, Heads: 4, KVHeads: 2, FFN: 512,
		Quant: quant, Seed: 11, Codec: llm.Codec{}}
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

func typesOf(t testing.TB, path string) map[string]gguf.Type {
	t.Helper()
	f, err := gguf.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := map[string]gguf.Type{}
	for _, ti := range f.Tensors {
		out[ti.Name] = ti.Type
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

// TestQuantizedInputs: sources as people download them — llama-quantize's
// per-tensor mixes (Q4_K_M: Q4_K with Q6_K for the output and some attn_v
// and ffn_down; Q5_K_M; Q6_K; Q8_0; Q4_0; IQ4_XS), BF16, F16, and a mix of
// types across sources — load in llama.cpp and merge exactly as their
// dequantized F32 copies do: byte-identical when the output is F32, and
// identical again when both merges write a quantized type.
func TestQuantizedInputs(t *testing.T) {
	p := newPool(t)
	cases := map[string][]string{} // name → quant of base, ft0, ft1, ft2
	for _, q := range synth.Quants() {
		if q != "F32" {
			cases[q] = []string{q, q, q, q}
		}
	}
	cases["mixed"] = []string{"Q4_K_M", "Q8_0", "IQ4_XS", "BF16"}
	names := make([]string, 0, len(cases))
	for n := range cases {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, name := range names {
		quants := cases[name]
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			var quantized, plain []string
			for i, q := range quants {
				s := quantSpec(q)
				if i > 0 {
					s = s.FineTune(uint64(200+i), 0.1)
				}
				path := filepath.Join(dir, fmt.Sprintf("m%d-%s.gguf", i, q))
				if err := s.Write(path, fmt.Sprintf("m%d", i)); err != nil {
					t.Fatal(err)
				}
				if i == 0 {
					t.Logf("%s: perplexity %.1f", filepath.Base(path), perplexity(t, p, path))
				}
				f32 := filepath.Join(dir, fmt.Sprintf("m%d-%s-f32.gguf", i, q))
				dequantized(t, path, f32)
				quantized, plain = append(quantized, path), append(plain, f32)
			}
			if strings.HasSuffix(name, "_K_M") {
				kinds := map[gguf.Type]bool{}
				for _, typ := range typesOf(t, quantized[0]) {
					kinds[typ] = true
				}
				if len(kinds) < 3 { // F32 vectors and at least two block types
					t.Fatalf("%s source holds only %v", name, kinds)
				}
			}
			recipe := func(models []string, method, outType string) *merge.Recipe {
				r := &merge.Recipe{Method: method, Base: models[0], OutType: outType, Seed: 3}
				for i, m := range models[1:] {
					ps := merge.Params{"weight": merge.Scalar(0.2 + 0.2*float64(i))}
					if method == "ties" {
						ps["density"] = merge.Scalar(0.5)
					}
					r.Models = append(r.Models, merge.ModelRef{Model: m, Params: ps})
				}
				if method == "slerp" {
					r.Models = r.Models[:1]
					r.Models[0].Params = nil
					r.Params = merge.Params{"t": merge.Scalar(0.35)}
				}
				return r
			}
			outType := strings.TrimSuffix(strings.ToLower(quants[0]), "_m") // q4_k_m → q4_k
			for _, method := range []string{"ties", "slerp"} {
				for _, ot := range []string{"f32", outType} {
					label := method + "-" + ot
					a := mergeTo(t, recipe(quantized, method, ot), dir, label+"-q")
					b := mergeTo(t, recipe(plain, method, ot), dir, label+"-f")
					sameTensors(t, a, b)
					if ot != "f32" {
						for n, typ := range typesOf(t, a) {
							want, _ := gguf.ParseType(ot)
							if !strings.HasSuffix(n, "norm.weight") && !strings.HasSuffix(n, ".bias") && typ != want {
								t.Errorf("%s: %s written as %s, want %s", label, n, typ, want)
							}
						}
					}
					t.Logf("%s: perplexity %.1f", label, perplexity(t, p, a))
				}
			}
			keep := mergeTo(t, recipe(quantized, "ties", "keep"), dir, "keep")
			if got, want := typesOf(t, keep), typesOf(t, quantized[0]); !maps.Equal(got, want) {
				t.Errorf("out_type keep: types %v, the base has %v", got, want)
			}
		})
	}
}
