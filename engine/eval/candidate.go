package eval

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
)

// Candidates as recipes. Instead of a merged file, a worker can be sent a
// candidate's recipe: it merges the candidate itself and scores it. The
// run's sources are given once per worker (OpPrepare); the worker keeps
// one of them loaded — the template — with its weights in memory it owns,
// and for each candidate (OpCandidate) overwrites the weights whose
// contents change and evaluates on long-lived contexts. No candidate file
// is written and nothing is reloaded. Recipes that do not map one-to-one
// onto the template's tensors take the file path inside the worker: merge
// to a temporary file, load, evaluate, delete. The reply says which path
// ran and why.

// SourceRef is one source model of a run: what recipes call it and where
// the worker finds it. Workers on other machines will resolve a source
// from a reference pinned by revision and sha256 (the hub cache or an
// object store) into a local Path; Name stays what recipes say, so such
// fields can be added without touching recipes.
type SourceRef struct {
	Name string `json:"name"` // as recipes name the model (default: Path)
	Path string `json:"path"` // GGUF file on the worker's machine
	// SHA256 and Size pin the file for hosts on other machines
	// (engine/dist): a host uses its own copy only when it matches.
	// Workers ignore them.
	SHA256 string `json:"sha256,omitempty"`
	Size   int64  `json:"size,omitempty"`
}

// PrepareRequest announces a run's sources to a worker.
type PrepareRequest struct {
	Sources []SourceRef `json:"sources"`
	// Template is the Name of the source kept loaded (default: the first;
	// a run passes its base model).
	Template string `json:"template,omitempty"`
	// Scratch is the directory for the file path's temporary merges
	// (default: the system's temporary directory).
	Scratch string `json:"scratch,omitempty"`
	// CacheBytes bounds the worker's cache of merged tensors (0: none):
	// a tensor whose inputs and parameters an earlier candidate shared is
	// taken from it instead of being merged again.
	CacheBytes int64 `json:"cache_bytes,omitempty"`
	// SourceCacheBytes bounds the worker's float32 copies of source
	// tensors the SIMD kernels cannot decode (merge.SourceCache); the
	// sources' magnitude profiles are always kept.
	SourceCacheBytes int64 `json:"source_cache_bytes,omitempty"`
	// GraphMerge chooses who computes the weighted-sum tensors of
	// candidates merged in place (linear, task arithmetic and TIES without
	// sparsification): ggml graphs on the template's device, from source
	// tensors uploaded there once (GraphMergeOn), or the Go kernels
	// (GraphMergeOff). GraphMergeAuto ("", or "auto"), the default, is on when every
	// layer of the template is offloaded to a GPU and off otherwise: on the
	// CPU the Go kernels are the path.
	GraphMerge string `json:"graph_merge,omitempty"`
}

// Values of PrepareRequest.GraphMerge.
const (
	GraphMergeAuto = "auto" // "" means the same
	GraphMergeOn   = "on"
	GraphMergeOff  = "off"
)

// PrepareReply describes the loaded template.
type PrepareReply struct {
	Template string   `json:"template"` // its path
	Weights  int      `json:"weights"`  // weight tensors (distinct names)
	Bytes    int64    `json:"bytes"`    // their size
	Buffers  []string `json:"buffers"`  // where they live: "CPU", "CUDA0", ...
	Seconds  float64  `json:"seconds"`  // loading time (0 when already loaded)
	// GraphDevice is the buffer type the graph merge computes in ("CPU",
	// "CUDA0"), "" when candidates are merged by the Go kernels.
	GraphDevice string `json:"graph_device,omitempty"`
}

// Evaluation paths of a candidate.
const (
	PathInPlace = "in-place" // merged into the loaded template
	PathFile    = "file"     // merged to a temporary file that was loaded
)

// CandidateRequest is one candidate to merge and score. Each objective
// that is set is measured exactly as the op of the same name measures a
// model file.
type CandidateRequest struct {
	// Recipe is the candidate's recipe in the native TOML format
	// (merge.Recipe.Encode), naming models by their SourceRef names.
	Recipe     string             `json:"recipe"`
	Texts      []Text             `json:"texts,omitempty"`
	Perplexity *PerplexityOptions `json:"perplexity,omitempty"`
	Tasks      []Task             `json:"tasks,omitempty"`
	// Coherence.Reference names a source (or a GGUF path).
	Coherence *CoherenceOptions `json:"coherence,omitempty"`
	// Path forces PathFile or PathInPlace (an error when the recipe cannot
	// be merged in place); empty chooses in place whenever possible.
	Path string `json:"path,omitempty"`
	// Gradient asks for the perplexity of Texts together with its
	// gradient in the recipe's task-vector coefficients (GradientReply).
	// The recipe must be a weighted sum of task vectors
	// (merge.Recipe.TaskVectorCoefficients) over models engine/llm's
	// gradient graph covers (package engine/llm/gradshape); the worker then scores
	// the windows with that graph instead of merging and running
	// llama.cpp — the same windows and convention, equal to llama.cpp's
	// within 1e-4 nats — and the reply's Path is PathGradient. Tasks and
	// coherence cannot be asked with it.
	Gradient bool `json:"gradient,omitempty"`
}

// PathGradient is the path of a candidate scored by the gradient graph
// (CandidateRequest.Gradient).
const PathGradient = "gradient"

// GradientReply is the derivative of a candidate's mean log-perplexity —
// the mean over its texts of each text's mean negative log-likelihood per
// scored token, as the evolution's fitness combines them — in the
// coefficient c_i of each model's task vector in each tensor (the tensor
// merges to base + Σ c_i·(x_i − base)). Tensors that no model changes
// from the base are left out: their derivative is 0.
type GradientReply struct {
	Tensors []string `json:"tensors"`
	// D[t][i] is the derivative in the coefficient of the recipe's model i
	// in tensor Tensors[t].
	D [][]float64 `json:"d"`
}

// CandidateReply is a candidate's scores and how they were obtained.
type CandidateReply struct {
	Path     string `json:"path"`               // PathInPlace or PathFile
	Fallback string `json:"fallback,omitempty"` // why not in place
	// MergeSeconds covers planning and merging, and for the file path
	// writing and loading the file; EvalSeconds the objectives.
	MergeSeconds float64 `json:"merge_seconds"`
	EvalSeconds  float64 `json:"eval_seconds"`
	// The CPU time the worker process spent in each (all threads; zero
	// where the platform does not report it): unlike wall time, it hardly
	// moves when other processes share the cores.
	MergeCPUSeconds float64 `json:"merge_cpu_seconds,omitempty"`
	EvalCPUSeconds  float64 `json:"eval_cpu_seconds,omitempty"`
	// In place: weights computed and written, restored to the template's
	// bytes, and left as they were (already holding this candidate's bytes).
	Written  int `json:"written"`
	Restored int `json:"restored"`
	Kept     int `json:"kept"`
	// CacheHits counts the merged tensors taken from the worker's tensor
	// cache (PrepareRequest.CacheBytes) rather than computed.
	CacheHits int `json:"cache_hits"`
	// Graph counts the written weights computed by ggml graphs
	// (PrepareRequest.GraphMerge) rather than the Go kernels.
	Graph int `json:"graph,omitempty"`

	Perplexity *PerplexityReply `json:"perplexity,omitempty"`
	Gradient   *GradientReply   `json:"gradient,omitempty"`
	Tasks      *TaskResult      `json:"tasks,omitempty"`
	Coherence  *CoherenceResult `json:"coherence,omitempty"`
}

// ProgressMerge is the Text of progress events while a candidate is
// merged (Done/Total count tensors); perplexity progress carries the name
// of the text.
const ProgressMerge = "merge"

// ErrNotPrepared is returned for candidates sent to a pool whose sources
// were never prepared.
var ErrNotPrepared = errors.New("no sources prepared for candidates (call Prepare first)")

// preparedKey marks, in a worker's loaded set, that it holds the sources
// of the pool's prepare generation gen.
func preparedKey(gen uint64) string { return fmt.Sprintf("\x00prepared %d", gen) }

// Prepare announces the run's sources. One worker loads the template now,
// so a bad source is reported here; the others (and replacements of
// workers that exit) prepare before their first candidate.
func (p *Pool) Prepare(ctx context.Context, req PrepareRequest) (PrepareReply, error) {
	p.mu.Lock()
	p.prepGen++
	gen := p.prepGen
	p.mu.Unlock()
	raw, err := p.doPrepared(ctx, &req, gen, nil, nil)
	if err != nil {
		return PrepareReply{}, err
	}
	var out PrepareReply
	if err := json.Unmarshal(raw, &out); err != nil {
		return out, fmt.Errorf("%s: bad reply from worker: %w", OpPrepare, err)
	}
	p.mu.Lock()
	if gen > p.preparedGen { // a later Prepare that finished first wins
		p.prepared, p.preparedGen = &req, gen
	}
	p.mu.Unlock()
	return out, nil
}

// Candidate merges and scores one candidate on a prepared worker.
// progress receives ProgressMerge events and perplexity's per-text ones.
func (p *Pool) Candidate(ctx context.Context, req CandidateRequest, progress func(stage string, done, total int)) (CandidateReply, error) {
	p.mu.Lock()
	prep, gen := p.prepared, p.preparedGen
	p.mu.Unlock()
	var out CandidateReply
	if prep == nil {
		return out, ErrNotPrepared
	}
	var onEvent func(Response)
	if progress != nil {
		onEvent = func(r Response) {
			if r.Event == EventProgress {
				progress(r.Text, r.Done, r.Total)
			}
		}
	}
	raw, err := p.doPrepared(ctx, prep, gen, &Request{Op: OpCandidate, Candidate: &req}, onEvent)
	if err != nil {
		return out, err
	}
	if err := json.Unmarshal(raw, &out); err != nil {
		return out, fmt.Errorf("%s: bad reply from worker: %w", OpCandidate, err)
	}
	return out, nil
}

// doPrepared runs req (nil: only the prepare) on a worker that holds the
// sources of generation gen, preparing one first when none does. A worker
// that retires after preparing (a GPU worker that freed another run's
// model) is replaced and the next one tried.
func (p *Pool) doPrepared(ctx context.Context, prep *PrepareRequest, gen uint64, req *Request, onEvent func(Response)) (json.RawMessage, error) {
	key := preparedKey(gen)
	for attempt := 0; ; attempt++ {
		w, err := p.acquire(ctx, key)
		if err != nil {
			return nil, err
		}
		if !w.loaded[key] || req == nil {
			res, retire, err := p.roundTrip(ctx, w, &Request{Op: OpPrepare, Prepare: prep}, nil)
			if p.settle(ctx, w, err, retire) {
				if err == nil && attempt < 2 {
					continue
				}
				if err == nil {
					err = errors.New("prepare: the worker retired after loading the sources")
				}
				return nil, err
			}
			if err != nil {
				p.release(w)
				return nil, err
			}
			for k := range w.loaded {
				if len(k) > 0 && k[0] == 0 {
					delete(w.loaded, k) // another generation's sources
				}
			}
			w.loaded[key] = true
			if req == nil {
				p.release(w)
				return res, nil
			}
		}
		res, retire, err := p.roundTrip(ctx, w, req, onEvent)
		if !p.settle(ctx, w, err, retire) {
			p.release(w)
		}
		return res, err
	}
}

// settle replaces w when the job crashed it, was cancelled or the worker
// retires, reporting whether it did; otherwise the caller releases w.
func (p *Pool) settle(ctx context.Context, w *procWorker, err error, retire bool) bool {
	var crash *CrashError
	if errors.As(err, &crash) || ctx.Err() != nil || retire {
		go p.replace(w)
		return true
	}
	return false
}
