// Package eval scores models: perplexity computed the way llama.cpp's
// llama-perplexity computes it, multiple-choice task accuracy by
// log-likelihood, a coherence score of generated text, and sampled
// generation. The algorithms here are pure Go over the LM interface;
// engine/eval/worker implements LM with llama.cpp inside a child process,
// and Pool runs a set of such workers (see pool.go for why processes).
package eval

// LM is what the algorithms need from a loaded model and its context.
type LM interface {
	// Tokenize converts text to tokens, prepending BOS when addBOS is set
	// and the model uses one.
	Tokenize(text string, addBOS bool) ([]int, error)
	// BOS is the beginning-of-sequence token; AddsBOS whether the model wants it.
	BOS() int
	AddsBOS() bool
	// IsEOG reports whether a token ends generation.
	IsEOG(token int) bool
	// Piece is the text of one token (possibly a fragment of a UTF-8 sequence).
	Piece(token int) string
	// VocabSize is the number of logits per position.
	VocabSize() int
	// ContextSize is the maximum number of positions.
	ContextSize() int
	// BatchSize is the maximum number of tokens per Decode.
	BatchSize() int
	// Decode evaluates tokens at positions pos, pos+1, ... and returns the
	// logits of tokens[outputFrom:] (rows of VocabSize floats). The slice
	// is valid until the next call.
	Decode(tokens []int, pos, outputFrom int) ([]float32, error)
	// Clear empties the KV cache; RemoveFrom drops positions ≥ pos.
	Clear()
	RemoveFrom(pos int)
}
