package synth

import (
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/evomerge/evomerge/engine/gguf"
)

// TokenType is llama.cpp's token type (tokenizer.ggml.token_type).
type TokenType int32

// Token types, numbered as llama.cpp's enum llama_token_type.
const (
	TokenNormal      TokenType = 1
	TokenUnknown     TokenType = 2
	TokenControl     TokenType = 3 // special tokens: BOS, EOS, chat markers
	TokenUserDefined TokenType = 4 // added tokens matched as whole strings
	TokenUnused      TokenType = 5
	TokenByte        TokenType = 6 // SentencePiece byte fallback <0xNN>
)

// Vocab is a tokenizer as a GGUF file stores it under tokenizer.*: either
// a SentencePiece vocabulary (Model "llama": pieces with scores and byte
// fallback tokens) or a byte-level BPE one (Model "gpt2": byte tokens,
// merges and a pre-tokenizer name).
type Vocab struct {
	Model  string // "llama" or "gpt2"
	Pre    string // tokenizer.ggml.pre ("qwen2", "llama-bpe", "default" …)
	Tokens []string
	Scores []float32 // one per token
	Types  []TokenType
	Merges []string // BPE merges, "left right", by rank

	// Special token ids; -1 = absent.
	BOS, EOS, UNK, PAD int
	AddBOS             bool
	// AddSpacePrefix is SentencePiece's leading-space option (nil: the
	// tokenizer's default).
	AddSpacePrefix *bool
	ChatTemplate   string
}

// Len is the number of tokens.
func (v Vocab) Len() int { return len(v.Tokens) }

// ID returns the id of a token, or -1.
func (v Vocab) ID(token string) int { return slices.Index(v.Tokens, token) }

// WithAdded returns a copy of v with tokens appended, as fine-tunes add
// them (chat markers, tool tokens): score 0 and the given type, normally
// TokenControl (HF "special" added tokens) or TokenUserDefined.
func (v Vocab) WithAdded(typ TokenType, tokens ...string) Vocab {
	out := v
	out.Tokens = append(slices.Clone(v.Tokens), tokens...)
	out.Scores = append(slices.Clone(v.Scores), make([]float32, len(tokens))...)
	out.Types = slices.Clone(v.Types)
	for range tokens {
		out.Types = append(out.Types, typ)
	}
	return out
}

// Metadata is the vocabulary's tokenizer.* entries.
func (v Vocab) Metadata() gguf.Metadata {
	types := make([]int32, len(v.Types))
	for i, t := range v.Types {
		types[i] = int32(t)
	}
	md := gguf.Metadata{
		{Key: "tokenizer.ggml.model", Value: v.Model},
		{Key: "tokenizer.ggml.pre", Value: v.Pre},
		{Key: "tokenizer.ggml.tokens", Value: gguf.Array{Elem: gguf.ValueString, Values: slices.Clone(v.Tokens)}},
		{Key: "tokenizer.ggml.scores", Value: gguf.Array{Elem: gguf.ValueFloat32, Values: slices.Clone(v.Scores)}},
		{Key: "tokenizer.ggml.token_type", Value: gguf.Array{Elem: gguf.ValueInt32, Values: types}},
	}
	if v.Model == "gpt2" {
		md = append(md, gguf.KV{Key: "tokenizer.ggml.merges", Value: gguf.Array{Elem: gguf.ValueString, Values: slices.Clone(v.Merges)}})
	}
	for _, s := range []struct {
		key string
		id  int
	}{{"bos", v.BOS}, {"eos", v.EOS}, {"unknown", v.UNK}, {"padding", v.PAD}} {
		if s.id >= 0 {
			md = append(md, gguf.KV{Key: "tokenizer.ggml." + s.key + "_token_id", Value: uint32(s.id)})
		}
	}
	md = append(md, gguf.KV{Key: "tokenizer.ggml.add_bos_token", Value: v.AddBOS})
	if v.AddSpacePrefix != nil {
		md = append(md, gguf.KV{Key: "tokenizer.ggml.add_space_prefix", Value: *v.AddSpacePrefix})
	}
	if v.ChatTemplate != "" {
		md = append(md, gguf.KV{Key: "tokenizer.chat_template", Value: v.ChatTemplate})
	}
	return md
}

// check verifies the vocabulary's internal consistency.
func (v Vocab) check() error {
	n := len(v.Tokens)
	if n == 0 || len(v.Scores) != n || len(v.Types) != n {
		return fmt.Errorf("vocabulary: %d tokens, %d scores, %d types", n, len(v.Scores), len(v.Types))
	}
	seen := make(map[string]bool, n)
	for _, t := range v.Tokens {
		if t == "" || seen[t] {
			return fmt.Errorf("vocabulary: empty or duplicate token %q", t)
		}
		seen[t] = true
	}
	for _, id := range []int{v.BOS, v.EOS, v.UNK, v.PAD} {
		if id >= n {
			return fmt.Errorf("vocabulary: special token id %d outside %d tokens", id, n)
		}
	}
	return nil
}

// corpus trains the generated vocabularies' merges: plain English, so
// that English text tokenizes into multi-byte tokens.
const corpus = `the model reads the text and the merge keeps what the models share.
a small model of the world is a model that can be read in one sitting, and the
weights of a model are numbers that the training has set. when two models share
a base, their weights differ by what each one learned; merging adds what they
learned and keeps the base. the light of the sun is made of rays of every colour,
and the rays that are bent the most are the violet ones, and those that are bent
the least are the red ones. this is the reason that a prism makes a spectrum of
colours on the wall of a dark room. of all the things that can be measured, the
time it takes to read a book is one of the easiest to measure and the hardest to
predict. there are more words in the language than there are in any one book,
and more books than any reader will ever open.`

// trainMerges learns up to n byte-pair merges from corpus, whose words are
// prefixed with space (the marker of a word start in the vocabulary's
// alphabet) and spelt with spell. Ties go to the smaller pair, so the
// result is deterministic.
func trainMerges(n int, space string, spell func(string) []string) [][2]string {
	freq := map[string]int{}
	var order []string
	for _, w := range strings.Fields(corpus) {
		if freq[w] == 0 {
			order = append(order, w)
		}
		freq[w]++
	}
	words := make([][]string, len(order))
	counts := make([]int, len(order))
	for i, w := range order {
		words[i] = append([]string{space}, spell(w)...)
		counts[i] = freq[w]
	}
	var merges [][2]string
	for len(merges) < n {
		pairs := map[[2]string]int{}
		for i, w := range words {
			for j := 0; j+1 < len(w); j++ {
				pairs[[2]string{w[j], w[j+1]}] += counts[i]
			}
		}
		var best [2]string
		bestN := 1
		for p, c := range pairs {
			if c > bestN || (c == bestN && c > 1 && (p[0] < best[0] || (p[0] == best[0] && p[1] < best[1]))) {
				best, bestN = p, c
			}
		}
		if bestN < 2 {
			break
		}
		merges = append(merges, best)
		for i, w := range words {
			out := w[:0]
			for j := 0; j < len(w); j++ {
				if j+1 < len(w) && w[j] == best[0] && w[j+1] == best[1] {
					out = append(out, best[0]+best[1])
					j++
					continue
				}
				out = append(out, w[j])
			}
			words[i] = out
		}
	}
	return merges
}

// byteChars is GPT-2's byte-level alphabet: each byte as a printable rune
// (printable ASCII and Latin-1 stand for themselves, the rest are shifted
// to U+0100 and up; space is "Ġ", newline "Ċ").
var byteChars = func() [256]string {
	var out [256]string
	n := 0
	for b := range 256 {
		if (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF) {
			out[b] = string(rune(b))
		} else {
			out[b] = string(rune(256 + n))
			n++
		}
	}
	return out
}()

func byteSpell(s string) []string {
	out := make([]string, 0, len(s))
	for i := range len(s) {
		out = append(out, byteChars[s[i]])
	}
	return out
}

func runeSpell(s string) []string {
	out := make([]string, 0, utf8.RuneCountInString(s))
	for _, r := range s {
		out = append(out, string(r))
	}
	return out
}

// BPEVocab is a byte-level BPE vocabulary (tokenizer.ggml.model "gpt2")
// with pre-tokenizer pre: the 256 byte tokens, up to merges merged tokens
// learned from a built-in English text, then specials, all TokenControl.
// The first special is both BOS and EOS unless the caller changes them.
func BPEVocab(pre string, merges int, specials ...string) Vocab {
	v := Vocab{Model: "gpt2", Pre: pre, BOS: -1, EOS: -1, UNK: -1, PAD: -1}
	add := func(tok string, typ TokenType) {
		v.Tokens = append(v.Tokens, tok)
		v.Scores = append(v.Scores, 0)
		v.Types = append(v.Types, typ)
	}
	for b := range 256 {
		add(byteChars[b], TokenNormal)
	}
	seen := map[string]bool{}
	for _, m := range trainMerges(merges, byteChars[' '], byteSpell) {
		v.Merges = append(v.Merges, m[0]+" "+m[1])
		if p := m[0] + m[1]; !seen[p] {
			seen[p] = true
			add(p, TokenNormal)
		}
	}
	for _, s := range specials {
		add(s, TokenControl)
	}
	if len(specials) > 0 {
		v.BOS, v.EOS = len(v.Tokens)-len(specials), len(v.Tokens)-len(specials)
	}
	return v
}

// SPMVocab is a SentencePiece vocabulary (tokenizer.ggml.model "llama"):
// specials first (TokenControl; the one named "<unk>" is TokenUnknown),
// the 256 byte-fallback tokens, pieces learned from a built-in English
// text (score −rank), then the text's single characters. BOS, EOS and UNK
// are found by the conventional names (<s>/<bos>, </s>/<eos>, <unk>).
func SPMVocab(merges int, specials ...string) Vocab {
	v := Vocab{Model: "llama", Pre: "default", BOS: -1, EOS: -1, UNK: -1, PAD: -1}
	add := func(tok string, score float32, typ TokenType) {
		v.Tokens = append(v.Tokens, tok)
		v.Scores = append(v.Scores, score)
		v.Types = append(v.Types, typ)
	}
	for i, s := range specials {
		typ := TokenControl
		switch s {
		case "<unk>":
			typ, v.UNK = TokenUnknown, i
		case "<s>", "<bos>":
			v.BOS = i
		case "</s>", "<eos>":
			v.EOS = i
		case "<pad>":
			v.PAD = i
		}
		add(s, 0, typ)
	}
	for b := range 256 {
		add(fmt.Sprintf("<0x%02X>", b), 0, TokenByte)
	}
	const space = "▁"
	seen := map[string]bool{}
	for i, m := range trainMerges(merges, space, runeSpell) {
		if p := m[0] + m[1]; !seen[p] {
			seen[p] = true
			add(p, float32(-i), TokenNormal)
		}
	}
	chars := append([]string{space}, runeSpell(strings.Join(strings.Fields(corpus), ""))...)
	slices.Sort(chars)
	for _, c := range slices.Compact(chars) {
		if !seen[c] {
			seen[c] = true
			add(c, float32(-1000), TokenNormal)
		}
	}
	return v
}
