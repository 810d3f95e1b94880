package bench

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"time"

	"github.com/evomerge/evomerge/engine/config"
	"github.com/evomerge/evomerge/engine/eval"
	"github.com/evomerge/evomerge/engine/gguf"
	"github.com/evomerge/evomerge/engine/merge"
	"github.com/evomerge/evomerge/kernels"
	"github.com/evomerge/evomerge/zoo"
)

// InPlaceModelMB is the size of the generated models of the in-place
// turnaround rows (F16), next to the zoo's 15M.
const InPlaceModelMB = 1024

// inplaceBench times a candidate the two ways a worker can score it, on
// one worker with the run's sources prepared (the template loaded once):
// merged in place (merge into the loaded weights + evaluation) and the
// file path (merge to a file + load + evaluation), against evaluation
// alone (the unmodified template scored through the same op). The
// candidates are TIES merges of three experts over the base, with a
// density that alternates between rounds so every in-place candidate
// computes and writes every weight. Evaluation is the default fitness:
// the configured texts and windows. Each size runs a few alternating
// rounds (the medians are reported): on a shared machine single timings
// vary by tens of percent.
func inplaceBench(ctx context.Context, o *Options) ([]Row, error) {
	if err := zoo.Check(); err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp(o.Dir, "evomerge-bench-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	cfg := config.Default()
	texts, err := eval.LoadTexts(cfg.Evaluation.Texts)
	if err != nil {
		return nil, err
	}
	popt := eval.PerplexityOptions{Context: cfg.Evaluation.Context, Chunks: cfg.Evaluation.Chunks}

	zooSources := []eval.SourceRef{{Name: "base", Path: zoo.Model(zoo.Base)}}
	for i, e := range zoo.Experts() {
		zooSources = append(zooSources, eval.SourceRef{Name: fmt.Sprintf("expert%d", i+1), Path: zoo.Model(e)})
	}
	zooRows, err := inplaceSize(ctx, o, dir, "stories15M (zoo)", zooSources, texts, popt, 3)
	if err != nil {
		return nil, err
	}
	paths, err := writeLoadable(dir, InPlaceModelMB, o.logf)
	if err != nil {
		return nil, err
	}
	var gen []eval.SourceRef
	for i, p := range paths {
		name := "base"
		if i > 0 {
			name = fmt.Sprintf("expert%d", i)
		}
		gen = append(gen, eval.SourceRef{Name: name, Path: p})
	}
	st, err := os.Stat(paths[0])
	if err != nil {
		return nil, err
	}
	genRows, err := inplaceSize(ctx, o, dir, fmt.Sprintf("generated %.2f GB", float64(st.Size())/1e9), gen, texts, popt, 1)
	return append(zooRows, genRows...), err
}

// inplaceSize measures one model size on the CPU and, unless the
// benchmark is CPU-only, on the GPU when a GPU backend is found: the same
// rows with ", GPU" and the in-place turnaround on the GPU against the CPU.
func inplaceSize(ctx context.Context, o *Options, dir, label string, sources []eval.SourceRef, texts []eval.Text, popt eval.PerplexityOptions, rounds int) ([]Row, error) {
	rows, cpu, _, err := inplaceRows(ctx, o, dir, label, sources, texts, popt, rounds, 0)
	if err != nil || o.GPULayers == 0 {
		return rows, err
	}
	gpuRows, gpu, dev, err := inplaceRows(ctx, o, dir, label+", GPU", sources, texts, popt, rounds, -1)
	switch {
	case err != nil:
		o.logf("%s on the GPU: %v", label, err)
		return rows, nil
	case !dev.OnGPU():
		o.logf("%s: GPU rows skipped: %s", label, orText(dev.Unused, "no GPU backend found"))
		return rows, nil
	}
	return append(append(rows, gpuRows...),
		ratioRow("inplace", fmt.Sprintf("%s: candidate merged in place + scored, GPU vs CPU", label), gpu, "s", cpu, "s on the CPU", dev.String())), nil
}

func orText(s, alt string) string {
	if s == "" {
		return alt
	}
	return s
}

// inplaceRows measures one model size over `rounds` alternating rounds on
// a worker offloading gpuLayers layers. It returns the rows, the median
// in-place turnaround and where the template ran.
func inplaceRows(ctx context.Context, o *Options, dir, label string, sources []eval.SourceRef, texts []eval.Text, popt eval.PerplexityOptions, rounds, gpuLayers int) ([]Row, float64, eval.Placement, error) {
	pool, err := o.newPool(ctx, 1, gpuLayers)
	if err != nil {
		return nil, 0, eval.Placement{}, err
	}
	defer pool.Close()
	dev, err := pool.Placement(ctx, sources[0].Path)
	if err != nil {
		return nil, 0, dev, err
	}
	pool.Unload(ctx, sources[0].Path)
	if gpuLayers != 0 && !dev.OnGPU() {
		return nil, 0, dev, nil
	}
	prep, err := pool.Prepare(ctx, eval.PrepareRequest{Sources: sources, Scratch: dir})
	if err != nil {
		return nil, 0, dev, err
	}
	copyBase := &merge.Recipe{Method: "passthrough", Models: []merge.ModelRef{{Model: "base"}}}
	ties := func(density float64) *merge.Recipe {
		r := &merge.Recipe{Method: "ties", Base: "base", Params: merge.Params{"lambda": merge.Scalar(1)}}
		for _, s := range sources[1:] {
			r.Models = append(r.Models, merge.ModelRef{Model: s.Name, Params: merge.Params{"weight": merge.Scalar(0.5), "density": merge.Scalar(density)}})
		}
		return r
	}
	run := func(r *merge.Recipe, path string) (eval.CandidateReply, float64, error) {
		text, err := r.Encode()
		if err != nil {
			return eval.CandidateReply{}, 0, err
		}
		start := time.Now()
		rep, err := pool.Candidate(ctx, eval.CandidateRequest{Recipe: string(text), Texts: texts, Perplexity: &popt, Path: path}, nil)
		return rep, time.Since(start).Seconds(), err
	}
	// Per round: wall seconds of the whole call (eval alone: its
	// evaluation), the worker's CPU seconds, and the merge part of each.
	var alone, inplace, file, aloneCPU, inplaceCPU, fileCPU, inMerge, fileMerge []float64
	written := 0
	for round := range rounds {
		// Evaluation alone: the template restored (not counted) and scored.
		a, _, err := run(copyBase, eval.PathInPlace)
		if err != nil {
			return nil, 0, dev, err
		}
		// Both paths merge the same candidate, in alternating order (the
		// first to read the sources may find them out of the page cache).
		candidate := ties([]float64{0.5, 0.6}[round%2])
		var in, f eval.CandidateReply
		var inT, fT float64
		for _, path := range [][]string{{eval.PathInPlace, eval.PathFile}, {eval.PathFile, eval.PathInPlace}}[round%2] {
			rep, wall, err := run(candidate, path)
			if err != nil {
				return nil, 0, dev, err
			}
			if path == eval.PathInPlace {
				in, inT = rep, wall
			} else {
				f, fT = rep, wall
			}
		}
		if x, y := in.Perplexity.Texts[0].Perplexity, f.Perplexity.Texts[0].Perplexity; x != y {
			o.logf("warning: %s: perplexity %v in place, %v from the file", label, x, y)
		}
		o.logf("%s, round %d: evaluation alone %.2fs (CPU %.2fs); in place %.2fs (merge %.2fs + eval %.2fs; CPU %.2f + %.2f); file path %.2fs (merge+write+load %.2fs + eval %.2fs; CPU %.2f + %.2f)",
			label, round+1, a.EvalSeconds, a.EvalCPUSeconds, inT, in.MergeSeconds, in.EvalSeconds, in.MergeCPUSeconds, in.EvalCPUSeconds,
			fT, f.MergeSeconds, f.EvalSeconds, f.MergeCPUSeconds, f.EvalCPUSeconds)
		alone, inplace, file = append(alone, a.EvalSeconds), append(inplace, inT), append(file, fT)
		aloneCPU = append(aloneCPU, a.EvalCPUSeconds)
		inplaceCPU = append(inplaceCPU, in.MergeCPUSeconds+in.EvalCPUSeconds)
		fileCPU = append(fileCPU, f.MergeCPUSeconds+f.EvalCPUSeconds)
		inMerge, fileMerge = append(inMerge, in.MergeSeconds), append(fileMerge, f.MergeSeconds)
		written = in.Written
	}
	what := fmt.Sprintf("median of %d rounds; %d texts × %d windows of %d; template loaded once in %.2fs", rounds, len(texts), popt.Chunks, popt.Context, prep.Seconds)
	rows := []Row{
		ratioRow("inplace", fmt.Sprintf("%s: TIES of 3 experts merged in place + scored", label), median(inplace), "s", median(alone), "s evaluation alone",
			fmt.Sprintf("merge %.2fs (%d weights written); %s", median(inMerge), written, what)),
		ratioRow("inplace", fmt.Sprintf("%s: the same through a file (merge, load, score)", label), median(file), "s", median(alone), "s evaluation alone",
			fmt.Sprintf("merge+write+load %.2fs", median(fileMerge))),
	}
	if median(aloneCPU) > 0 {
		rows = append(rows,
			ratioRow("inplace", fmt.Sprintf("%s: in place, worker CPU time", label), median(inplaceCPU), "CPU s", median(aloneCPU), "CPU s evaluation alone", "all threads; steadier than wall time on a shared machine"),
			ratioRow("inplace", fmt.Sprintf("%s: through a file, worker CPU time", label), median(fileCPU), "CPU s", median(aloneCPU), "CPU s evaluation alone", ""))
	}
	graph, err := graphRows(ctx, o, pool, dir, label, sources, rounds)
	if err != nil {
		return nil, 0, dev, err
	}
	return append(rows, graph...), median(inplace), dev, nil
}

// graphRows times the merge alone of a task-arithmetic candidate of every
// expert over the base, merged in place by the Go kernels and by ggml
// graphs on the template's device (PrepareRequest.GraphMerge), on the
// pool's worker. The weights alternate between rounds so every candidate
// computes every weight; each mode's first candidate is not counted (it
// reads the sources into the page cache, and the graph's uploads them to
// the device: reported apart).
func graphRows(ctx context.Context, o *Options, pool *eval.Pool, dir, label string, sources []eval.SourceRef, rounds int) ([]Row, error) {
	ta := func(w float64) (string, error) {
		r := &merge.Recipe{Method: "task_arithmetic", Base: "base"}
		for _, s := range sources[1:] {
			r.Models = append(r.Models, merge.ModelRef{Model: s.Name, Params: merge.Params{"weight": merge.Scalar(w)}})
		}
		text, err := r.Encode()
		return string(text), err
	}
	times := map[string][]float64{}
	var upload float64
	var graphed, written int
	var device string
	for _, mode := range []string{eval.GraphMergeOff, eval.GraphMergeOn} {
		prep, err := pool.Prepare(ctx, eval.PrepareRequest{Sources: sources, Scratch: dir, GraphMerge: mode})
		if err != nil {
			return nil, err
		}
		if mode == eval.GraphMergeOn {
			device = prep.GraphDevice
		}
		for round := range rounds + 1 {
			text, err := ta([]float64{0.5, 0.6}[round%2])
			if err != nil {
				return nil, err
			}
			rep, err := pool.Candidate(ctx, eval.CandidateRequest{Recipe: text, Path: eval.PathInPlace}, nil)
			if err != nil {
				return nil, err
			}
			o.logf("%s, graph merge %s, candidate %d: merge %.2fs (%d weights written, %d by graphs)", label, orText(mode, "auto"), round, rep.MergeSeconds, rep.Written, rep.Graph)
			if round == 0 {
				if mode == eval.GraphMergeOn {
					upload = rep.MergeSeconds
				}
				continue
			}
			times[mode] = append(times[mode], rep.MergeSeconds)
			if mode == eval.GraphMergeOn {
				graphed, written = rep.Graph, rep.Written
			}
		}
	}
	return []Row{ratioRow("inplace", fmt.Sprintf("%s: task arithmetic of 3 experts merged in place by ggml graphs", label),
		median(times[eval.GraphMergeOn]), "s", median(times[eval.GraphMergeOff]), "s by the Go kernels",
		fmt.Sprintf("merge only, median of %d; %d of %d weights by graphs on %s; the first candidate uploads the sources: %.2fs", rounds, graphed, written, device, upload))}, nil
}

func median(v []float64) float64 {
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// writeLoadable writes a base and three experts that llama.cpp loads: the
// zoo base's tokenizer and llama metadata with wider, deeper blocks sized
// to about sizeMB in F16, random weights (scaled so activations stay
// finite), the experts the base plus small noise, as fine-tunes are.
func writeLoadable(dir string, sizeMB int, logf func(string, ...any)) ([]string, error) {
	ref, err := gguf.Open(zoo.Model(zoo.Base))
	if err != nil {
		return nil, err
	}
	defer ref.Close()
	vocab, _ := ref.Metadata.Uint("llama.vocab_size")
	const dim, ffn, heads = 2048, 5632, 16
	perLayer := 4*dim*dim + 3*dim*ffn
	layers := max(1, (sizeMB<<20/2-dim*int(vocab))/perLayer)
	md := ref.Metadata.Clone()
	for _, kv := range []gguf.KV{
		{Key: "llama.embedding_length", Value: uint32(dim)}, {Key: "llama.feed_forward_length", Value: uint32(ffn)},
		{Key: "llama.block_count", Value: uint32(layers)}, {Key: "llama.attention.head_count", Value: uint32(heads)},
		{Key: "llama.attention.head_count_kv", Value: uint32(heads)}, {Key: "llama.rope.dimension_count", Value: uint32(dim / heads)},
	} {
		md = md.Set(kv.Key, kv.Value)
	}
	mat := func(name string, a, b int) gguf.TensorInfo {
		return gguf.TensorInfo{Name: name, Shape: []uint64{uint64(a), uint64(b)}, Type: gguf.TypeF16}
	}
	vec := func(name string) gguf.TensorInfo {
		return gguf.TensorInfo{Name: name, Shape: []uint64{dim}, Type: gguf.TypeF32}
	}
	tensors := []gguf.TensorInfo{mat("token_embd.weight", dim, int(vocab))}
	for l := range layers {
		p := fmt.Sprintf("blk.%d.", l)
		tensors = append(tensors, vec(p+"attn_norm.weight"), mat(p+"attn_q.weight", dim, dim), mat(p+"attn_k.weight", dim, dim),
			mat(p+"attn_v.weight", dim, dim), mat(p+"attn_output.weight", dim, dim), vec(p+"ffn_norm.weight"),
			mat(p+"ffn_gate.weight", dim, ffn), mat(p+"ffn_down.weight", ffn, dim), mat(p+"ffn_up.weight", dim, ffn))
	}
	tensors = append(tensors, vec("output_norm.weight"))
	var paths []string
	start := time.Now()
	for m := range 4 {
		path := filepath.Join(dir, fmt.Sprintf("loadable-%d.gguf", m))
		if err := writeLoadableModel(path, gguf.Header{Metadata: md.Set("general.name", fmt.Sprintf("bench-%d", m)), Tensors: tensors}, uint64(m)); err != nil {
			return nil, err
		}
		paths = append(paths, path)
	}
	logf("generated 4 loadable models of %d layers (width %d) in %.1fs", layers, dim, time.Since(start).Seconds())
	return paths, nil
}

// writeLoadableModel writes model m: base weights N(0, 1/dim) (norms 1),
// plus N(0, (0.05/√dim)²) noise seeded by m for m > 0.
func writeLoadableModel(path string, h gguf.Header, m uint64) error {
	fw, err := gguf.Create(path, h)
	if err != nil {
		return err
	}
	defer fw.Abort()
	var codec kernels.Native
	for i, ti := range h.Tensors {
		vals := make([]float32, ti.Elements())
		if len(ti.Shape) == 1 {
			for j := range vals {
				vals[j] = 1
			}
		} else {
			sd := 1 / math.Sqrt(float64(ti.Shape[0]))
			base := rand.New(rand.NewPCG(uint64(i), 0))
			for j := range vals {
				vals[j] = float32(base.NormFloat64() * sd)
			}
			if m > 0 {
				noise := rand.New(rand.NewPCG(uint64(i), m))
				for j := range vals {
					vals[j] += float32(noise.NormFloat64() * sd * 0.05)
				}
			}
		}
		buf := make([]byte, ti.Bytes())
		if err := codec.Encode(ti.Type, buf, vals, int(ti.Shape[0])); err != nil {
			return err
		}
		if err := fw.WriteTensor(ti.Name, buf); err != nil {
			return err
		}
	}
	return fw.Commit()
}
