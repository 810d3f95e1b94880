package evolve

import (
	"math/rand/v2"
	"path/filepath"
	"strings"
	"testing"

	"github.com/evomerge/evomerge/engine/config"
	"github.com/evomerge/evomerge/engine/gguf/synth"
)

// TestRunTokenizerSource: a run over fine-tunes that added tokens keeps
// the base's vocabulary unless told otherwise, every recipe naming the
// base's file (linear candidates do not include the base); a configured
// source (a model's name) reaches every recipe as its path; unrelated vocabularies
// stop the run before it starts, naming the first differing token.
func TestRunTokenizerSource(t *testing.T) {
	dir := t.TempDir()
	v := synth.DefaultVocab(synth.Qwen2)
	added := v.WithAdded(synth.TokenControl, "<|tool_call|>")
	swapped := synth.DefaultVocab(synth.Qwen2)
	swapped.Tokens[300], swapped.Tokens[301] = swapped.Tokens[301], swapped.Tokens[300]
	write := func(name string, voc synth.Vocab) string {
		p := filepath.Join(dir, name+".gguf")
		if err := (synth.Spec{Arch: synth.Qwen2, Layers: 2, Vocab: &voc}).Write(p, name); err != nil {
			t.Fatal(err)
		}
		return p
	}
	base, a, b, other := write("base", v), write("a", added), write("b", v), write("other", swapped)
	cfg := func(tokenizer string, models map[string]string) (config.Config, map[string]string) {
		c := config.Default()
		c.Models = nil
		for _, name := range []string{"a", "b", "other", "base"} {
			if p, ok := models[name]; ok {
				c.Models = append(c.Models, config.Model{Name: name, Path: p})
			}
		}
		c.Merge.Base = "base"
		c.Merge.TokenizerSource = tokenizer
		return c, models
	}
	cases := []struct {
		name, tokenizer string
		models          map[string]string
		want, err       string
	}{
		{"identical", "", map[string]string{"b": b, "base": base}, "", ""},
		{"added tokens", "", map[string]string{"a": a, "b": b, "base": base}, base, ""},
		{"base", "base", map[string]string{"a": a, "b": b, "base": base}, base, ""},
		{"named", "a", map[string]string{"a": a, "b": b, "base": base}, a, ""},
		{"union", "union", map[string]string{"a": a, "b": b, "base": base}, "union", ""},
		{"unrelated", "", map[string]string{"other": other, "base": base}, "",
			`vocabulary unrelated to ` + base + `'s (token 300 is "` + v.Tokens[300] + `" there, "` + v.Tokens[301] + `" here)`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			conf, paths := cfg(c.tokenizer, c.models)
			if ps := conf.Validate(); len(ps) > 0 {
				t.Fatal(ps.Err())
			}
			s, err := NewSpace(conf, paths, 2)
			if err != nil {
				t.Fatal(err)
			}
			err = s.ResolveTokenizer(conf.Merge.TokenizerSource, paths)
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) || strings.Contains(err.Error(), "\n") {
					t.Fatalf("got %v, want one line with %q", err, c.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if s.TokenizerSource != c.want {
				t.Fatalf("tokenizer source %q, want %q", s.TokenizerSource, c.want)
			}
			ops := &operators{space: s}
			for _, tech := range s.Techniques {
				r, err := s.Decode(ops.randomGenome(rand.New(rand.NewPCG(1, 2)), tech))
				if err != nil {
					continue // a genome that selects nothing
				}
				if r.TokenizerSource != c.want {
					t.Errorf("%s recipe: tokenizer source %q", tech, r.TokenizerSource)
				}
				for name, sub := range r.Sources {
					if sub.TokenizerSource != c.want {
						t.Errorf("%s sub-recipe %s: tokenizer source %q", tech, name, sub.TokenizerSource)
					}
				}
			}
		})
	}
	bad, _ := cfg("nobody", map[string]string{"a": a, "base": base})
	if ps := bad.Validate(); len(ps) == 0 || !strings.Contains(ps.Err().Error(), `merge.tokenizer_source: "nobody" is not base, union or one of the models`) {
		t.Errorf("validation: %v", ps)
	}
}
