package worker

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/evomerge/evomerge/engine/eval"
	"github.com/evomerge/evomerge/engine/gguf"
	"github.com/evomerge/evomerge/engine/gguf/synth"
	"github.com/evomerge/evomerge/engine/llm"
	"github.com/evomerge/evomerge/kernels"
	"github.com/evomerge/evomerge/zoo"
)

// The test binary doubles as the worker executable: started with
// EVOMERGE_TEST_WORKER=1 it serves the protocol instead of running tests.
func TestMain(m *testing.M) {
	slog.SetDefault(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))
	if os.Getenv("EVOMERGE_TEST_WORKER") == "1" {
		fs := flag.NewFlagSet("worker", flag.ExitOnError)
		var opt Options
		fs.IntVar(&opt.Threads, "threads", 0, "")
		fs.IntVar(&opt.GPULayers, "gpu-layers", -1, "")
		opt.Retire = os.Getenv("EVOMERGE_TEST_RETIRE") == "1"
		fs.String("log-level", "", "")
		fs.String("log-file", "", "")
		fs.Parse(os.Args[1:])
		if err := Serve(context.Background(), os.Stdin, os.Stdout, opt); err != nil {
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func newPool(t testing.TB, workers int) *eval.Pool {
	t.Helper()
	p, err := eval.NewPool(context.Background(), eval.PoolOptions{
		Workers: workers, Threads: max(1, runtime.NumCPU()/workers),
		Command: []string{os.Args[0]}, Env: []string{"EVOMERGE_TEST_WORKER=1"},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	return p
}

func baseModel(t testing.TB) string {
	t.Helper()
	path := zoo.Model(zoo.Base)
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("%v: run `make zoo`", err)
	}
	return path
}

func opticks(t testing.TB) string {
	t.Helper()
	// The full Opticks from Go's source tree (the zoo's copy is a part).
	// `go test` puts the go command that runs it first on PATH.
	root, err := exec.Command("go", "env", "GOROOT").Output()
	if err != nil {
		t.Fatalf("go env GOROOT: %v", err)
	}
	b, err := os.ReadFile(filepath.Join(strings.TrimSpace(string(root)), "src", "testdata", "Isaac.Newton-Opticks.txt"))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// referencePerplexity recomputes llama-perplexity's number with its own
// decode loop: every window decoded with all logits, log-softmax in
// float64, the second half scored.
func referencePerplexity(t *testing.T, path, text string, nctx, chunks int) float64 {
	t.Helper()
	m, err := llm.Load(path, llm.ModelParams{})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	c, err := m.NewContext(llm.ContextParams{Size: nctx, Threads: runtime.NumCPU()})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	toks, err := m.Tokenize(text, true)
	if err != nil {
		t.Fatal(err)
	}
	v := m.VocabSize()
	var nll float64
	n := 0
	for k := 0; k < chunks; k++ {
		w := append([]int{m.BOS()}, toks[k*nctx+1:(k+1)*nctx]...)
		c.Clear()
		logits, err := c.Decode(w, 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		for j := nctx / 2; j < nctx-1; j++ {
			row := logits[j*v : (j+1)*v]
			var z float64
			mx := math.Inf(-1)
			for _, l := range row {
				mx = math.Max(mx, float64(l))
			}
			for _, l := range row {
				z += math.Exp(float64(l) - mx)
			}
			nll -= float64(row[toks[k*nctx+j+1]]) - mx - math.Log(z)
			n++
		}
	}
	return math.Exp(nll / float64(n))
}

func TestPerplexityMatchesIndependentLoop(t *testing.T) {
	path := baseModel(t)
	text := opticks(t)
	p := newPool(t, 1)
	const chunks = 12
	var events int
	reply, err := p.Perplexity(context.Background(), path, []eval.Text{{Name: "opticks", Content: text}},
		eval.PerplexityOptions{Context: 256, Chunks: chunks}, func(string, int, int) { events++ })
	if err != nil {
		t.Fatal(err)
	}
	got := reply.Texts[0]
	want := referencePerplexity(t, path, text, 256, chunks)
	t.Logf("stories15M on Opticks, ctx 256, %d chunks: pool %.4f ± %.4f (%d tokens, %.2fs), reference loop %.4f",
		chunks, got.Perplexity, got.StdErr, got.Tokens, got.Seconds, want)
	if rel := math.Abs(got.Perplexity-want) / want; rel > 0.005 {
		t.Fatalf("perplexity %.4f differs from the reference %.4f by %.2f%%", got.Perplexity, want, 100*rel)
	}
	if got.Tokens != chunks*127 || events != chunks {
		t.Errorf("tokens %d (want %d), progress events %d", got.Tokens, chunks*127, events)
	}
	if got.Perplexity < 20 || got.Perplexity > 5000 {
		t.Errorf("implausible perplexity %.1f for an out-of-domain text", got.Perplexity)
	}
}

func TestGenerateThroughPool(t *testing.T) {
	path := baseModel(t)
	p := newPool(t, 1)
	var streamed strings.Builder
	opt := eval.GenerateOptions{SamplingOptions: eval.SamplingOptions{Temperature: 0}, MaxTokens: 24}
	res, err := p.Generate(context.Background(), path, "Once upon a time", opt, func(s string) { streamed.WriteString(s) })
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(res.Text, ", there was a little girl named Lily") {
		t.Fatalf("greedy story %q", res.Text)
	}
	if streamed.String() != res.Text || res.Tokens != 24 {
		t.Errorf("streamed %q, %d tokens", streamed.String(), res.Tokens)
	}
	again, err := p.Generate(context.Background(), path, "Once upon a time", opt, nil)
	if err != nil || again.Text != res.Text {
		t.Errorf("greedy generation not deterministic: %q vs %q (%v)", again.Text, res.Text, err)
	}
}

// writeDamaged copies the base model with Gaussian noise of the given
// relative size added to every block weight.
func writeDamaged(t *testing.T, src, dst string, rel float64) {
	t.Helper()
	f, err := gguf.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fw, err := gguf.Create(dst, f.Header)
	if err != nil {
		t.Fatal(err)
	}
	defer fw.Abort()
	rng := rand.New(rand.NewPCG(1, 1))
	var codec kernels.Native
	for _, ti := range f.Tensors {
		raw, err := f.ReadTensor(ti, nil)
		if err != nil {
			t.Fatal(err)
		}
		if strings.HasPrefix(ti.Name, "blk.") && len(ti.Shape) == 2 {
			vals := make([]float32, ti.Elements())
			if err := codec.Decode(ti.Type, vals, raw); err != nil {
				t.Fatal(err)
			}
			var ss float64
			for _, v := range vals {
				ss += float64(v) * float64(v)
			}
			sd := math.Sqrt(ss/float64(len(vals))) * rel
			for i := range vals {
				vals[i] += float32(rng.NormFloat64() * sd)
			}
			if err := codec.Encode(ti.Type, raw, vals, int(ti.Shape[0])); err != nil {
				t.Fatal(err)
			}
		}
		if err := fw.WriteTensor(ti.Name, raw); err != nil {
			t.Fatal(err)
		}
	}
	if err := fw.Commit(); err != nil {
		t.Fatal(err)
	}
}

// TestRandomModelsScore: models whose perplexity is +Inf or NaN (random
// weights) get perplexity, coherence and task results back through the
// protocol, those values included, instead of an encoding error.
func TestRandomModelsScore(t *testing.T) {
	path := baseModel(t)
	dir := t.TempDir()
	p := newPool(t, 1)
	ctx := context.Background()
	text := []eval.Text{{Name: "opticks", Content: opticks(t)[:20000]}}
	tasks := []eval.Task{{Context: "Once upon a time, there was a little girl named", Choices: []string{" Lily", " Xylophone"}, Answer: 0}}
	for _, tt := range []struct {
		sd   float64
		want func(float64) bool
		what string
	}{
		{2, func(x float64) bool { return math.IsInf(x, 1) }, "+Inf"},
		{20, math.IsNaN, "NaN"},
	} {
		model := filepath.Join(dir, fmt.Sprintf("random-%g.gguf", tt.sd))
		if err := synth.Random(path, model, tt.sd, 1); err != nil {
			t.Fatal(err)
		}
		r, err := p.Perplexity(ctx, model, text, eval.PerplexityOptions{Context: 256, Chunks: 1}, nil)
		if err != nil {
			t.Fatalf("sd %g: perplexity: %v", tt.sd, err)
		}
		if got := r.Texts[0]; !tt.want(got.Perplexity) || got.Name != "opticks" || got.Tokens != 127 {
			t.Errorf("sd %g: perplexity %v over %d tokens of %q, want %s over 127 of opticks", tt.sd, got.Perplexity, got.Tokens, got.Name, tt.what)
		}
		opt := eval.DefaultCoherence()
		opt.Prompts, opt.MaxTokens, opt.Reference = opt.Prompts[:2], 8, path
		c, err := p.Coherence(ctx, model, opt)
		if err != nil {
			t.Fatalf("sd %g: coherence: %v", tt.sd, err)
		}
		if len(c.Samples) != 2 || c.Score < 0 || c.Score > 0.5 {
			t.Errorf("sd %g: coherence %+v, want two samples scoring low", tt.sd, c)
		}
		tr, err := p.Tasks(ctx, model, tasks)
		if err != nil || tr.Tasks != 1 {
			t.Fatalf("sd %g: tasks %+v: %v", tt.sd, tr, err)
		}
		t.Logf("sd %g: perplexity %v, coherence %.3f (reference perplexity %v), task accuracy %v",
			tt.sd, r.Texts[0].Perplexity, c.Score, c.RefPerplexity, tr.Accuracy)
	}
}

func TestCoherenceSeparatesHealthyFromDamaged(t *testing.T) {
	path := baseModel(t)
	damaged := filepath.Join(t.TempDir(), "damaged.gguf")
	writeDamaged(t, path, damaged, 1.0)
	p := newPool(t, 1)
	opt := eval.DefaultCoherence()
	opt.Reference = path
	healthy, err := p.Coherence(context.Background(), path, opt)
	if err != nil {
		t.Fatal(err)
	}
	bad, err := p.Coherence(context.Background(), damaged, opt)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("coherence: healthy %.3f (ref ppl %.1f, distinct-2 %.2f), damaged %.3f (ref ppl %.1f, distinct-2 %.2f)",
		healthy.Score, healthy.RefPerplexity, healthy.Distinct2, bad.Score, bad.RefPerplexity, bad.Distinct2)
	t.Logf("healthy sample: %q", healthy.Samples[0].Text)
	t.Logf("damaged sample: %q", bad.Samples[0].Text)
	if healthy.Score < 0.5 || bad.Score > 0.25 || healthy.Score-bad.Score < 0.4 {
		t.Fatalf("coherence does not separate: healthy %.3f vs damaged %.3f", healthy.Score, bad.Score)
	}
	again, err := p.Coherence(context.Background(), path, opt)
	if err != nil || again.Score != healthy.Score {
		t.Errorf("coherence not deterministic: %v vs %v (%v)", again.Score, healthy.Score, err)
	}
}

func TestTasksThroughPool(t *testing.T) {
	path := baseModel(t)
	p := newPool(t, 1)
	tasks := []eval.Task{
		{Context: "Once upon a time, there was a little girl named", Choices: []string{" Lily", " Xylophone"}, Answer: 0},
		{Context: "The sun was shining and the birds were", Choices: []string{" purple elephant", " singing"}, Answer: 1},
		{Context: "Tom was very happy. He had a big", Choices: []string{" smile on his face", " of the of the"}, Answer: 0},
	}
	res, err := p.Tasks(context.Background(), path, tasks)
	if err != nil {
		t.Fatal(err)
	}
	if res.Tasks != 3 || res.Correct != 3 {
		t.Errorf("obvious tasks: %+v", res)
	}
}

func TestCorruptModelAndCrashRecovery(t *testing.T) {
	path := baseModel(t)
	dir := t.TempDir()
	p := newPool(t, 1)
	ctx := context.Background()
	text := []eval.Text{{Name: "opticks", Content: opticks(t)[:20000]}}
	popt := eval.PerplexityOptions{Context: 256, Chunks: 2}

	// A GGUF that parses but lacks a tensor llama.cpp needs.
	f, err := gguf.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	h := f.Header
	h.Tensors = h.Tensors[:len(h.Tensors)-1] // drop output_norm.weight
	fw, err := gguf.Create(filepath.Join(dir, "missing.gguf"), h)
	if err != nil {
		t.Fatal(err)
	}
	for _, ti := range h.Tensors {
		raw, _ := f.ReadTensor(ti, nil)
		fw.WriteTensor(ti.Name, raw)
	}
	if err := fw.Commit(); err != nil {
		t.Fatal(err)
	}
	f.Close()
	os.WriteFile(filepath.Join(dir, "garbage.gguf"), []byte("this is not a model"), 0o644)

	for _, bad := range []string{"missing.gguf", "garbage.gguf", "nonexistent.gguf"} {
		_, err := p.Perplexity(ctx, filepath.Join(dir, bad), text, popt, nil)
		var we *eval.WorkerError
		if !errors.As(err, &we) || we.Kind != eval.KindLoad || !strings.Contains(err.Error(), bad) {
			t.Errorf("%s: got %v, want a load error naming the file", bad, err)
		}
		t.Logf("%s: %v", bad, err)
	}
	if _, err := p.Perplexity(ctx, filepath.Join(dir, "missing.gguf"), text, popt, nil); err == nil || !strings.Contains(err.Error(), "missing tensor 'output_norm.weight'") {
		t.Errorf("llama.cpp's reason is not in the error: %v", err)
	}
	if _, err := p.Perplexity(ctx, path, text, popt, nil); err != nil {
		t.Fatalf("pool stopped serving after bad models: %v", err)
	}

	// Kill the worker in the middle of a job.
	h1, err := eval.PoolHealth(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	long := []eval.Text{{Name: "opticks", Content: opticks(t)}}
	var once sync.Once
	_, err = p.Perplexity(ctx, path, long, eval.PerplexityOptions{Context: 256, Chunks: 200}, func(string, int, int) {
		once.Do(func() { syscall.Kill(h1.PID, syscall.SIGKILL) })
	})
	var crash *eval.CrashError
	if !errors.As(err, &crash) || !strings.Contains(err.Error(), path) {
		t.Fatalf("killed worker: got %v, want a CrashError naming the model", err)
	}
	t.Logf("killed worker: %v", err)
	deadline := time.Now().Add(30 * time.Second)
	for {
		h2, err := eval.PoolHealth(ctx, p)
		if err == nil {
			if h2.PID == h1.PID {
				t.Fatal("the killed worker is still in the pool")
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no replacement worker: %v", err)
		}
	}
	if _, err := p.Perplexity(ctx, path, text, popt, nil); err != nil {
		t.Fatalf("replacement worker failed: %v", err)
	}

	// Cancelling a job kills its worker and returns promptly.
	cctx, cancel := context.WithCancel(ctx)
	start := time.Now()
	var cancelOnce sync.Once
	_, err = p.Perplexity(cctx, path, long, eval.PerplexityOptions{Context: 256, Chunks: 200}, func(string, int, int) { cancelOnce.Do(cancel) })
	if !errors.Is(err, context.Canceled) || time.Since(start) > 20*time.Second {
		t.Fatalf("cancel: %v after %v", err, time.Since(start))
	}
	if _, err := p.Perplexity(ctx, path, text, popt, nil); err != nil {
		t.Fatalf("pool after cancel: %v", err)
	}
}

// TestRetiringWorkers: workers that exit after every job (as on a GPU) are
// replaced transparently and every job still succeeds.
func TestRetiringWorkers(t *testing.T) {
	path := baseModel(t)
	p, err := eval.NewPool(context.Background(), eval.PoolOptions{Workers: 1, Threads: runtime.NumCPU(),
		Command: []string{os.Args[0]}, Env: []string{"EVOMERGE_TEST_WORKER=1", "EVOMERGE_TEST_RETIRE=1"}})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	ctx := context.Background()
	text := []eval.Text{{Name: "opticks", Content: opticks(t)[:20000]}}
	var pids []int
	var ppl []float64
	for range 3 {
		h, err := eval.PoolHealth(ctx, p)
		if err != nil {
			t.Fatal(err)
		}
		pids = append(pids, h.PID)
		r, err := p.Perplexity(ctx, path, text, eval.PerplexityOptions{Context: 256, Chunks: 2}, nil)
		if err != nil {
			t.Fatal(err)
		}
		ppl = append(ppl, r.Texts[0].Perplexity)
	}
	if pids[0] == pids[1] || pids[1] == pids[2] {
		t.Errorf("workers were not replaced after their jobs: pids %v", pids)
	}
	if ppl[0] != ppl[1] || ppl[1] != ppl[2] {
		t.Errorf("results differ across fresh workers: %v", ppl)
	}
}

// TestTwoWorkers: a pool of two llama.cpp workers runs two jobs at once,
// and each job's result is the one a single worker gives: a worker's
// state (the models it holds, the other's load) never leaks into a job.
func TestTwoWorkers(t *testing.T) {
	path := baseModel(t)
	damaged := filepath.Join(t.TempDir(), "damaged.gguf")
	writeDamaged(t, path, damaged, 0.3)
	ctx := context.Background()
	text := []eval.Text{{Name: "opticks", Content: opticks(t)[:20000]}}
	popt := eval.PerplexityOptions{Context: 256, Chunks: 2}
	single := newPool(t, 1)
	want := map[string]float64{}
	for _, m := range []string{path, damaged} {
		r, err := single.Perplexity(ctx, m, text, popt, nil)
		if err != nil {
			t.Fatal(err)
		}
		want[m] = r.Texts[0].Perplexity
	}
	single.Close()

	p, err := eval.NewPool(ctx, eval.PoolOptions{Workers: 2, Threads: 1,
		Command: []string{os.Args[0]}, Env: []string{"EVOMERGE_TEST_WORKER=1"}})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	// Jobs in flight: counted from a job's first progress event (it runs
	// on a worker; a worker runs one job at a time) to its return.
	var mu sync.Mutex
	var running, peak int
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for i := range 8 {
		m := []string{path, damaged}[i%2]
		wg.Add(1)
		go func() {
			defer wg.Done()
			started := false
			r, err := p.Perplexity(ctx, m, text, popt, func(string, int, int) {
				mu.Lock()
				defer mu.Unlock()
				if !started {
					started = true
					running++
					peak = max(peak, running)
				}
			})
			mu.Lock()
			if started {
				running--
			}
			mu.Unlock()
			if err != nil {
				errs <- err
				return
			}
			if got := r.Texts[0].Perplexity; got != want[m] {
				errs <- fmt.Errorf("%s: perplexity %v with two workers, %v with one", filepath.Base(m), got, want[m])
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if peak != 2 {
		t.Errorf("at most %d jobs ran at once on two workers, want 2", peak)
	}
}

// TestPlacementThroughWorker checks what a worker reports about where it
// runs: its llama.cpp's devices (the CPU always, described) and, for the
// zoo base, the offload count — none on the CPU, all 7 layers (6 blocks and
// the output) when a GPU backend is loaded — and that a GPU the machine has
// but the worker does not use is named with the reason.
func TestPlacementThroughWorker(t *testing.T) {
	for _, gpuLayers := range []int{0, -1} {
		p, err := eval.NewPool(context.Background(), eval.PoolOptions{Workers: 1, Threads: 2, GPULayers: gpuLayers,
			Command: []string{os.Args[0]}, Env: []string{"EVOMERGE_TEST_WORKER=1"}})
		if err != nil {
			t.Fatal(err)
		}
		defer p.Close()
		h, err := eval.PoolHealth(context.Background(), p)
		if err != nil {
			t.Fatal(err)
		}
		if h.GPULayers != gpuLayers || h.Threads != 2 || len(h.Devices) == 0 || h.Devices[0].Type != "cpu" || h.Devices[0].Description == "" {
			t.Fatalf("gpu-layers %d: health %+v: want the worker's settings and the CPU device first", gpuLayers, h)
		}
		pl, err := p.Placement(context.Background(), baseModel(t))
		if err != nil {
			t.Fatal(err)
		}
		if pl.Layers != 7 || pl.Workers != 1 || pl.Threads != 2 || pl.CPU != h.Devices[0].Description {
			t.Fatalf("gpu-layers %d: placement %+v", gpuLayers, pl)
		}
		switch {
		case len(h.GPUs) > 0 && gpuLayers != 0:
			if !pl.OnGPU() || pl.Offloaded != 7 || pl.Unused != "" {
				t.Fatalf("GPU backend loaded, gpu-layers auto: placement %+v, want all 7 layers offloaded", pl)
			}
		default:
			if pl.OnGPU() || pl.Offloaded != 0 || !strings.HasPrefix(pl.String(), "CPU, 2 threads (") {
				t.Fatalf("gpu-layers %d, GPUs %q: placement %q, want the CPU", gpuLayers, h.GPUs, pl)
			}
			if gpus := eval.SystemGPUs(); (len(gpus) > 0 || len(h.GPUs) > 0) != (pl.Unused != "") {
				t.Fatalf("machine GPUs %q, worker GPUs %q: unused = %q", gpus, h.GPUs, pl.Unused)
			}
		}
		t.Logf("gpu-layers %d: %s", gpuLayers, pl)
	}
}

// BenchmarkPerplexityScoring times perplexity in a worker's session —
// decode plus the Go scoring of every logit — on the zoo base over 16
// windows of 256 of the Opticks, scoring serially after each decode and
// overlapped with the next decode (PerplexityOptions.Overlap), in the same
// process; tokens/s is reported per variant.
func BenchmarkPerplexityScoring(b *testing.B) {
	m, err := llm.Load(baseModel(b), llm.ModelParams{GPULayers: -1})
	if err != nil {
		b.Fatal(err)
	}
	defer m.Close()
	threads := runtime.NumCPU()
	c, err := m.NewContext(llm.ContextParams{Size: 256, Batch: 256, Threads: threads})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	sess := &session{Model: m, ctx: c}
	text := opticks(b)
	const windows = 16
	for _, overlap := range []bool{false, true} {
		name := map[bool]string{false: "serial", true: "overlap"}[overlap]
		b.Run(name, func(b *testing.B) {
			for b.Loop() {
				if _, err := eval.Perplexity(context.Background(), sess, text, eval.PerplexityOptions{Context: 256, Chunks: windows, Overlap: overlap}); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N*windows*256)/b.Elapsed().Seconds(), "tokens/s")
		})
	}
}
