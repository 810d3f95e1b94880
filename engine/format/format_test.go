package format

import (
	"math"
	"testing"
)

func TestNumbers(t *testing.T) {
	nan, inf := math.NaN(), math.Inf(1)
	tests := []struct {
		name string
		f    func(float64) string
		in   float64
		want string
	}{
		{"fitness", Fitness, -2.20801, "-2.2080"},
		{"fitness rounds", Fitness, 0.12345678, "0.1235"},
		{"fitness negative zero", Fitness, math.Copysign(0, -1), "-0.0000"},
		{"fitness NaN", Fitness, nan, Missing},
		{"fitness -Inf", Fitness, -inf, Missing},
		{"change positive", FitnessChange, 0.036, "+0.0360"},
		{"change zero", FitnessChange, 0, "+0.0000"},
		{"change negative", FitnessChange, -1.5, "-1.5000"},
		{"change Inf", FitnessChange, inf, Missing},
		{"perplexity", Perplexity, 9.8149, "9.81"},
		{"perplexity just below 1000", Perplexity, 999.994, "999.99"},
		{"perplexity rounding to 1000", Perplexity, 999.996, "1000"},
		{"perplexity large", Perplexity, 123456.7, "123457"},
		{"perplexity NaN", Perplexity, nan, Missing},
		{"perplexity Inf", Perplexity, inf, Infinite},
		{"perplexity below 1e7", Perplexity, 9999999.4, "9999999"},
		{"perplexity from 1e7", Perplexity, 1e7, "1.00e+07"},
		{"perplexity of a random model", Perplexity, 2.8784302958959623e219, "2.88e+219"},
		{"fraction", Fraction, 0.87349, "0.873"},
		{"fraction one", Fraction, 1, "1.000"},
		{"fraction NaN", Fraction, nan, Missing},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.f(tt.in); got != tt.want {
				t.Errorf("%v → %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestBytes(t *testing.T) {
	tests := []struct {
		in   int64
		want string
	}{
		{0, "0 B"}, {1023, "1023 B"}, {1024, "1.0 KiB"}, {25480396, "24.3 MiB"}, {3 << 29, "1.50 GiB"},
	}
	for _, tt := range tests {
		if got := Bytes(tt.in); got != tt.want {
			t.Errorf("Bytes(%d) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
