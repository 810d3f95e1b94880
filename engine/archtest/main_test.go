package archtest

import (
	"context"
	"flag"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/evomerge/evomerge/engine/eval"
	"github.com/evomerge/evomerge/engine/eval/worker"
	"github.com/evomerge/evomerge/zoo"
)

// The test binary doubles as the evaluation worker: started with
// EVOMERGE_TEST_WORKER=1 it serves the worker protocol, so llama.cpp runs
// in child processes exactly as in a real run.
func TestMain(m *testing.M) {
	slog.SetDefault(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))
	if os.Getenv("EVOMERGE_TEST_WORKER") == "1" {
		fs := flag.NewFlagSet("worker", flag.ExitOnError)
		var opt worker.Options
		fs.IntVar(&opt.Threads, "threads", 0, "")
		fs.IntVar(&opt.GPULayers, "gpu-layers", -1, "")
		fs.String("log-level", "", "")
		fs.String("log-file", "", "")
		fs.Parse(os.Args[1:])
		if err := worker.Serve(context.Background(), os.Stdin, os.Stdout, opt); err != nil {
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// poolOptions start workers from this test binary. One thread: the
// models are tiny, and on a loaded machine ggml's threads wait for each
// other at every operation (single-token decoding measured 2700× slower
// with two threads than with one under a load of 15 on 2 cores).
func poolOptions() eval.PoolOptions {
	return eval.PoolOptions{Workers: 1, Threads: 1,
		Command: []string{os.Args[0]}, Env: []string{"EVOMERGE_TEST_WORKER=1"}}
}

func newPool(t testing.TB) *eval.Pool {
	t.Helper()
	p, err := eval.NewPool(context.Background(), poolOptions())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	return p
}

// evalText is the text perplexities are measured on: the bundled
// held-out English text (Newton's Opticks), which no generated model's
// vocabulary was learned from.
func evalText(t testing.TB) eval.Text {
	t.Helper()
	text, err := zoo.Text(zoo.HeldOut, zoo.Test)
	if err != nil {
		t.Fatal(err)
	}
	return eval.Text{Name: "opticks", Content: text[:min(len(text), 20000)]}
}

// perplexity loads path in a worker and measures its perplexity over a
// few windows of 64 tokens; it fails the test unless the result is finite.
func perplexity(t testing.TB, p *eval.Pool, path string) float64 {
	t.Helper()
	reply, err := p.Perplexity(context.Background(), path, []eval.Text{evalText(t)}, eval.PerplexityOptions{Context: 64, Chunks: 4}, nil)
	if err != nil {
		t.Fatalf("%s: %v", filepath.Base(path), err)
	}
	ppl := reply.Texts[0].Perplexity
	if math.IsNaN(ppl) || math.IsInf(ppl, 0) || ppl <= 0 {
		t.Fatalf("%s: perplexity %v", filepath.Base(path), ppl)
	}
	return ppl
}
