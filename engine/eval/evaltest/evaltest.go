// Package evaltest is a stand-in evaluation worker for tests of what
// drives workers — the pool, the evolution engine, the command line —
// without llama.cpp: it speaks engine/eval's protocol and answers with
// made-up but deterministic results, so such tests run in any test binary
// in milliseconds. The test binary doubles as the worker: its TestMain
// calls ServeIfWorker first, and a pool started with Worker's command and
// environment runs it. A test of the command line, whose pools start this
// executable with the argument "worker", sets EnvVar to Behaviour.Value
// instead: the workers inherit it.
//
// Results derive from the model file's bytes (a candidate's: from its
// recipe, which is not merged): perplexity per text is exp(1.5 + u) with
// u in [0, 1) hashed from the file and the text's name — or, for a
// candidate that asks for its gradient, a smooth landscape of its
// task-vector coefficients with that gradient (see gradient) — coherence
// u/2 + 1/4, and every task's first choice is picked. Knobs make
// it fail the way real workers do: an operation that answers with an
// error, a model that kills the worker (llama.cpp's aborts), starts after
// the first few that exit at once (no memory, no backend).
package evaltest

import (
	"bufio"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"io"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/evomerge/evomerge/engine/eval"
	"github.com/evomerge/evomerge/engine/gguf"
	"github.com/evomerge/evomerge/engine/merge"
)

// EnvVar holds, in a worker's environment, the Behaviour (as JSON) of the
// stand-in it is to be.
const EnvVar = "EVOMERGE_EVALTEST_WORKER"

// Behaviour is what a fake worker does besides answering.
type Behaviour struct {
	// Fail maps an operation (eval.OpPerplexity, ...) to the error message
	// it answers with.
	Fail map[string]string `json:"fail,omitempty"`
	// Crash is a model file name (base name) on which the worker dies;
	// with CrashOnce, only the first time (in any worker): the file
	// CrashOnce names records that it happened.
	Crash     string `json:"crash,omitempty"`
	CrashOnce string `json:"crash_once,omitempty"`
	// StartsFile counts the workers started; with it, the starts after
	// the first MaxStarts exit at once with a reason on stderr.
	StartsFile string `json:"starts_file,omitempty"`
	MaxStarts  int    `json:"max_starts,omitempty"`
}

// Value is b as EnvVar holds it.
func (b Behaviour) Value() string {
	raw, err := json.Marshal(b)
	if err != nil {
		panic(err) // a Behaviour always encodes
	}
	return string(raw)
}

// Worker returns the command and environment that start this test binary
// as a fake worker with behaviour b (eval.PoolOptions's Command and Env).
func Worker(b Behaviour) (command, env []string) {
	return []string{os.Args[0]}, []string{EnvVar + "=" + b.Value()}
}

// ServeIfWorker serves the protocol on stdin/stdout and exits when this
// process was started by Worker's command; otherwise it returns at once.
func ServeIfWorker() {
	spec, ok := os.LookupEnv(EnvVar)
	if !ok {
		return
	}
	var b Behaviour
	if err := json.Unmarshal([]byte(spec), &b); err != nil {
		fmt.Fprintln(os.Stderr, "evaltest:", err)
		os.Exit(2)
	}
	os.Exit(b.serve(os.Stdin, os.Stdout, os.Stderr))
}

func (b Behaviour) serve(in io.Reader, out, log io.Writer) int {
	if b.StartsFile != "" {
		n, err := countStart(b.StartsFile)
		if err != nil {
			fmt.Fprintln(log, "evaltest:", err)
			return 1
		}
		if n > b.MaxStarts {
			fmt.Fprintln(log, "ggml_backend_cpu_init: failed to allocate the compute buffer: out of memory")
			return 1
		}
	}
	fmt.Fprintln(log, "evaltest: fake evaluation worker started")
	enc := json.NewEncoder(out)
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 1<<20), 256<<20)
	for sc.Scan() {
		var req eval.Request
		if err := json.Unmarshal(sc.Bytes(), &req); err != nil {
			enc.Encode(eval.Response{Event: eval.EventError, Kind: eval.KindInput, Error: err.Error()})
			continue
		}
		if b.crashes(req.Model) {
			fmt.Fprintf(log, "GGML_ASSERT(%s) failed: evaltest crash\n", b.Crash)
			return 134
		}
		result, kind, err := b.answer(&req)
		if err != nil {
			enc.Encode(eval.Response{ID: req.ID, Event: eval.EventError, Kind: kind, Error: err.Error()})
			continue
		}
		raw, err := json.Marshal(result)
		if err != nil {
			enc.Encode(eval.Response{ID: req.ID, Event: eval.EventError, Kind: eval.KindInternal, Error: err.Error()})
			continue
		}
		enc.Encode(eval.Response{ID: req.ID, Event: eval.EventDone, Result: raw})
	}
	return 0
}

// crashes reports whether a request for model kills the worker.
func (b Behaviour) crashes(model string) bool {
	if b.Crash == "" || filepath.Base(model) != b.Crash {
		return false
	}
	if b.CrashOnce == "" {
		return true
	}
	f, err := os.OpenFile(b.CrashOnce, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
	if err != nil {
		return false // it crashed before
	}
	f.Close()
	return true
}

// countStart records one start in file and returns how many there were.
func countStart(file string) (int, error) {
	f, err := os.OpenFile(file, os.O_CREATE|os.O_RDWR|os.O_APPEND, 0o644)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	if _, err := f.Write([]byte{'.'}); err != nil {
		return 0, err
	}
	st, err := f.Stat()
	if err != nil {
		return 0, err
	}
	return int(st.Size()), nil
}

// answer is the result of one request, or its error and kind.
func (b Behaviour) answer(req *eval.Request) (any, string, error) {
	if msg, ok := b.Fail[req.Op]; ok {
		return nil, eval.KindInternal, fmt.Errorf("%s", msg)
	}
	if req.Op == eval.OpHealth {
		return eval.Health{PID: os.Getpid(), Threads: 1, GPUs: []string{}, Loaded: []string{}}, "", nil
	}
	switch req.Op {
	case eval.OpUnload:
		return struct{}{}, "", nil
	case eval.OpPrepare:
		return prepare(req.Prepare)
	case eval.OpCandidate:
		return candidate(req.Candidate)
	}
	seed, err := modelHash(req.Model)
	if err != nil {
		return nil, eval.KindLoad, err
	}
	switch req.Op {
	case eval.OpLoad:
		return eval.ModelInfo{Path: req.Model, Architecture: "llama"}, "", nil
	case eval.OpPerplexity:
		return perplexity(seed, req.Texts), "", nil
	case eval.OpCoherence:
		return coherence(seed, req.Coherence), "", nil
	case eval.OpTasks:
		return tasks(req.Tasks), "", nil
	case eval.OpGenerate:
		return eval.GenerateResult{Text: ", there was a fake continuation.", Tokens: 7, PromptTokens: 5, StopReason: "eos"}, "", nil
	}
	return nil, eval.KindInput, fmt.Errorf("unknown op %q", req.Op)
}

// prepare checks the run's sources exist, as a worker loading them does.
func prepare(req *eval.PrepareRequest) (any, string, error) {
	if req == nil || len(req.Sources) == 0 {
		return nil, eval.KindInput, fmt.Errorf("prepare: no sources")
	}
	for _, src := range req.Sources {
		if _, err := os.Stat(src.Path); err != nil {
			return nil, eval.KindLoad, err
		}
	}
	return eval.PrepareReply{Template: req.Sources[0].Path, Buffers: []string{"CPU"}}, "", nil
}

// candidate scores a recipe by its text (nothing is merged), each
// requested objective as for a model file.
func candidate(req *eval.CandidateRequest) (any, string, error) {
	if req == nil || req.Recipe == "" {
		return nil, eval.KindInput, fmt.Errorf("candidate: no recipe")
	}
	if req.Gradient {
		return gradient(req)
	}
	h := fnv.New64a()
	h.Write([]byte(req.Recipe))
	seed := h.Sum64()
	reply := eval.CandidateReply{Path: eval.PathInPlace, MergeSeconds: 0.001, EvalSeconds: 0.001}
	if req.Perplexity != nil && len(req.Texts) > 0 {
		p := perplexity(seed, req.Texts)
		reply.Perplexity = &p
	}
	if req.Coherence != nil {
		c := coherence(seed, req.Coherence)
		reply.Coherence = &c
	}
	if len(req.Tasks) > 0 {
		t := tasks(req.Tasks)
		reply.Tasks = &t
	}
	return reply, "", nil
}

func perplexity(seed uint64, texts []eval.Text) eval.PerplexityReply {
	var reply eval.PerplexityReply
	for _, t := range texts {
		ppl := math.Exp(1.5 + unit(seed, t.Name))
		reply.Texts = append(reply.Texts, eval.TextPerplexity{Name: t.Name, Seconds: 0.001,
			PerplexityResult: eval.PerplexityResult{Perplexity: ppl, StdErr: ppl / 50, NLL: math.Log(ppl), Tokens: 127, Chunks: 1,
				Windows: []eval.WindowNLL{{Index: 0, NLL: 127 * math.Log(ppl), Tokens: 127}}, Available: 1}})
	}
	return reply
}

func coherence(seed uint64, opt *eval.CoherenceOptions) eval.CoherenceResult {
	res := eval.CoherenceResult{Score: unit(seed, "coherence")/2 + 0.25, RefPerplexity: 20, Distinct2: 0.9}
	prompts := eval.DefaultCoherencePrompts()
	if opt != nil && len(opt.Prompts) > 0 {
		prompts = opt.Prompts
	}
	for _, p := range prompts {
		res.Samples = append(res.Samples, eval.CoherenceSample{Prompt: p, Text: " and so on", RefPerplexity: 20, Distinct2: 0.9, Score: res.Score})
	}
	return res
}

func tasks(ts []eval.Task) eval.TaskResult {
	res := eval.TaskResult{Tasks: len(ts)}
	for _, t := range ts {
		if t.Answer == 0 {
			res.Correct++
			res.CorrectNorm++
		}
	}
	if res.Tasks > 0 {
		res.Accuracy = float64(res.Correct) / float64(res.Tasks)
		res.AccuracyNorm = res.Accuracy
	}
	return res
}

// modelHash hashes a model file's bytes (a missing file is a load error,
// as llama.cpp's).
func modelHash(path string) (uint64, error) {
	if path == "" {
		return 0, fmt.Errorf("no model given")
	}
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	h := fnv.New64a()
	if _, err := io.Copy(h, f); err != nil {
		return 0, err
	}
	return h.Sum64(), nil
}

// unit is a number in [0, 1) from seed and name.
func unit(seed uint64, name string) float64 {
	h := fnv.New64a()
	h.Write([]byte(strconv.FormatUint(seed, 16) + "\x00" + strings.ToLower(name)))
	return float64(h.Sum64()>>11) / (1 << 53)
}

// GradientTarget is the task-vector coefficient at which the stand-in's
// gradient landscape is lowest.
const GradientTarget = 0.3

// gradient answers a gradient candidate on a landscape of the recipe's
// task-vector coefficients c (merge.Recipe.TaskVectorCoefficients, over
// the base model's tensors and block count): every text's mean
// log-perplexity is 1.5 + mean over tensors and models of
// (c − GradientTarget)², and the reply carries its exact derivative.
func gradient(req *eval.CandidateRequest) (any, string, error) {
	r, err := merge.ParseRecipe(req.Recipe)
	if err != nil {
		return nil, eval.KindInput, err
	}
	if len(req.Texts) == 0 || r.Base == "" {
		return nil, eval.KindInput, fmt.Errorf("candidate: a gradient needs texts and a base")
	}
	f, err := gguf.Open(r.Base)
	if err != nil {
		return nil, eval.KindLoad, err
	}
	defer f.Close()
	layers, _ := f.Metadata.ArchUint("block_count")
	type term struct {
		name string
		c    []float64
	}
	var terms []term
	n := 0
	for _, ti := range f.Tensors {
		c, err := r.TaskVectorCoefficients(ti.Name, int(layers))
		if err != nil {
			return nil, eval.KindInput, err
		}
		if c != nil {
			terms = append(terms, term{ti.Name, c})
			n += len(c)
		}
	}
	loss := 1.5
	g := &eval.GradientReply{}
	for _, t := range terms {
		d := make([]float64, len(t.c))
		for i, c := range t.c {
			loss += (c - GradientTarget) * (c - GradientTarget) / float64(n)
			d[i] = 2 * (c - GradientTarget) / float64(n)
		}
		g.Tensors, g.D = append(g.Tensors, t.name), append(g.D, d)
	}
	reply := eval.CandidateReply{Path: eval.PathGradient, MergeSeconds: 0.001, EvalSeconds: 0.001, Gradient: g, Perplexity: &eval.PerplexityReply{}}
	for _, t := range req.Texts {
		reply.Perplexity.Texts = append(reply.Perplexity.Texts, eval.TextPerplexity{Name: t.Name, Seconds: 0.001,
			PerplexityResult: eval.PerplexityResult{Perplexity: math.Exp(loss), NLL: loss, Tokens: 127, Chunks: 1,
				Windows: []eval.WindowNLL{{Index: 0, NLL: 127 * loss, Tokens: 127}}, Available: 1}})
	}
	return reply, "", nil
}
