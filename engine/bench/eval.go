package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/evomerge/evomerge/engine/config"
	"github.com/evomerge/evomerge/engine/eval"
	"github.com/evomerge/evomerge/engine/evolve"
	"github.com/evomerge/evomerge/engine/llm"
	"github.com/evomerge/evomerge/engine/merge"
	"github.com/evomerge/evomerge/zoo"
)

const (
	benchCtx    = 256
	benchChunks = 24
)

// benchText is the held-out text the evaluation measurements score.
func benchText() (eval.Text, error) {
	texts, err := eval.LoadTexts([]string{zoo.TextRef + zoo.HeldOut + "/" + zoo.Test})
	if err != nil {
		return eval.Text{}, err
	}
	return texts[0], nil
}

// bareDecode is the floor for evaluation: the same windows as perplexity
// (BOS, 256 tokens, logits for the second half) decoded by llama.cpp in
// this process, with no worker, protocol or scoring. Returns tokens/s and
// the layers offloaded to a GPU. With free unset the model and context
// are left to the process exit (see BareDecode).
func bareDecode(model string, threads, gpuLayers int, free bool) (float64, int, error) {
	text, err := benchText()
	if err != nil {
		return 0, 0, err
	}
	m, err := llm.Load(model, llm.ModelParams{GPULayers: gpuLayers})
	if err != nil {
		return 0, 0, err
	}
	if free {
		defer m.Close()
	}
	c, err := m.NewContext(llm.ContextParams{Size: benchCtx, Threads: threads})
	if err != nil {
		return 0, 0, err
	}
	if free {
		defer c.Close()
	}
	toks, err := m.Tokenize(text.Content, true)
	if err != nil {
		return 0, 0, err
	}
	if len(toks) < benchChunks*benchCtx {
		return 0, 0, fmt.Errorf("bench text too short")
	}
	start := time.Now()
	for k := range benchChunks {
		w := append([]int{m.BOS()}, toks[k*benchCtx+1:(k+1)*benchCtx]...)
		c.Clear()
		if _, err := c.Decode(w, 0, benchCtx/2); err != nil {
			return 0, 0, err
		}
	}
	return float64(benchChunks*benchCtx) / time.Since(start).Seconds(), m.Offloaded(), nil
}

// BareLoop is a bare decode loop's result, as `evomerge-tui bench
// --bare-loop` prints it.
type BareLoop struct {
	TokensPerSecond float64 `json:"tokens_per_second"`
	Offloaded       int     `json:"layers_offloaded"`
}

// BareDecode runs the bare decode loop for a child process (`evomerge-tui
// bench --bare-loop`). The GPU loop needs a process of its own: the CUDA
// runtime must be on LD_LIBRARY_PATH when the process starts (the
// workers' environment), and freeing a context whose batches ran on the
// GPU crashed (see worker.Options.Retire), so nothing is freed: the
// process exits.
func BareDecode(model string, threads, gpuLayers int) (BareLoop, error) {
	tps, off, err := bareDecode(model, threads, gpuLayers, false)
	return BareLoop{TokensPerSecond: tps, Offloaded: off}, err
}

// bareDecodeChild runs BareDecode in a child with the workers' environment.
func bareDecodeChild(ctx context.Context, o *Options, gpuLayers int) (BareLoop, error) {
	cmd := exec.CommandContext(ctx, o.Exe, "bench", "--bare-loop", "--model", o.Model, "--gpu-layers", strconv.Itoa(gpuLayers),
		"--threads", strconv.Itoa(o.Threads), "--log-file", "")
	cmd.Env = append(os.Environ(), o.Env...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return BareLoop{}, fmt.Errorf("bare decode loop: %v: %s", err, lastLines(stderr.String(), 3))
	}
	var r BareLoop
	if err := json.Unmarshal(out, &r); err != nil {
		return BareLoop{}, fmt.Errorf("bare decode loop printed %q: %w", out, err)
	}
	return r, nil
}

// newPool starts workers of the benchmarked executable, splitting the
// thread budget between them.
func (o *Options) newPool(ctx context.Context, workers, gpuLayers int) (*eval.Pool, error) {
	return eval.NewPool(ctx, eval.PoolOptions{Command: []string{o.Exe, "worker"}, Env: o.Env}.Sized(workers, o.Threads, gpuLayers))
}

// poolPerplexity runs `jobs` perplexity jobs at once on a pool and returns
// the aggregate tokens/s.
func poolPerplexity(ctx context.Context, o *Options, workers, gpuLayers, jobs int) (float64, []string, error) {
	text, err := benchText()
	if err != nil {
		return 0, nil, err
	}
	pool, err := o.newPool(ctx, workers, gpuLayers)
	if err != nil {
		return 0, nil, err
	}
	defer pool.Close()
	h, err := eval.PoolHealth(ctx, pool)
	if err != nil {
		return 0, nil, err
	}
	// Warm up: load the model in every worker.
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() { defer wg.Done(); pool.Load(ctx, o.Model) }()
	}
	wg.Wait()
	start := time.Now()
	errs := make(chan error, jobs)
	for range jobs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := pool.Perplexity(ctx, o.Model, []eval.Text{text}, eval.PerplexityOptions{Context: benchCtx, Chunks: benchChunks}, nil)
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			return 0, nil, err
		}
	}
	return float64(jobs*benchChunks*benchCtx) / time.Since(start).Seconds(), h.GPUs, nil
}

func generation(ctx context.Context, o *Options, gpuLayers int) (float64, error) {
	pool, err := o.newPool(ctx, 1, gpuLayers)
	if err != nil {
		return 0, err
	}
	defer pool.Close()
	res, err := pool.Generate(ctx, o.Model, "Once upon a time", eval.GenerateOptions{SamplingOptions: eval.SamplingOptions{Temperature: 0}, MaxTokens: 200}, nil)
	if err != nil {
		return 0, err
	}
	return res.TokensPerSecond, nil
}

func evalBench(ctx context.Context, o *Options) ([]Row, error) {
	if o.Model == "" {
		return nil, fmt.Errorf("the evaluation benchmarks need a model (the zoo's stories15M)")
	}
	bare, _, err := bareDecode(o.Model, o.Threads, 0, true)
	if err != nil {
		return nil, err
	}
	one, _, err := poolPerplexity(ctx, o, 1, 0, 1)
	if err != nil {
		return nil, err
	}
	two, _, err := poolPerplexity(ctx, o, 2, 0, 2)
	if err != nil {
		return nil, err
	}
	gen, err := generation(ctx, o, 0)
	if err != nil {
		return nil, err
	}
	name := filepath.Base(o.Model)
	o.logf("CPU: bare decode %.0f tok/s, pool %.0f tok/s, 2 workers %.0f tok/s, generation %.0f tok/s", bare, one, two, gen)
	rows := []Row{
		{Group: "eval", Name: "bare llama.cpp decode loop (CPU)", Value: bare, Unit: "tokens/s", Note: fmt.Sprintf("%s, %d windows of %d, %d threads", name, benchChunks, benchCtx, o.Threads)},
		ratioRow("eval", "perplexity through the worker pool, 1 worker (CPU)", one, "tokens/s", bare, "tokens/s bare loop", "overhead = 1 − ratio"),
		ratioRow("eval", "perplexity, 2 workers × half the threads (CPU)", two, "tokens/s", one, "tokens/s 1 worker", "two jobs at once"),
		{Group: "eval", Name: "greedy generation, 200 tokens (CPU)", Value: gen, Unit: "tokens/s"},
	}
	if o.GPULayers != 0 {
		gpu, gpus, err := poolPerplexity(ctx, o, 1, -1, 1)
		switch {
		case err != nil:
			o.logf("GPU: %v", err)
		case len(gpus) == 0:
			o.logf("GPU: no GPU backend found; GPU rows skipped")
		default:
			ggen, err := generation(ctx, o, -1)
			if err != nil {
				return nil, err
			}
			gbare, err := bareDecodeChild(ctx, o, -1)
			if err != nil {
				return nil, err
			}
			o.logf("GPU %v: bare decode %.0f tok/s (%d layers offloaded), perplexity %.0f tok/s, generation %.0f tok/s", gpus, gbare.TokensPerSecond, gbare.Offloaded, gpu, ggen)
			rows = append(rows,
				ratioRow("eval", "bare llama.cpp decode loop (GPU)", gbare.TokensPerSecond, "tokens/s", bare, "tokens/s CPU", fmt.Sprintf("%d layers offloaded", gbare.Offloaded)),
				ratioRow("eval", "perplexity through the worker pool, 1 worker (GPU)", gpu, "tokens/s", gbare.TokensPerSecond, "tokens/s bare loop on the GPU", fmt.Sprint(gpus)),
				ratioRow("eval", "perplexity through the worker pool (GPU vs CPU)", gpu, "tokens/s", one, "tokens/s CPU", ""),
				ratioRow("eval", "greedy generation, 200 tokens (GPU)", ggen, "tokens/s", gen, "tokens/s CPU", ""))
		}
	}
	return rows, nil
}

// turnaroundBench times one typical candidate: a TIES merge of the zoo's
// experts, loading it and scoring the default fitness texts.
func turnaroundBench(ctx context.Context, o *Options) ([]Row, error) {
	if err := zoo.Check(); err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp(o.Dir, "evomerge-bench-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	r := &merge.Recipe{Method: "ties", Base: zoo.Model(zoo.Base), Params: merge.Params{"lambda": merge.Scalar(1)}}
	for _, e := range zoo.Experts() {
		r.Models = append(r.Models, merge.ModelRef{Model: zoo.Model(e), Params: merge.Params{"weight": merge.Scalar(0.5), "density": merge.Scalar(0.5)}})
	}
	out := filepath.Join(dir, "candidate.gguf")
	t0 := time.Now()
	if _, _, err := merge.Run(ctx, r, out, llm.Codec{}, merge.ExecOptions{Codec: llm.Codec{}, Threads: o.Threads}); err != nil {
		return nil, err
	}
	mergeT := time.Since(t0)
	cfg := config.Default()
	texts, err := eval.LoadTexts(cfg.Evaluation.Texts)
	if err != nil {
		return nil, err
	}
	popt := eval.PerplexityOptions{Context: cfg.Evaluation.Context, Chunks: cfg.Evaluation.Chunks}
	// loadEval loads the candidate on a fresh worker and scores it.
	loadEval := func(gpuLayers int) (load, evalT time.Duration, dev eval.Placement, err error) {
		pool, err := o.newPool(ctx, 1, gpuLayers)
		if err != nil {
			return 0, 0, dev, err
		}
		defer pool.Close()
		t1 := time.Now()
		if dev, err = pool.Placement(ctx, out); err != nil {
			return 0, 0, dev, err
		}
		load = time.Since(t1)
		t2 := time.Now()
		if _, err := pool.Perplexity(ctx, out, texts, popt, nil); err != nil {
			return 0, 0, dev, err
		}
		return load, time.Since(t2), dev, nil
	}
	loadT, evalT, _, err := loadEval(0)
	if err != nil {
		return nil, err
	}
	total := mergeT + loadT + evalT
	o.logf("candidate: merge %.2fs, load %.2fs, evaluate %.2fs", mergeT.Seconds(), loadT.Seconds(), evalT.Seconds())
	note := fmt.Sprintf("merge %.2fs + load %.2fs + evaluate %.2fs (%d texts × %d windows)", mergeT.Seconds(), loadT.Seconds(), evalT.Seconds(), len(texts), cfg.Evaluation.Chunks)
	rows := []Row{
		ratioRow("turnaround", "candidate: TIES of 3 zoo experts, merged, loaded, scored (CPU)", total.Seconds(), "s", evalT.Seconds(), "s evaluation alone", note),
	}
	if o.GPULayers == 0 {
		return rows, nil
	}
	// The same merged file, loaded and scored on the GPU (the merge runs on
	// the CPU either way).
	gLoad, gEval, dev, err := loadEval(-1)
	switch {
	case err != nil:
		o.logf("candidate on the GPU: %v", err)
	case !dev.OnGPU():
		o.logf("candidate: GPU row skipped: %s", orText(dev.Unused, "no GPU backend found"))
	default:
		gTotal := mergeT + gLoad + gEval
		o.logf("candidate on the GPU: merge %.2fs, load %.2fs, evaluate %.2fs", mergeT.Seconds(), gLoad.Seconds(), gEval.Seconds())
		rows = append(rows, ratioRow("turnaround", "candidate: TIES of 3 zoo experts, merged, loaded, scored (GPU)", gTotal.Seconds(), "s", total.Seconds(), "s on the CPU",
			fmt.Sprintf("merge %.2fs + load %.2fs + evaluate %.2fs; %s", mergeT.Seconds(), gLoad.Seconds(), gEval.Seconds(), dev)))
	}
	return rows, nil
}

// overheadBench measures the search's own cost per candidate (genome
// decoding, recipe hashing, selection, history, events) with a scorer
// that costs nothing.
func overheadBench(ctx context.Context, o *Options) ([]Row, error) {
	if err := zoo.Check(); err != nil {
		return nil, err
	}
	cfg := config.Default()
	for i := range cfg.Models {
		cfg.Models[i].Path = zoo.Model(cfg.Models[i].Name)
	}
	dir, err := os.MkdirTemp(o.Dir, "evomerge-bench-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	cfg.Output.Dir = filepath.Join(dir, "run")
	cfg.Evolution.Optimizer, cfg.Evolution.Population, cfg.Evolution.Generations, cfg.Evolution.Patience = "ga", 20, 25, 0
	free := func(_ context.Context, r *merge.Recipe) (evolve.Scores, error) {
		text, _ := r.Encode()
		return evolve.Scores{MeanLogPPL: 5 + math.Mod(float64(len(text)), 7)/10}, nil
	}
	start := time.Now()
	res, err := evolve.Search(ctx, cfg, evolve.Options{}, free)
	if err != nil {
		return nil, err
	}
	per := time.Since(start) / time.Duration(max(1, res.Evaluations))
	o.logf("engine overhead: %v per evaluated candidate (%d candidates)", per, res.Evaluations)
	return []Row{{Group: "overhead", Name: "engine overhead per candidate (GA, zoo config)", Value: float64(per.Microseconds()) / 1000, Unit: "ms",
		Note: fmt.Sprintf("%d candidates; compare with the turnaround above", res.Evaluations)}}, nil
}
