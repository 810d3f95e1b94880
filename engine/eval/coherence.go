package eval

import (
	"context"
	"fmt"
	"math"
	"strings"
)

// Coherence measures whether a model still writes sensible text, from two
// signals of its continuations of a fixed prompt set (seeded sampling, so
// the score is deterministic):
//
//   - fluency: the perplexity a reference model (normally the base model)
//     assigns to the continuation; gibberish scores high. It maps to [0,1]
//     as s_ppl = clamp((ln P_max − ln ppl)/(ln P_max − ln P_min)) with
//     P_min = FluentPerplexity and P_max = GarbagePerplexity.
//   - variety: the distinct-2 ratio, unique word bigrams over all word
//     bigrams of the continuation; degenerate loops ("the the the…"),
//     which a reference model finds very likely, score low.
//
// A prompt's score is the weighted geometric mean s_ppl^0.6 · s_dist^0.4, so
// failing either signal fails the prompt; a continuation of fewer than four
// words scores 0. The model's coherence is the mean over prompts, in [0,1].
// Keyword matching is deliberately absent (the original system's flaw).

// CoherenceOptions configure a coherence measurement.
type CoherenceOptions struct {
	Prompts   []string        `json:"prompts"`
	MaxTokens int             `json:"max_tokens"` // per continuation (default 48)
	Sampling  SamplingOptions `json:"sampling"`
	// Reference is the GGUF path of the model that judges fluency; empty
	// means the candidate judges itself.
	Reference         string  `json:"reference"`
	FluentPerplexity  float64 `json:"fluent_perplexity"`  // default 4
	GarbagePerplexity float64 `json:"garbage_perplexity"` // default 400
}

// DefaultCoherencePrompts is the fixed prompt set used unless configured:
// everyday English openings that any general language model can continue,
// naming no particular domain. (The zoo's run uses prompts from its
// experts' domains instead: zoo.CoherencePrompts.)
func DefaultCoherencePrompts() []string {
	return []string{
		"Once upon a time",
		"She opened the door and saw",
		"The best way to learn something new is",
		"Yesterday morning, on the way to the market,",
		"He read the letter twice and said",
		"The most important thing about a good friend is",
		"When the rain finally stopped,",
		"Here is a short description of the town:",
	}
}

// DefaultCoherence returns the documented defaults.
func DefaultCoherence() CoherenceOptions {
	return CoherenceOptions{
		Prompts:          DefaultCoherencePrompts(),
		MaxTokens:        48,
		Sampling:         SamplingOptions{Temperature: 0.7, TopK: 40, TopP: 0.95, RepeatPenalty: 1, Seed: 1234},
		FluentPerplexity: 4, GarbagePerplexity: 400,
	}
}

func (o *CoherenceOptions) fill() {
	d := DefaultCoherence()
	if len(o.Prompts) == 0 {
		o.Prompts = d.Prompts
	}
	if o.MaxTokens <= 0 {
		o.MaxTokens = d.MaxTokens
	}
	if o.Sampling == (SamplingOptions{}) {
		o.Sampling = d.Sampling
	}
	if o.FluentPerplexity <= 0 {
		o.FluentPerplexity = d.FluentPerplexity
	}
	if o.GarbagePerplexity <= o.FluentPerplexity {
		o.GarbagePerplexity = max(d.GarbagePerplexity, o.FluentPerplexity*10)
	}
}

// CoherenceSample is one prompt's continuation and its signals.
type CoherenceSample struct {
	Prompt        string  `json:"prompt"`
	Text          string  `json:"text"`
	RefPerplexity float64 `json:"ref_perplexity"`
	Distinct2     float64 `json:"distinct2"`
	Score         float64 `json:"score"`
}

// CoherenceResult is the model's coherence and its parts.
type CoherenceResult struct {
	Score         float64           `json:"coherence"`
	RefPerplexity float64           `json:"ref_perplexity"` // geometric mean over prompts
	Distinct2     float64           `json:"distinct2"`      // mean over prompts
	Samples       []CoherenceSample `json:"samples"`
}

// Coherence generates a continuation of each prompt with gen and judges it
// with ref (which may be gen itself).
func Coherence(ctx context.Context, gen, ref LM, opt CoherenceOptions) (CoherenceResult, error) {
	opt.fill()
	var res CoherenceResult
	var logPPL float64
	for i, prompt := range opt.Prompts {
		sampling := opt.Sampling
		sampling.Seed += uint64(i)
		g, err := Generate(ctx, gen, prompt, GenerateOptions{SamplingOptions: sampling, MaxTokens: opt.MaxTokens}, nil)
		if err != nil {
			return res, fmt.Errorf("prompt %d: %w", i, err)
		}
		s := CoherenceSample{Prompt: prompt, Text: g.Text, RefPerplexity: math.Inf(1)}
		words := strings.Fields(g.Text)
		if len(words) >= 4 {
			ll, n, err := ContinuationLogLikelihood(ref, prompt, g.Text)
			if err != nil {
				return res, fmt.Errorf("prompt %d: scoring: %w", i, err)
			}
			s.RefPerplexity = math.Exp(-ll / float64(n))
			s.Distinct2 = Distinct2(words)
			s.Score = math.Pow(fluency(s.RefPerplexity, opt), 0.6) * math.Pow(s.Distinct2, 0.4)
		}
		res.Samples = append(res.Samples, s)
		res.Score += s.Score
		res.Distinct2 += s.Distinct2
		logPPL += math.Log(min(s.RefPerplexity, 1e9))
	}
	n := float64(len(opt.Prompts))
	res.Score /= n
	res.Distinct2 /= n
	res.RefPerplexity = math.Exp(logPPL / n)
	return res, nil
}

func fluency(ppl float64, o CoherenceOptions) float64 {
	s := (math.Log(o.GarbagePerplexity) - math.Log(ppl)) / (math.Log(o.GarbagePerplexity) - math.Log(o.FluentPerplexity))
	return min(1, max(0, s))
}

// Distinct2 is the number of distinct adjacent word pairs over the number
// of pairs (1 for fewer than two words).
func Distinct2(words []string) float64 {
	if len(words) < 2 {
		return 1
	}
	seen := make(map[[2]string]bool, len(words))
	for i := 1; i < len(words); i++ {
		seen[[2]string{strings.ToLower(words[i-1]), strings.ToLower(words[i])}] = true
	}
	return float64(len(seen)) / float64(len(words)-1)
}
