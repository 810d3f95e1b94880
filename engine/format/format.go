// Package format writes the numbers evomerge shows people — fitness,
// perplexity, coherence and task accuracy — with the same digits in the
// workbench, the report and the command line, so a value read on one can
// be found on the others.
//
// Exports meant for programs (CSV, JSON, history.jsonl) keep full
// precision instead; see engine/export.
package format

import (
	"fmt"
	"math"
	"strconv"
)

// Missing stands for a value that does not exist: NaN, ±Inf (but an
// infinite perplexity, which is Infinite), or a candidate that was never
// scored.
const Missing = "—"

// Fitness is a fitness value (higher is better, typically −mean ln
// perplexity): four decimals, enough to tell candidates apart when
// perplexities differ in the third digit.
func Fitness(x float64) string {
	if !finite(x) {
		return Missing
	}
	return strconv.FormatFloat(x, 'f', 4, 64)
}

// FitnessChange is a difference of fitness values, always signed: "+0.0360".
func FitnessChange(d float64) string {
	if !finite(d) {
		return Missing
	}
	return fmt.Sprintf("%+.4f", d)
}

// Perplexity is a perplexity: two decimals below 1000, none from there
// up to 10⁷, three significant digits in exponent form beyond (2.88e+219).
// A broken merge's perplexity runs to 10⁴–10⁶, where decimals are noise
// and would widen every column that holds one; a random model's runs to
// 10²⁰⁰ and beyond, and to +Inf, shown as ∞ (a value, not a missing one).
func Perplexity(p float64) string {
	switch {
	case math.IsInf(p, 1):
		return Infinite
	case !finite(p):
		return Missing
	case math.Abs(p) >= 1e7:
		return strconv.FormatFloat(p, 'e', 2, 64)
	case math.Abs(math.Round(p*100)/100) >= 1000:
		return strconv.FormatFloat(p, 'f', 0, 64)
	}
	return strconv.FormatFloat(p, 'f', 2, 64)
}

// Infinite is an infinite perplexity: the model gives a token it must
// predict probability zero.
const Infinite = "∞"

// Fraction is a score in [0, 1] such as coherence or task accuracy: three
// decimals.
func Fraction(x float64) string {
	if !finite(x) {
		return Missing
	}
	return strconv.FormatFloat(x, 'f', 3, 64)
}

func finite(x float64) bool { return !math.IsNaN(x) && !math.IsInf(x, 0) }

// Bytes is a size in binary units: "512 B", "23.6 MiB", "1.25 GiB".
func Bytes(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.2f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}
