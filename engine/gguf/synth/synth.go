// Package synth writes small GGUF models with deterministic pseudo-random
// weights, for tests and benchmarks that need models with known contents.
//
// Spec (arch.go) generates real architectures — Llama 3, Qwen2, Gemma 2,
// Gemma 3, Phi-3 — with the exact tensors, metadata and a valid
// vocabulary (vocab.go) that llama.cpp loads and runs, in any tensor type
// or in llama-quantize's per-tensor mixes (Q4_K_M …), and derives
// fine-tunes of one base (Spec.FineTune). A typical use:
//
//	base := synth.Spec{Arch: synth.Qwen2, Seed: 1}
//	base.Write(dir+"/base.gguf", "base")
//	for i := range 3 {
//		ft := base.FineTune(uint64(100+i), 0.05)
//		ft.BaseModels = []synth.BaseModel{{Name: "base", Organization: "evomerge"}}
//		ft.Write(fmt.Sprintf("%s/ft%d.gguf", dir, i), fmt.Sprintf("ft%d", i))
//	}
//
// Model is a minimal llama-shaped layout (no key/value projections) that
// llama.cpp does not load: it serves tests of the merge arithmetic and the
// search, which recompute expected values from Values.
package synth

import (
	"fmt"
	"math/rand/v2"

	"github.com/evomerge/evomerge/engine/gguf"
	"github.com/evomerge/evomerge/kernels"
)

// Model describes a synthetic model. Zero fields take small defaults.
type Model struct {
	Layers, Dim, FFN, Vocab int
	Type                    gguf.Type // type of 2-D tensors (norms are F32)
	Seed                    uint64    // selects the weights
	Tokens                  []string  // vocabulary (default "t0", "t1", ...)
	Arch                    string    // default "llama"
	Codec                   kernels.Codec
}

func (m Model) withDefaults() Model {
	if m.Layers == 0 {
		m.Layers = 4
	}
	if m.Dim == 0 {
		m.Dim = 64
	}
	if m.FFN == 0 {
		m.FFN = 96
	}
	if m.Vocab == 0 {
		m.Vocab = 40
	}
	if m.Arch == "" {
		m.Arch = "llama"
	}
	if m.Codec == nil {
		m.Codec = kernels.Native{}
	}
	return m
}

// Tensors lists the model's tensors in file order.
func (m Model) Tensors() []gguf.TensorInfo {
	m = m.withDefaults()
	d, f := uint64(m.Dim), uint64(m.FFN)
	ts := []gguf.TensorInfo{{Name: "token_embd.weight", Shape: []uint64{d, uint64(m.Vocab)}, Type: m.Type}}
	for l := range m.Layers {
		p := fmt.Sprintf("blk.%d.", l)
		ts = append(ts,
			gguf.TensorInfo{Name: p + "attn_norm.weight", Shape: []uint64{d}, Type: gguf.TypeF32},
			gguf.TensorInfo{Name: p + "attn_q.weight", Shape: []uint64{d, d}, Type: m.Type},
			gguf.TensorInfo{Name: p + "attn_output.weight", Shape: []uint64{d, d}, Type: m.Type},
			gguf.TensorInfo{Name: p + "ffn_norm.weight", Shape: []uint64{d}, Type: gguf.TypeF32},
			gguf.TensorInfo{Name: p + "ffn_up.weight", Shape: []uint64{d, f}, Type: m.Type},
			gguf.TensorInfo{Name: p + "ffn_down.weight", Shape: []uint64{f, d}, Type: m.Type},
		)
	}
	return append(ts, gguf.TensorInfo{Name: "output_norm.weight", Shape: []uint64{d}, Type: gguf.TypeF32})
}

// Values is the float32 content of a tensor of the model with this seed,
// before encoding: N(0, 0.5²) draws from a stream keyed by seed and name.
func Values(seed uint64, name string, n int) []float32 {
	h := uint64(14695981039346656037)
	for _, c := range []byte(name) {
		h = (h ^ uint64(c)) * 1099511628211
	}
	rng := rand.New(rand.NewPCG(seed, h))
	v := make([]float32, n)
	for i := range v {
		v[i] = float32(rng.NormFloat64() * 0.5)
	}
	return v
}

// Header is the model's GGUF header: llama metadata, a per-layer array
// (llama.per_layer_test = 100, 101, …) and a vocabulary.
func (m Model) Header(name string) gguf.Header {
	m = m.withDefaults()
	toks := m.Tokens
	if toks == nil {
		for i := range m.Vocab {
			toks = append(toks, fmt.Sprintf("t%d", i))
		}
	}
	perLayer := make([]uint32, m.Layers)
	for i := range perLayer {
		perLayer[i] = uint32(100 + i)
	}
	return gguf.Header{Metadata: gguf.Metadata{
		{Key: "general.architecture", Value: m.Arch},
		{Key: "general.name", Value: name},
		{Key: m.Arch + ".block_count", Value: uint32(m.Layers)},
		{Key: m.Arch + ".per_layer_test", Value: gguf.Array{Elem: gguf.ValueUint32, Values: perLayer}},
		{Key: "tokenizer.ggml.tokens", Value: gguf.Array{Elem: gguf.ValueString, Values: toks}},
	}, Tensors: m.Tensors()}
}

// Write writes the model to path atomically.
func (m Model) Write(path, name string) error {
	m = m.withDefaults()
	h := m.Header(name)
	fw, err := gguf.Create(path, h)
	if err != nil {
		return err
	}
	defer fw.Abort()
	for _, ti := range h.Tensors {
		vals := Values(m.Seed, ti.Name, int(ti.Elements()))
		buf := make([]byte, ti.Bytes())
		if err := m.Codec.Encode(ti.Type, buf, vals, int(ti.Shape[0])); err != nil {
			return fmt.Errorf("synth: %s: %w", ti.Name, err)
		}
		if err := fw.WriteTensor(ti.Name, buf); err != nil {
			return err
		}
	}
	return fw.Commit()
}

// Random writes to dst the model at src with every matrix (2-D tensor)
// replaced by N(0, sd²) draws from a stream keyed by seed: a random-weight
// model that llama.cpp loads like src. On a 15M-parameter llama, sd 2
// makes the perplexity overflow to +Inf and sd 20 makes the logits NaN:
// the broken models evaluation must report rather than fail on.
func Random(src, dst string, sd float64, seed uint64) error {
	f, err := gguf.Open(src)
	if err != nil {
		return err
	}
	defer f.Close()
	fw, err := gguf.Create(dst, f.Header)
	if err != nil {
		return err
	}
	defer fw.Abort()
	rng := rand.New(rand.NewPCG(seed, 0x5eed))
	var codec kernels.Native
	for _, ti := range f.Tensors {
		raw, err := f.ReadTensor(ti, nil)
		if err != nil {
			return err
		}
		if len(ti.Shape) == 2 {
			vals := make([]float32, ti.Elements())
			for i := range vals {
				vals[i] = float32(rng.NormFloat64() * sd)
			}
			if err := codec.Encode(ti.Type, raw, vals, int(ti.Shape[0])); err != nil {
				return fmt.Errorf("synth: %s: %w", ti.Name, err)
			}
		}
		if err := fw.WriteTensor(ti.Name, raw); err != nil {
			return err
		}
	}
	return fw.Commit()
}
