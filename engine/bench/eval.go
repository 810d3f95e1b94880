package bench

import (
	"context"
	"fmt"
	"math"
	"os"
	"path/filepath"
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
// this process, with no worker, protocol or scoring. Returns tokens/s.
func bareDecode(model string, threads int) (float64, error) {
	text, err := benchText()
	if err != nil {
		return 0, err
	}
	m, err := llm.Load(model, llm.ModelParams{GPULayers: 0})
	if err != nil {
		return 0, err
	}
	defer m.Close()
	c, err := m.NewContext(llm.ContextParams{Size: benchCtx, Threads: threads})
	if err != nil {
		return 0, err
	}
	defer c.Close()
	toks, err := m.Tokenize(text.Content, true)
	if err != nil {
		return 0, err
	}
	if len(toks) < benchChunks*benchCtx {
		return 0, fmt.Errorf("bench text too short")
	}
	start := time.Now()
	for k := range benchChunks {
		w := append([]int{m.BOS()}, toks[k*benchCtx+1:(k+1)*benchCtx]...)
		c.Clear()
		if _, err := c.Decode(w, 0, benchCtx/2); err != nil {
			return 0, err
		}
	}
	return float64(benchChunks*benchCtx) / time.Since(start).Seconds(), nil
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
	bare, err := bareDecode(o.Model, o.Threads)
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
			o.logf("GPU %v: perplexity %.0f tok/s, generation %.0f tok/s", gpus, gpu, ggen)
			rows = append(rows,
				ratioRow("eval", "perplexity through the worker pool (GPU)", gpu, "tokens/s", one, "tokens/s CPU", fmt.Sprint(gpus)),
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
	if _, _, err := merge.Run(ctx, r, out, llm.Codec{}, merge.ExecOptions{Codec: llm.Codec{}}); err != nil {
		return nil, err
	}
	mergeT := time.Since(t0)
	cfg := config.Default()
	texts, err := eval.LoadTexts(cfg.Evaluation.Texts)
	if err != nil {
		return nil, err
	}
	pool, err := o.newPool(ctx, 1, 0)
	if err != nil {
		return nil, err
	}
	defer pool.Close()
	t1 := time.Now()
	if _, err := pool.Load(ctx, out); err != nil {
		return nil, err
	}
	loadT := time.Since(t1)
	t2 := time.Now()
	if _, err := pool.Perplexity(ctx, out, texts, eval.PerplexityOptions{Context: cfg.Evaluation.Context, Chunks: cfg.Evaluation.Chunks}, nil); err != nil {
		return nil, err
	}
	evalT := time.Since(t2)
	total := mergeT + loadT + evalT
	o.logf("candidate: merge %.2fs, load %.2fs, evaluate %.2fs", mergeT.Seconds(), loadT.Seconds(), evalT.Seconds())
	note := fmt.Sprintf("merge %.2fs + load %.2fs + evaluate %.2fs (%d texts × %d windows)", mergeT.Seconds(), loadT.Seconds(), evalT.Seconds(), len(texts), cfg.Evaluation.Chunks)
	return []Row{
		ratioRow("turnaround", "candidate: TIES of 3 zoo experts, merged, loaded, scored (CPU)", total.Seconds(), "s", evalT.Seconds(), "s evaluation alone", note),
	}, nil
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
	cfg.Evolution.Population, cfg.Evolution.Generations, cfg.Evolution.Patience = 20, 25, 0
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
