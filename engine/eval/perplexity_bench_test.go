package eval

import (
	"context"
	"math/rand/v2"
	"testing"
)

// constLM decodes instantly: every position gets the same row of
// vocabulary logits, written into one buffer that the next Decode reuses,
// as llama.cpp's is. It isolates the Go side of perplexity — copying and
// scoring the logits — from decoding.
type constLM struct {
	vocab int
	row   []float32
	out   []float32
}

func newConstLM(vocab int) *constLM {
	rng := rand.New(rand.NewPCG(1, 2))
	row := make([]float32, vocab)
	for i := range row {
		row[i] = float32(rng.NormFloat64() * 3)
	}
	return &constLM{vocab: vocab, row: row}
}

func (c *constLM) Tokenize(text string, addBOS bool) ([]int, error) {
	toks := make([]int, len(text))
	for i := range toks {
		toks[i] = 3 + int(text[i])%(c.vocab-3)
	}
	return toks, nil
}
func (c *constLM) BOS() int           { return 1 }
func (c *constLM) AddsBOS() bool      { return true }
func (c *constLM) IsEOG(int) bool     { return false }
func (c *constLM) Piece(int) string   { return "" }
func (c *constLM) VocabSize() int     { return c.vocab }
func (c *constLM) ContextSize() int   { return 256 }
func (c *constLM) BatchSize() int     { return 256 }
func (c *constLM) Clear()             {}
func (c *constLM) RemoveFrom(pos int) {}
func (c *constLM) Decode(tokens []int, pos, outputFrom int) ([]float32, error) {
	c.out = c.out[:0]
	for range len(tokens) - outputFrom {
		c.out = append(c.out, c.row...)
	}
	return c.out, nil
}

// BenchmarkPerplexityGoSide times perplexity's Go side for a 32,000-token
// vocabulary (stories15M's), 16 windows of 256, decoding free: what is
// left is copying and scoring 127 rows of logits per window.
func BenchmarkPerplexityGoSide(b *testing.B) {
	lm := newConstLM(32000)
	text := sampleText(16*256 + 1)
	for _, tc := range []struct {
		name string
		opt  PerplexityOptions
	}{
		{"serial", PerplexityOptions{Context: 256}},
		{"overlap", PerplexityOptions{Context: 256, Overlap: true}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			for b.Loop() {
				if _, err := Perplexity(context.Background(), lm, text, tc.opt); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N*16*256)/b.Elapsed().Seconds(), "tokens/s")
		})
	}
}
