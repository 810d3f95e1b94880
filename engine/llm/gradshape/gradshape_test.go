package gradshape

import (
	"errors"
	"path/filepath"
	"testing"

	"github.com/evomerge/evomerge/engine/gguf"
	"github.com/evomerge/evomerge/engine/gguf/synth"
)

// TestOf: a llama model's shape is read from its metadata, grouped-query
// attention included; other architectures, experts, heads that do not
// divide and incomplete metadata are ErrArch.
func TestOf(t *testing.T) {
	md := synth.Spec{Arch: synth.Llama, Heads: 4, KVHeads: 2}.Header("llama").Metadata
	s, err := Of(md)
	if err != nil {
		t.Fatal(err)
	}
	if s.Heads != 4 || s.KVHeads != 2 || s.Layers != 4 || s.Embd != 64 || s.Vocab == 0 || s.RopeBase != 500000 {
		t.Errorf("spec %+v", s)
	}
	for _, c := range []struct {
		name string
		md   gguf.Metadata
	}{
		{"qwen2", synth.Spec{Arch: synth.Qwen2}.Header("qwen2").Metadata},
		{"experts", md.Clone().Set("llama.expert_count", uint32(8))},
		{"key-value heads that do not divide the heads", md.Clone().Set("llama.attention.head_count_kv", uint32(3))},
		{"heads of another width", md.Clone().Set("llama.attention.key_length", uint32(32))},
		{"no width", md.Clone().Delete("llama.embedding_length")},
	} {
		if _, err := Of(c.md); !errors.Is(err, ErrArch) {
			t.Errorf("%s: %v, want ErrArch", c.name, err)
		}
	}
}

// TestCheck: a generated llama file is covered, with its rope frequency
// factors and untied output; a tensor outside the graph's block (a bias)
// and a qwen2 file are not.
func TestCheck(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct {
		arch synth.Arch
		ok   bool
	}{{synth.Llama, true}, {synth.Qwen2, false}} {
		p := filepath.Join(dir, string(c.arch)+".gguf")
		if err := (synth.Spec{Arch: c.arch, Layers: 2}).Write(p, string(c.arch)); err != nil {
			t.Fatal(err)
		}
		f, err := gguf.Open(p)
		if err != nil {
			t.Fatal(err)
		}
		_, err = Check(f)
		f.Close()
		if (err == nil) != c.ok || (err != nil && !errors.Is(err, ErrArch)) {
			t.Errorf("%s: %v", c.arch, err)
		}
	}
	s := Spec{Layers: 2}
	if err := Covers(s, []string{"token_embd.weight", "blk.1.ffn_down.weight", "rope_freqs.weight"}); err != nil {
		t.Error(err)
	}
	if err := Covers(s, []string{"blk.0.attn_q.bias"}); !errors.Is(err, ErrArch) {
		t.Errorf("a bias: %v", err)
	}
	if err := Covers(s, []string{"blk.2.attn_q.weight"}); !errors.Is(err, ErrArch) {
		t.Errorf("a block beyond the layers: %v", err)
	}
}

// TestSame: a fine-tune has the base's tensors; one with added tokens
// (more embedding rows) or another depth does not.
func TestSame(t *testing.T) {
	dir := t.TempDir()
	spec := synth.Spec{Arch: synth.Llama, Layers: 2, Seed: 1}
	open := func(name string, s synth.Spec) *gguf.File {
		p := filepath.Join(dir, name+".gguf")
		if err := s.Write(p, name); err != nil {
			t.Fatal(err)
		}
		f, err := gguf.Open(p)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { f.Close() })
		return f
	}
	base := open("base", spec)
	if err := Same(base, open("tune", spec.FineTune(2, 0.1))); err != nil {
		t.Error(err)
	}
	added := spec
	v := synth.DefaultVocab(synth.Llama).WithAdded(synth.TokenControl, "<think>")
	added.Vocab = &v
	deeper := spec
	deeper.Layers = 3
	for name, s := range map[string]synth.Spec{"added tokens": added, "deeper": deeper} {
		if err := Same(base, open(name, s)); !errors.Is(err, ErrArch) {
			t.Errorf("%s: %v, want ErrArch", name, err)
		}
	}
}
