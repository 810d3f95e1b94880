package evolve

import (
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/evomerge/evomerge/engine/eval"
)

// synthWindows makes per-window scores of two models on one text: model b
// has NLL base+noise per token, model a adds a per-window difference drawn
// from N(mu, sigma²) per token.
func synthWindows(rng *rand.Rand, n, tokens int, mu, sigma float64) (a, b []eval.WindowNLL) {
	for i := range n {
		base := (5 + rng.NormFloat64()) * float64(tokens)
		d := (mu + sigma*rng.NormFloat64()) * float64(tokens)
		b = append(b, eval.WindowNLL{Index: i, NLL: base, Tokens: tokens})
		a = append(a, eval.WindowNLL{Index: i, NLL: base + d, Tokens: tokens})
	}
	return a, b
}

// TestPairedBootstrapExact: a constant per-token difference gives that
// difference and a zero-width interval; the windows are matched by index,
// not position; the mean is over texts, not windows.
func TestPairedBootstrapExact(t *testing.T) {
	a := map[string][]eval.WindowNLL{
		"x": {{Index: 0, NLL: 10, Tokens: 10}, {Index: 1, NLL: 20, Tokens: 10}},
		"y": {{Index: 3, NLL: 30, Tokens: 5}, {Index: 1, NLL: 10, Tokens: 5}, {Index: 2, NLL: 10, Tokens: 5}},
	}
	b := map[string][]eval.WindowNLL{
		"x": {{Index: 1, NLL: 19, Tokens: 10}, {Index: 0, NLL: 9, Tokens: 10}},                                      // −0.1 per token
		"y": {{Index: 1, NLL: 11.5, Tokens: 5}, {Index: 2, NLL: 11.5, Tokens: 5}, {Index: 3, NLL: 31.5, Tokens: 5}}, // +0.3 per token
	}
	d, lo, hi, n, err := pairedBootstrap(a, b, 500, 1)
	if err != nil {
		t.Fatal(err)
	}
	const want = (0.1 - 0.3) / 2
	if n != 5 || math.Abs(d-want) > 1e-12 || math.Abs(lo-want) > 1e-12 || math.Abs(hi-want) > 1e-12 {
		t.Errorf("got %v [%v, %v] over %d windows, want %v [same] over 5", d, lo, hi, n, want)
	}
	for name, bad := range map[string]map[string][]eval.WindowNLL{
		"other text":     {"x": b["x"], "z": b["y"]},
		"missing window": {"x": b["x"], "y": {{Index: 1, NLL: 1, Tokens: 5}, {Index: 2, NLL: 1, Tokens: 5}, {Index: 4, NLL: 1, Tokens: 5}}},
		"fewer windows":  {"x": b["x"], "y": b["y"][:2]},
		"fewer texts":    {"x": b["x"]},
	} {
		if _, _, _, _, err := pairedBootstrap(a, bad, 100, 1); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

// TestPairedBootstrapCoverage: over many synthetic experiments the 95%
// interval contains the true difference about 95% of the time, has about
// the normal-theory width, and is reproducible from its seed.
func TestPairedBootstrapCoverage(t *testing.T) {
	rng := rand.New(rand.NewPCG(42, 7))
	const trials, mu, sigma = 300, -0.02, 0.05
	covered, zeroOut := 0, 0
	var width float64
	for trial := range trials {
		a, b := map[string][]eval.WindowNLL{}, map[string][]eval.WindowNLL{}
		for _, text := range []string{"bible", "moby", "sotu"} {
			a[text], b[text] = synthWindows(rng, 90, 127, mu, sigma)
		}
		_, lo, hi, _, err := pairedBootstrap(a, b, 1000, uint64(trial))
		if err != nil {
			t.Fatal(err)
		}
		if lo <= mu && mu <= hi {
			covered++
		}
		if hi < 0 {
			zeroOut++
		}
		width += (hi - lo) / trials
		if trial == 0 {
			_, lo2, hi2, _, _ := pairedBootstrap(a, b, 1000, 0)
			if lo2 != lo || hi2 != hi {
				t.Errorf("same seed, different interval: [%v, %v] and [%v, %v]", lo, hi, lo2, hi2)
			}
		}
	}
	// Coverage of 300 trials at 95%: binomial sd 1.3%; accept 90–99%.
	if c := float64(covered) / trials; c < 0.90 || c > 0.99 {
		t.Errorf("coverage %.3f, want about 0.95", c)
	}
	// The mean over 3 texts of a mean over 90 windows: sd sigma/sqrt(270).
	if want := 2 * 1.96 * sigma / math.Sqrt(270); math.Abs(width-want)/want > 0.1 {
		t.Errorf("mean width %.5f, normal theory %.5f", width, want)
	}
	// mu/sd = 6.6: the interval excludes 0 essentially always.
	if zeroOut < trials-3 {
		t.Errorf("the interval excluded 0 in %d of %d trials with a true difference of %v", zeroOut, trials, mu)
	}
}

// TestVerdictNotDistinguishable: no true difference gives intervals that
// include 0 about 95% of the time, and the verdict line says so.
func TestVerdictNotDistinguishable(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	includes := 0
	const trials = 200
	var last Verdict
	for trial := range trials {
		best, other := ModelScore{Name: "best", Windows: map[string][]eval.WindowNLL{}}, ModelScore{Name: "uniform", Kind: "uniform", Windows: map[string][]eval.WindowNLL{}}
		for _, text := range []string{"bible", "moby"} {
			best.Windows[text], other.Windows[text] = synthWindows(rng, 60, 127, 0, 0.05)
		}
		v, err := compare(best, other, uint64(trial))
		if err != nil {
			t.Fatal(err)
		}
		if !v.Distinguishable {
			includes++
			last = v
		}
	}
	if c := float64(includes) / trials; c < 0.89 || c > 0.995 {
		t.Errorf("with no true difference the interval included 0 in %.3f of trials, want about 0.95", c)
	}
	if s := last.String(); !strings.Contains(s, "best − uniform") || !strings.HasSuffix(s, "not distinguishable") || !strings.Contains(s, "120 windows") {
		t.Errorf("verdict line %q", s)
	}
}

// TestVerdictNegligible: a best model 2e-5 nats per token below the other
// on every window is distinguishable but equal within 0.05%, and the line
// says so; 0.01 below is better.
func TestVerdictNegligible(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for _, c := range []struct {
		mu         float64
		negligible bool
		suffix     string
	}{{-2e-5, true, "equal within 0.05%"}, {-0.01, false, ": better"}} {
		best, other := ModelScore{Name: "best", Windows: map[string][]eval.WindowNLL{}}, ModelScore{Name: "uniform", Kind: "uniform", Windows: map[string][]eval.WindowNLL{}}
		best.Windows["bible"], other.Windows["bible"] = synthWindows(rng, 60, 127, c.mu, 1e-6)
		v, err := compare(best, other, 1)
		if err != nil {
			t.Fatal(err)
		}
		if !v.Distinguishable || v.Negligible != c.negligible || !strings.HasSuffix(v.String(), c.suffix) {
			t.Errorf("difference %g: distinguishable %v, negligible %v, %q", c.mu, v.Distinguishable, v.Negligible, v.String())
		}
	}
}
