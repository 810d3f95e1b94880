package archtest

import (
	"fmt"
	"path/filepath"
	"testing"

	"github.com/evomerge/evomerge/engine/gguf"
	"github.com/evomerge/evomerge/engine/gguf/synth"
	"github.com/evomerge/evomerge/engine/llm"
	"github.com/evomerge/evomerge/engine/merge"
)

// TestMergedVocabularies: fine-tunes that added tokens (a chat marker as a
// control token, a tool tag as a user-defined one) merged with
// tokenizer_source union, base or one of them: llama.cpp loads the
// output, evaluates it, and tokenizes each added token the output keeps
// as that single token — the vocabulary, token types and special ids
// travelled with it.
func TestMergedVocabularies(t *testing.T) {
	p := newPool(t)
	for _, a := range synth.Archs() {
		t.Run(string(a), func(t *testing.T) {
			dir := t.TempDir()
			spec := synth.Spec{Arch: a, Type: gguf.TypeF16, Seed: 2}
			v := synth.DefaultVocab(a)
			v0 := v.WithAdded(synth.TokenControl, "<|tool_call|>")
			v1 := v.WithAdded(synth.TokenUserDefined, "<think>")
			paths := make([]string, 3)
			for i, voc := range []synth.Vocab{v, v0, v1} {
				s := spec
				if i > 0 {
					s = spec.FineTune(uint64(300+i), 0.1)
				}
				s.Vocab = &voc
				paths[i] = filepath.Join(dir, fmt.Sprintf("m%d.gguf", i))
				if err := s.Write(paths[i], fmt.Sprintf("m%d", i)); err != nil {
					t.Fatal(err)
				}
			}
			for _, c := range []struct {
				source string
				has    []string // added tokens the output must tokenize as one token
			}{
				{"union", []string{"<|tool_call|>", "<think>"}},
				{"base", nil},
				{paths[2], []string{"<think>"}},
			} {
				r := &merge.Recipe{Method: "ties", Base: paths[0], TokenizerSource: c.source, Models: []merge.ModelRef{
					{Model: paths[1], Params: merge.Params{"weight": merge.Scalar(0.5), "density": merge.Scalar(0.7)}},
					{Model: paths[2], Params: merge.Params{"weight": merge.Scalar(0.5), "density": merge.Scalar(0.7)}},
				}}
				name := filepath.Base(c.source)
				out := mergeTo(t, r, dir, "merged-"+name)
				ppl := perplexity(t, p, out)
				m, err := llm.Load(out, llm.ModelParams{})
				if err != nil {
					t.Fatal(err)
				}
				want := v.Len() + len(c.has)
				if m.VocabSize() != want {
					t.Errorf("%s: llama.cpp sees %d tokens, want %d", name, m.VocabSize(), want)
				}
				for _, tok := range c.has {
					ids, err := m.TokenizeSpecial(tok)
					if err != nil || len(ids) != 1 || ids[0] < v.Len() {
						t.Errorf("%s: %q tokenizes as %v (%v), want one added token", name, tok, ids, err)
					} else if tok == "<think>" && m.Piece(ids[0]) != tok { // a control token's piece is empty
						t.Errorf("%s: %q decodes as %q", name, tok, m.Piece(ids[0]))
					}
				}
				plain, _ := m.TokenizeSpecial("<think>")
				t.Logf("%s %s: %d tokens, perplexity %.1f, \"<think>\" → %d token(s)", a, name, m.VocabSize(), ppl, len(plain))
				m.Close()
			}
			// A run over them needs no tokenizer_source: the vocabularies
			// differ only in added tokens, so candidates keep the base's.
			t.Run("tournament", func(t *testing.T) {
				// Fine-tunes with added tokens: no gradient graph (the
				// embeddings differ in shape), so ES.
				best := tournament(t, p, family{base: paths[0], tunes: paths[1:]}, "es")
				g, err := gguf.Open(best)
				if err != nil {
					t.Fatal(err)
				}
				defer g.Close()
				if toks, _ := g.Metadata.Strings("tokenizer.ggml.tokens"); len(toks) != v.Len() {
					t.Errorf("best.gguf has %d tokens, the base %d", len(toks), v.Len())
				}
			})
		})
	}
}
