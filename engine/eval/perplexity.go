package eval

import (
	"context"
	"errors"
	"fmt"
	"math"
)

// PerplexityOptions configure a perplexity run.
type PerplexityOptions struct {
	Context int `json:"context"` // window length n_ctx in tokens (default 256)
	Chunks  int `json:"chunks"`  // at most this many windows; 0 = all
	// Progress, if set, is called after each window.
	Progress func(done, total int) `json:"-"`
}

// PerplexityResult is the outcome of a run.
type PerplexityResult struct {
	Perplexity float64 `json:"perplexity"`
	// StdErr is the standard error of the perplexity estimate, as
	// llama-perplexity prints it after "+/-".
	StdErr float64 `json:"perplexity_stderr"`
	// NLL is the mean negative log-likelihood per scored token (nats).
	NLL    float64 `json:"nll"`
	Tokens int     `json:"tokens"` // scored tokens
	Chunks int     `json:"chunks"` // windows evaluated
}

// ErrTextTooShort is returned when the text does not fill one window.
var ErrTextTooShort = errors.New("text too short for one perplexity window")

// Perplexity computes perplexity exactly as llama.cpp's llama-perplexity:
// the whole text is tokenized once (with BOS); it is cut into windows of
// n_ctx tokens; each window starts with BOS (replacing its first token)
// after clearing the KV cache; only the second half of each window is
// scored: logits at positions n_ctx/2 … n_ctx−2 predict the following
// token (n_ctx−1−n_ctx/2 tokens per window). PPL = exp(mean NLL), and the
// error is ppl·sqrt((E[nll²]−E[nll]²)/(N−1)).
func Perplexity(ctx context.Context, lm LM, text string, opt PerplexityOptions) (PerplexityResult, error) {
	tokens, err := lm.Tokenize(text, true)
	if err != nil {
		return PerplexityResult{}, fmt.Errorf("tokenizing: %w", err)
	}
	return PerplexityTokens(ctx, lm, tokens, opt)
}

// PerplexityTokens is Perplexity on an already tokenized text.
func PerplexityTokens(ctx context.Context, lm LM, tokens []int, opt PerplexityOptions) (PerplexityResult, error) {
	nCtx := opt.Context
	if nCtx == 0 {
		nCtx = 256
	}
	if nCtx < 4 || nCtx > lm.ContextSize() {
		return PerplexityResult{}, fmt.Errorf("perplexity context %d outside [4, %d]", nCtx, lm.ContextSize())
	}
	chunks := len(tokens) / nCtx
	if opt.Chunks > 0 {
		chunks = min(chunks, opt.Chunks)
	}
	if chunks == 0 {
		return PerplexityResult{}, fmt.Errorf("%w: %d tokens, need %d", ErrTextTooShort, len(tokens), nCtx)
	}
	first := nCtx / 2
	batch := min(lm.BatchSize(), nCtx)
	window := make([]int, nCtx)
	v := lm.VocabSize()
	// rows[k] holds the logits at position first+k; only those are computed.
	rows := make([]float32, 0, (nCtx-first)*v)
	var nll, nll2 float64
	count := 0
	for c := range chunks {
		if err := ctx.Err(); err != nil {
			return PerplexityResult{}, err
		}
		copy(window, tokens[c*nCtx:(c+1)*nCtx])
		if lm.AddsBOS() {
			window[0] = lm.BOS()
		}
		lm.Clear()
		rows = rows[:0]
		for b := 0; b < nCtx; b += batch {
			end := min(b+batch, nCtx)
			logits, err := lm.Decode(window[b:end], b, min(end-b, max(0, first-b)))
			if err != nil {
				return PerplexityResult{}, fmt.Errorf("window %d: %w", c, err)
			}
			rows = append(rows, logits...)
		}
		for j := first; j < nCtx-1; j++ {
			k := j - first
			lp := LogSoftmaxAt(rows[k*v:(k+1)*v], tokens[c*nCtx+j+1])
			nll -= lp
			nll2 += lp * lp
			count++
		}
		if opt.Progress != nil {
			opt.Progress(c+1, chunks)
		}
	}
	mean := nll / float64(count)
	ppl := math.Exp(mean)
	res := PerplexityResult{Perplexity: ppl, NLL: mean, Tokens: count, Chunks: chunks}
	if v := nll2/float64(count) - mean*mean; v > 0 && count > 1 {
		res.StdErr = math.Sqrt(v/float64(count-1)) * ppl
	}
	return res, nil
}

// LogSoftmaxAt returns log p(tok) under softmax(logits), computed like
// llama.cpp: max-shifted, float32 exponentials summed in float64.
func LogSoftmaxAt(logits []float32, tok int) float64 {
	maxLogit := logits[0]
	for _, l := range logits[1:] {
		maxLogit = max(maxLogit, l)
	}
	var sum float64
	for _, l := range logits {
		sum += float64(float32(math.Exp(float64(l - maxLogit))))
	}
	return float64(logits[tok]-maxLogit) - math.Log(sum)
}
