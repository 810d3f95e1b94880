// Package worker is the child-process side of evaluation: it serves the
// line-delimited JSON protocol of engine/eval on stdin/stdout, running the
// eval algorithms on models loaded through engine/llm (llama.cpp). The
// `evomerge-tui worker` command runs Serve; the parent is eval.Pool.
//
// Candidates merged in place (resident.go) are computed by the Go merge
// kernels, or, with eval.PrepareRequest.GraphMerge on (by default when
// the template is wholly on a GPU), their weighted-sum tensors by ggml
// graphs on the template's device from sources uploaded there once
// (llm.GraphMerger); the rest of a candidate still takes the Go kernels.
package worker

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sync"
	"time"

	"github.com/evomerge/evomerge/engine/eval"
	"github.com/evomerge/evomerge/engine/gguf"
	"github.com/evomerge/evomerge/engine/llm"
)

// Options configure a worker.
type Options struct {
	Threads   int // CPU threads for decoding (default: all CPUs)
	GPULayers int // layers to offload; -1 = all when a GPU is present
	MaxModels int // loaded models kept (default 2: a candidate and a reference)
	// Retire makes the worker exit after every job that used a model (the
	// pool starts a fresh one). It is forced on when a GPU backend is
	// loaded: freeing a llama.cpp context whose batches ran on the GPU
	// crashes (SIGSEGV in llama_free, on an H100 with the CUDA backend
	// loaded beside the statically linked CPU one), and a process exit is
	// the one reliable way to return GPU memory anyway. Candidates merged
	// in place (resident.go) free nothing and do not count: they run on
	// contexts that live as long as the process.
	Retire bool
}

type server struct {
	opt    Options
	used   bool      // a job used a model since the worker started (Retire)
	models []*loaded // most recently used last
	res    *resident // the prepared sources (resident.go)
	out    *json.Encoder
	mu     sync.Mutex // serialises writes to out
}

type loaded struct {
	path  string
	model *llm.Model
	busy  int // open sessions; a busy model is never evicted
	// gpuFallback says why the model was loaded on the CPU after loading
	// it with GPU layers failed ("" when it was not).
	gpuFallback string
}

// Serve answers requests until in ends or ctx is cancelled.
func Serve(ctx context.Context, in io.Reader, out io.Writer, opt Options) error {
	if opt.Threads <= 0 {
		opt.Threads = runtime.NumCPU()
	}
	if opt.MaxModels <= 0 {
		opt.MaxModels = 2
	}
	llm.Init()
	if len(llm.GPUs()) > 0 {
		opt.Retire = true
	}
	s := &server{opt: opt, out: json.NewEncoder(out)}
	defer func() {
		if !s.opt.Retire {
			s.unloadAll() // with Retire, exiting frees everything
			if s.res != nil {
				s.res.close()
			}
		}
	}()
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 1<<20), 256<<20)
	for sc.Scan() {
		if err := ctx.Err(); err != nil {
			return err
		}
		var req eval.Request
		if err := json.Unmarshal(sc.Bytes(), &req); err != nil {
			s.send(eval.Response{Event: eval.EventError, Kind: eval.KindInput, Error: fmt.Sprintf("bad request line: %v", err)})
			continue
		}
		result, err := s.handle(ctx, &req)
		if err != nil {
			retire := s.opt.Retire && s.used
			s.send(eval.Response{ID: req.ID, Event: eval.EventError, Kind: kindOf(err), Error: err.Error(), Retire: retire})
			if retire {
				return nil
			}
			continue
		}
		raw, err := json.Marshal(result)
		if err != nil {
			s.send(eval.Response{ID: req.ID, Event: eval.EventError, Kind: eval.KindInternal, Error: err.Error()})
			continue
		}
		retire := s.opt.Retire && s.used
		s.send(eval.Response{ID: req.ID, Event: eval.EventDone, Result: raw, Retire: retire})
		if retire {
			return nil
		}
	}
	return sc.Err()
}

func (s *server) send(r eval.Response) {
	s.mu.Lock()
	defer s.mu.Unlock()
	_ = s.out.Encode(r) // a broken pipe means the parent is gone; nothing to tell
}

// loadError marks failures to load a model (bad file, unsupported arch).
type loadError struct{ err error }

func (e loadError) Error() string { return e.err.Error() }
func (e loadError) Unwrap() error { return e.err }

func kindOf(err error) string {
	var le loadError
	var fe *gguf.FormatError
	var ie inputError
	switch {
	case errors.As(err, &ie):
		return eval.KindInput
	case errors.As(err, &le), errors.As(err, &fe), errors.Is(err, os.ErrNotExist):
		return eval.KindLoad
	case errors.Is(err, eval.ErrTextTooShort), errors.Is(err, eval.ErrBadWindow):
		return eval.KindInput
	}
	return eval.KindInternal
}

func (s *server) handle(ctx context.Context, req *eval.Request) (any, error) {
	switch req.Op {
	case eval.OpHealth:
		h := s.health()
		for _, m := range s.models {
			h.Loaded = append(h.Loaded, m.path)
		}
		if s.res != nil {
			h.Loaded = append(h.Loaded, s.res.template)
		}
		return h, nil
	case eval.OpLoad:
		l, err := s.model(req.Model)
		if err != nil {
			return nil, err
		}
		m := l.model
		return eval.ModelInfo{Path: req.Model, Architecture: m.Architecture(), Description: m.Description(),
			Params: m.Params(), Layers: m.Layers(), Vocab: m.VocabSize(), TrainContext: m.TrainContext(),
			Offloaded: m.Offloaded(), Offloadable: m.OffloadableLayers(), GPUFallback: l.gpuFallback}, nil
	case eval.OpUnload:
		s.unload(req.Model)
		return struct{}{}, nil
	case eval.OpPerplexity:
		return s.perplexity(ctx, req)
	case eval.OpGenerate:
		return s.generate(ctx, req)
	case eval.OpTasks:
		return s.tasks(ctx, req)
	case eval.OpCoherence:
		return s.coherence(ctx, req)
	case eval.OpPrepare:
		return s.prepare(req)
	case eval.OpCandidate:
		return s.candidate(ctx, req)
	}
	return nil, fmt.Errorf("unknown op %q", req.Op)
}

// model returns a loaded model, loading it (and evicting the least
// recently used idle one) when needed.
func (s *server) model(path string) (*loaded, error) {
	if path == "" {
		return nil, loadError{errors.New("no model given")}
	}
	if i := slices.IndexFunc(s.models, func(l *loaded) bool { return l.path == path }); i >= 0 {
		l := s.models[i]
		s.models = append(slices.Delete(s.models, i, i+1), l)
		return l, nil
	}
	m, err := llm.Load(path, llm.ModelParams{GPULayers: s.opt.GPULayers})
	fallback := ""
	if err != nil && s.opt.GPULayers != 0 && len(llm.GPUs()) > 0 {
		// Out of GPU memory is the usual reason; the CPU may still hold it.
		if cpu, cpuErr := llm.Load(path, llm.ModelParams{GPULayers: 0}); cpuErr == nil {
			m, err = cpu, nil
			fallback = "loading the model onto the GPU failed (out of GPU memory? the worker log at debug level says why), so it runs on the CPU"
		}
	}
	if err != nil {
		return nil, loadError{err}
	}
	for i := 0; len(s.models) >= s.opt.MaxModels && i < len(s.models); {
		if s.models[i].busy > 0 {
			i++
			continue
		}
		s.models[i].model.Close()
		s.models = slices.Delete(s.models, i, i+1)
	}
	l := &loaded{path: path, model: m, gpuFallback: fallback}
	s.models = append(s.models, l)
	return l, nil
}

// health describes the worker: its devices as llama.cpp enumerated them
// and, when it found no GPU, the machine's GPUs and the backend libraries
// it could have loaded (for Placement's "present but unused").
func (s *server) health() eval.Health {
	h := eval.Health{PID: os.Getpid(), Threads: s.opt.Threads, GPULayers: s.opt.GPULayers, GPUs: []string{}, Loaded: []string{}}
	for _, d := range llm.Devices() {
		h.Devices = append(h.Devices, eval.Device{Name: d.Name, Description: d.Description, Type: string(d.Type),
			MemoryTotal: d.MemoryTotal, MemoryFree: d.MemoryFree})
		if d.IsGPU() {
			h.GPUs = append(h.GPUs, d.Name+": "+d.Description)
		}
	}
	if len(h.GPUs) == 0 {
		h.SystemGPUs = eval.SystemGPUs()
		h.Backends = eval.GPUBackendFiles(backendDirs())
	}
	return h
}

// backendDirs are the directories llama.cpp searched for backends:
// OLLAMA_LIBRARY_PATH, else <exe>/../lib/ollama (see llm.Init).
func backendDirs() []string {
	if v, ok := os.LookupEnv("OLLAMA_LIBRARY_PATH"); ok {
		return filepath.SplitList(v)
	}
	exe, err := os.Executable()
	if err != nil {
		return nil
	}
	return []string{filepath.Join(filepath.Dir(exe), "..", "lib", "ollama")}
}

func (s *server) unload(path string) {
	s.models = slices.DeleteFunc(s.models, func(l *loaded) bool {
		if l.path == path {
			l.model.Close()
			return true
		}
		return false
	})
}

func (s *server) unloadAll() {
	for _, l := range s.models {
		l.model.Close()
	}
	s.models = nil
}

// session is a model with a context: the eval.LM the algorithms use.
type session struct {
	*llm.Model
	ctx    *llm.Context
	l      *loaded
	retire bool
}

func (s *server) session(path string, size int) (*session, error) {
	l, err := s.model(path)
	if err != nil {
		return nil, err
	}
	if size <= 0 {
		size = l.model.TrainContext()
	}
	c, err := l.model.NewContext(llm.ContextParams{Size: size, Batch: min(size, 512), Threads: s.opt.Threads})
	if err != nil {
		return nil, err
	}
	l.busy++
	s.used = true
	return &session{Model: l.model, ctx: c, l: l, retire: s.opt.Retire}, nil
}

func (s *session) close() {
	if !s.retire {
		s.ctx.Close() // with Retire the process exits instead
	}
	s.l.busy--
}
func (s *session) ContextSize() int   { return s.ctx.Size() }
func (s *session) BatchSize() int     { return s.ctx.BatchSize() }
func (s *session) Clear()             { s.ctx.Clear() }
func (s *session) RemoveFrom(pos int) { s.ctx.RemoveFrom(pos) }
func (s *session) Decode(tokens []int, pos, outputFrom int) ([]float32, error) {
	return s.ctx.Decode(tokens, pos, outputFrom)
}

// overlapScoring decides eval.PerplexityOptions.Overlap for a session:
// scoring a window while the next decodes pays when the whole decode runs
// on a GPU, leaving the CPU cores to the scoring; with layers on the CPU
// the two compete for the same cores, and the serial order is kept (see
// BenchmarkPerplexityScoring). The result is the same either way.
func overlapScoring(s *session) bool {
	return s.Offloaded() > 0 && s.Offloaded() >= s.OffloadableLayers()
}

func (s *server) progress(id uint64) func(done, total int) {
	return func(done, total int) {
		s.send(eval.Response{ID: id, Event: eval.EventProgress, Done: done, Total: total})
	}
}

func (s *server) perplexity(ctx context.Context, req *eval.Request) (any, error) {
	opt := eval.PerplexityOptions{}
	if req.Perplexity != nil {
		opt = *req.Perplexity
	}
	if opt.Context == 0 {
		opt.Context = 256
	}
	if len(req.Texts) == 0 {
		return nil, errors.New("perplexity: no texts")
	}
	sess, err := s.session(req.Model, opt.Context)
	if err != nil {
		return nil, err
	}
	defer sess.close()
	opt.Overlap = overlapScoring(sess)
	var reply eval.PerplexityReply
	for i, t := range req.Texts {
		opt.Progress = func(done, total int) {
			s.send(eval.Response{ID: req.ID, Event: eval.EventProgress, Text: t.Name, Done: done, Total: total})
		}
		start := time.Now()
		r, err := eval.PerplexityText(ctx, sess, t, opt)
		if err != nil {
			return nil, fmt.Errorf("text %d (%s): %w", i, t.Name, err)
		}
		reply.Texts = append(reply.Texts, eval.TextPerplexity{Name: t.Name, PerplexityResult: r, Seconds: time.Since(start).Seconds()})
	}
	return reply, nil
}

func (s *server) generate(ctx context.Context, req *eval.Request) (any, error) {
	opt := eval.GenerateOptions{SamplingOptions: eval.DefaultSampling(), MaxTokens: 128}
	if req.Generate != nil {
		opt = *req.Generate
	}
	sess, err := s.session(req.Model, 0)
	if err != nil {
		return nil, err
	}
	defer sess.close()
	return eval.Generate(ctx, sess, req.Prompt, opt, func(text string) {
		s.send(eval.Response{ID: req.ID, Event: eval.EventToken, Text: text})
	})
}

func (s *server) tasks(ctx context.Context, req *eval.Request) (any, error) {
	sess, err := s.session(req.Model, 0)
	if err != nil {
		return nil, err
	}
	defer sess.close()
	return eval.ScoreTasks(ctx, sess, req.Tasks, s.progress(req.ID))
}

func (s *server) coherence(ctx context.Context, req *eval.Request) (any, error) {
	opt := eval.DefaultCoherence()
	if req.Coherence != nil {
		opt = *req.Coherence
	}
	gen, err := s.session(req.Model, 0)
	if err != nil {
		return nil, err
	}
	defer gen.close()
	ref := gen
	if opt.Reference != "" && opt.Reference != req.Model {
		// Load the reference, then make sure the candidate is still loaded
		// (the cache holds at least two models).
		if ref, err = s.session(opt.Reference, 0); err != nil {
			return nil, fmt.Errorf("coherence reference: %w", err)
		}
		defer ref.close()
	}
	return eval.Coherence(ctx, gen, ref, opt)
}
