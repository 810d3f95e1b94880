package eval

import (
	"encoding/json"
	"math"
	"strings"
	"testing"
)

// sameFloat is equality that holds NaN equal to NaN.
func sameFloat(a, b float64) bool { return a == b || (math.IsNaN(a) && math.IsNaN(b)) }

// TestResultsCarryNonFinite: perplexity, coherence and task results whose
// values are infinite or NaN (a broken model's) go through JSON and come
// back the same, with the documented encoding on the wire.
func TestResultsCarryNonFinite(t *testing.T) {
	inf, nan := math.Inf(1), math.NaN()
	ppl := PerplexityReply{Texts: []TextPerplexity{
		{Name: "bible", PerplexityResult: PerplexityResult{Perplexity: inf, StdErr: nan, NLL: 812.5, Tokens: 254, Chunks: 2}, Seconds: 1.25},
		{Name: "moby", PerplexityResult: PerplexityResult{Perplexity: 12.5, StdErr: 0.25, NLL: math.Log(12.5), Tokens: 127, Chunks: 1}, Seconds: 0.5},
	}}
	raw, err := json.Marshal(ppl)
	if err != nil {
		t.Fatalf("perplexity reply: %v", err)
	}
	for _, want := range []string{`"name":"bible"`, `"perplexity":"+Inf"`, `"perplexity_stderr":"NaN"`, `"nll":812.5`, `"seconds":1.25`, `"perplexity":12.5`} {
		if !strings.Contains(string(raw), want) {
			t.Errorf("perplexity reply %s lacks %s", raw, want)
		}
	}
	var back PerplexityReply
	if err := json.Unmarshal(raw, &back); err != nil {
		t.Fatal(err)
	}
	if len(back.Texts) != 2 {
		t.Fatalf("read back %+v", back)
	}
	for i, got := range back.Texts {
		want := ppl.Texts[i]
		if got.Name != want.Name || !sameFloat(got.Perplexity, want.Perplexity) || !sameFloat(got.StdErr, want.StdErr) ||
			got.NLL != want.NLL || got.Tokens != want.Tokens || got.Chunks != want.Chunks || got.Seconds != want.Seconds {
			t.Errorf("text %d: read back %+v, want %+v", i, got, want)
		}
	}

	coh := CoherenceResult{Score: 0.125, RefPerplexity: inf, Distinct2: 1, Samples: []CoherenceSample{
		{Prompt: "Once upon a time", Text: "xq", RefPerplexity: inf, Distinct2: 1, Score: 0},
		{Prompt: "Call me", Text: "a b c d", RefPerplexity: nan, Distinct2: 0.5, Score: nan},
	}}
	raw, err = json.Marshal(coh)
	if err != nil {
		t.Fatalf("coherence: %v", err)
	}
	var cback CoherenceResult
	if err := json.Unmarshal(raw, &cback); err != nil {
		t.Fatal(err)
	}
	if cback.Score != coh.Score || !sameFloat(cback.RefPerplexity, inf) || cback.Distinct2 != 1 || len(cback.Samples) != 2 {
		t.Fatalf("coherence read back %+v from %s", cback, raw)
	}
	for i, s := range cback.Samples {
		w := coh.Samples[i]
		if s.Prompt != w.Prompt || s.Text != w.Text || !sameFloat(s.RefPerplexity, w.RefPerplexity) || s.Distinct2 != w.Distinct2 || !sameFloat(s.Score, w.Score) {
			t.Errorf("sample %d: read back %+v, want %+v", i, s, w)
		}
	}

	tasks := TaskResult{Tasks: 0, Correct: 0, Accuracy: nan, CorrectNorm: 0, AccuracyNorm: nan}
	raw, err = json.Marshal(tasks)
	if err != nil {
		t.Fatalf("tasks: %v", err)
	}
	var tback TaskResult
	if err := json.Unmarshal(raw, &tback); err != nil || !math.IsNaN(tback.Accuracy) || !math.IsNaN(tback.AccuracyNorm) {
		t.Fatalf("tasks read back %+v from %s (%v)", tback, raw, err)
	}
	tasks = TaskResult{Tasks: 4, Correct: 3, Accuracy: 0.75, CorrectNorm: 2, AccuracyNorm: 0.5}
	raw, _ = json.Marshal(tasks)
	if err := json.Unmarshal(raw, &tback); err != nil || tback != tasks {
		t.Fatalf("tasks read back %+v from %s (%v)", tback, raw, err)
	}
}

func TestFloatEncoding(t *testing.T) {
	for _, tt := range []struct {
		in   float64
		wire string
	}{
		{0, `0`}, {1.5, `1.5`}, {-2.25e-300, `-2.25e-300`}, {math.MaxFloat64, `1.7976931348623157e+308`},
		{math.Inf(1), `"+Inf"`}, {math.Inf(-1), `"-Inf"`}, {math.NaN(), `"NaN"`},
	} {
		raw, err := json.Marshal(Float(tt.in))
		if err != nil || string(raw) != tt.wire {
			t.Errorf("%v: wrote %s (%v), want %s", tt.in, raw, err, tt.wire)
		}
		var back Float
		if err := json.Unmarshal(raw, &back); err != nil || !sameFloat(float64(back), tt.in) {
			t.Errorf("%s: read %v (%v), want %v", raw, back, err, tt.in)
		}
	}
	for _, tt := range []struct {
		wire string
		want float64
	}{{`"Inf"`, math.Inf(1)}, {`"Infinity"`, math.Inf(1)}, {`"-Infinity"`, math.Inf(-1)}, {` 3 `, 3}} {
		var f Float
		if err := json.Unmarshal([]byte(tt.wire), &f); err != nil || float64(f) != tt.want {
			t.Errorf("%s: read %v (%v), want %v", tt.wire, f, err, tt.want)
		}
	}
	for _, bad := range []string{`"inf!"`, `"12"`, `true`} {
		var f Float
		if err := json.Unmarshal([]byte(bad), &f); err == nil {
			t.Errorf("%s: read as %v, want an error", bad, f)
		}
	}
	f := Float(7)
	if err := json.Unmarshal([]byte(`null`), &f); err != nil || f != 7 {
		t.Errorf("null changed the value to %v (%v)", f, err)
	}
	m := map[string]float64{"a": math.Inf(1), "b": 2}
	raw, err := json.Marshal(FloatsOf(m))
	if err != nil || string(raw) != `{"a":"+Inf","b":2}` {
		t.Fatalf("map wrote %s (%v)", raw, err)
	}
	var back Floats
	if err := json.Unmarshal(raw, &back); err != nil || !math.IsInf(back.Plain()["a"], 1) || back.Plain()["b"] != 2 {
		t.Fatalf("map read back %v (%v)", back, err)
	}
	if FloatsOf(nil) != nil || Floats(nil).Plain() != nil || FloatSlice(nil) != nil || PlainSlice(nil) != nil {
		t.Error("nil did not stay nil")
	}
}
