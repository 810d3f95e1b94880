package eval

import (
	"fmt"
	"math"
)

// fakeLM is a tiny deterministic language model whose next-token logits
// depend on the last two tokens, so a test can compute every probability
// independently of the code under test. Tokens: 0 <unk>, 1 BOS, 2 EOS,
// 3.. one per byte value modulo (vocab-3).
type fakeLM struct {
	vocab, ctx, batch int
	eos               bool // whether EOS may be produced
	kv                []int
	decodes           int
	out               []float32 // Decode's result, overwritten by the next call as llama.cpp's is
}

func newFake() *fakeLM { return &fakeLM{vocab: 40, ctx: 128, batch: 48} }

func (f *fakeLM) Tokenize(text string, addBOS bool) ([]int, error) {
	var out []int
	if addBOS {
		out = append(out, 1)
	}
	for i := 0; i < len(text); i++ {
		out = append(out, 3+int(text[i])%(f.vocab-3))
	}
	return out, nil
}
func (f *fakeLM) BOS() int           { return 1 }
func (f *fakeLM) AddsBOS() bool      { return true }
func (f *fakeLM) IsEOG(t int) bool   { return t == 2 }
func (f *fakeLM) Piece(t int) string { return string(rune('a' + (t-3)%26)) }
func (f *fakeLM) VocabSize() int     { return f.vocab }
func (f *fakeLM) ContextSize() int   { return f.ctx }
func (f *fakeLM) BatchSize() int     { return f.batch }
func (f *fakeLM) Clear()             { f.kv = f.kv[:0] }
func (f *fakeLM) RemoveFrom(pos int) { f.kv = f.kv[:min(pos, len(f.kv))] }

// fakeLogit is the model: logit of token j after tokens (prev, cur) in a
// sequence that began with token first (like attention to BOS).
func fakeLogit(first, prev, cur, j int) float64 {
	return 3*math.Sin(float64(prev*7+cur*3+j*j)+0.5*float64(j)) + 0.3*math.Cos(float64(first*5+j))
}

func (f *fakeLM) Decode(tokens []int, pos, outputFrom int) ([]float32, error) {
	if pos != len(f.kv) {
		return nil, fmt.Errorf("fake: decode at %d but the cache holds %d", pos, len(f.kv))
	}
	if len(tokens) > f.batch || pos+len(tokens) > f.ctx {
		return nil, fmt.Errorf("fake: batch too large")
	}
	f.decodes++
	f.kv = append(f.kv, tokens...)
	// The previous result becomes garbage, as llama.cpp's logits buffer
	// does: a caller still reading it gets NaN.
	out := f.out[:cap(f.out)]
	for i := range out {
		out[i] = float32(math.NaN())
	}
	out = out[:0]
	defer func() { f.out = out }()
	for i := outputFrom; i < len(tokens); i++ {
		p := pos + i
		prev := -1
		if p > 0 {
			prev = f.kv[p-1]
		}
		for j := range f.vocab {
			l := fakeLogit(f.kv[0], prev, f.kv[p], j)
			if j == 2 && !f.eos {
				l = -1e9
			}
			out = append(out, float32(l))
		}
	}
	return out, nil
}

// refLogProb is log p(j | first, prev, cur) in float64, computed directly.
func refLogProb(first, prev, cur, j, vocab int, eos bool) float64 {
	var z float64
	for k := range vocab {
		if k == 2 && !eos {
			continue
		}
		z += math.Exp(fakeLogit(first, prev, cur, k))
	}
	return fakeLogit(first, prev, cur, j) - math.Log(z)
}
