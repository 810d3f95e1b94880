package eval

import (
	"context"
	"errors"
	"fmt"
	"math"
	"runtime"
	"sync"

	"github.com/evomerge/evomerge/kernels"
)

// PerplexityOptions configure a perplexity run.
type PerplexityOptions struct {
	Context int `json:"context"` // window length n_ctx in tokens (default 256)
	Chunks  int `json:"chunks"`  // at most this many windows; 0 = all
	// Overlap scores window k while window k+1 decodes. It pays where the
	// decode does not run on the CPU cores the scoring needs — on a GPU;
	// on the CPU the two compete for the same cores (see
	// PerplexityTokens). The result is identical either way.
	Overlap bool `json:"overlap,omitempty"`
	// Windows, when it names a text, scores exactly those windows of it
	// (0-based indices into the text's windows of Context tokens, each at
	// most once, in any order) instead of the first Chunks; the result is
	// then the mean over those windows. A text not named keeps Chunks.
	Windows map[string][]int `json:"windows,omitempty"`
	// ScoreFrom is the first position whose logits are scored, each
	// predicting the token after it; 0 means Context/2, llama-perplexity's
	// convention, which every perplexity evomerge reports uses. The
	// search's fitness may score more of each window
	// (evaluation.score_from): a scored token costs the vocabulary
	// projection and the log-softmax at its position, while the context
	// before it is decoded either way.
	ScoreFrom int `json:"score_from,omitempty"`
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
	// Windows are the per-window sums behind NLL, in the order scored:
	// what a paired comparison of two models over windows needs.
	Windows []WindowNLL `json:"windows,omitempty"`
	// Available is the number of windows the whole text holds.
	Available int `json:"available,omitempty"`
}

// WindowNLL is one window's share of a perplexity run.
type WindowNLL struct {
	Index  int     `json:"i"`      // the window's index in the text
	NLL    float64 `json:"nll"`    // summed negative log-likelihood (nats)
	Tokens int     `json:"tokens"` // scored tokens
}

// ErrBadWindow is returned for a window index outside the text or given
// twice.
var ErrBadWindow = errors.New("bad perplexity window")

// ErrTextTooShort is returned when the text does not fill one window.
var ErrTextTooShort = errors.New("text too short for one perplexity window")

// Perplexity computes perplexity exactly as llama.cpp's llama-perplexity:
// the whole text is tokenized once (with BOS); it is cut into windows of
// n_ctx tokens; each window starts with BOS (replacing its first token)
// after clearing the KV cache; only the second half of each window is (opt.ScoreFrom moves the start)
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

// PerplexityText is Perplexity of a named text, on the windows
// opt.Windows gives for its name when it does.
func PerplexityText(ctx context.Context, lm LM, t Text, opt PerplexityOptions) (PerplexityResult, error) {
	tokens, err := lm.Tokenize(t.Content, true)
	if err != nil {
		return PerplexityResult{}, fmt.Errorf("tokenizing: %w", err)
	}
	return perplexityTokens(ctx, lm, tokens, opt, opt.Windows[t.Name])
}

// PerplexityTokens is Perplexity on an already tokenized text.
func PerplexityTokens(ctx context.Context, lm LM, tokens []int, opt PerplexityOptions) (PerplexityResult, error) {
	return perplexityTokens(ctx, lm, tokens, opt, nil)
}

// WindowSet is the windows a perplexity run scores in a text: their
// length, the first scored position and their indices.
type WindowSet struct {
	Context   int   // tokens per window
	First     int   // the first position whose logits are scored
	Windows   []int // indices into the text's windows, in scoring order
	Available int   // windows the text holds
}

// SelectWindows is the window set of a text of n tokens under opt for a
// model of context maxCtx: the listed windows (nil: the first
// opt.Chunks), validated. Every scorer of perplexity windows (llama.cpp's
// here, engine/llm's gradient graph in the worker) takes its windows from
// it.
func SelectWindows(n int, opt PerplexityOptions, windows []int, maxCtx int) (WindowSet, error) {
	nCtx := opt.Context
	if nCtx == 0 {
		nCtx = 256
	}
	if nCtx < 4 || nCtx > maxCtx {
		return WindowSet{}, fmt.Errorf("perplexity context %d outside [4, %d]", nCtx, maxCtx)
	}
	available := n / nCtx
	if available == 0 {
		return WindowSet{}, fmt.Errorf("%w: %d tokens, need %d", ErrTextTooShort, n, nCtx)
	}
	if windows == nil {
		chunks := available
		if opt.Chunks > 0 {
			chunks = min(chunks, opt.Chunks)
		}
		windows = make([]int, chunks)
		for i := range windows {
			windows[i] = i
		}
	} else {
		if len(windows) == 0 {
			return WindowSet{}, fmt.Errorf("%w: an empty list", ErrBadWindow)
		}
		seen := make(map[int]bool, len(windows))
		for _, w := range windows {
			if w < 0 || w >= available || seen[w] {
				return WindowSet{}, fmt.Errorf("%w: %d (the text has %d windows of %d tokens; each at most once)", ErrBadWindow, w, available, nCtx)
			}
			seen[w] = true
		}
	}
	first := nCtx / 2
	if opt.ScoreFrom != 0 {
		if opt.ScoreFrom < 1 || opt.ScoreFrom > nCtx-2 {
			return WindowSet{}, fmt.Errorf("perplexity: scoring from position %d, outside [1, %d] for windows of %d", opt.ScoreFrom, nCtx-2, nCtx)
		}
		first = opt.ScoreFrom
	}
	return WindowSet{Context: nCtx, First: first, Windows: windows, Available: available}, nil
}

// perplexityTokens scores the windows listed (nil: the first opt.Chunks).
func perplexityTokens(ctx context.Context, lm LM, tokens []int, opt PerplexityOptions, windows []int) (PerplexityResult, error) {
	set, err := SelectWindows(len(tokens), opt, windows, lm.ContextSize())
	if err != nil {
		return PerplexityResult{}, err
	}
	nCtx, first, available := set.Context, set.First, set.Available
	windows = set.Windows
	chunks := len(windows)
	batch := min(lm.BatchSize(), nCtx)
	window := make([]int, nCtx)
	v := lm.VocabSize()
	scored := nCtx - 1 - first // positions scored per window
	// decode runs window c and returns the logits at positions first … nCtx−1
	// (only those are computed), appended to into[:0] — or, when direct and
	// the window fits one Decode, llama.cpp's own buffer, valid until the
	// next Decode: no copy of 128 rows × the vocabulary per window.
	decode := func(c int, into []float32, direct bool) ([]float32, error) {
		copy(window, tokens[c*nCtx:(c+1)*nCtx])
		if lm.AddsBOS() {
			window[0] = lm.BOS()
		}
		lm.Clear()
		rows := into[:0]
		for b := 0; b < nCtx; b += batch {
			end := min(b+batch, nCtx)
			logits, err := lm.Decode(window[b:end], b, min(end-b, max(0, first-b)))
			if err != nil {
				return nil, fmt.Errorf("window %d: %w", c, err)
			}
			if direct && batch >= nCtx {
				return logits, nil
			}
			rows = append(rows, logits...)
		}
		return rows, nil
	}
	targets := func(c int) []int { return tokens[c*nCtx+first+1 : (c+1)*nCtx] }
	var nll, nll2 float64
	per := make([]WindowNLL, 0, chunks)
	// add takes the sums of the k-th window listed.
	add := func(k int, s [2]float64) {
		nll += s[0]
		nll2 += s[1]
		per = append(per, WindowNLL{Index: windows[k], NLL: s[0], Tokens: scored})
		if opt.Progress != nil {
			opt.Progress(k+1, chunks)
		}
	}
	if opt.Overlap {
		// Two buffers: window c is copied into one while the scoring of
		// window c−1 reads the other. Sums are added in window order, so
		// the result equals the serial one bit for bit.
		bufs := [2][]float32{make([]float32, 0, scored*v+v), make([]float32, 0, scored*v+v)}
		var inflight chan [2]float64
		wait := func(k int) {
			if inflight != nil {
				add(k, <-inflight)
				inflight = nil
			}
		}
		for k, c := range windows {
			if err := ctx.Err(); err != nil {
				wait(k - 1)
				return PerplexityResult{}, err
			}
			rows, err := decode(c, bufs[k%2], false)
			wait(k - 1)
			if err != nil {
				return PerplexityResult{}, err
			}
			bufs[k%2] = rows
			inflight = make(chan [2]float64, 1)
			go func(rows []float32, tg []int, out chan<- [2]float64) {
				a, b := scoreRows(rows, v, tg, scored)
				out <- [2]float64{a, b}
			}(rows, targets(c), inflight)
		}
		wait(chunks - 1)
	} else {
		var buf []float32 // when windows take several Decodes
		for k, c := range windows {
			if err := ctx.Err(); err != nil {
				return PerplexityResult{}, err
			}
			rows, err := decode(c, buf, true)
			if err != nil {
				return PerplexityResult{}, err
			}
			if batch < nCtx {
				buf = rows
			}
			a, b := scoreRows(rows, v, targets(c), scored)
			add(k, [2]float64{a, b})
		}
	}
	count := chunks * scored
	mean := nll / float64(count)
	ppl := math.Exp(mean)
	res := PerplexityResult{Perplexity: ppl, NLL: mean, Tokens: count, Chunks: chunks, Windows: per, Available: available}
	if v := nll2/float64(count) - mean*mean; v > 0 && count > 1 {
		res.StdErr = math.Sqrt(v/float64(count-1)) * ppl
	}
	return res, nil
}

// scoreRows sums −log p and (log p)² of targets[k] under logits row k, for
// k < n. The rows are split among goroutines (llama.cpp's decode threads are
// idle while Go scores), in fixed contiguous parts whose sums are added in
// order, so the result does not depend on timing.
func scoreRows(rows []float32, vocab int, targets []int, n int) (nll, nll2 float64) {
	parts := min(runtime.GOMAXPROCS(0), 4, n)
	type sums struct{ nll, nll2 float64 }
	out := make([]sums, parts)
	var wg sync.WaitGroup
	for p := range parts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := n * p / parts; k < n*(p+1)/parts; k++ {
				lp := kernels.LogSoftmaxAt(rows[k*vocab:(k+1)*vocab], targets[k])
				out[p].nll -= lp
				out[p].nll2 += lp * lp
			}
		}()
	}
	wg.Wait()
	for _, s := range out {
		nll += s.nll
		nll2 += s.nll2
	}
	return nll, nll2
}
