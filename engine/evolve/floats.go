package evolve

import (
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"

	"github.com/evomerge/evomerge/engine/eval"
)

// A broken merge scores +Inf or NaN perplexity (a token it must predict
// gets probability zero; its activations overflow). Such a candidate is
// not an error of the run: it is recorded as failed, ranked below every
// scored candidate like any failed one, with the values it measured and
// the reason. The run's files — history.jsonl, summary.json — carry those
// values in eval.Float's encoding ("+Inf", "-Inf", "NaN" where a number
// would stand), so nothing is lost and a replay reads them back.

// nonFinite describes the scores that are infinite or NaN ("" when all
// are finite): "perplexity +Inf on bible, NaN on moby".
func nonFinite(s Scores) string {
	var parts []string
	var ppl []string
	for _, name := range slices.Sorted(maps.Keys(s.Perplexity)) {
		if x := s.Perplexity[name]; !isFinite(x) {
			ppl = append(ppl, fmt.Sprintf("%s on %s", showFloat(x), name))
		}
	}
	if len(ppl) > 0 {
		parts = append(parts, "perplexity "+strings.Join(ppl, ", "))
	} else if !isFinite(s.MeanLogPPL) {
		parts = append(parts, "mean ln perplexity "+showFloat(s.MeanLogPPL))
	}
	if !isFinite(s.Coherence) {
		parts = append(parts, "coherence "+showFloat(s.Coherence))
	}
	if !isFinite(s.TaskAccuracy) {
		parts = append(parts, "task accuracy "+showFloat(s.TaskAccuracy))
	}
	return strings.Join(parts, "; ")
}

func isFinite(x float64) bool { return !math.IsInf(x, 0) && !math.IsNaN(x) }

// showFloat writes a non-finite value as the run's files do.
func showFloat(x float64) string {
	raw, _ := eval.Float(x).MarshalJSON()
	return strings.Trim(string(raw), `"`)
}

// MarshalJSON writes the scores with eval.Float's encoding.
func (s Scores) MarshalJSON() ([]byte, error) {
	type plain Scores
	return json.Marshal(struct {
		plain
		Perplexity   eval.Floats `json:"perplexity,omitempty"`
		MeanLogPPL   eval.Float  `json:"mean_log_ppl"`
		Coherence    eval.Float  `json:"coherence,omitempty"`
		TaskAccuracy eval.Float  `json:"task_accuracy,omitempty"`
	}{plain(s), eval.FloatsOf(s.Perplexity), eval.Float(s.MeanLogPPL), eval.Float(s.Coherence), eval.Float(s.TaskAccuracy)})
}

// UnmarshalJSON reads what MarshalJSON writes.
func (s *Scores) UnmarshalJSON(b []byte) error {
	type plain Scores
	aux := struct {
		*plain
		Perplexity   eval.Floats `json:"perplexity,omitempty"`
		MeanLogPPL   eval.Float  `json:"mean_log_ppl"`
		Coherence    eval.Float  `json:"coherence,omitempty"`
		TaskAccuracy eval.Float  `json:"task_accuracy,omitempty"`
	}{plain: (*plain)(s)}
	if err := json.Unmarshal(b, &aux); err != nil {
		return err
	}
	s.Perplexity, s.MeanLogPPL = aux.Perplexity.Plain(), float64(aux.MeanLogPPL)
	s.Coherence, s.TaskAccuracy = float64(aux.Coherence), float64(aux.TaskAccuracy)
	return nil
}

// MarshalJSON writes the record with eval.Float's encoding.
func (r Record) MarshalJSON() ([]byte, error) {
	type plain Record
	return json.Marshal(struct {
		plain
		Fitness    eval.Float   `json:"fitness"`
		Objectives []eval.Float `json:"objectives,omitempty"`
	}{plain(r), eval.Float(r.Fitness), eval.FloatSlice(r.Objectives)})
}

// UnmarshalJSON reads what MarshalJSON writes.
func (r *Record) UnmarshalJSON(b []byte) error {
	type plain Record
	aux := struct {
		*plain
		Fitness    eval.Float   `json:"fitness"`
		Objectives []eval.Float `json:"objectives,omitempty"`
	}{plain: (*plain)(r)}
	if err := json.Unmarshal(b, &aux); err != nil {
		return err
	}
	r.Fitness, r.Objectives = float64(aux.Fitness), eval.PlainSlice(aux.Objectives)
	return nil
}

// MarshalJSON writes the held-out scores with eval.Float's encoding.
func (m ModelScore) MarshalJSON() ([]byte, error) {
	type plain ModelScore
	return json.Marshal(struct {
		plain
		Perplexity eval.Floats `json:"perplexity"`
		StdErr     eval.Floats `json:"perplexity_stderr"`
		GeoMean    eval.Float  `json:"geo_mean_perplexity"`
		Coherence  eval.Float  `json:"coherence"`
	}{plain(m), eval.FloatsOf(m.Perplexity), eval.FloatsOf(m.StdErr), eval.Float(m.GeoMean), eval.Float(m.Coherence)})
}

// UnmarshalJSON reads what MarshalJSON writes.
func (m *ModelScore) UnmarshalJSON(b []byte) error {
	type plain ModelScore
	aux := struct {
		*plain
		Perplexity eval.Floats `json:"perplexity"`
		StdErr     eval.Floats `json:"perplexity_stderr"`
		GeoMean    eval.Float  `json:"geo_mean_perplexity"`
		Coherence  eval.Float  `json:"coherence"`
	}{plain: (*plain)(m)}
	if err := json.Unmarshal(b, &aux); err != nil {
		return err
	}
	m.Perplexity, m.StdErr = aux.Perplexity.Plain(), aux.StdErr.Plain()
	m.GeoMean, m.Coherence = float64(aux.GeoMean), float64(aux.Coherence)
	return nil
}
