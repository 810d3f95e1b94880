package worker

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/evomerge/evomerge/engine/eval"
	"github.com/evomerge/evomerge/engine/gguf"
	"github.com/evomerge/evomerge/engine/llm"
	"github.com/evomerge/evomerge/engine/merge"
	"github.com/evomerge/evomerge/zoo"
)

// zooSources are the zoo's models as a run's sources, named as recipes
// name them (the base first: the template).
func zooSources(t testing.TB) []eval.SourceRef {
	t.Helper()
	srcs := []eval.SourceRef{{Name: zoo.Base, Path: baseModel(t)}}
	for _, e := range zoo.Experts() {
		srcs = append(srcs, eval.SourceRef{Name: e, Path: zoo.Model(e)})
	}
	return srcs
}

// zooCandidates is a sequence of candidates of different techniques, with
// the path each must take: four in place, a frankenmerge that stacks nine
// layers out of six (file path), in place again, a merge into other
// tensor types (file path), then in place: a candidate that differs from
// the previous one in a single tensor, and the base copied unchanged
// (every weight restored).
func zooCandidates() []struct {
	name   string
	recipe *merge.Recipe
	path   string
} {
	ex := zoo.Experts()
	w := func(v float64) merge.Params { return merge.Params{"weight": merge.Scalar(v)} }
	wd := func(v, d float64) merge.Params {
		return merge.Params{"weight": merge.Scalar(v), "density": merge.Scalar(d)}
	}
	ties := func(d float64) *merge.Recipe {
		return &merge.Recipe{Method: "ties", Base: zoo.Base, Params: merge.Params{"lambda": merge.Scalar(1)},
			Models: []merge.ModelRef{{Model: ex[0], Params: wd(0.5, d)}, {Model: ex[1], Params: wd(0.3, 0.6)}, {Model: ex[2], Params: wd(0.4, 0.5)}}}
	}
	// Only the first expert's attention output weight changes: every other
	// tensor is the first TIES candidate's.
	tiesFiltered := ties(0.5)
	tiesFiltered.Models[0].Params["density"] = merge.Value{Filters: []merge.Filtered{
		{Filter: "blk.2.attn_output", Anchors: []float64{0.3}}, {Anchors: []float64{0.5}}}}
	return []struct {
		name   string
		recipe *merge.Recipe
		path   string
	}{
		{"linear", &merge.Recipe{Method: "linear", Base: zoo.Base, Models: []merge.ModelRef{{Model: ex[0], Params: w(0.5)}, {Model: ex[1], Params: w(0.3)}, {Model: ex[2], Params: w(0.2)}}}, eval.PathInPlace},
		{"ties", ties(0.5), eval.PathInPlace},
		{"task_arithmetic", &merge.Recipe{Method: "task_arithmetic", Base: zoo.Base,
			Models: []merge.ModelRef{{Model: ex[0], Params: w(0.7)}, {Model: ex[2], Params: w(0.4)}}}, eval.PathInPlace},
		{"slerp", &merge.Recipe{Method: "slerp", Base: zoo.Base, Params: merge.Params{"t": merge.Gradient(0.2, 0.8)},
			Models: []merge.ModelRef{{Model: ex[1]}}}, eval.PathInPlace},
		{"frankenmerge", &merge.Recipe{Method: "passthrough", Slices: []merge.Slice{
			{Sources: []merge.SliceSource{{Model: zoo.Base, From: 0, To: 6}}},
			{Sources: []merge.SliceSource{{Model: ex[0], From: 3, To: 6}}}}}, eval.PathFile},
		{"ties again", ties(0.5), eval.PathInPlace},
		// Without a base the first expert is the reference, whose block
		// weights are Q8_0: not the template's types.
		{"linear of experts", &merge.Recipe{Method: "linear", Models: []merge.ModelRef{{Model: ex[0], Params: w(0.5)}, {Model: ex[1], Params: w(0.5)}}}, eval.PathFile},
		{"ties, one tensor changed", tiesFiltered, eval.PathInPlace},
		{"base copied", &merge.Recipe{Method: "passthrough", Models: []merge.ModelRef{{Model: zoo.Base}}}, eval.PathInPlace},
	}
}

// withPaths is r with source names replaced by the zoo's paths (what the
// worker resolves them to), for the file merger run by the test itself.
func withPaths(r *merge.Recipe) *merge.Recipe {
	c := *r
	path := func(m string) string {
		if m == "" {
			return m
		}
		return zoo.Model(m)
	}
	c.Base = path(r.Base)
	c.Models = append([]merge.ModelRef(nil), r.Models...)
	for i := range c.Models {
		c.Models[i].Model = path(c.Models[i].Model)
	}
	c.Slices = nil
	for _, s := range r.Slices {
		ns := merge.Slice{Params: s.Params}
		for _, src := range s.Sources {
			src.Model = path(src.Model)
			ns.Sources = append(ns.Sources, src)
		}
		c.Slices = append(c.Slices, ns)
	}
	return &c
}

func encodeRecipe(t testing.TB, r *merge.Recipe) string {
	t.Helper()
	text, err := r.Encode()
	if err != nil {
		t.Fatal(err)
	}
	return string(text)
}

// TestInPlaceWeightsEqualTheFileMerger runs the worker's candidate op in
// this process and, after every candidate, reads each weight of the
// resident model back with ggml_backend_tensor_get: it must hold, byte for
// byte, the tensor the file merger writes for the last candidate merged in
// place; a file-path candidate leaves the weights alone.
func TestInPlaceWeightsEqualTheFileMerger(t *testing.T) {
	s := &server{opt: Options{Threads: 2, MaxModels: 2}, out: json.NewEncoder(io.Discard)}
	defer s.unloadAll()
	if _, err := s.prepare(&eval.Request{Prepare: &eval.PrepareRequest{Sources: zooSources(t), Scratch: t.TempDir()}}); err != nil {
		t.Fatal(err)
	}
	defer func() { s.res.close() }()
	ctx := context.Background()
	dir := t.TempDir()
	var lastInPlace string // file merged from the last in-place candidate
	weights := 0
	for _, c := range zooCandidates() {
		out, err := s.candidate(ctx, &eval.Request{Op: eval.OpCandidate, Candidate: &eval.CandidateRequest{Recipe: encodeRecipe(t, c.recipe)}})
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		reply := out.(eval.CandidateReply)
		if !strings.Contains(c.path, reply.Path) {
			t.Fatalf("%s: took the %s path (%s), want %s", c.name, reply.Path, reply.Fallback, c.path)
		}
		t.Logf("%-26s %-8s written %2d, restored %2d, kept %2d, merge %.2fs %s", c.name, reply.Path, reply.Written, reply.Restored, reply.Kept, reply.MergeSeconds, reply.Fallback)
		if reply.Path == eval.PathInPlace {
			lastInPlace = filepath.Join(dir, strings.ReplaceAll(c.name, " ", "-")+".gguf")
			if _, _, err := merge.Run(ctx, withPaths(c.recipe), lastInPlace, llm.Codec{}, merge.ExecOptions{}); err != nil {
				t.Fatal(err)
			}
			weights = reply.Written + reply.Restored + reply.Kept
		}
		switch c.name {
		case "ties again":
			if reply.Written != weights || reply.Kept != 0 {
				t.Errorf("%s after a file-path candidate: %d written, %d kept; want all %d written (the weights hold slerp)", c.name, reply.Written, reply.Kept, weights)
			}
		case "ties, one tensor changed":
			if reply.Written != 1 || reply.Kept != weights-1 {
				t.Errorf("%s: %d written, %d kept; want 1 and %d", c.name, reply.Written, reply.Kept, weights-1)
			}
		case "base copied":
			if reply.Restored != weights || reply.Written != 0 {
				t.Errorf("%s: %d restored, %d written; want all %d restored", c.name, reply.Restored, reply.Written, weights)
			}
		}
		checkResident(t, c.name, s.res, lastInPlace)
	}
}

// checkResident compares every resident weight with the file's tensor.
func checkResident(t *testing.T, name string, r *resident, path string) {
	t.Helper()
	f, err := gguf.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if len(f.Tensors) != len(r.weights) {
		t.Fatalf("%s: the merged file has %d tensors, the resident model %d", name, len(f.Tensors), len(r.weights))
	}
	for _, ti := range f.Tensors {
		want, err := f.ReadTensor(ti, nil)
		if err != nil {
			t.Fatal(err)
		}
		for _, w := range r.weights[ti.Name] {
			got := make([]byte, w.Bytes)
			if err := r.model.GetWeight(w, got); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("%s: resident weight %s differs from the file merger's tensor (%s)", name, ti.Name, filepath.Base(path))
			}
		}
	}
}

// TestCandidatesThroughPool: each candidate scored in place through the
// pool has the file path's scores (perplexity to 1e-6 relative; tasks and
// coherence equal), and the pool reports which path ran.
func TestCandidatesThroughPool(t *testing.T) {
	// One decode thread: for a 15M model it is about as fast as two, and
	// far faster when other processes share the cores (ggml's threads
	// spin at every barrier).
	p, err := eval.NewPool(context.Background(), eval.PoolOptions{Workers: 1, Threads: 1,
		Command: []string{os.Args[0]}, Env: []string{"EVOMERGE_TEST_WORKER=1"}})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	ctx := context.Background()
	srcs := zooSources(t)
	if _, err := p.Candidate(ctx, eval.CandidateRequest{Recipe: "merge_method = \"linear\""}, nil); !errors.Is(err, eval.ErrNotPrepared) {
		t.Fatalf("candidate before prepare: %v, want ErrNotPrepared", err)
	}
	prep, err := p.Prepare(ctx, eval.PrepareRequest{Sources: srcs, Scratch: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("prepared: %+v", prep)
	if prep.Template != srcs[0].Path || prep.Weights == 0 || len(prep.Buffers) == 0 {
		t.Fatalf("prepare reply %+v", prep)
	}
	texts := []eval.Text{{Name: "opticks", Content: opticks(t)[:40000]}}
	tasks := []eval.Task{
		{Context: "Once upon a time, there was a little girl named", Choices: []string{" Lily", " Xylophone"}, Answer: 0},
		{Context: "The sun was shining and the birds were", Choices: []string{" purple elephant", " singing"}, Answer: 1},
	}
	coherence := eval.DefaultCoherence()
	coherence.Prompts, coherence.MaxTokens = coherence.Prompts[:2], 16
	coherence.Reference = zoo.Base
	ppl := &eval.PerplexityOptions{Context: 256, Chunks: 2}
	for _, c := range zooCandidates() {
		req := eval.CandidateRequest{Recipe: encodeRecipe(t, c.recipe), Texts: texts, Perplexity: ppl}
		if c.name == "ties" || c.name == "ties, one tensor changed" {
			req.Tasks, req.Coherence = tasks, &coherence
		}
		var merged int
		auto, err := p.Candidate(ctx, req, func(stage string, done, total int) {
			if stage == eval.ProgressMerge {
				merged = done
			}
		})
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		req.Path = eval.PathFile
		file, err := p.Candidate(ctx, req, nil)
		if err != nil {
			t.Fatalf("%s, file path: %v", c.name, err)
		}
		if !strings.Contains(c.path, auto.Path) || file.Path != eval.PathFile {
			t.Fatalf("%s: paths %s (%s) and %s", c.name, auto.Path, auto.Fallback, file.Path)
		}
		if auto.Path == eval.PathInPlace && merged != auto.Written+auto.Restored {
			t.Errorf("%s: merge progress reached %d, %d tensors were written", c.name, merged, auto.Written+auto.Restored)
		}
		if auto.EvalCPUSeconds <= 0 || file.MergeCPUSeconds <= 0 || auto.EvalSeconds <= 0 || file.MergeSeconds <= 0 {
			t.Errorf("%s: times not reported: %+v, %+v", c.name, auto, file)
		}
		a, f := auto.Perplexity.Texts[0], file.Perplexity.Texts[0]
		t.Logf("%-26s %-8s ppl %.6f (file %.6f), merge %.2fs + eval %.2fs (file %.2fs + %.2fs)",
			c.name, auto.Path, a.Perplexity, f.Perplexity, auto.MergeSeconds, auto.EvalSeconds, file.MergeSeconds, file.EvalSeconds)
		if rel := math.Abs(a.Perplexity-f.Perplexity) / f.Perplexity; rel > 1e-6 || a.Tokens != f.Tokens {
			t.Errorf("%s: perplexity %v (%d tokens) in place, %v (%d) from the file: %.2g relative", c.name, a.Perplexity, a.Tokens, f.Perplexity, f.Tokens, rel)
		}
		if req.Tasks != nil {
			if auto.Tasks == nil || *auto.Tasks != *file.Tasks {
				t.Errorf("%s: tasks %+v in place, %+v from the file", c.name, auto.Tasks, file.Tasks)
			}
			if auto.Coherence == nil || auto.Coherence.Score != file.Coherence.Score || auto.Coherence.Samples[0].Text != file.Coherence.Samples[0].Text {
				t.Errorf("%s: coherence %+v in place, %+v from the file", c.name, auto.Coherence, file.Coherence)
			}
		}
	}

	// The base copied unchanged scores what the base file scores.
	base, err := p.Perplexity(ctx, srcs[0].Path, texts, *ppl, nil)
	if err != nil {
		t.Fatal(err)
	}
	copied, err := p.Candidate(ctx, eval.CandidateRequest{Recipe: encodeRecipe(t, &merge.Recipe{Method: "passthrough", Models: []merge.ModelRef{{Model: zoo.Base}}}),
		Texts: texts, Perplexity: ppl}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if copied.Perplexity.Texts[0].Perplexity != base.Texts[0].Perplexity {
		t.Errorf("the base merged in place scores %v, the base file %v", copied.Perplexity.Texts[0].Perplexity, base.Texts[0].Perplexity)
	}

	// Chosen windows travel in the request and come back one by one, each
	// what the same window scores in a run over the first ones.
	pick := &eval.PerplexityOptions{Context: 256, Windows: map[string][]int{"opticks": {1, 0}}}
	chosen, err := p.Candidate(ctx, eval.CandidateRequest{Recipe: encodeRecipe(t, &merge.Recipe{Method: "passthrough", Models: []merge.ModelRef{{Model: zoo.Base}}}),
		Texts: texts, Perplexity: pick}, nil)
	if err != nil {
		t.Fatal(err)
	}
	got, all := chosen.Perplexity.Texts[0].Windows, base.Texts[0].Windows
	if len(got) != 2 || len(all) != 2 || got[0] != all[1] || got[1] != all[0] || chosen.Perplexity.Texts[0].Available < 2 {
		t.Errorf("windows [1 0] in place: %+v; the base file's first two: %+v", got, all)
	}
	pick.Windows["opticks"] = []int{1 << 20}
	_, err = p.Candidate(ctx, eval.CandidateRequest{Recipe: encodeRecipe(t, &merge.Recipe{Method: "passthrough", Models: []merge.ModelRef{{Model: zoo.Base}}}),
		Texts: texts, Perplexity: pick}, nil)
	var we *eval.WorkerError
	if !errors.As(err, &we) || we.Kind != eval.KindInput || !strings.Contains(err.Error(), "bad perplexity window") {
		t.Errorf("a window beyond the text: %v, want an input error", err)
	}

	// Bad requests: one-line errors of kind input, and the worker serves on.
	frank := zooCandidates()[4].recipe // nine layers
	for _, bad := range []struct {
		req  eval.CandidateRequest
		want string
	}{
		{eval.CandidateRequest{Recipe: encodeRecipe(t, &merge.Recipe{Method: "linear", Models: []merge.ModelRef{{Model: "nobody"}}})}, `model "nobody" is not among the prepared sources`},
		{eval.CandidateRequest{Recipe: "merge_method = "}, "candidate recipe"},
		{eval.CandidateRequest{Recipe: encodeRecipe(t, frank), Path: eval.PathInPlace}, "cannot be merged in place: the merge has 83 tensors"},
	} {
		_, err := p.Candidate(ctx, bad.req, nil)
		var we *eval.WorkerError
		if !errors.As(err, &we) || we.Kind != eval.KindInput || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("got %v, want an input error containing %q", err, bad.want)
		}
	}
	if _, err := p.Prepare(ctx, eval.PrepareRequest{Sources: []eval.SourceRef{{Name: "x", Path: filepath.Join(t.TempDir(), "missing.gguf")}}}); err == nil ||
		!strings.Contains(err.Error(), "source x") {
		t.Errorf("prepare with a missing source: %v", err)
	}
}

// TestCandidatesUnderRetire: with Retire (forced when a GPU backend is
// loaded) a worker exits after jobs that free a context; candidates merged
// in place free nothing and keep the worker, a file-path candidate retires
// it, and its replacement prepares the sources before its first candidate.
func TestCandidatesUnderRetire(t *testing.T) {
	p, err := eval.NewPool(context.Background(), eval.PoolOptions{Workers: 1, Threads: 1,
		Command: []string{os.Args[0]}, Env: []string{"EVOMERGE_TEST_WORKER=1", "EVOMERGE_TEST_RETIRE=1"}})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	ctx := context.Background()
	if _, err := p.Prepare(ctx, eval.PrepareRequest{Sources: zooSources(t), Scratch: t.TempDir()}); err != nil {
		t.Fatal(err)
	}
	cands := zooCandidates()
	pid := func() int {
		h, err := eval.PoolHealth(ctx, p)
		if err != nil {
			t.Fatal(err)
		}
		return h.PID
	}
	var pids []int
	for _, i := range []int{1, 4, 1, 3} { // ties, frankenmerge (file), ties, slerp
		pids = append(pids, pid())
		reply, err := p.Candidate(ctx, eval.CandidateRequest{Recipe: encodeRecipe(t, cands[i].recipe)}, nil)
		if err != nil {
			t.Fatalf("%s: %v", cands[i].name, err)
		}
		if reply.Path != cands[i].path {
			t.Fatalf("%s: %s path", cands[i].name, reply.Path)
		}
	}
	pids = append(pids, pid())
	// The worker that merged the frankenmerge (pids[1]) retired; the others stayed.
	if pids[0] != pids[1] || pids[1] == pids[2] || pids[2] != pids[3] || pids[3] != pids[4] {
		t.Errorf("worker pids across ties, frankenmerge, ties, slerp: %v; want a new worker only after the frankenmerge", pids)
	}
}

// TestGraphMergeInPlace: with the graph merge forced on (the CPU backend
// here), linear, task-arithmetic and unsparsified TIES candidates are
// computed by ggml graphs — every weight of theirs — and the resident
// weights equal the file merger's byte for byte; sparsified TIES and
// slerp take the Go kernels, and a repeated candidate keeps every weight.
func TestGraphMergeInPlace(t *testing.T) {
	// One thread: ggml's CPU threads wait for each other at every graph
	// node by spinning, which on shared cores costs more than it gains.
	s := &server{opt: Options{Threads: 1, MaxModels: 2}, out: json.NewEncoder(io.Discard)}
	defer s.unloadAll()
	if _, err := s.prepare(&eval.Request{Prepare: &eval.PrepareRequest{Sources: zooSources(t), GraphMerge: "sometimes"}}); err == nil ||
		!strings.Contains(err.Error(), `graph_merge "sometimes"`) {
		t.Fatalf("prepare with a bad graph_merge: %v", err)
	}
	out, err := s.prepare(&eval.Request{Prepare: &eval.PrepareRequest{Sources: zooSources(t), Scratch: t.TempDir(), GraphMerge: eval.GraphMergeOn}})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { s.res.close() }()
	if dev := out.(eval.PrepareReply).GraphDevice; dev != "CPU" {
		t.Fatalf("graph device %q, want CPU", dev)
	}
	all := zooCandidates()
	// TIES without sparsification: sign election and disjoint mean on
	// the graph.
	dense := *all[1].recipe
	dense.Models = nil
	for _, m := range all[1].recipe.Models {
		m.Params = merge.Params{"weight": m.Params["weight"], "density": merge.Scalar(1)}
		dense.Models = append(dense.Models, m)
	}
	all = append(all, struct {
		name   string
		recipe *merge.Recipe
		path   string
	}{"ties at density 1", &dense, eval.PathInPlace})
	pick := func(name string) (c struct {
		name   string
		recipe *merge.Recipe
		path   string
	}) {
		for _, c := range all {
			if c.name == name {
				return c
			}
		}
		t.Fatalf("no candidate %s", name)
		return c
	}
	ctx := context.Background()
	dir := t.TempDir()
	for _, step := range []struct {
		name  string
		graph bool // every written weight by a graph (else none)
	}{{"linear", true}, {"ties", false}, {"task_arithmetic", true}, {"task_arithmetic", true}, {"ties at density 1", true}, {"slerp", false}} {
		c := pick(step.name)
		out, err := s.candidate(ctx, &eval.Request{Op: eval.OpCandidate, Candidate: &eval.CandidateRequest{Recipe: encodeRecipe(t, c.recipe)}})
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		reply := out.(eval.CandidateReply)
		t.Logf("%-16s %-8s written %2d (graph %2d), restored %2d, kept %2d, merge %.2fs", c.name, reply.Path, reply.Written, reply.Graph, reply.Restored, reply.Kept, reply.MergeSeconds)
		if reply.Path != eval.PathInPlace {
			t.Fatalf("%s: took the %s path (%s)", c.name, reply.Path, reply.Fallback)
		}
		if want := map[bool]int{true: reply.Written, false: 0}[step.graph]; reply.Graph != want {
			t.Errorf("%s: %d of %d written weights computed by graphs, want %d", c.name, reply.Graph, reply.Written, want)
		}
		file := filepath.Join(dir, strings.ReplaceAll(c.name, " ", "-")+".gguf")
		if _, _, err := merge.Run(ctx, withPaths(c.recipe), file, llm.Codec{}, merge.ExecOptions{}); err != nil {
			t.Fatal(err)
		}
		checkResident(t, c.name, s.res, file)
	}
}
