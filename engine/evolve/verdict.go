package evolve

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"

	"github.com/evomerge/evomerge/engine/eval"
)

// The verdict. The final comparison scores every model on the same windows
// of the held-out texts, so two models can be compared window by window.
// The statistic is the difference in mean log-perplexity, best − other:
// for each text, the summed negative log-likelihood difference over its
// windows divided by the tokens scored, then the mean over texts — the log
// of the ratio of the geo-mean perplexities the comparison table shows.
// Its 95% interval is a paired percentile bootstrap over windows: each
// resample draws, for every text, as many windows as it has, with
// replacement, the same windows for both models (windows are the unit:
// the tokens inside one window are far from independent). The resampling
// is seeded with the run's seed, so a run's verdict is reproducible. When
// the interval includes 0 the run says the best model is not
// distinguishable from the other on these texts; when the whole interval
// lies within ±verdictNegligible it says they are equal within 0.05%
// (a merge that is the uniform average up to rounding differs from it on
// every window by a hair, consistently — distinguishable, and of no
// consequence).

// verdictNegligible is the difference in mean log-perplexity below which
// two models count as equal: 0.05% in perplexity, under what the
// comparison table's figures resolve.
const verdictNegligible = 0.0005

// verdictResamples is the number of bootstrap resamples: the interval's
// ends then move by well under a tenth of its width between seeds.
const verdictResamples = 4000

// Verdict compares the best model with one other on the held-out windows.
type Verdict struct {
	Model string `json:"model"` // the model compared with
	Kind  string `json:"kind"`  // its ModelScore.Kind: "uniform", "source", ...
	// Diff is best − model in mean log-perplexity (nats per token, mean
	// over texts); negative means the best model is better.
	Diff float64 `json:"diff_mean_log_ppl"`
	// Low and High bound the paired bootstrap's 95% interval of Diff.
	Low             float64 `json:"ci95_low"`
	High            float64 `json:"ci95_high"`
	Windows         int     `json:"windows"`   // windows compared, all texts
	Resamples       int     `json:"resamples"` // bootstrap resamples
	Distinguishable bool    `json:"distinguishable"`
	// Negligible: the whole interval lies within ±0.0005 (0.05%).
	Negligible bool `json:"negligible"`
}

// String is the verdict in one line, e.g. "best − uniform: −0.0213
// mean log-perplexity (−2.1%), 95% interval [−0.0301, −0.0127] over 288
// windows: better".
func (v Verdict) String() string {
	what := "not distinguishable"
	switch {
	case v.Negligible:
		what = "equal within 0.05%"
	case v.Distinguishable && v.Diff < 0:
		what = "better"
	case v.Distinguishable:
		what = "worse"
	}
	return fmt.Sprintf("best − %s: %+.4f mean log-perplexity (%+.1f%% perplexity), 95%% interval [%+.4f, %+.4f] over %d windows: %s",
		v.Model, v.Diff, 100*math.Expm1(v.Diff), v.Low, v.High, v.Windows, what)
}

// compare is the verdict of best against other, from their per-window
// scores on the same texts and windows.
func compare(best, other ModelScore, seed uint64) (Verdict, error) {
	d, lo, hi, n, err := pairedBootstrap(best.Windows, other.Windows, verdictResamples, seed)
	if err != nil {
		return Verdict{}, fmt.Errorf("best against %s: %w", other.Name, err)
	}
	return Verdict{Model: other.Name, Kind: other.Kind, Diff: d, Low: lo, High: hi, Windows: n, Resamples: verdictResamples,
		Distinguishable: lo > 0 || hi < 0, Negligible: lo > -verdictNegligible && hi < verdictNegligible}, nil
}

// pairedBootstrap returns the difference in mean log-perplexity a − b over
// the texts both score (per text: summed NLL difference over tokens), its
// 95% percentile bootstrap interval over windows resampled within each
// text, and the number of windows. Windows are matched by index.
func pairedBootstrap(a, b map[string][]eval.WindowNLL, resamples int, seed uint64) (diff, lo, hi float64, windows int, err error) {
	type text struct {
		d   []float64 // per-window NLL difference
		tok []float64 // per-window scored tokens
	}
	names := make([]string, 0, len(a))
	for name := range a {
		names = append(names, name)
	}
	slices.Sort(names)
	if len(names) == 0 || len(a) != len(b) {
		return 0, 0, 0, 0, fmt.Errorf("the models were scored on different texts (%d and %d)", len(a), len(b))
	}
	texts := make([]text, len(names))
	for i, name := range names {
		bw, ok := b[name]
		if !ok {
			return 0, 0, 0, 0, fmt.Errorf("text %s scored for one model only", name)
		}
		byIndex := make(map[int]eval.WindowNLL, len(bw))
		for _, w := range bw {
			byIndex[w.Index] = w
		}
		aw := a[name]
		if len(aw) == 0 || len(aw) != len(bw) {
			return 0, 0, 0, 0, fmt.Errorf("text %s: %d and %d windows", name, len(aw), len(bw))
		}
		for _, w := range aw {
			o, ok := byIndex[w.Index]
			if !ok || o.Tokens != w.Tokens || w.Tokens <= 0 {
				return 0, 0, 0, 0, fmt.Errorf("text %s: window %d not scored alike for both models", name, w.Index)
			}
			texts[i].d = append(texts[i].d, w.NLL-o.NLL)
			texts[i].tok = append(texts[i].tok, float64(w.Tokens))
		}
		windows += len(aw)
	}
	for _, t := range texts {
		var d, tok float64
		for k := range t.d {
			d += t.d[k]
			tok += t.tok[k]
		}
		diff += d / tok / float64(len(texts))
	}
	// One resample: per text, len(d) windows drawn with replacement.
	resample := func(rng *rand.Rand) float64 {
		var s float64
		for _, t := range texts {
			var d, tok float64
			for range t.d {
				k := rng.IntN(len(t.d))
				d += t.d[k]
				tok += t.tok[k]
			}
			s += d / tok
		}
		return s / float64(len(texts))
	}
	rng := rand.New(rand.NewPCG(seed, 0x9e3779b97f4a7c15))
	stats := make([]float64, resamples)
	for r := range stats {
		stats[r] = resample(rng)
	}
	slices.Sort(stats)
	return diff, quantile(stats, 0.025), quantile(stats, 0.975), windows, nil
}

// quantile of sorted xs, linearly interpolated.
func quantile(xs []float64, q float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	pos := q * float64(len(xs)-1)
	i := int(pos)
	if i+1 >= len(xs) {
		return xs[len(xs)-1]
	}
	return xs[i] + (pos-float64(i))*(xs[i+1]-xs[i])
}
