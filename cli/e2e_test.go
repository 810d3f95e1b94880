package cli

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/evomerge/evomerge/engine/evolve"
	"github.com/evomerge/evomerge/engine/gguf"
	"github.com/evomerge/evomerge/engine/gguf/synth"
	"github.com/evomerge/evomerge/zoo"
)

func requireZoo(t testing.TB) {
	t.Helper()
	if err := zoo.Check(); err != nil {
		t.Fatal(err)
	}
}

// evaluate runs --evaluate --json and returns the report.
func evaluate(t *testing.T, model string, extra ...string) evalReport {
	t.Helper()
	code, out, errs := runCLI(t, append([]string{"--evaluate", model, "--json", "--no-coherence", "--chunks", "4"}, extra...)...)
	if code != 0 {
		t.Fatalf("--evaluate %s: exit %d: %s", model, code, errs)
	}
	var rep evalReport
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("--evaluate --json printed %q: %v", out, err)
	}
	return rep
}

func finite[F ~float64](x F) bool {
	return !math.IsNaN(float64(x)) && !math.IsInf(float64(x), 0) && x > 0
}

// TestMergesLoadAndEvaluate: merges made with the CLI on the zoo load in
// llama.cpp and evaluate to a finite perplexity, a frankenmerge deeper than
// its sources included; weight 1 on one model reproduces it exactly.
func TestMergesLoadAndEvaluate(t *testing.T) {
	requireZoo(t)
	dir := t.TempDir()
	base, bible, moby, sotu := zoo.Model(zoo.Base), zoo.Model("bible"), zoo.Model("moby"), zoo.Model("sotu")
	recipes := map[string]string{
		"linear.toml": fmt.Sprintf(`merge_method = "linear"
[[models]]
model = %q
parameters = { weight = 0.5 }
[[models]]
model = %q
parameters = { weight = 0.5 }
`, bible, moby),
		"ties.toml": fmt.Sprintf(`merge_method = "ties"
base_model = %q
parameters = { lambda = 1.0 }
[[models]]
model = %q
parameters = { weight = 0.5, density = 0.5 }
[[models]]
model = %q
parameters = { weight = 0.5, density = 0.5 }
[[models]]
model = %q
parameters = { weight = 0.5, density = 0.5 }
`, base, bible, moby, sotu),
		"franken.yml": fmt.Sprintf(`slices:
  - sources:
      - model: %s
        layer_range: [0, 4]
  - sources:
      - model: %s
        layer_range: [2, 6]
merge_method: passthrough
`, bible, moby),
	}
	for name, text := range recipes {
		t.Run(name, func(t *testing.T) {
			recipe := filepath.Join(dir, name)
			os.WriteFile(recipe, []byte(text), 0o644)
			out := filepath.Join(dir, name+".gguf")
			if code, stdout, errs := runCLI(t, "merge", recipe, "-o", out); code != 0 {
				t.Fatalf("merge: exit %d: %s", code, errs)
			} else if !strings.Contains(stdout, "wrote "+out) {
				t.Errorf("merge printed %q", stdout)
			}
			rep := evaluate(t, out)
			if !finite(rep.Perplexity) || rep.Tokens != 4*127 {
				t.Fatalf("perplexity %v over %d tokens", rep.Perplexity, rep.Tokens)
			}
			t.Logf("%s: perplexity %.1f on Opticks", name, rep.Perplexity)
			if name == "franken.yml" {
				f, err := gguf.Open(out)
				if err != nil {
					t.Fatal(err)
				}
				defer f.Close()
				if n, _ := f.Metadata.ArchUint("block_count"); n != 8 {
					t.Errorf("frankenmerge has %d blocks, want 8 (more than its sources' 6)", n)
				}
			}
		})
	}

	t.Run("weight one reproduces the model", func(t *testing.T) {
		recipe := filepath.Join(dir, "one.toml")
		os.WriteFile(recipe, []byte(fmt.Sprintf("merge_method = \"linear\"\n[[models]]\nmodel = %q\nparameters = { weight = 1.0 }\n[[models]]\nmodel = %q\nparameters = { weight = 0.0 }\n", base, bible)), 0o644)
		out := filepath.Join(dir, "one.gguf")
		if code, _, errs := runCLI(t, "merge", recipe, "-o", out); code != 0 {
			t.Fatalf("merge: %s", errs)
		}
		a, err := gguf.Open(base)
		if err != nil {
			t.Fatal(err)
		}
		defer a.Close()
		b, err := gguf.Open(out)
		if err != nil {
			t.Fatal(err)
		}
		defer b.Close()
		for _, ti := range a.Tensors {
			bi, ok := b.Tensor(ti.Name)
			ra, _ := a.ReadTensor(ti, nil)
			rb, _ := b.ReadTensor(bi, nil)
			if !ok || bi.Type != ti.Type || !bytes.Equal(ra, rb) {
				t.Fatalf("%s differs from stories15M", ti.Name)
			}
		}
	})
}

func TestMergeDryRunAndErrors(t *testing.T) {
	requireZoo(t)
	dir := t.TempDir()
	recipe := filepath.Join(dir, "r.toml")
	os.WriteFile(recipe, []byte(fmt.Sprintf("merge_method = \"ties\"\n[[models]]\nmodel = %q\nparameters = { density = 2 }\n[[models]]\nmodel = %q\n", zoo.Model("bible"), filepath.Join(dir, "missing.gguf"))), 0o644)
	code, _, errs := runCLI(t, "merge", recipe, "-o", filepath.Join(dir, "o.gguf"))
	if code == 0 || !strings.Contains(errs, "missing.gguf: file not found") {
		t.Fatalf("exit %d: %s", code, errs)
	}
	os.WriteFile(recipe, []byte(fmt.Sprintf("merge_method = \"linear\"\n[[models]]\nmodel = %q\n[[models]]\nmodel = %q\n", zoo.Model("bible"), zoo.Model("moby"))), 0o644)
	code, out, errs := runCLI(t, "merge", recipe, "--dry-run")
	if code != 0 || !strings.Contains(out, "output: 56 tensors") || !strings.Contains(out, "blk.5.ffn_up.weight") {
		t.Fatalf("dry run: exit %d\n%s%s", code, out, errs)
	}
	if _, err := os.Stat(filepath.Join(dir, "o.gguf")); !os.IsNotExist(err) {
		t.Error("a failed or dry-run merge wrote an output")
	}
}

// TestReadmeMergekitExample runs the mergekit YAML example the README
// shows, exactly as written.
func TestReadmeMergekitExample(t *testing.T) {
	requireZoo(t)
	example, err := os.ReadFile(filepath.Join("..", "docs", "examples", "mergekit-slerp.yml"))
	if err != nil {
		t.Fatal(err)
	}
	readme, err := os.ReadFile(filepath.Join("..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(readme, bytes.TrimSpace(example)) {
		t.Fatal("README.md does not show docs/examples/mergekit-slerp.yml as written")
	}
	// The example uses repository-relative paths: run it from the root.
	wd, _ := os.Getwd()
	os.Chdir("..")
	defer os.Chdir(wd)
	out := filepath.Join(t.TempDir(), "slerp.gguf")
	if code, _, errs := runCLI(t, "merge", "docs/examples/mergekit-slerp.yml", "-o", out); code != 0 {
		t.Fatalf("the README's mergekit example fails: %s", errs)
	}
	if rep := evaluate(t, out); !finite(rep.Perplexity) {
		t.Fatalf("perplexity %v", rep.Perplexity)
	}
}

func TestEvaluateAndGenerate(t *testing.T) {
	requireZoo(t)
	rep := evaluate(t, zoo.Model(zoo.Base), "--text", "zoo:bible/test", "--text", "zoo:moby/test")
	if len(rep.Texts) != 2 || !finite(rep.Perplexity) || !finite(rep.StdErr) || !finite(rep.TokensPerSec) || rep.Tokens != 2*4*127 {
		t.Fatalf("report %+v", rep)
	}
	// It says where the model ran: the zoo base has 6 blocks + the output
	// layer; without a GPU backend (none sits beside the test binary) the
	// CPU, with the threads asked for.
	if d := rep.Device; d.Layers != 7 || d.Workers != 1 || d.CPU == "" || d.OnGPU() || d.Offloaded != 0 {
		t.Fatalf("device %+v: want the CPU, 7 offloadable layers, none offloaded", d)
	}
	code, out, errs := runCLI(t, "--evaluate", zoo.Model(zoo.Base), "--no-coherence", "--chunks", "1", "--threads", "2")
	if want := fmt.Sprintf("device       CPU, 2 threads (%s); 1 worker", rep.Device.CPU); code != 0 || !strings.Contains(out, want) {
		t.Fatalf("--evaluate: exit %d, output %q, want a line %q; stderr %s", code, out, want, errs)
	}
	code, out, errs = runCLI(t, "--generate", zoo.Model(zoo.Base), "--prompt", "Once upon a time", "--temperature", "0", "--max-tokens", "12")
	if code != 0 || !strings.HasPrefix(out, "Once upon a time, there was a little girl named Lily") {
		t.Fatalf("generate: exit %d: %q %s", code, out, errs)
	}
	dir := t.TempDir()
	// A random-weight model: its perplexity is +Inf, reported as such.
	random := filepath.Join(dir, "random.gguf")
	if err := synth.Random(zoo.Model(zoo.Base), random, 2, 1); err != nil {
		t.Fatal(err)
	}
	code, out, errs = runCLI(t, "--evaluate", random, "--json", "--chunks", "1")
	if code != 0 || !strings.Contains(out, `"perplexity": "+Inf"`) || !strings.Contains(out, `"coherence": `) {
		t.Fatalf("--evaluate of a random model: exit %d\n%s%s", code, out, errs)
	}
	code, out, errs = runCLI(t, "--evaluate", random, "--no-coherence", "--chunks", "1")
	if code != 0 || !strings.Contains(out, "perplexity   ∞") || !strings.Contains(out, "probability zero") {
		t.Fatalf("--evaluate of a random model: exit %d\n%s%s", code, out, errs)
	}
	notModel := filepath.Join(dir, "notes.txt")
	os.WriteFile(notModel, []byte("hello"), 0o644)
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"--evaluate", filepath.Join(dir, "nope.gguf")}, "nope.gguf: no such file"},
		{[]string{"--evaluate", notModel}, `notes.txt: offset 0: magic: magic is "hell", want "GGUF"`},
		{[]string{"--evaluate", zoo.Model(zoo.Base), "--text", filepath.Join(dir, "none.txt")}, "none.txt: no such file or directory"},
		{[]string{"--generate", zoo.Model(zoo.Base), "--prompt", "x", "--temperature", "-1"}, "temperature -1 must be ≥ 0"},
		{[]string{"--run", "--evaluate", "x"}, "alternatives: give one"},
	} {
		code, _, errs := runCLI(t, tt.args...)
		lines := strings.Split(strings.TrimSpace(errs), "\n")
		if code == 0 || !strings.Contains(errs, tt.want) || !strings.HasPrefix(lines[len(lines)-1], "evomerge-tui: ") {
			t.Errorf("%v: exit %d, stderr %q; want a one-line error containing %q", tt.args, code, errs, tt.want)
		}
	}
}

// tinyConfig is a tournament small enough for the tests.
func tinyConfig(t *testing.T, out string) string {
	t.Helper()
	var models strings.Builder
	for _, m := range append(zoo.Experts(), zoo.Base) {
		fmt.Fprintf(&models, "[[models]]\nname = %q\npath = %q\n", m, zoo.Model(m))
	}
	cfg := fmt.Sprintf(`%s
[merge]
base = "stories15M"
techniques = ["linear", "ties", "dfs"]
layer_groups = 2
[evolution]
population = 4
generations = 3
patience = 0
seed = 7
[evaluation]
chunks = 1
test_chunks = 2
[output]
dir = %q
`, models.String(), out)
	path := filepath.Join(t.TempDir(), "tiny.toml")
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func readSummary(t *testing.T, dir string) evolve.Result {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(dir, "summary.json"))
	if err != nil {
		t.Fatal(err)
	}
	var r evolve.Result
	if err := json.Unmarshal(raw, &r); err != nil {
		t.Fatal(err)
	}
	return r
}

// TestRunHeadlessKillAndResume: a headless tournament writes its outputs;
// the same run killed with SIGKILL after generation 1 and resumed reaches
// the uninterrupted run's result; best-recipe.toml re-creates best.gguf.
func TestRunHeadlessKillAndResume(t *testing.T) {
	requireZoo(t)
	full := filepath.Join(t.TempDir(), "full")
	cfg := tinyConfig(t, full)
	code, out, errs := runCLI(t, "--run", "--headless", "--config", cfg)
	if code != 0 {
		t.Fatalf("run: exit %d\n%s\n%s", code, out, errs)
	}
	for _, want := range []string{"generation 0:", "generation 2:", "held-out perplexity", "best", "report: "} {
		if !strings.Contains(out, want) {
			t.Errorf("headless output lacks %q:\n%s", want, out)
		}
	}
	for _, f := range []string{"best.gguf", "best-recipe.toml", "history.jsonl", "summary.json", "config.toml", "report.html", "candidates.csv"} {
		if _, err := os.Stat(filepath.Join(full, f)); err != nil {
			t.Errorf("missing output %s", f)
		}
	}
	want := readSummary(t, full)
	// The header and summary.json say where candidates were evaluated.
	if d := want.Device; d.Layers != 7 || d.Workers != 1 || d.Threads <= 0 || !strings.Contains(out, "\ndevice: "+d.String()+"\n") {
		t.Errorf("summary device %+v; header:\n%s", d, out)
	}
	if len(want.Comparison) != 6 {
		t.Errorf("comparison has %d models, want 3 sources + base + uniform + best", len(want.Comparison))
	}
	if rep := evaluate(t, want.BestModel); !finite(rep.Perplexity) {
		t.Errorf("best.gguf perplexity %v", rep.Perplexity)
	}
	// The held-out numbers are --evaluate's on the same files and texts,
	// and the verdict compares the best with the uniform average and the
	// best source on every window compared.
	heldOut := []string{"--chunks", "2", "--text", "zoo:bible/test", "--text", "zoo:moby/test", "--text", "zoo:sotu/test"}
	for _, m := range want.Comparison {
		path := want.BestModel
		switch m.Kind {
		case "best":
		case "source":
			path = zoo.Model(m.Name)
		default:
			continue
		}
		rep := evaluate(t, path, heldOut...)
		for _, tp := range rep.Texts {
			if got := m.Perplexity[tp.Name]; math.Abs(got-tp.Perplexity) > 1e-6*tp.Perplexity {
				t.Errorf("held-out %s on %s: %v; --evaluate: %v", m.Name, tp.Name, got, tp.Perplexity)
			}
		}
	}
	if len(want.Verdict) != 2 || want.Verdict[0].Kind != "uniform" || want.Verdict[1].Kind != "source" || want.Verdict[0].Windows != 6 {
		t.Errorf("verdict %+v, want best against uniform and the best source over 3×2 windows", want.Verdict)
	}
	if !strings.Contains(out, "verdict: best − uniform: ") {
		t.Errorf("headless output lacks the verdict:\n%s", out)
	}
	again := filepath.Join(t.TempDir(), "again.gguf")
	if code, _, errs := runCLI(t, "merge", filepath.Join(full, "best-recipe.toml"), "-o", again); code != 0 {
		t.Fatalf("best-recipe.toml does not re-run: %s", errs)
	}
	a, _ := os.ReadFile(filepath.Join(full, "best.gguf"))
	b, _ := os.ReadFile(again)
	if !bytes.Equal(a, b) {
		t.Error("merging best-recipe.toml does not reproduce best.gguf")
	}

	// The same run in another directory, killed after generation 1.
	killed := filepath.Join(t.TempDir(), "killed")
	cmd := exec.Command(os.Args[0], "--run", "--headless", "--config", cfg, "--output", killed, "--log-file", "")
	cmd.Env = append(os.Environ(), "EVOMERGE_CLI_MAIN=1")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(stdout)
	done := make(chan bool, 1)
	go func() {
		for sc.Scan() {
			if strings.Contains(sc.Text(), "generation 1:") {
				syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) // the run and its workers
				done <- true
				return
			}
		}
		done <- false
	}()
	select {
	case ok := <-done:
		if !ok {
			t.Fatal("the run ended before generation 1 finished")
		}
	case <-time.After(5 * time.Minute):
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		t.Fatal("timed out waiting for generation 1")
	}
	cmd.Wait()
	if _, err := os.Stat(filepath.Join(killed, "summary.json")); err == nil {
		t.Fatal("the killed run finished anyway")
	}
	code, out, errs = runCLI(t, "--run", "--headless", "--resume", killed)
	if code != 0 {
		t.Fatalf("resume: exit %d\n%s\n%s", code, out, errs)
	}
	if !strings.Contains(out, "are replayed from history.jsonl") {
		t.Errorf("resume did not replay:\n%s", out)
	}
	got := readSummary(t, killed)
	if got.Best.Key != want.Best.Key || got.BestFitness != want.BestFitness || got.Evaluations != want.Evaluations {
		t.Fatalf("resumed run: best %s %.6f after %d evaluations; uninterrupted: %s %.6f after %d",
			got.Best.Key, got.BestFitness, got.Evaluations, want.Best.Key, want.BestFitness, want.Evaluations)
	}
	for i := range want.Comparison {
		if got.Comparison[i].GeoMean != want.Comparison[i].GeoMean {
			t.Errorf("held-out %s: %v vs %v", want.Comparison[i].Name, got.Comparison[i].GeoMean, want.Comparison[i].GeoMean)
		}
	}
}
