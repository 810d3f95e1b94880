package merge

import (
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/evomerge/evomerge/engine/gguf"
	"github.com/evomerge/evomerge/engine/gguf/synth"
)

// vocabFamily is a qwen2 base and two fine-tunes that added tokens: ft0
// two control tokens (and its own chat template), ft1 one user-defined
// token and one of ft0's.
type vocabFamily struct {
	base, ft0, ft1 string
	vocab          [3]synth.Vocab
}

func newVocabFamily(t *testing.T) vocabFamily {
	t.Helper()
	dir := t.TempDir()
	v := synth.DefaultVocab(synth.Qwen2)
	v0 := v.WithAdded(synth.TokenControl, "<tool>", "</tool>")
	v0.ChatTemplate = "{{ '<tool>' }}"
	v1 := v.WithAdded(synth.TokenUserDefined, "<think>").WithAdded(synth.TokenControl, "</tool>")
	spec := synth.Spec{Arch: synth.Qwen2, Seed: 4}
	f := vocabFamily{vocab: [3]synth.Vocab{v, v0, v1}}
	write := func(name string, s synth.Spec, v synth.Vocab) string {
		s.Vocab = &v
		p := filepath.Join(dir, name+".gguf")
		if err := s.Write(p, name); err != nil {
			t.Fatal(err)
		}
		return p
	}
	f.base = write("base", spec, v)
	f.ft0 = write("ft0", spec.FineTune(70, 0.1), v0)
	f.ft1 = write("ft1", spec.FineTune(71, 0.1), v1)
	return f
}

func (f vocabFamily) recipe(source string) *Recipe {
	return &Recipe{Method: "task_arithmetic", Base: f.base, TokenizerSource: source, Models: []ModelRef{
		{Model: f.ft0, Params: Params{"weight": Scalar(0.6)}},
		{Model: f.ft1, Params: Params{"weight": Scalar(0.3)}},
	}}
}

// fillRows is mergekit's embed.py, written out for the test: each model's
// rows permuted into the output vocabulary, a missing row taken from the
// one model that has the token, else zeros, else the base's, else the mean.
func fillRows(out []string, vocabs []synth.Vocab, rows [][]float32, dim int) [][]float64 {
	res := make([][]float64, len(vocabs))
	for k := range res {
		res[k] = make([]float64, len(out)*dim)
	}
	for j, tok := range out {
		var have []int
		for k, v := range vocabs {
			if v.ID(tok) >= 0 {
				have = append(have, k)
			}
		}
		row := func(k int) []float32 { i := vocabs[k].ID(tok); return rows[k][i*dim : (i+1)*dim] }
		fill := make([]float64, dim)
		switch {
		case len(have) == 1:
			for i, x := range row(have[0]) {
				fill[i] = float64(x)
			}
		case len(have) == 0:
		case slices.Contains(have, 0): // model 0 is the base
			for i, x := range row(0) {
				fill[i] = float64(x)
			}
		default:
			for _, k := range have {
				for i, x := range row(k) {
					fill[i] += float64(x) / float64(len(have))
				}
			}
		}
		for k, v := range vocabs {
			for i := range dim {
				if v.ID(tok) >= 0 {
					res[k][j*dim+i] = float64(row(k)[i])
				} else {
					res[k][j*dim+i] = fill[i]
				}
			}
		}
	}
	return res
}

// TestTokenizerSource: union, base and a named model's vocabulary; the
// embedding and output rows are aligned by token text and filled as
// mergekit fills them, then merged (task arithmetic: B + Σ wᵢ(xᵢ − B));
// the output carries the chosen vocabulary's tokens, types, scores,
// merges, special ids and chat template.
func TestTokenizerSource(t *testing.T) {
	f := newVocabFamily(t)
	base := f.vocab[0].Tokens
	cases := []struct {
		source   string
		tokens   []string
		types    map[string]synth.TokenType
		template string
	}{
		{"union", append(slices.Clone(base), "<tool>", "</tool>", "<think>"),
			map[string]synth.TokenType{"<tool>": synth.TokenControl, "<think>": synth.TokenUserDefined}, f.vocab[0].ChatTemplate},
		{"base", base, nil, f.vocab[0].ChatTemplate},
		{f.ft0, f.vocab[1].Tokens, map[string]synth.TokenType{"</tool>": synth.TokenControl}, "{{ '<tool>' }}"},
	}
	_, in0 := readAll(t, f.base)
	_, in1 := readAll(t, f.ft0)
	_, in2 := readAll(t, f.ft1)
	for _, c := range cases {
		t.Run(filepath.Base(c.source), func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "out.gguf")
			runRecipe(t, f.recipe(c.source), out)
			g, got := readAll(t, out)
			toks, _ := g.Metadata.Strings("tokenizer.ggml.tokens")
			if !slices.Equal(toks, c.tokens) {
				t.Fatalf("vocabulary of %d tokens, want %d (last %q)", len(toks), len(c.tokens), toks[len(toks)-1])
			}
			typesV, _ := g.Metadata.Get("tokenizer.ggml.token_type")
			types := typesV.(gguf.Array).Values.([]int32)
			scoresV, _ := g.Metadata.Get("tokenizer.ggml.scores")
			if len(types) != len(toks) || scoresV.(gguf.Array).Len() != len(toks) {
				t.Fatalf("%d types, %d scores for %d tokens", len(types), scoresV.(gguf.Array).Len(), len(toks))
			}
			for tok, typ := range c.types {
				if i := slices.Index(toks, tok); types[i] != int32(typ) {
					t.Errorf("%s has type %d, want %d", tok, types[i], typ)
				}
			}
			if g.Metadata.String("tokenizer.chat_template") != c.template {
				t.Errorf("chat template %q, want %q", g.Metadata.String("tokenizer.chat_template"), c.template)
			}
			merges, _ := g.Metadata.Strings("tokenizer.ggml.merges")
			if !slices.Equal(merges, f.vocab[0].Merges) || g.Metadata.String("tokenizer.ggml.pre") != "qwen2" {
				t.Error("merges or pre-tokenizer not carried")
			}
			if eos, _ := g.Metadata.Uint("tokenizer.ggml.eos_token_id"); toks[eos] != "<|endoftext|>" {
				t.Errorf("eos is %q", toks[eos])
			}
			for _, tensor := range []string{"token_embd.weight", "output.weight"} {
				const dim = 64
				rows := fillRows(c.tokens, f.vocab[:], [][]float32{in0[tensor], in1[tensor], in2[tensor]}, dim)
				var worst float64
				for i, x := range got[tensor] {
					want := rows[0][i] + 0.6*(rows[1][i]-rows[0][i]) + 0.3*(rows[2][i]-rows[0][i])
					worst = max(worst, math.Abs(float64(x)-want))
				}
				if len(got[tensor]) != len(c.tokens)*dim || worst > 1e-6 {
					t.Errorf("%s: %d values, max difference %.2g from the aligned, filled task arithmetic", tensor, len(got[tensor]), worst)
				}
			}
			// A layer tensor is merged as usual.
			q := "blk.1.attn_q.weight"
			for i, x := range got[q] {
				want := float64(in0[q][i]) + 0.6*float64(in1[q][i]-in0[q][i]) + 0.3*float64(in2[q][i]-in0[q][i])
				if math.Abs(float64(x)-want) > 1e-6 {
					t.Fatalf("%s[%d] = %g, want %g", q, i, x, want)
				}
			}
		})
	}
}

// TestVocabularyErrors: differing vocabularies without tokenizer_source,
// and unrelated ones with it, fail in one line per model naming the first
// differing token.
func TestVocabularyErrors(t *testing.T) {
	f := newVocabFamily(t)
	dir := t.TempDir()
	swapped := synth.DefaultVocab(synth.Qwen2)
	swapped.Tokens[300], swapped.Tokens[301] = swapped.Tokens[301], swapped.Tokens[300]
	other := filepath.Join(dir, "other.gguf")
	if err := (synth.Spec{Arch: synth.Qwen2, Seed: 5, Vocab: &swapped}).Write(other, "other"); err != nil {
		t.Fatal(err)
	}
	spm := filepath.Join(dir, "spm.gguf")
	sv := synth.DefaultVocab(synth.Phi3)
	if err := (synth.Spec{Arch: synth.Qwen2, Seed: 6, Vocab: &sv}).Write(spm, "spm"); err != nil {
		t.Fatal(err)
	}
	base := synth.DefaultVocab(synth.Qwen2)
	n := base.Len()
	cases := []struct {
		name string
		r    *Recipe
		want []string
	}{
		{"added tokens, no source", f.recipe(""), []string{
			"model " + f.ft0 + ": vocabulary of " + strconv.Itoa(n+2) + " tokens differs from " + strconv.Itoa(n) + " in " + f.base +
				" (token " + strconv.Itoa(n) + ` is absent there, "<tool>" here; the same ordinary tokens, different added tokens): set tokenizer_source to base, union or a model`,
		}},
		{"unrelated", &Recipe{Method: "linear", TokenizerSource: "union", Models: []ModelRef{{Model: f.base}, {Model: other}}}, []string{
			"model " + other + `: vocabulary unrelated to ` + f.base + `'s (token 300 is "` + base.Tokens[300] + `" there, "` + base.Tokens[301] + `" here): different tokenizers cannot be aligned`,
		}},
		{"tokenizer types", &Recipe{Method: "linear", TokenizerSource: "base", Models: []ModelRef{{Model: f.base}, {Model: spm}}}, []string{
			"model " + spm + ": its tokenizer (llama) is not the one of " + f.base + " (gpt2)",
		}},
		{"unknown source", &Recipe{Method: "linear", TokenizerSource: "/nope/x.gguf", Models: []ModelRef{{Model: f.base}, {Model: f.ft0}}}, []string{
			`tokenizer_source: "/nope/x.gguf" is neither base, union, one of the models nor a GGUF file`,
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p, err := NewPlan(c.r, PlanOptions{})
			if err == nil {
				p.Close()
				t.Fatal("plan accepted")
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error lacks\n%s\ngot\n%v", w, err)
				}
			}
			for _, line := range strings.Split(err.Error(), "\n")[1:] {
				if strings.Count(line, "\n") > 0 || len(line) > 600 {
					t.Errorf("not one line: %q", line)
				}
			}
		})
	}
	if rel, err := CompareVocabularies(f.base, f.ft0, f.ft1); rel != VocabAddedTokens || err == nil {
		t.Errorf("CompareVocabularies of fine-tunes with added tokens: %v, %v", rel, err)
	}
	if rel, err := CompareVocabularies(f.base, other); rel != VocabUnrelated || err == nil {
		t.Errorf("CompareVocabularies of unrelated vocabularies: %v, %v", rel, err)
	}
}

// TestTokenizerSourceInRecipeFiles: mergekit's tokenizer_source and
// tokenizer.source keys, in YAML and TOML, a model name resolved like the
// models, and the TOML round trip.
func TestTokenizerSourceInRecipeFiles(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "a.gguf"), []byte("x"), 0o644)
	cases := map[string]string{
		"union.yml":  "merge_method: linear\ntokenizer_source: union\nmodels:\n  - model: a.gguf\n",
		"table.yml":  "merge_method: linear\ntokenizer:\n  source: a.gguf\nmodels:\n  - model: a.gguf\n",
		"base.toml":  "merge_method = \"linear\"\ntokenizer_source = \"base\"\n[[models]]\nmodel = \"a.gguf\"\n",
		"tokens.yml": "merge_method: linear\ntokenizer:\n  source: union\n  tokens:\n    x: {source: a.gguf}\nmodels:\n  - model: a.gguf\n",
	}
	want := map[string]string{"union.yml": "union", "table.yml": filepath.Join(dir, "a.gguf"), "base.toml": "base"}
	for name, text := range cases {
		path := filepath.Join(dir, name)
		os.WriteFile(path, []byte(text), 0o644)
		r, err := LoadRecipe(path)
		if name == "tokens.yml" {
			if err == nil || !strings.Contains(err.Error(), "tokenizer.tokens: unknown key (allowed: source)") {
				t.Errorf("%s: %v", name, err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if r.TokenizerSource != want[name] {
			t.Errorf("%s: tokenizer source %q, want %q", name, r.TokenizerSource, want[name])
		}
		text, err := r.Encode()
		if err != nil {
			t.Fatal(err)
		}
		back, err := ParseRecipe(string(text))
		if err != nil || back.TokenizerSource != r.TokenizerSource {
			t.Errorf("%s: round trip gave %q, %v", name, back.TokenizerSource, err)
		}
	}
}

// TestVocabCopies: a frankenmerge keeping its first model's vocabulary
// copies that model's embedding byte for byte, and permutes the last
// model's output head into it (rows it lacks: zeros, no other model has
// them in this tensor's merge).
func TestVocabCopies(t *testing.T) {
	f := newVocabFamily(t)
	r := &Recipe{Method: "passthrough", TokenizerSource: f.ft0, Slices: []Slice{
		{Sources: []SliceSource{{Model: f.ft0, From: 0, To: 2}}},
		{Sources: []SliceSource{{Model: f.base, From: 2, To: 4}}},
	}}
	out := filepath.Join(t.TempDir(), "out.gguf")
	plan, _ := runRecipe(t, r, out)
	_, got := readAll(t, out)
	_, ft0 := readAll(t, f.ft0)
	_, base := readAll(t, f.base)
	if !slices.Equal(got["token_embd.weight"], ft0["token_embd.weight"]) {
		t.Error("token_embd is not ft0's")
	}
	const dim = 64
	n := f.vocab[0].Len()
	head := got["output.weight"]
	if !slices.Equal(head[:n*dim], base["output.weight"]) || slices.ContainsFunc(head[n*dim:], func(x float32) bool { return x != 0 }) {
		t.Error("output is not the base's rows followed by zero rows for ft0's added tokens")
	}
	for _, tp := range plan.Tensors {
		if isEmbedding(tp.Out.Name) && tp.vocab != (tp.Out.Name == "output.weight") {
			t.Errorf("%s: permuted %v (only the base's head needs its rows moved)", tp.Out.Name, tp.vocab)
		}
	}
}
