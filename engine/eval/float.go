package eval

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
)

// Float is a float64 whose JSON form carries every value. JSON numbers
// cannot be infinite or NaN, yet those are results a model can produce: a
// model that gives a scored token zero probability has perplexity +Inf,
// one whose activations overflow has NaN logits and NaN perplexity. They
// are reported as such, never as an encoding error.
//
// The encoding: a finite value is a JSON number (as encoding/json writes a
// float64, so it reads back exactly); +Inf, -Inf and NaN are the JSON
// strings "+Inf", "-Inf" and "NaN". Reading accepts both forms, and
// "Inf" and "Infinity" with or without a sign. The worker protocol's
// results (perplexity, coherence, task accuracy), history.jsonl,
// summary.json and `evaluate --json` write every measured value this way.
type Float float64

// MarshalJSON writes f as a number, or as a string when it is not finite.
func (f Float) MarshalJSON() ([]byte, error) {
	x := float64(f)
	switch {
	case math.IsNaN(x):
		return []byte(`"NaN"`), nil
	case math.IsInf(x, 1):
		return []byte(`"+Inf"`), nil
	case math.IsInf(x, -1):
		return []byte(`"-Inf"`), nil
	}
	return json.Marshal(x)
}

// UnmarshalJSON reads a number or one of the strings MarshalJSON writes.
func (f *Float) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		switch s {
		case "NaN":
			*f = Float(math.NaN())
		case "+Inf", "Inf", "+Infinity", "Infinity":
			*f = Float(math.Inf(1))
		case "-Inf", "-Infinity":
			*f = Float(math.Inf(-1))
		default:
			return fmt.Errorf("eval.Float: %q is neither a number nor +Inf, -Inf or NaN", s)
		}
		return nil
	}
	if string(b) == "null" {
		return nil // as for a float64: no change
	}
	x, err := strconv.ParseFloat(string(b), 64)
	if err != nil {
		return fmt.Errorf("eval.Float: %s is not a number", b)
	}
	*f = Float(x)
	return nil
}

// Floats is a map of values in Float's encoding.
type Floats map[string]Float

// FloatsOf converts a map of float64 (nil stays nil).
func FloatsOf(m map[string]float64) Floats {
	if m == nil {
		return nil
	}
	out := make(Floats, len(m))
	for k, v := range m {
		out[k] = Float(v)
	}
	return out
}

// Plain converts back to float64 values (nil stays nil).
func (m Floats) Plain() map[string]float64 {
	if m == nil {
		return nil
	}
	out := make(map[string]float64, len(m))
	for k, v := range m {
		out[k] = float64(v)
	}
	return out
}

// FloatSlice converts a slice of float64 (nil stays nil).
func FloatSlice(s []float64) []Float {
	if s == nil {
		return nil
	}
	out := make([]Float, len(s))
	for i, v := range s {
		out[i] = Float(v)
	}
	return out
}

// PlainSlice converts back to float64 values (nil stays nil).
func PlainSlice(s []Float) []float64 {
	if s == nil {
		return nil
	}
	out := make([]float64, len(s))
	for i, v := range s {
		out[i] = float64(v)
	}
	return out
}

// The results' JSON: each float a model's output determines is a Float on
// the wire; the Go types keep float64 fields.

// perplexityWire is PerplexityResult as JSON carries it.
type perplexityWire struct {
	Perplexity Float        `json:"perplexity"`
	StdErr     Float        `json:"perplexity_stderr"`
	NLL        Float        `json:"nll"`
	Tokens     int          `json:"tokens"`
	Chunks     int          `json:"chunks"`
	Windows    []windowWire `json:"windows,omitempty"`
	Available  int          `json:"available,omitempty"`
}

// windowWire is WindowNLL as JSON carries it.
type windowWire struct {
	Index  int   `json:"i"`
	NLL    Float `json:"nll"`
	Tokens int   `json:"tokens"`
}

func (r PerplexityResult) wire() perplexityWire {
	w := perplexityWire{Float(r.Perplexity), Float(r.StdErr), Float(r.NLL), r.Tokens, r.Chunks, nil, r.Available}
	for _, x := range r.Windows {
		w.Windows = append(w.Windows, windowWire{x.Index, Float(x.NLL), x.Tokens})
	}
	return w
}

func (w perplexityWire) result() PerplexityResult {
	r := PerplexityResult{Perplexity: float64(w.Perplexity), StdErr: float64(w.StdErr), NLL: float64(w.NLL), Tokens: w.Tokens, Chunks: w.Chunks, Available: w.Available}
	for _, x := range w.Windows {
		r.Windows = append(r.Windows, WindowNLL{x.Index, float64(x.NLL), x.Tokens})
	}
	return r
}

// MarshalJSON writes the result in Float's encoding.
func (r PerplexityResult) MarshalJSON() ([]byte, error) { return json.Marshal(r.wire()) }

// UnmarshalJSON reads what MarshalJSON writes.
func (r *PerplexityResult) UnmarshalJSON(b []byte) error {
	var w perplexityWire
	if err := json.Unmarshal(b, &w); err != nil {
		return err
	}
	*r = w.result()
	return nil
}

// textPerplexityWire is TextPerplexity as JSON carries it: the text's
// name, its PerplexityResult's fields, the time taken.
type textPerplexityWire struct {
	Name string `json:"name"`
	perplexityWire
	Seconds float64 `json:"seconds"`
}

// MarshalJSON writes the text's result in Float's encoding (without it,
// PerplexityResult's method, promoted, would drop the name).
func (t TextPerplexity) MarshalJSON() ([]byte, error) {
	return json.Marshal(textPerplexityWire{t.Name, t.PerplexityResult.wire(), t.Seconds})
}

// UnmarshalJSON reads what MarshalJSON writes.
func (t *TextPerplexity) UnmarshalJSON(b []byte) error {
	var w textPerplexityWire
	if err := json.Unmarshal(b, &w); err != nil {
		return err
	}
	*t = TextPerplexity{Name: w.Name, PerplexityResult: w.perplexityWire.result(), Seconds: w.Seconds}
	return nil
}

// MarshalJSON writes the sample in Float's encoding.
func (s CoherenceSample) MarshalJSON() ([]byte, error) {
	type plain CoherenceSample
	return json.Marshal(struct {
		plain
		RefPerplexity Float `json:"ref_perplexity"`
		Distinct2     Float `json:"distinct2"`
		Score         Float `json:"score"`
	}{plain(s), Float(s.RefPerplexity), Float(s.Distinct2), Float(s.Score)})
}

// UnmarshalJSON reads what MarshalJSON writes.
func (s *CoherenceSample) UnmarshalJSON(b []byte) error {
	type plain CoherenceSample
	aux := struct {
		*plain
		RefPerplexity Float `json:"ref_perplexity"`
		Distinct2     Float `json:"distinct2"`
		Score         Float `json:"score"`
	}{plain: (*plain)(s)}
	if err := json.Unmarshal(b, &aux); err != nil {
		return err
	}
	s.RefPerplexity, s.Distinct2, s.Score = float64(aux.RefPerplexity), float64(aux.Distinct2), float64(aux.Score)
	return nil
}

// MarshalJSON writes the result in Float's encoding.
func (r CoherenceResult) MarshalJSON() ([]byte, error) {
	type plain CoherenceResult
	return json.Marshal(struct {
		plain
		Score         Float `json:"coherence"`
		RefPerplexity Float `json:"ref_perplexity"`
		Distinct2     Float `json:"distinct2"`
	}{plain(r), Float(r.Score), Float(r.RefPerplexity), Float(r.Distinct2)})
}

// UnmarshalJSON reads what MarshalJSON writes.
func (r *CoherenceResult) UnmarshalJSON(b []byte) error {
	type plain CoherenceResult
	aux := struct {
		*plain
		Score         Float `json:"coherence"`
		RefPerplexity Float `json:"ref_perplexity"`
		Distinct2     Float `json:"distinct2"`
	}{plain: (*plain)(r)}
	if err := json.Unmarshal(b, &aux); err != nil {
		return err
	}
	r.Score, r.RefPerplexity, r.Distinct2 = float64(aux.Score), float64(aux.RefPerplexity), float64(aux.Distinct2)
	return nil
}

// MarshalJSON writes the result in Float's encoding.
func (r TaskResult) MarshalJSON() ([]byte, error) {
	type plain TaskResult
	return json.Marshal(struct {
		plain
		Accuracy     Float `json:"accuracy"`
		AccuracyNorm Float `json:"accuracy_norm"`
	}{plain(r), Float(r.Accuracy), Float(r.AccuracyNorm)})
}

// UnmarshalJSON reads what MarshalJSON writes.
func (r *TaskResult) UnmarshalJSON(b []byte) error {
	type plain TaskResult
	aux := struct {
		*plain
		Accuracy     Float `json:"accuracy"`
		AccuracyNorm Float `json:"accuracy_norm"`
	}{plain: (*plain)(r)}
	if err := json.Unmarshal(b, &aux); err != nil {
		return err
	}
	r.Accuracy, r.AccuracyNorm = float64(aux.Accuracy), float64(aux.AccuracyNorm)
	return nil
}
