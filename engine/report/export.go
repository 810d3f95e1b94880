package report

import (
	"github.com/evomerge/evomerge/engine/eval"
	"github.com/evomerge/evomerge/engine/export"
)

// The exports written beside report.html.
const (
	ReportFile         = "report.html"
	CandidatesCSVFile  = "candidates.csv"
	CandidatesJSONFile = "candidates.json"
)

// exported is the run's candidates as engine/export rows.
func (r *Run) exported() []export.Candidate {
	out := make([]export.Candidate, len(r.Candidates))
	for i, c := range r.Candidates {
		out[i] = export.FromRecord(c)
	}
	return out
}

// CSV renders the candidates as engine/export's CSV, with the configured
// evaluation texts' columns first.
func (r *Run) CSV() ([]byte, error) {
	return export.CSV(r.exported(), eval.TextNames(r.Config.Evaluation.Texts))
}

// JSON renders the candidates as engine/export's JSON.
func (r *Run) JSON() ([]byte, error) { return export.JSON(r.exported()) }
