package merge

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/evomerge/evomerge/engine/gguf"
	"github.com/evomerge/evomerge/engine/gguf/synth"
)

// Executor benchmarks on generated models (width 1024, a 32000-token
// embedding: 95 MB per model in F16), inputs in the page cache, the output
// discarded: what a merge costs besides writing the file. SetBytes counts
// the input tensors read, so MB/s is GB/s of input ×1000.
//
//	go test -run '^$' -bench Execute -benchtime 3x ./engine/merge
//
// "merge" is the decode → Method.Merge → encode path, "fused" the block
// pipeline; "fused-cached" runs TIES with another density than the run
// before it with a source cache, as a tournament's next candidate does.

var benchModels = map[gguf.Type][]string{}

func benchModelPaths(b *testing.B, typ gguf.Type) []string {
	b.Helper()
	if p, ok := benchModels[typ]; ok {
		return p
	}
	dir := filepath.Join(os.TempDir(), "evomerge-exec-bench")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		b.Fatal(err)
	}
	var paths []string
	for i, name := range []string{"base", "a", "b", "c"} {
		path := filepath.Join(dir, name+"-"+typ.String()+".gguf")
		if _, err := os.Stat(path); err != nil {
			m := synth.Model{Type: typ, Dim: 1024, FFN: 2816, Vocab: 32000, Layers: 2, Seed: uint64(i + 1)}
			if err := m.Write(path, name); err != nil {
				b.Fatal(err)
			}
		}
		paths = append(paths, path)
	}
	benchModels[typ] = paths
	return paths
}

func benchExecute(b *testing.B, r *Recipe, opt ExecOptions, next func(r *Recipe, i int)) {
	b.Helper()
	var p *Plan
	defer func() {
		if p != nil {
			p.Close()
		}
	}()
	for i := 0; b.Loop(); i++ {
		if next != nil || p == nil { // one plan, as in a merge, unless the recipe changes
			if next != nil {
				next(r, i)
			}
			if p != nil {
				p.Close()
			}
			var err error
			if p, err = NewPlan(r, PlanOptions{}); err != nil {
				b.Fatal(err)
			}
			b.SetBytes(p.InputBytes())
		}
		if _, err := p.WriteTo(context.Background(), io.Discard, opt); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkExecute(b *testing.B) {
	for _, typ := range []gguf.Type{gguf.TypeF16, gguf.TypeQ8_0} {
		paths := benchModelPaths(b, typ)
		models := func(params func(i int) Params) []ModelRef {
			var ms []ModelRef
			for i, p := range paths[1:] {
				ms = append(ms, ModelRef{Model: p, Params: params(i)})
			}
			return ms
		}
		linear := &Recipe{Method: "linear", Models: models(func(int) Params { return Params{"weight": Scalar(1)} })}
		ties := &Recipe{Method: "ties", Base: paths[0], Models: models(func(int) Params {
			return Params{"weight": Scalar(0.5), "density": Scalar(0.5)}
		})}
		threads := 2
		b.Run("linear-"+typ.String()+"/merge", func(b *testing.B) {
			benchExecute(b, linear, ExecOptions{Threads: threads, noFuse: true}, nil)
		})
		b.Run("linear-"+typ.String()+"/fused", func(b *testing.B) {
			benchExecute(b, linear, ExecOptions{Threads: threads}, nil)
		})
		b.Run("ties-"+typ.String()+"/merge", func(b *testing.B) {
			benchExecute(b, ties, ExecOptions{Threads: threads, noFuse: true}, nil)
		})
		b.Run("ties-"+typ.String()+"/fused", func(b *testing.B) {
			benchExecute(b, ties, ExecOptions{Threads: threads}, nil)
		})
		sources := NewSourceCache(0)
		b.Run("ties-"+typ.String()+"/fused-cached", func(b *testing.B) {
			benchExecute(b, ties, ExecOptions{Threads: threads, Sources: sources}, func(r *Recipe, i int) {
				for k := range r.Models {
					r.Models[k].Params["density"] = Scalar(0.3 + 0.1*float64(i%5) + 0.01*float64(k))
				}
			})
		})
	}
}
