package eval

import (
	"context"
	"fmt"
	"time"
	"unicode/utf8"
)

// GenerateOptions configure a generation.
type GenerateOptions struct {
	SamplingOptions
	MaxTokens int `json:"max_tokens"` // default 128
}

// GenerateResult summarises a generation.
type GenerateResult struct {
	Text            string  `json:"text"`
	Tokens          int     `json:"tokens"`
	PromptTokens    int     `json:"prompt_tokens"`
	StopReason      string  `json:"stop_reason"` // "eos", "length" or "context"
	PromptPerSecond float64 `json:"prompt_tokens_per_second"`
	TokensPerSecond float64 `json:"tokens_per_second"`
	tokenIDs        []int
}

// Generate continues prompt, calling onText with each piece of text as
// soon as it forms complete UTF-8 (byte tokens can split a character).
func Generate(ctx context.Context, lm LM, prompt string, opt GenerateOptions, onText func(string)) (GenerateResult, error) {
	if err := opt.Validate(); err != nil {
		return GenerateResult{}, err
	}
	if opt.MaxTokens <= 0 {
		opt.MaxTokens = 128
	}
	toks, err := lm.Tokenize(prompt, true)
	if err != nil {
		return GenerateResult{}, fmt.Errorf("tokenizing the prompt: %w", err)
	}
	if len(toks) == 0 {
		toks = []int{lm.BOS()}
	}
	if len(toks) >= lm.ContextSize() {
		return GenerateResult{}, fmt.Errorf("prompt of %d tokens does not fit the %d-token context", len(toks), lm.ContextSize())
	}
	lm.Clear()
	start := time.Now()
	var logits []float32
	for b := 0; b < len(toks); b += lm.BatchSize() {
		end := min(b+lm.BatchSize(), len(toks))
		if logits, err = lm.Decode(toks[b:end], b, end-b-1); err != nil {
			return GenerateResult{}, err
		}
	}
	res := GenerateResult{PromptTokens: len(toks), StopReason: "length"}
	res.PromptPerSecond = float64(len(toks)) / time.Since(start).Seconds()
	genStart := time.Now()
	sampler := NewSampler(opt.SamplingOptions)
	history := append([]int(nil), toks...)
	var pending []byte
	var text []byte
	for res.Tokens < opt.MaxTokens {
		if err := ctx.Err(); err != nil {
			return res, err
		}
		next := sampler.Sample(logits, history)
		if lm.IsEOG(next) {
			res.StopReason = "eos"
			break
		}
		history = append(history, next)
		res.tokenIDs = append(res.tokenIDs, next)
		res.Tokens++
		pending = append(pending, lm.Piece(next)...)
		if n := completeUTF8(pending); n > 0 {
			text = append(text, pending[:n]...)
			if onText != nil {
				onText(string(pending[:n]))
			}
			pending = append(pending[:0], pending[n:]...)
		}
		if len(history) >= lm.ContextSize() {
			res.StopReason = "context"
			break
		}
		if res.Tokens == opt.MaxTokens {
			break
		}
		if logits, err = lm.Decode([]int{next}, len(history)-1, 0); err != nil {
			return res, err
		}
	}
	if len(pending) > 0 {
		text = append(text, pending...)
		if onText != nil {
			onText(string(pending))
		}
	}
	res.Text = string(text)
	if el := time.Since(genStart).Seconds(); el > 0 {
		res.TokensPerSecond = float64(res.Tokens) / el
	}
	return res, nil
}

// completeUTF8 returns the length of the longest prefix of b that does not
// end inside a multi-byte UTF-8 sequence. Invalid bytes count as complete.
func completeUTF8(b []byte) int {
	// Look back at most 3 bytes for the start of an unfinished sequence.
	for back := 1; back <= 3 && back <= len(b); back++ {
		c := b[len(b)-back]
		if c < 0x80 {
			return len(b) // ASCII: everything before is complete
		}
		if c >= 0xC0 { // a lead byte: is its sequence complete?
			need := 2
			if c >= 0xF0 {
				need = 4
			} else if c >= 0xE0 {
				need = 3
			}
			if back < need && !utf8.FullRune(b[len(b)-back:]) {
				return len(b) - back
			}
			return len(b)
		}
	}
	return len(b)
}
