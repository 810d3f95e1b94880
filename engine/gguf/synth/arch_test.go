package synth

import (
	"bytes"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/evomerge/evomerge/engine/gguf"
)

// TestArchLayouts checks each architecture's tensors against the shapes
// llama.cpp's load_tensors creates (ggml order: row length first).
func TestArchLayouts(t *testing.T) {
	const d, f, h, kv, hd = 64, 128, 4, 2, 16
	cases := []struct {
		arch Arch
		tied bool
		want map[string][]uint64 // a sample of tensors
		none []string            // tensors that must be absent
	}{
		{Llama, false, map[string][]uint64{
			"rope_freqs.weight": {hd / 2}, "blk.0.attn_q.weight": {d, h * hd}, "blk.0.attn_k.weight": {d, kv * hd},
			"blk.0.attn_v.weight": {d, kv * hd}, "blk.3.ffn_gate.weight": {d, f}, "output.weight": {d, 0},
		}, []string{"blk.0.attn_q.bias"}},
		{Qwen2, true, map[string][]uint64{
			"blk.1.attn_q.bias": {d}, "blk.1.attn_k.bias": {kv * hd}, "blk.1.attn_v.bias": {kv * hd},
		}, []string{"output.weight", "rope_freqs.weight"}},
		{Qwen2, false, map[string][]uint64{"output.weight": {d, 0}}, nil},
		{Gemma2, false, map[string][]uint64{
			"blk.0.post_attention_norm.weight": {d}, "blk.0.post_ffw_norm.weight": {d},
		}, []string{"output.weight", "blk.0.attn_q_norm.weight"}},
		{Gemma3, false, map[string][]uint64{
			"blk.5.attn_q_norm.weight": {hd}, "blk.5.attn_k_norm.weight": {hd}, "blk.5.post_ffw_norm.weight": {d},
		}, []string{"output.weight"}},
		{Phi3, false, map[string][]uint64{
			"blk.0.attn_qkv.weight": {d, d + 2*kv*hd}, "blk.0.ffn_up.weight": {d, 2 * f}, "blk.0.ffn_down.weight": {f, d},
		}, []string{"blk.0.attn_q.weight", "blk.0.ffn_gate.weight"}},
	}
	for _, c := range cases {
		s := Spec{Arch: c.arch, Tied: c.tied, Type: gguf.TypeF16}
		h := s.Header("x")
		vocab := uint64(s.withDefaults().Vocab.Len())
		for name, shape := range c.want {
			ti, ok := h.Tensor(name)
			if len(shape) == 2 && shape[1] == 0 {
				shape = []uint64{shape[0], vocab}
			}
			if !ok || !slices.Equal(ti.Shape, shape) {
				t.Errorf("%s tied=%v: %s is %v (present %v), want %v", c.arch, c.tied, name, ti.Shape, ok, shape)
			}
		}
		for _, name := range c.none {
			if _, ok := h.Tensor(name); ok {
				t.Errorf("%s tied=%v: unexpected %s", c.arch, c.tied, name)
			}
		}
		if n, _ := h.Metadata.ArchUint("block_count"); int(n) != s.withDefaults().Layers {
			t.Errorf("%s: block_count %d", c.arch, n)
		}
		for _, ti := range h.Tensors {
			if (len(ti.Shape) == 1) != (ti.Type == gguf.TypeF32) {
				t.Errorf("%s: %s %v is %s", c.arch, ti.Name, ti.Shape, ti.Type)
			}
		}
	}
}

// TestFineTunesShareTheBase: fine-tunes of one Spec differ from it by
// deltas of the requested relative size; files are deterministic.
func TestFineTunesShareTheBase(t *testing.T) {
	base := Spec{Arch: Qwen2, Seed: 7, Type: gguf.TypeF32}
	ft := base.FineTune(100, 0.05)
	for _, ti := range base.Tensors() {
		b, x := base.Values(ti), ft.Values(ti)
		var num, den float64
		for i := range b {
			num += float64(x[i]-b[i]) * float64(x[i]-b[i])
			den += float64(b[i]) * float64(b[i])
		}
		rel := math.Sqrt(num / den)
		switch {
		case ti.Name == "rope_freqs.weight" && rel != 0:
			t.Errorf("%s changed by fine-tuning", ti.Name)
		case strings.HasSuffix(ti.Name, "norm.weight") && (rel < 0.001 || rel > 0.02):
			t.Errorf("%s: relative change %.4f, want ≈ 0.005 (0.05 × spread 0.1 around 1)", ti.Name, rel)
		case !strings.HasSuffix(ti.Name, "norm.weight") && (rel < 0.03 || rel > 0.08):
			t.Errorf("%s: relative change %.4f, want ≈ 0.05", ti.Name, rel)
		}
	}
	dir := t.TempDir()
	var files [][]byte
	for i := range 2 {
		p := filepath.Join(dir, string(rune('a'+i))+".gguf")
		if err := ft.Write(p, "ft"); err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, b)
	}
	if !bytes.Equal(files[0], files[1]) {
		t.Error("two writes of one Spec differ")
	}
}

// TestAddedTokensKeepRows: a vocabulary with added tokens keeps the rows
// of the tokens it shares (streams are prefix-stable), so "the same base
// plus chat markers" is what a generated fine-tune with added tokens is.
func TestAddedTokensKeepRows(t *testing.T) {
	v := DefaultVocab(Qwen2)
	more := v.WithAdded(TokenUserDefined, "<tool>", "</tool>")
	a := Spec{Arch: Qwen2, Seed: 3, Vocab: &v}
	b := Spec{Arch: Qwen2, Seed: 3, Vocab: &more}
	ha, hb := a.Header("a"), b.Header("b")
	ea, _ := ha.Tensor("token_embd.weight")
	eb, _ := hb.Tensor("token_embd.weight")
	if eb.Shape[1] != ea.Shape[1]+2 {
		t.Fatalf("embedding rows %d, want %d", eb.Shape[1], ea.Shape[1]+2)
	}
	va, vb := a.Values(ea), b.Values(eb)
	if !slices.Equal(va, vb[:len(va)]) {
		t.Error("the shared rows differ")
	}
	toks, _ := hb.Metadata.Strings("tokenizer.ggml.tokens")
	if toks[len(toks)-1] != "</tool>" {
		t.Errorf("last token %q", toks[len(toks)-1])
	}
}

// TestVocabularies: tokens are unique, every BPE merge joins two tokens
// into a third, special ids name the conventional tokens, and the
// SentencePiece vocabularies have all 256 byte-fallback tokens.
func TestVocabularies(t *testing.T) {
	for _, a := range Archs() {
		v := DefaultVocab(a)
		if err := v.check(); err != nil {
			t.Fatalf("%s: %v", a, err)
		}
		has := map[string]bool{}
		for _, tok := range v.Tokens {
			has[tok] = true
		}
		switch v.Model {
		case "gpt2":
			if len(v.Merges) < 100 {
				t.Errorf("%s: only %d merges", a, len(v.Merges))
			}
			for _, m := range v.Merges {
				l, r, ok := strings.Cut(m, " ")
				if !ok || !has[l] || !has[r] || !has[l+r] {
					t.Errorf("%s: merge %q does not join two tokens into a third", a, m)
				}
			}
		case "llama":
			for b := range 256 {
				if i := v.ID(byteToken(b)); i < 0 || v.Types[i] != TokenByte {
					t.Errorf("%s: byte token %s missing", a, byteToken(b))
				}
			}
		}
		if v.BOS < 0 || v.EOS < 0 || v.Types[v.EOS] != TokenControl {
			t.Errorf("%s: BOS %d, EOS %d", a, v.BOS, v.EOS)
		}
		if v.ChatTemplate == "" {
			t.Errorf("%s: no chat template", a)
		}
	}
}

func byteToken(b int) string { return fmt.Sprintf("<0x%02X>", b) }

// TestQuantMixes: the per-tensor types follow llama-quantize's choices.
func TestQuantMixes(t *testing.T) {
	s := Spec{Arch: Llama, Layers: 8, Dim: 256, FFN: 512, Quant: "Q4_K_M"}
	types := map[string]gguf.Type{}
	for _, ti := range s.Tensors() {
		types[ti.Name] = ti.Type
	}
	want := map[string]gguf.Type{
		"token_embd.weight": gguf.TypeQ4_K, "output.weight": gguf.TypeQ6_K, "output_norm.weight": gguf.TypeF32,
		"blk.0.attn_q.weight": gguf.TypeQ4_K, "blk.0.attn_v.weight": gguf.TypeQ6_K, "blk.1.attn_v.weight": gguf.TypeQ4_K,
		"blk.3.attn_v.weight": gguf.TypeQ6_K, "blk.7.ffn_down.weight": gguf.TypeQ6_K, "blk.2.ffn_down.weight": gguf.TypeQ4_K,
		"blk.2.ffn_up.weight": gguf.TypeQ4_K, "blk.2.attn_norm.weight": gguf.TypeF32,
	}
	for name, typ := range want {
		if types[name] != typ {
			t.Errorf("Q4_K_M %s: %s, want %s", name, types[name], typ)
		}
	}
	tied := Spec{Arch: Gemma3, Dim: 256, FFN: 512, HeadDim: 64, Quant: "IQ4_XS"}
	for _, ti := range tied.Tensors() {
		if ti.Name == "token_embd.weight" && ti.Type != gguf.TypeQ6_K {
			t.Errorf("IQ4_XS tied embedding: %s, want Q6_K (it is the output)", ti.Type)
		}
	}
	small := Spec{Arch: Llama, Quant: "Q6_K"} // rows of 64: K-quants cannot hold them
	for _, ti := range small.Tensors() {
		if len(ti.Shape) == 2 && ti.Type != gguf.TypeQ8_0 {
			t.Errorf("Q6_K with rows of %d: %s is %s, want the Q8_0 fallback", ti.Shape[0], ti.Name, ti.Type)
		}
	}
}
