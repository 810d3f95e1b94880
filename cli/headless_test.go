package cli

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/evomerge/evomerge/engine/config"
	"github.com/evomerge/evomerge/engine/eval/evaltest"
	"github.com/evomerge/evomerge/engine/evolve"
	"github.com/evomerge/evomerge/engine/gguf"
	"github.com/evomerge/evomerge/engine/gguf/synth"
)

// TestHeadlessPrinterShowsEveryFinalStatus: the headless lines name every
// candidate's final status — skipped ones included, with the reason — and
// the end of the run counts the skipped.
func TestHeadlessPrinterShowsEveryFinalStatus(t *testing.T) {
	var out strings.Builder
	p := &headlessPrinter{w: &out}
	infos := []evolve.CandidateInfo{
		{ID: "g1-c00", Technique: "ties", Summary: "ties w=[0.5 0.5]"},
		{ID: "g1-c01", Technique: "linear", Summary: "linear w=[0.2 0.8]"},
		{ID: "g1-c02", Technique: "dfs", Summary: "dfs w=[0.1 0.9]"},
	}
	why := "not evaluated: the evaluation budget of 5 is spent"
	res := &evolve.Result{OutputDir: "out", Reason: "budget", Best: infos[0], Evaluations: 5, Skipped: []string{"g1-c01", "g1-c02"},
		BestModel: "out/best.gguf", BestRecipe: "out/best-recipe.toml", Elapsed: 3 * time.Second}
	for _, e := range []evolve.Event{
		evolve.RunStarted{Optimizer: "ga", Population: 3, Generations: 2, Budget: 5},
		evolve.GenerationStarted{Generation: 1, Candidates: infos},
		evolve.CandidateScored{Candidate: infos[0], Fitness: -2.5, Status: evolve.StatusDone, Evaluation: 5},
		evolve.CandidateScored{Candidate: infos[1], Status: evolve.StatusSkipped, Err: why, Evaluation: 5},
		evolve.CandidateScored{Candidate: infos[2], Status: evolve.StatusSkipped, Err: why, Evaluation: 5},
		evolve.Finished{Reason: "budget", Result: res},
	} {
		p.event(e)
	}
	s := out.String()
	for _, want := range []string{
		"g1-c01  linear w=[0.2 0.8]",
		"skipped: " + why,
		"finished (budget) after 5 evaluations in 3s (2 candidates skipped): best g1-c00",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("headless output lacks %q:\n%s", want, s)
		}
	}
	if strings.Count(s, "skipped: ") != 2 {
		t.Errorf("want one line per skipped candidate:\n%s", s)
	}
}

// fakeTournament writes a configuration over four small synthetic models
// (three sources and a base) whose runs take a second or two with
// stand-in evaluation workers of behaviour b (evaltest: the workers this
// test binary starts inherit the setting). It returns the configuration
// file, the output directory and the model files by name. It is the GA:
// its first generation scores each source alone, which the tests of a
// worker crashing on a source rely on.
func fakeTournament(t *testing.T, b evaltest.Behaviour) (string, string, map[string]string) {
	t.Helper()
	t.Setenv(evaltest.EnvVar, b.Value())
	dir := t.TempDir()
	files := map[string]string{}
	var models strings.Builder
	for i, name := range []string{"a", "b", "c", "base"} {
		p := filepath.Join(dir, name+".gguf")
		if err := (synth.Model{Layers: 4, Type: gguf.TypeF16, Seed: uint64(i + 1)}).Write(p, name); err != nil {
			t.Fatal(err)
		}
		files[name] = p
		fmt.Fprintf(&models, "[[models]]\nname = %q\npath = %q\n", name, p)
	}
	out := filepath.Join(dir, "out")
	cfg := filepath.Join(dir, "fake.toml")
	writeTestFile(t, cfg, models.String()+fmt.Sprintf(`[merge]
base = "base"
techniques = ["linear", "ties"]
[evolution]
optimizer = "ga"
population = 4
generations = 2
patience = 0
seed = 7
[hardware]
workers = 1
threads = 1
[output]
dir = %q
`, out))
	return cfg, out, files
}

// runCLILogged is runCLI with a log file.
func runCLILogged(t *testing.T, logFile string, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(append(args, "--log-file", logFile), strings.NewReader(""), &out, &errb)
	return code, out.String(), errb.String()
}

// TestHeadlessRunLogAndReport: a short headless run (stand-in workers, one
// of which crashes on a source model) whose report cannot be written: the
// tournament's outputs are complete and named, the report failure is a
// warning with its reason, the exit status 0, `report DIR` writes the
// report later, and the log file tells the run's story: its start (the
// configuration's digest, each source with its sha256, the hardware),
// each generation, the failed candidate with its reason, the worker's
// crash and replacement, the result.
func TestHeadlessRunLogAndReport(t *testing.T) {
	crashed := filepath.Join(t.TempDir(), "crashed")
	cfg, out, files := fakeTournament(t, evaltest.Behaviour{Crash: "c.gguf", CrashOnce: crashed})
	if err := os.MkdirAll(filepath.Join(out, "report.html"), 0o755); err != nil {
		t.Fatal(err)
	}
	logFile := filepath.Join(t.TempDir(), "logs", "evomerge.log")
	code, stdout, stderr := runCLILogged(t, logFile, "--run", "--headless", "--config", cfg)
	if code != 0 {
		t.Fatalf("exit %d\n%s\n%s", code, stdout, stderr)
	}
	for _, want := range []string{
		"failed: evaluation worker crashed",
		"wrote " + filepath.Join(out, "best.gguf") + ", " + filepath.Join(out, "best-recipe.toml"),
		"warning: the report was not written: report: writing " + filepath.Join(out, "report.html"),
		"`evomerge-tui report " + out + "` writes it",
	} {
		if !strings.Contains(stdout, want) {
			t.Errorf("headless output lacks %q:\n%s", want, stdout)
		}
	}
	if _, err := os.Stat(filepath.Join(out, "summary.json")); err != nil {
		t.Errorf("no summary.json: %v", err)
	}

	raw, err := os.ReadFile(logFile)
	if err != nil {
		t.Fatal(err)
	}
	log := string(raw)
	cfgRaw, _ := os.ReadFile(filepath.Join(out, "config.toml"))
	want := []string{
		`msg="run started" dir=` + out,
		"config_sha256=" + fmt.Sprintf("%x", sha256.Sum256(cfgRaw)),
		`msg=hardware workers=1 threads_per_worker=1`,
		`msg="generation done" generation=0`,
		`msg="generation done" generation=1`,
		`msg="candidate failed" id=g0-c02`,
		`msg="evaluation worker crashed"`,
		`msg="evaluation worker replaced"`,
		`msg="run finished" reason=generations`,
		`best_model=` + filepath.Join(out, "best.gguf"),
		`msg="the report was not written"`,
	}
	for _, name := range []string{"a", "b", "c", "base"} {
		data, _ := os.ReadFile(files[name])
		want = append(want, fmt.Sprintf("msg=source name=%s file=%s bytes=%d sha256=%x", name, files[name], len(data), sha256.Sum256(data)))
	}
	for _, w := range want {
		if !strings.Contains(log, w) {
			t.Errorf("the log lacks %q", w)
		}
	}
	if t.Failed() {
		t.Logf("log:\n%s", log)
	}

	os.Remove(filepath.Join(out, "report.html"))
	if code, stdout, stderr := runCLI(t, "report", out); code != 0 || !strings.Contains(stdout, "wrote "+filepath.Join(out, "report.html")) {
		t.Errorf("report %s: exit %d\n%s%s", out, code, stdout, stderr)
	}
}

// TestHeadlessRunStopsWhenNoWorkerStarts: the one worker dies and no
// replacement starts: the run stops with the reason and exit status 1
// instead of waiting, and --resume, once workers start, finishes it with
// the result an undisturbed run reaches.
func TestHeadlessRunStopsWhenNoWorkerStarts(t *testing.T) {
	cfg, out, _ := fakeTournament(t, evaltest.Behaviour{})
	code, stdout, stderr := runCLI(t, "--run", "--headless", "--config", cfg, "--output", out+"-undisturbed")
	if code != 0 {
		t.Fatalf("undisturbed run: exit %d\n%s%s", code, stdout, stderr)
	}
	want := readSummary(t, out+"-undisturbed")

	t.Setenv(evaltest.EnvVar, evaltest.Behaviour{Crash: "c.gguf", StartsFile: filepath.Join(t.TempDir(), "starts"), MaxStarts: 1}.Value())
	done := make(chan struct{})
	go func() {
		defer close(done)
		code, stdout, stderr = runCLI(t, "--run", "--headless", "--config", cfg)
	}()
	select {
	case <-done:
	case <-time.After(2 * time.Minute):
		t.Fatal("the run waits for workers that cannot start")
	}
	lines := strings.Split(strings.TrimSpace(stderr), "\n")
	last := lines[len(lines)-1]
	if code != 1 || !strings.HasPrefix(last, "evomerge-tui: no evaluation worker could be started (3 attempts)") ||
		!strings.Contains(last, "out of memory") || !strings.Contains(last, "--resume "+out) {
		t.Fatalf("exit %d, last line of stderr %q; want the reason and how to resume\n%s", code, last, stdout)
	}

	// The candidate whose worker crashed is failed if its result reached
	// the history before the run stopped (the job queue allows either
	// order); a resumed run replays it, so only without it is the result
	// the undisturbed one.
	hist, _ := os.ReadFile(filepath.Join(out, "history.jsonl"))
	crashRecorded := strings.Contains(string(hist), "evaluation worker crashed")

	t.Setenv(evaltest.EnvVar, evaltest.Behaviour{}.Value())
	if code, stdout, stderr := runCLI(t, "--run", "--headless", "--resume", out); code != 0 {
		t.Fatalf("resume: exit %d\n%s%s", code, stdout, stderr)
	}
	got := readSummary(t, out)
	if crashRecorded {
		if got.Evaluations != want.Evaluations {
			t.Fatalf("resumed after a recorded crash: %d evaluations, undisturbed %d", got.Evaluations, want.Evaluations)
		}
		return
	}
	if got.Best.Key != want.Best.Key || got.BestFitness != want.BestFitness || got.Evaluations != want.Evaluations {
		t.Fatalf("resumed: best %s %v after %d evaluations; undisturbed: %s %v after %d",
			got.Best.Key, got.BestFitness, got.Evaluations, want.Best.Key, want.BestFitness, want.Evaluations)
	}
}

// TestWorkbenchBackendResumes: the workbench's backend resumes a run in
// its directory (the R key): the history is replayed and the run ends
// where it ended before.
func TestWorkbenchBackendResumes(t *testing.T) {
	cfgPath, out, _ := fakeTournament(t, evaltest.Behaviour{})
	if code, stdout, stderr := runCLI(t, "--run", "--headless", "--config", cfgPath); code != 0 {
		t.Fatalf("run: exit %d\n%s%s", code, stdout, stderr)
	}
	want := readSummary(t, out)
	cfg, err := config.Load(filepath.Join(out, "config.toml"))
	if err != nil {
		t.Fatal(err)
	}
	b := newBackend(engineOptions(cfg, false), cfg.Hardware)
	defer b.close()
	var replayed int
	res, err := b.Run(context.Background(), cfg, true, func(e evolve.Event) {
		if s, ok := e.(evolve.RunStarted); ok {
			replayed = s.Resumed
		}
	}, &evolve.Control{})
	if err != nil {
		t.Fatal(err)
	}
	if replayed == 0 || res.Best.Key != want.Best.Key || res.Evaluations != want.Evaluations {
		t.Fatalf("resumed: %d replayed, best %s after %d evaluations; want a replay ending at %s after %d",
			replayed, res.Best.Key, res.Evaluations, want.Best.Key, want.Evaluations)
	}
}
