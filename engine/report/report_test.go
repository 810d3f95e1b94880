package report

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/evomerge/evomerge/engine/config"
	"github.com/evomerge/evomerge/engine/eval"
	"github.com/evomerge/evomerge/engine/evolve"
	"github.com/evomerge/evomerge/engine/export"
	"github.com/evomerge/evomerge/engine/format"
	"github.com/evomerge/evomerge/engine/gguf"
	"github.com/evomerge/evomerge/engine/gguf/synth"
	"github.com/evomerge/evomerge/engine/merge"
)

// The fixture is a real run: the evolve engine searches over synthetic
// models with a made-up scorer (no llama.cpp), so history.jsonl,
// config.toml and summary.json are exactly what the engine writes. The
// held-out comparison and timings, which need real models, are then
// added to summary.json the way the engine fills them in.

var domains = []string{"bible", "moby", "sotu"}

var modelDir = regexp.MustCompile(`"[^"]*/models/`)

// scorer gives each recipe deterministic per-domain perplexities and a
// coherence; about one recipe in nine fails, as a merge sometimes does.
func scorer(_ context.Context, r *merge.Recipe) (evolve.Scores, error) {
	text, err := r.Encode()
	if err != nil {
		return evolve.Scores{}, err
	}
	// Hash the recipe without the fixture's temporary directory, so every
	// run of the test scores the same recipes the same.
	h := fnv.New64a()
	h.Write(modelDir.ReplaceAll(text, nil))
	x := h.Sum64()
	if x%9 == 0 {
		return evolve.Scores{}, errors.New("merging: synthetic failure <injected>")
	}
	bias := map[string]float64{"ties": 0, "dare_ties": 0.05, "slerp": 0.15, "linear": 0.2, "task_arithmetic": 0.1}[r.Method]
	s := evolve.Scores{Perplexity: map[string]float64{}}
	for i, d := range domains {
		u := float64((x>>(8*i))&0xff) / 255
		p := math.Exp(2.2 + bias + 0.4*u)
		s.Perplexity[d] = p
		s.MeanLogPPL += math.Log(p) / float64(len(domains))
	}
	s.Coherence = 0.5 + 0.4*float64((x>>40)&0xff)/255 - bias
	return s, nil
}

type fixture struct {
	optimizer  string
	objectives config.Objectives
	budget     int // evolution.max_evaluations (0: population × generations)
}

// makeRun runs the engine into a new directory and completes its summary.
func makeRun(t testing.TB, fx fixture) string {
	t.Helper()
	dir := t.TempDir()
	cfg := config.Default()
	cfg.Models = nil
	for i, name := range []string{"bible", "moby", "sotu", "stories15M"} {
		p := filepath.Join(dir, "models", name+".gguf")
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := (synth.Model{Layers: 6, Type: gguf.TypeF16, Seed: uint64(i + 1)}).Write(p, name); err != nil {
			t.Fatal(err)
		}
		cfg.Models = append(cfg.Models, config.Model{Name: name, Path: p})
	}
	cfg.Merge.Base = "stories15M"
	cfg.Merge.Techniques = []string{"linear", "slerp", "ties", "dare_ties", "task_arithmetic"}
	cfg.Merge.WeightGenes = "groups" // the fixture's recipes: a weight per layer group
	cfg.Evolution.Optimizer = fx.optimizer
	cfg.Evolution.Population = 8
	cfg.Evolution.Generations = 4
	cfg.Evolution.Patience = 0
	cfg.Evolution.MaxEvaluations = fx.budget
	cfg.Evaluation.Objectives = fx.objectives
	cfg.Output.Dir = filepath.Join(dir, "run")
	res, err := evolve.Search(context.Background(), cfg, evolve.Options{}, scorer)
	if err != nil {
		t.Fatal(err)
	}
	// What the final stage adds on real models.
	res.BestModel = filepath.Join(cfg.Output.Dir, "best.gguf")
	res.BestRecipe = filepath.Join(cfg.Output.Dir, "best-recipe.toml")
	res.Comparison = []evolve.ModelScore{
		modelScore("best", "best", 9.81, 11.2, 10.47, "And the whale said unto Ishmael: <b>call me</b> & so on."),
		modelScore("bible", "source", 8.90, 19.6, 21.3, "In the beginning God created the heaven and the earth."),
		modelScore("moby", "source", 23.4, 10.9, 22.8, "Call me Ishmael. Some years ago, never mind how long."),
		modelScore("sotu", "source", 24.1, 20.7, 9.95, "Mr. Speaker, the state of our union is strong."),
		modelScore("stories15M", "base", 30.2, 27.5, 29.1, "Once upon a time, there was a little girl named Lily."),
		modelScore("uniform", "uniform", 12.6, 13.1, 12.9, "The ship sailed upon the waters of the nation."),
	}
	res.Verdict = []evolve.Verdict{{Model: "uniform", Kind: "uniform", Diff: -0.0213, Low: -0.0301, High: -0.0127, Windows: 288, Resamples: 4000, Distinguishable: true}}
	res.Timings.FinalEval = 4200 * time.Millisecond
	res.Timings.Merge = 61 * time.Second
	res.Timings.Evaluate = 95 * time.Second
	res.Timings.Overhead = 3 * time.Second
	res.Timings.CacheHits = 5
	res.Timings.TensorHits = 123
	res.Elapsed = 2*time.Minute + 43*time.Second
	res.Device = eval.NewPlacement(eval.Health{Threads: 16, GPULayers: -1, Devices: []eval.Device{
		{Name: "CPU", Description: "AMD EPYC 7B13", Type: "cpu"},
		{Name: "CUDA0", Description: "NVIDIA H100 80GB HBM3", Type: "gpu", MemoryTotal: 80 << 30}}},
		eval.ModelInfo{Offloaded: 7, Offloadable: 7}, 1)
	raw, err := json.MarshalIndent(res, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(cfg.Output.Dir, SummaryFile), raw, 0o644); err != nil {
		t.Fatal(err)
	}
	return cfg.Output.Dir
}

func modelScore(name, kind string, b, m, s float64, sample string) evolve.ModelScore {
	ms := evolve.ModelScore{Name: name, Kind: kind, Tokens: 3 * 2048, Sample: sample,
		Perplexity: map[string]float64{"bible": b, "moby": m, "sotu": s},
		StdErr:     map[string]float64{"bible": b / 50, "moby": m / 50, "sotu": s / 50}}
	ms.GeoMean = math.Cbrt(b * m * s)
	return ms
}

func readFile(t testing.TB, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func historyLines(t testing.TB, dir string) []string {
	t.Helper()
	return strings.Split(strings.TrimSpace(readFile(t, filepath.Join(dir, HistoryFile))), "\n")
}

func TestWriteMultiObjective(t *testing.T) {
	dir := makeRun(t, fixture{optimizer: "nsga2", objectives: config.Objectives{Perplexity: 1, Coherence: 0.5}})
	bench := `{"device": "test CPU <x86>", "go": "go1.26", "rows": [
		{"name": "merge ties 15M", "value": 1.234, "unit": "s", "throughput": 512.5, "throughput_unit": "MB/s"},
		{"name": "perplexity 15M", "value": 2048, "unit": "tokens/s"}]}`
	if err := os.WriteFile(filepath.Join(dir, BenchFile), []byte(bench), 0o644); err != nil {
		t.Fatal(err)
	}
	path, err := Write(dir)
	if err != nil {
		t.Fatal(err)
	}
	if path != filepath.Join(dir, ReportFile) {
		t.Fatalf("path %s", path)
	}
	page := readFile(t, path)
	sum := evolve.Result{}
	if err := json.Unmarshal([]byte(readFile(t, filepath.Join(dir, SummaryFile))), &sum); err != nil {
		t.Fatal(err)
	}

	for _, want := range []string{
		`<section id="run">`, `<section id="progress">`, `<section id="pareto">`, `<section id="techniques">`,
		`<section id="best">`, `<section id="comparison">`, `<section id="samples"`, `<section id="timings">`, `<section id="bench">`,
		"NSGA-II (nsga2)", "Seed</th><td>42", "Population</th><td>8", "4 of 4",
		"stories15M — " + filepath.Join(filepath.Dir(dir), "models", "stories15M.gguf") + " (base)",
		"linear, slerp, ties, dare_ties, task_arithmetic",
		"perplexity ×1, coherence ×0.5",
		"−mean ln perplexity", "coherence",
		"Stopped</th><td>" + sum.Reason + ": ",
		"2m43s", "1m1s", "1m35s", "4.2s", // elapsed, merge, evaluate, final evaluation
		"Device</th><td>NVIDIA H100 80GB HBM3 (80.0 GiB), 7/7 layers offloaded; 1 worker",
		"Fitness cache hits</th><td class=\"num\">5", "Tensor cache hits</th><td class=\"num\">123",
		"9.81 ± 0.20", "10.47", "uniform", // comparison cells
		"best − uniform: -0.0213 mean log-perplexity (-2.1% perplexity), 95% interval [-0.0301, -0.0127] over 288 windows: better",
		"In the beginning God created the heaven and the earth.",
		// Escaped, never raw markup.
		"&lt;b&gt;call me&lt;/b&gt; &amp; so on.",
		"test CPU &lt;x86&gt;", "merge ties 15M", "512.5", "MB/s", "tokens/s",
		"candidates.csv", "candidates.json",
		sum.Best.ID, format.Fitness(sum.BestFitness),
	} {
		if !strings.Contains(page, want) {
			t.Errorf("report lacks %q", want)
		}
	}
	if strings.Contains(page, "<b>call me</b>") {
		t.Error("a sample's markup reached the page unescaped")
	}
	// The best recipe, escaped, in a <pre>.
	recipe := htmlEscaped(sum.Best.Recipe)
	if sum.Best.Recipe == "" || !strings.Contains(page, `<pre class="recipe">`+recipe+`</pre>`) {
		t.Errorf("best recipe not in a <pre>: %q", sum.Best.Recipe)
	}
	// Charts: progress, Pareto (one pair), techniques, comparison.
	if n := strings.Count(page, `<svg class="chart"`); n != 4 {
		t.Errorf("%d charts, want 4", n)
	}
	for _, label := range []string{"Fitness by generation", "Pareto front", "candidates per merge technique", "Held-out perplexity"} {
		if !strings.Contains(page, label) {
			t.Errorf("no chart labelled %q", label)
		}
	}
	// The grouped bars hold every model's name in the legend.
	if !regexp.MustCompile(`(?s)Held-out perplexity by domain.*>stories15M</text>`).MatchString(page) {
		t.Error("comparison chart legend lacks the base model")
	}
	checkSelfContained(t, page)

	// Technique rows count what the history holds.
	lines := historyLines(t, dir)
	if !strings.Contains(page, fmt.Sprintf("%d in the history", len(lines))) {
		t.Errorf("run facts do not count %d history lines", len(lines))
	}
	checkExports(t, dir, len(lines))
}

// htmlEscaped escapes text as html/template does inside an element.
func htmlEscaped(s string) string {
	r := strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", `"`, "&#34;", "'", "&#39;", "+", "&#43;")
	return r.Replace(s)
}

// checkSelfContained: nothing on the page is fetched from anywhere.
func checkSelfContained(t *testing.T, page string) {
	t.Helper()
	for _, bad := range []string{"<script", "<link", "<img", "<iframe", "src=", "@import", "url("} {
		if strings.Contains(page, bad) {
			t.Errorf("report is not self-contained: it contains %q", bad)
		}
	}
	for _, m := range regexp.MustCompile(`https?://[^"' <>]*`).FindAllString(page, -1) {
		if !strings.HasPrefix(m, "http://www.w3.org/") {
			t.Errorf("report refers to %s", m)
		}
	}
}

// checkExports reads candidates.csv and candidates.json and checks every
// row against the run's history.
func checkExports(t *testing.T, dir string, n int) {
	t.Helper()
	run, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	hist := map[string]Candidate{}
	for _, c := range run.Candidates {
		hist[c.ID] = c
	}
	rows, err := csv.NewReader(strings.NewReader(readFile(t, filepath.Join(dir, CandidatesCSVFile)))).ReadAll()
	if err != nil {
		t.Fatalf("candidates.csv: %v", err)
	}
	if len(rows) != n+1 {
		t.Fatalf("candidates.csv has %d rows, want %d and a header", len(rows)-1, n)
	}
	head := rows[0]
	col := func(name string) int {
		i := slices.Index(head, name)
		if i < 0 {
			t.Fatalf("candidates.csv has no column %q: %v", name, head)
		}
		return i
	}
	for _, c := range []string{"id", "generation", "technique", "origin", "parents", "status", "fitness",
		"ppl_bible", "ppl_moby", "ppl_sotu", "merge_seconds", "eval_seconds"} {
		col(c)
	}
	var cands []export.Candidate
	if err := json.Unmarshal([]byte(readFile(t, filepath.Join(dir, CandidatesJSONFile))), &cands); err != nil {
		t.Fatalf("candidates.json: %v", err)
	}
	if len(cands) != n {
		t.Fatalf("candidates.json has %d candidates, want %d", len(cands), n)
	}
	failed, withParents := 0, 0
	prevGen := -1
	for i, row := range rows[1:] {
		c := cands[i]
		rec, ok := hist[row[col("id")]]
		if !ok {
			t.Fatalf("row %d: %s is not in the history", i, row[col("id")])
		}
		if row[col("id")] != c.ID || row[col("technique")] != rec.Technique || c.Technique != rec.Technique ||
			row[col("status")] != string(rec.Status) || c.Status != rec.Status {
			t.Fatalf("row %d %v / %+v disagrees with the history's %+v", i, row, c, rec)
		}
		g, _ := strconv.Atoi(row[col("generation")])
		if g != rec.Generation || c.Generation != rec.Generation {
			t.Errorf("row %d generation %s, want %d", i, row[col("generation")], rec.Generation)
		}
		if g < prevGen {
			t.Errorf("row %d (generation %d) follows generation %d: rows are not in candidate order", i, g, prevGen)
		}
		prevGen = g
		if row[col("parents")] != strings.Join(rec.Parents, " ") || !slices.Equal(c.Parents, append([]string{}, rec.Parents...)) {
			t.Errorf("row %d parents %q / %q, want %q", i, row[col("parents")], c.Parents, rec.Parents)
		}
		if len(rec.Parents) > 0 {
			withParents++
		}
		if sec, err := strconv.ParseFloat(row[col("merge_seconds")], 64); err != nil || math.Abs(sec-rec.MergeSec) > 0.0005 {
			t.Errorf("row %d merge_seconds %q, history %v", i, row[col("merge_seconds")], rec.MergeSec)
		}
		if !rec.OK() {
			failed++
			if row[col("fitness")] != "" || c.Fitness != nil || !strings.Contains(row[col("error")], "<injected>") {
				t.Errorf("failed row %d: fitness %q error %q", i, row[col("fitness")], row[col("error")])
			}
			continue
		}
		f, err := strconv.ParseFloat(row[col("fitness")], 64)
		if err != nil || f != rec.Fitness || c.Fitness == nil || *c.Fitness != rec.Fitness {
			t.Errorf("row %d fitness %q, want %v", i, row[col("fitness")], rec.Fitness)
		}
		p, err := strconv.ParseFloat(row[col("ppl_moby")], 64)
		if err != nil || p != rec.Scores.Perplexity["moby"] || c.Perplexity["moby"] != p {
			t.Errorf("row %d ppl_moby %q, want %v", i, row[col("ppl_moby")], rec.Scores.Perplexity["moby"])
		}
		if c.Recipe == "" || c.Recipe != rec.Recipe {
			t.Errorf("row %d: recipe not exported", i)
		}
	}
	if n > 0 && (failed == 0 || withParents == 0) {
		t.Errorf("fixture too plain: %d failed, %d with parents", failed, withParents)
	}
}

func TestWriteSingleObjective(t *testing.T) {
	dir := makeRun(t, fixture{optimizer: "ga", objectives: config.Objectives{Perplexity: 1}})
	path, err := Write(dir)
	if err != nil {
		t.Fatal(err)
	}
	page := readFile(t, path)
	if strings.Contains(page, `id="pareto"`) || strings.Contains(page, `id="bench"`) {
		t.Error("a single-objective run without bench.json shows a Pareto front or a benchmark")
	}
	if n := strings.Count(page, `<svg class="chart"`); n != 3 {
		t.Errorf("%d charts, want 3", n)
	}
	if !strings.Contains(page, "genetic algorithm (ga)") {
		t.Error("optimiser not named")
	}
	checkSelfContained(t, page)
}

// TestSkippedCandidatesNamed: candidates left unevaluated when the budget
// ran out are named in the run facts.
func TestSkippedCandidatesNamed(t *testing.T) {
	dir := makeRun(t, fixture{optimizer: "ga", objectives: config.Objectives{Perplexity: 1}, budget: 13})
	var res evolve.Result
	if err := json.Unmarshal([]byte(readFile(t, filepath.Join(dir, SummaryFile))), &res); err != nil {
		t.Fatal(err)
	}
	if len(res.Skipped) == 0 {
		t.Fatal("the fixture skipped no candidate: give it a budget that runs out within a generation")
	}
	path, err := Write(dir)
	if err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf("%d skipped when the budget ran out (%s)", len(res.Skipped), strings.Join(res.Skipped, ", "))
	if page := readFile(t, path); !strings.Contains(page, want) {
		t.Errorf("the report does not say %q", want)
	}
}

func TestTruncatedLastLine(t *testing.T) {
	dir := makeRun(t, fixture{optimizer: "ga", objectives: config.Objectives{Perplexity: 1}})
	lines := historyLines(t, dir)
	last := lines[len(lines)-1]
	cut := strings.Join(lines[:len(lines)-1], "\n") + "\n" + last[:len(last)/2]
	if err := os.WriteFile(filepath.Join(dir, HistoryFile), []byte(cut), 0o644); err != nil {
		t.Fatal(err)
	}
	path, err := Write(dir)
	if err != nil {
		t.Fatalf("a cut-short last line must be tolerated: %v", err)
	}
	if page := readFile(t, path); !strings.Contains(page, "was cut short") {
		t.Error("the report does not say the history was cut short")
	}
	checkExports(t, dir, len(lines)-1)
}

func TestErrors(t *testing.T) {
	dir := makeRun(t, fixture{optimizer: "ga", objectives: config.Objectives{Perplexity: 1}})
	lines := historyLines(t, dir)
	history := filepath.Join(dir, HistoryFile)
	orig := readFile(t, history)

	// A corrupt line in the middle is an error naming the file and line.
	bad := slices.Clone(lines)
	bad[2] = bad[2][:len(bad[2])/3]
	if err := os.WriteFile(history, []byte(strings.Join(bad, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := Write(dir)
	if err == nil || !strings.Contains(err.Error(), history) || !strings.Contains(err.Error(), "line 3") {
		t.Errorf("corrupt line 3: got %v", err)
	}
	if _, serr := os.Stat(filepath.Join(dir, ReportFile)); !errors.Is(serr, os.ErrNotExist) {
		t.Error("a failed Write left a report behind")
	}
	if err := os.WriteFile(history, []byte(orig), 0o644); err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		file, content, want string
	}{
		{SummaryFile, "", "summary.json is missing"},
		{SummaryFile, `{"reason": "generations", "best": `, "summary.json is not valid JSON"},
		{HistoryFile, "", "history.jsonl is missing"},
		{ConfigFile, "", "config.toml is missing"},
		{ConfigFile, "[evolution\npopulation = ", "config.toml is not valid TOML"},
		{BenchFile, `{"device": "x"}`, `bench.json: no list of rows`},
		{BenchFile, `[1, 2]`, `bench.json: row 1 is not an object`},
	} {
		t.Run(tc.file+"/"+tc.want, func(t *testing.T) {
			p := filepath.Join(dir, tc.file)
			saved, rerr := os.ReadFile(p)
			if tc.content == "" {
				os.Remove(p)
			} else if err := os.WriteFile(p, []byte(tc.content), 0o644); err != nil {
				t.Fatal(err)
			}
			defer func() {
				if rerr == nil {
					os.WriteFile(p, saved, 0o644)
				} else {
					os.Remove(p)
				}
			}()
			_, err := Write(dir)
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), dir) {
				t.Errorf("got %v, want an error naming %s and saying %q", err, p, tc.want)
			}
		})
	}
}

func TestBenchTolerant(t *testing.T) {
	for _, tc := range []struct {
		name, json string
		columns    []string
		rows       int
		facts      int
	}{
		{"array", `[{"name": "a", "value": 1, "unit": "s"}, {"name": "b", "value": 2.5, "unit": "s", "note": "warm"}]`, []string{"value", "unit", "note"}, 2, 0},
		{"results", `{"cpu": "x", "gpu": null, "results": [{"name": "a", "ms": 3, "ms_unit": "ms", "extra": {"k": 1}}]}`, []string{"extra", "ms", "ms_unit"}, 1, 1},
		{"benchmarks", `{"benchmarks": [{"value": 1}]}`, []string{"value"}, 1, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, err := parseBench([]byte(tc.json))
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(b.Columns, tc.columns) || len(b.Rows) != tc.rows || len(b.Facts) != tc.facts {
				t.Errorf("got %+v", b)
			}
			for _, r := range b.Rows {
				if r.Name == "" || len(r.Cells) != len(b.Columns) {
					t.Errorf("row %+v", r)
				}
			}
		})
	}
}

// TestNoTemporaryFiles: the files are complete after Write and nothing
// temporary is left in the directory.
func TestNoTemporaryFiles(t *testing.T) {
	dir := makeRun(t, fixture{optimizer: "ga", objectives: config.Objectives{Perplexity: 1}})
	if _, err := Write(dir); err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".") {
			t.Errorf("left behind %s", e.Name())
		}
	}
	page := readFile(t, filepath.Join(dir, ReportFile))
	if !bytes.HasSuffix([]byte(strings.TrimSpace(page)), []byte("</html>")) {
		t.Error("report.html is incomplete")
	}
}

// TestTickLabels: every axis label is the value its tick is at.
func TestTickLabels(t *testing.T) {
	for _, r := range [][2]float64{{-2.6792, -2.3112}, {0, 11}, {0, 1}, {8.9, 30.2}, {0.3627, 0.8451}, {-1e-4, 3e-4}, {5, 5}, {0, 1234}} {
		for _, minStep := range []float64{0, 1} {
			labelled := 0
			for _, tk := range (niceTicks{minStep: minStep}).Ticks(r[0], r[1]) {
				if tk.Value < r[0]-1e-9 || tk.Value > r[1]+1e-9 && r[0] != r[1] {
					t.Errorf("%v: tick %v outside the range", r, tk.Value)
				}
				if tk.Label == "" {
					continue
				}
				labelled++
				v, err := strconv.ParseFloat(tk.Label, 64)
				if err != nil || math.Abs(v-tk.Value) > 1e-9*max(1, math.Abs(v)) {
					t.Errorf("%v: tick at %v labelled %q", r, tk.Value, tk.Label)
				}
			}
			if labelled < 2 && r[0] != r[1] && (minStep == 0 || r[1]-r[0] >= 2) {
				t.Errorf("%v (min step %v): %d labelled ticks", r, minStep, labelled)
			}
		}
	}
}

// TestMinimalRun: a run that scored nothing (killed in its first
// generation, its only history line cut short) still gets a report.
func TestMinimalRun(t *testing.T) {
	dir := t.TempDir()
	raw, err := json.Marshal(evolve.Result{Reason: "cancelled", Optimizer: "random", Seed: 7})
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Default().Encode()
	if err != nil {
		t.Fatal(err)
	}
	for name, data := range map[string]string{SummaryFile: string(raw), ConfigFile: string(cfg), HistoryFile: `{"id": "g0-c00", "gener`} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	path, err := Write(dir)
	if err != nil {
		t.Fatal(err)
	}
	page := readFile(t, path)
	for _, want := range []string{"random search (random)", "cancelled: the run was cancelled", "No candidate was scored",
		"no held-out comparison", "was cut short", "zoo:stories15M (base)", "Device</th><td>not recorded"} {
		if !strings.Contains(page, want) {
			t.Errorf("report lacks %q", want)
		}
	}
	// Configured techniques are listed even without candidates.
	if !strings.Contains(page, "<td>frankenmerge</td>") {
		t.Error("technique table lacks the configured techniques")
	}
	checkSelfContained(t, page)
	checkExports(t, dir, 0)
}

// TestHeldOutFailuresShown: a model whose held-out sample or coherence
// could not be measured shows the reason instead of a blank or a zero.
func TestHeldOutFailuresShown(t *testing.T) {
	dir := makeRun(t, fixture{optimizer: "ga", objectives: config.Objectives{Perplexity: 1}})
	path := filepath.Join(dir, SummaryFile)
	var res evolve.Result
	if err := json.Unmarshal([]byte(readFile(t, path)), &res); err != nil {
		t.Fatal(err)
	}
	res.Comparison[1].Sample, res.Comparison[1].SampleError = "", "generate: sampling failed <oops>"
	res.Comparison[2].Coherence, res.Comparison[2].CoherenceError = 0, "coherence: worker crashed"
	raw, _ := json.Marshal(res)
	if err := os.WriteFile(path, raw, 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := Write(dir)
	if err != nil {
		t.Fatal(err)
	}
	page := readFile(t, out)
	for _, want := range []string{"Not generated: generate: sampling failed &lt;oops&gt;",
		"The held-out coherence of moby could not be measured: coherence: worker crashed"} {
		if !strings.Contains(page, want) {
			t.Errorf("the report lacks %q", want)
		}
	}
}
