package eval

import (
	"cmp"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
)

// SamplingOptions are the usual llama.cpp sampling settings. The chain runs
// in llama.cpp's default order: repetition penalty, top-k, top-p, min-p,
// temperature, then a seeded draw. Temperature 0 is greedy (argmax after
// the penalty) and fully deterministic.
type SamplingOptions struct {
	Temperature   float64 `json:"temperature"`
	TopK          int     `json:"top_k"`          // 0 = off
	TopP          float64 `json:"top_p"`          // 1 = off
	MinP          float64 `json:"min_p"`          // 0 = off
	RepeatPenalty float64 `json:"repeat_penalty"` // 1 = off
	RepeatLastN   int     `json:"repeat_last_n"`  // window for the penalty (default 64)
	Seed          uint64  `json:"seed"`
}

// DefaultSampling mirrors llama.cpp's defaults.
func DefaultSampling() SamplingOptions {
	return SamplingOptions{Temperature: 0.8, TopK: 40, TopP: 0.95, MinP: 0.05, RepeatPenalty: 1.0, RepeatLastN: 64, Seed: 42}
}

// Validate reports settings outside their ranges.
func (o SamplingOptions) Validate() error {
	switch {
	case o.Temperature < 0 || math.IsNaN(o.Temperature):
		return fmt.Errorf("temperature %v must be ≥ 0", o.Temperature)
	case o.TopK < 0:
		return fmt.Errorf("top-k %d must be ≥ 0", o.TopK)
	case o.TopP < 0 || o.TopP > 1:
		return fmt.Errorf("top-p %v must be in [0, 1]", o.TopP)
	case o.MinP < 0 || o.MinP > 1:
		return fmt.Errorf("min-p %v must be in [0, 1]", o.MinP)
	case o.RepeatPenalty < 0:
		return fmt.Errorf("repeat penalty %v must be ≥ 0", o.RepeatPenalty)
	}
	return nil
}

// Sampler picks tokens from logits; it owns its random stream.
type Sampler struct {
	opt  SamplingOptions
	rng  *rand.Rand
	cand []candidate
}

type candidate struct {
	id    int
	logit float32
	p     float64
}

// NewSampler returns a sampler seeded from opt.Seed.
func NewSampler(opt SamplingOptions) *Sampler {
	if opt.RepeatLastN == 0 {
		opt.RepeatLastN = 64
	}
	return &Sampler{opt: opt, rng: rand.New(rand.NewPCG(opt.Seed, 0x9e3779b97f4a7c15))}
}

// Sample returns the next token given the logits and the tokens so far.
func (s *Sampler) Sample(logits []float32, history []int) int {
	o := s.opt
	s.cand = s.cand[:0]
	for i, l := range logits {
		s.cand = append(s.cand, candidate{id: i, logit: l})
	}
	if o.RepeatPenalty != 0 && o.RepeatPenalty != 1 {
		recent := history[max(0, len(history)-o.RepeatLastN):]
		seen := make(map[int]bool, len(recent))
		for _, t := range recent {
			if seen[t] || t < 0 || t >= len(s.cand) {
				continue
			}
			seen[t] = true
			c := &s.cand[t]
			if c.logit > 0 {
				c.logit /= float32(o.RepeatPenalty)
			} else {
				c.logit *= float32(o.RepeatPenalty)
			}
		}
	}
	if o.Temperature == 0 {
		best := 0
		for i, c := range s.cand {
			if c.logit > s.cand[best].logit {
				best = i
			}
		}
		return s.cand[best].id
	}
	// Sort by logit, descending; ties by id so the order is deterministic.
	slices.SortFunc(s.cand, func(a, b candidate) int {
		if c := cmp.Compare(b.logit, a.logit); c != 0 {
			return c
		}
		return cmp.Compare(a.id, b.id)
	})
	if o.TopK > 0 && o.TopK < len(s.cand) {
		s.cand = s.cand[:o.TopK]
	}
	softmax(s.cand, 1)
	if o.TopP > 0 && o.TopP < 1 {
		var cum float64
		for i := range s.cand {
			cum += s.cand[i].p
			if cum >= o.TopP {
				s.cand = s.cand[:i+1]
				break
			}
		}
	}
	if o.MinP > 0 {
		limit := s.cand[0].p * o.MinP
		n := 1
		for n < len(s.cand) && s.cand[n].p >= limit {
			n++
		}
		s.cand = s.cand[:n]
	}
	softmax(s.cand, o.Temperature)
	r := s.rng.Float64()
	var cum float64
	for _, c := range s.cand {
		cum += c.p
		if r < cum {
			return c.id
		}
	}
	return s.cand[len(s.cand)-1].id
}

// softmax sets p = softmax(logit/temp) over cand (sorted descending).
func softmax(cand []candidate, temp float64) {
	maxL := float64(cand[0].logit)
	var sum float64
	for i := range cand {
		cand[i].p = math.Exp((float64(cand[i].logit) - maxL) / temp)
		sum += cand[i].p
	}
	for i := range cand {
		cand[i].p /= sum
	}
}
