// Package report turns an evomerge run directory into a self-contained
// HTML report and CSV/JSON exports of its candidates (engine/export's
// format, which the workbench's export shares).
//
// It reads what the engine wrote (summary.json, history.jsonl,
// config.toml and, when present, a bench.json benchmark) and writes
// report.html, candidates.csv and candidates.json beside them, each
// atomically. The page needs no network to be viewed: styling is inline
// and the charts are SVG drawn by gonum/plot and inlined in the page.
// Everything taken from the files is escaped by html/template.
//
//	path, err := report.Write("out") // out/report.html
package report

import (
	"bytes"
	_ "embed"
	"fmt"
	"html/template"
	"maps"
	"math"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/google/renameio/v2"

	"github.com/evomerge/evomerge/engine/eval"
	"github.com/evomerge/evomerge/engine/evolve"
	"github.com/evomerge/evomerge/engine/format"
)

//go:embed report.html.tmpl
var pageSource string

var page = template.Must(template.New("report").Parse(pageSource))

// Write reads the run in dir and writes dir/report.html with
// dir/candidates.csv and dir/candidates.json beside it. It returns the
// report's path.
func Write(dir string) (string, error) {
	r, err := Load(dir)
	if err != nil {
		return "", err
	}
	return r.Write()
}

// Write writes the report and exports of a loaded run into its directory.
func (r *Run) Write() (string, error) {
	csvData, err := r.CSV()
	if err != nil {
		return "", err
	}
	jsonData, err := r.JSON()
	if err != nil {
		return "", err
	}
	htmlData, err := r.HTML()
	if err != nil {
		return "", err
	}
	for _, f := range []struct {
		name string
		data []byte
	}{{CandidatesCSVFile, csvData}, {CandidatesJSONFile, jsonData}, {ReportFile, htmlData}} {
		p := filepath.Join(r.Dir, f.name)
		if err := renameio.WriteFile(p, f.data, 0o644); err != nil {
			return "", fmt.Errorf("report: writing %s: %w", p, err)
		}
	}
	return filepath.Join(r.Dir, ReportFile), nil
}

// HTML renders the report page.
func (r *Run) HTML() ([]byte, error) {
	v, err := r.view()
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	if err := page.Execute(&buf, v); err != nil {
		return nil, fmt.Errorf("report: rendering the page: %w", err)
	}
	return buf.Bytes(), nil
}

// fact is a labelled value; List, when set, is shown as a list.
type fact struct {
	Name, Value string
	List        []string
}

type cell struct {
	Text string
	Best bool
}

type techniqueRow struct {
	Technique           string
	Total, Done, Failed int
	BestFitness, Mean   string
	BestID              string
	best                float64
}

type comparisonRow struct {
	Name, Kind string
	Cells      []cell
	GeoMean    cell
	Tokens     int
	Coherence  string
	raw        map[string]float64
}

type candidateRow struct {
	Rank                                         int
	ID, Technique, Origin, Fitness, PPL, Summary string
	Generation                                   int
}

// sample is a model's continuation, or why there is none (Err).
type sample struct{ Name, Kind, Text, Err string }

type paretoView struct {
	Charts     []template.HTML
	Objectives []string
	Front      []frontRow
	Note       string
}

type frontRow struct {
	ID, Technique, Summary string
	Objectives             []string
}

type genRow struct {
	Gen, Count, Failed           int
	Best, Mean, Worst, BestSoFar string
}

type view struct {
	Title, Generated string
	Notes            []string
	Facts            []fact
	BestFacts        []fact
	BestRecipe       string
	ProgressChart    template.HTML
	Generations      []genRow
	Pareto           *paretoView
	Techniques       []techniqueRow
	TechniqueChart   template.HTML
	Top              []candidateRow
	CompTexts        []string
	Comparison       []comparisonRow
	ComparisonChart  template.HTML
	Verdict          []string
	HasCoherence     bool
	Samples          []sample
	Timings          []fact
	Bench            *Bench
	CSVFile          string
	JSONFile         string
}

// dur rounds a duration for reading.
func dur(d time.Duration) string {
	switch {
	case d <= 0:
		return "0s"
	case d < time.Second:
		return d.Round(time.Millisecond).String()
	case d < time.Minute:
		return d.Round(10 * time.Millisecond).String()
	}
	return d.Round(time.Second).String()
}

var optimizerNames = map[string]string{
	"ga": "genetic algorithm (ga)", "cmaes": "CMA-ES (cmaes)", "es": "evolution strategy (es)", "gradient": "exact gradients (gradient)", "nsga2": "NSGA-II (nsga2)", "random": "random search (random)",
}

// evaluationsFact is the Evaluations line of the run facts.
func evaluationsFact(res evolve.Result, budget, history, failed int) string {
	s := fmt.Sprintf("%d (budget %d); %d in the history, %d failed", res.Evaluations, budget, history, failed)
	if n := len(res.Skipped); n > 0 {
		s += fmt.Sprintf("; %d skipped when the budget ran out (%s)", n, strings.Join(res.Skipped, ", "))
	}
	return s
}

func (r *Run) stopReason() string {
	why := map[string]string{
		"generations": "every configured generation ran",
		"patience":    fmt.Sprintf("no improvement for %d generations (patience)", r.Config.Evolution.Patience),
		"budget":      "the evaluation budget was spent",
		"converged":   "the optimiser converged",
		"cancelled":   "the run was cancelled",
	}
	if w, ok := why[r.Result.Reason]; ok {
		return r.Result.Reason + ": " + w
	}
	return r.Result.Reason
}

func (r *Run) view() (*view, error) {
	res, cfg := r.Result, r.Config
	v := &view{
		Title:     "evomerge run report: " + filepath.Base(filepath.Clean(r.Dir)),
		Generated: time.Now().Format("2006-01-02 15:04:05 MST"),
		CSVFile:   CandidatesCSVFile,
		JSONFile:  CandidatesJSONFile,
		Bench:     r.Bench,
	}
	if r.Truncated {
		v.Notes = append(v.Notes, "The last line of history.jsonl was cut short (the run was killed while writing it) and is left out.")
	}
	failed := 0
	for _, c := range r.Candidates {
		if !c.OK() {
			failed++
		}
	}

	// Run facts.
	opt := optimizerNames[res.Optimizer]
	if opt == "" {
		opt = res.Optimizer
	}
	opt = evolve.OptimizerText(opt, res.Tuned)
	budget := cfg.Evolution.MaxEvaluations
	if budget == 0 {
		budget = cfg.Evolution.Population * cfg.Evolution.Generations
	}
	var sources []string
	for _, m := range cfg.Models {
		s := m.Name + " — " + m.Ref()
		if m.Name == cfg.Merge.Base {
			s += " (base)"
		}
		sources = append(sources, s)
	}
	var objectives []string
	for _, o := range []struct {
		name string
		w    float64
	}{{"perplexity", cfg.Evaluation.Objectives.Perplexity}, {"coherence", cfg.Evaluation.Objectives.Coherence}, {"tasks", cfg.Evaluation.Objectives.Tasks}} {
		if o.w > 0 {
			objectives = append(objectives, fmt.Sprintf("%s ×%g", o.name, o.w))
		}
	}
	outDir := res.OutputDir
	if outDir == "" {
		outDir = r.Dir
	}
	v.Facts = []fact{
		{Name: "Output directory", Value: outDir},
		{Name: "Optimiser", Value: opt},
		{Name: "Seed", Value: fmt.Sprint(res.Seed)},
		{Name: "Population", Value: fmt.Sprint(cfg.Evolution.Population)},
		{Name: "Generations", Value: fmt.Sprintf("%d of %d", res.Generations, cfg.Evolution.Generations)},
		{Name: "Evaluations", Value: evaluationsFact(res, budget, len(r.Candidates), failed)},
		{Name: "Elapsed", Value: dur(res.Elapsed)},
		{Name: "Device", Value: deviceText(res.Device)},
		{Name: "Stopped", Value: r.stopReason()},
		{Name: "Sources", List: sources},
		{Name: "Techniques", Value: strings.Join(cfg.Merge.Techniques, ", ")},
		{Name: "Fitness", Value: "objectives " + strings.Join(objectives, ", ") + "; texts " + strings.Join(cfg.Evaluation.Texts, ", ")},
		{Name: "Held-out texts", Value: strings.Join(cfg.Evaluation.TestTexts, ", ")},
		{Name: "Best candidate", Value: fmt.Sprintf("%s, fitness %s", res.Best.ID, format.Fitness(res.BestFitness))},
	}

	// Best recipe.
	v.BestFacts = []fact{
		{Name: "Candidate", Value: res.Best.ID},
		{Name: "Technique", Value: res.Best.Technique},
		{Name: "Recipe", Value: res.Best.Summary},
		{Name: "Origin", Value: res.Best.Origin},
		{Name: "Fitness", Value: format.Fitness(res.BestFitness)},
	}
	if len(res.Best.Parents) > 0 {
		v.BestFacts = append(v.BestFacts, fact{Name: "Parents", Value: strings.Join(res.Best.Parents, ", ")})
	}
	for _, t := range slices.Sorted(maps.Keys(res.BestScores.Perplexity)) {
		v.BestFacts = append(v.BestFacts, fact{Name: "Perplexity on " + t, Value: format.Perplexity(res.BestScores.Perplexity[t])})
	}
	if res.BestModel != "" {
		v.BestFacts = append(v.BestFacts, fact{Name: "Model file", Value: res.BestModel})
	}
	if res.BestRecipe != "" {
		v.BestFacts = append(v.BestFacts, fact{Name: "Recipe file", Value: res.BestRecipe})
	}
	v.BestRecipe = res.Best.Recipe
	if v.BestRecipe == "" {
		for _, c := range r.Candidates {
			if c.ID == res.Best.ID || (res.Best.Key != "" && c.Key == res.Best.Key) {
				v.BestRecipe = c.Recipe
			}
		}
	}

	// Progress.
	stats := r.generationStats()
	for _, s := range stats {
		v.Generations = append(v.Generations, genRow{Gen: s.Gen, Count: s.Count, Failed: s.Failed,
			Best: format.Fitness(s.Best), Mean: format.Fitness(s.Mean), Worst: format.Fitness(s.Worst), BestSoFar: format.Fitness(s.BestSoFar)})
	}
	var plotted []genStat
	for _, s := range stats {
		if s.Count > 0 {
			plotted = append(plotted, s)
		}
	}
	if len(plotted) > 0 {
		svg, err := progressChart(plotted)
		if err != nil {
			return nil, err
		}
		v.ProgressChart = svg
	}

	var err error
	if v.Pareto, err = r.pareto(); err != nil {
		return nil, err
	}

	// Techniques.
	v.Techniques = r.techniques()
	if len(v.Techniques) > 0 {
		if v.TechniqueChart, err = techniqueChart(v.Techniques); err != nil {
			return nil, err
		}
	}

	// Top candidates.
	var ok []Candidate
	for _, c := range r.Candidates {
		if c.OK() {
			ok = append(ok, c)
		}
	}
	sort.SliceStable(ok, func(i, j int) bool { return ok[i].Fitness > ok[j].Fitness })
	for i, c := range ok[:min(10, len(ok))] {
		row := candidateRow{Rank: i + 1, ID: c.ID, Generation: c.Generation, Technique: c.Technique, Origin: c.Origin,
			Fitness: format.Fitness(c.Fitness), PPL: format.Missing, Summary: c.Summary}
		if len(c.Scores.Perplexity) > 0 {
			row.PPL = format.Perplexity(math.Exp(c.Scores.MeanLogPPL))
		}
		v.Top = append(v.Top, row)
	}

	// Held-out comparison.
	if len(res.Comparison) > 0 {
		v.CompTexts, v.Comparison, v.HasCoherence = comparison(res.Comparison)
		if len(v.CompTexts) > 0 {
			if v.ComparisonChart, err = comparisonChart(v.CompTexts, v.Comparison); err != nil {
				return nil, err
			}
		}
		for _, vd := range res.Verdict {
			v.Verdict = append(v.Verdict, vd.String())
		}
		for _, m := range res.Comparison {
			if m.CoherenceError != "" {
				v.Notes = append(v.Notes, fmt.Sprintf("The held-out coherence of %s could not be measured: %s", m.Name, m.CoherenceError))
			}
			if m.Sample != "" || m.SampleError != "" {
				v.Samples = append(v.Samples, sample{Name: m.Name, Kind: m.Kind, Text: m.Sample, Err: m.SampleError})
			}
		}
	}

	// Timings.
	t := res.Timings
	var mergeSum, evalSum float64
	merged := 0
	for _, c := range r.Candidates {
		mergeSum += c.MergeSec
		evalSum += c.EvalSec
		if c.MergeSec > 0 {
			merged++
		}
	}
	v.Timings = []fact{
		{Name: "Elapsed", Value: dur(res.Elapsed)},
		{Name: "Merging (sum over candidates)", Value: dur(t.Merge)},
		{Name: "Evaluating (sum over candidates)", Value: dur(t.Evaluate)},
		{Name: "Overhead (selection, bookkeeping, I/O)", Value: dur(t.Overhead)},
		{Name: "Final evaluation (held-out comparison)", Value: dur(t.FinalEval)},
		{Name: "Fitness cache hits", Value: fmt.Sprint(t.CacheHits)},
		{Name: "Tensor cache hits", Value: fmt.Sprint(t.TensorHits)},
	}
	if merged > 0 {
		v.Timings = append(v.Timings, fact{Name: "Mean merge per merged candidate", Value: dur(time.Duration(mergeSum / float64(merged) * float64(time.Second)))})
	}
	if n := len(r.Candidates); n > 0 {
		v.Timings = append(v.Timings, fact{Name: "Mean evaluation per candidate", Value: dur(time.Duration(evalSum / float64(n) * float64(time.Second)))})
	}
	return v, nil
}

// deviceText says where candidates were evaluated; runs recorded without
// it say so.
func deviceText(d eval.Placement) string {
	if d.Workers == 0 {
		return "not recorded"
	}
	return d.String()
}

// generationStats summarises each generation's scored candidates.
func (r *Run) generationStats() []genStat {
	byGen := map[int]*genStat{}
	for _, c := range r.Candidates {
		s := byGen[c.Generation]
		if s == nil {
			s = &genStat{Gen: c.Generation, Best: math.Inf(-1), Worst: math.Inf(1)}
			byGen[c.Generation] = s
		}
		if !c.OK() {
			s.Failed++
			continue
		}
		s.Count++
		s.Mean += c.Fitness
		s.Best, s.Worst = max(s.Best, c.Fitness), min(s.Worst, c.Fitness)
	}
	var out []genStat
	for _, g := range slices.Sorted(maps.Keys(byGen)) {
		out = append(out, *byGen[g])
	}
	best := math.Inf(-1)
	for i := range out {
		s := &out[i]
		if s.Count == 0 {
			s.Best, s.Worst, s.Mean = math.NaN(), math.NaN(), math.NaN()
		} else {
			s.Mean /= float64(s.Count)
			best = max(best, s.Best)
		}
		s.BestSoFar = best
	}
	return out
}

func (r *Run) techniques() []techniqueRow {
	rows := map[string]*techniqueRow{}
	var order []string
	add := func(t string) *techniqueRow {
		if rows[t] == nil {
			rows[t] = &techniqueRow{Technique: t, best: math.Inf(-1)}
			order = append(order, t)
		}
		return rows[t]
	}
	for _, t := range r.Config.Merge.Techniques {
		add(t)
	}
	sums := map[string]float64{}
	for _, c := range r.Candidates {
		row := add(c.Technique)
		row.Total++
		if !c.OK() {
			row.Failed++
			continue
		}
		row.Done++
		sums[c.Technique] += c.Fitness
		if c.Fitness > row.best {
			row.best, row.BestID = c.Fitness, c.ID
		}
	}
	out := make([]techniqueRow, 0, len(order))
	for _, t := range order {
		row := *rows[t]
		row.BestFitness, row.Mean = format.Missing, format.Missing
		if row.Done > 0 {
			row.BestFitness, row.Mean = format.Fitness(row.best), format.Fitness(sums[t]/float64(row.Done))
		}
		out = append(out, row)
	}
	sort.SliceStable(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if (a.Done > 0) != (b.Done > 0) {
			return a.Done > 0
		}
		return a.best > b.best
	})
	return out
}

// objectiveNames names the objective vector's entries as the engine
// builds it: perplexity, coherence, tasks, each when weighted.
func (r *Run) objectiveNames(n int) []string {
	o := r.Config.Evaluation.Objectives
	var names []string
	if o.Perplexity > 0 {
		names = append(names, "−mean ln perplexity")
	}
	if o.Coherence > 0 {
		names = append(names, "coherence")
	}
	if o.Tasks > 0 {
		names = append(names, "task accuracy")
	}
	if len(names) != n {
		names = names[:0]
		for i := range n {
			names = append(names, fmt.Sprintf("objective %d", i+1))
		}
	}
	return names
}

func (r *Run) pareto() (*paretoView, error) {
	n := 0
	var points []objPoint
	for _, c := range r.Candidates {
		if c.OK() && len(c.Objectives) >= 2 {
			n = max(n, len(c.Objectives))
		}
	}
	if n < 2 {
		return nil, nil
	}
	inFront := map[string]bool{}
	for _, f := range r.Result.Front {
		inFront[f.ID] = true
		if f.Key != "" {
			inFront["key:"+f.Key] = true
		}
	}
	for _, c := range r.Candidates {
		if c.OK() && len(c.Objectives) == n {
			points = append(points, objPoint{ID: c.ID, Objs: c.Objectives, Front: inFront[c.ID] || inFront["key:"+c.Key]})
		}
	}
	pv := &paretoView{Objectives: r.objectiveNames(n)}
	anyFront := slices.ContainsFunc(points, func(p objPoint) bool { return p.Front })
	if !anyFront {
		nonDominated(points)
		pv.Note = "summary.json records no Pareto front; the front shown is the non-dominated set of the history."
	}
	for i := 0; i < n && len(pv.Charts) < 3; i++ {
		for j := i + 1; j < n && len(pv.Charts) < 3; j++ {
			svg, err := paretoChart(points, i, j, pv.Objectives[i], pv.Objectives[j])
			if err != nil {
				return nil, err
			}
			pv.Charts = append(pv.Charts, svg)
		}
	}
	byID := map[string]Candidate{}
	for _, c := range r.Candidates {
		byID[c.ID] = c
	}
	for _, p := range points {
		if !p.Front {
			continue
		}
		c := byID[p.ID]
		row := frontRow{ID: c.ID, Technique: c.Technique, Summary: c.Summary}
		for _, o := range p.Objs {
			row.Objectives = append(row.Objectives, format.Fitness(o))
		}
		pv.Front = append(pv.Front, row)
	}
	return pv, nil
}

// nonDominated flags the points no other point dominates (all maximised).
func nonDominated(points []objPoint) {
	dominates := func(a, b []float64) bool {
		better := false
		for k := range a {
			if a[k] < b[k] {
				return false
			}
			if a[k] > b[k] {
				better = true
			}
		}
		return better
	}
	for i := range points {
		points[i].Front = !slices.ContainsFunc(points, func(q objPoint) bool { return dominates(q.Objs, points[i].Objs) })
	}
}

func comparison(models []evolve.ModelScore) ([]string, []comparisonRow, bool) {
	set := map[string]bool{}
	coh := false
	for _, m := range models {
		for t := range m.Perplexity {
			set[t] = true
		}
		coh = coh || m.Coherence != 0 || m.CoherenceError != ""
	}
	texts := slices.Sorted(maps.Keys(set))
	bestOf := func(get func(evolve.ModelScore) (float64, bool)) float64 {
		b := math.Inf(1)
		for _, m := range models {
			if x, ok := get(m); ok && x > 0 {
				b = min(b, x)
			}
		}
		return b
	}
	var rows []comparisonRow
	for _, m := range models {
		row := comparisonRow{Name: m.Name, Kind: m.Kind, Tokens: m.Tokens, raw: m.Perplexity}
		for _, t := range texts {
			x, ok := m.Perplexity[t]
			if !ok {
				row.Cells = append(row.Cells, cell{Text: format.Missing})
				continue
			}
			text := format.Perplexity(x)
			if se, ok := m.StdErr[t]; ok && se > 0 {
				text += " ± " + format.Perplexity(se)
			}
			best := bestOf(func(m evolve.ModelScore) (float64, bool) { v, ok := m.Perplexity[t]; return v, ok })
			row.Cells = append(row.Cells, cell{Text: text, Best: x == best})
		}
		gbest := bestOf(func(m evolve.ModelScore) (float64, bool) { return m.GeoMean, true })
		row.GeoMean = cell{Text: format.Perplexity(m.GeoMean), Best: m.GeoMean == gbest}
		switch {
		case coh && m.CoherenceError != "":
			row.Coherence = format.Missing
		case coh:
			row.Coherence = format.Fraction(m.Coherence)
		}
		rows = append(rows, row)
	}
	return texts, rows, coh
}
