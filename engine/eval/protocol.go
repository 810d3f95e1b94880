package eval

import "encoding/json"

// The worker protocol: the parent writes one JSON Request per line to a
// worker's stdin; the worker answers with JSON Response lines on stdout —
// zero or more events ("token", "progress") and then exactly one final
// line ("done" with a result, or "error"). One request runs at a time per
// worker. Worker stderr carries llama.cpp's log, never protocol.
//
// Results carry every value a model can produce, infinite and NaN ones
// included (a broken model's perplexity is +Inf or NaN): such a float is
// the JSON string "+Inf", "-Inf" or "NaN" where a number would stand (see
// Float). A reader that expects plain JSON numbers must accept those.

// Operations a worker understands.
const (
	OpHealth     = "health"
	OpLoad       = "load"
	OpUnload     = "unload"
	OpPerplexity = "perplexity"
	OpGenerate   = "generate"
	OpTasks      = "tasks"
	OpCoherence  = "coherence"
	// OpPrepare gives a worker the run's source models and loads one of
	// them to merge candidates into (see candidate.go).
	OpPrepare = "prepare"
	// OpCandidate merges a recipe over the prepared sources and scores it.
	OpCandidate = "candidate"
)

// Request is one job for a worker.
type Request struct {
	ID    uint64 `json:"id"`
	Op    string `json:"op"`
	Model string `json:"model,omitempty"` // GGUF path

	Texts      []Text             `json:"texts,omitempty"`      // perplexity
	Perplexity *PerplexityOptions `json:"perplexity,omitempty"` // perplexity
	Prompt     string             `json:"prompt,omitempty"`     // generate
	Generate   *GenerateOptions   `json:"generate,omitempty"`   // generate
	Tasks      []Task             `json:"tasks,omitempty"`      // tasks
	Coherence  *CoherenceOptions  `json:"coherence,omitempty"`  // coherence
	Prepare    *PrepareRequest    `json:"prepare,omitempty"`    // prepare
	Candidate  *CandidateRequest  `json:"candidate,omitempty"`  // candidate
}

// Text is a named evaluation text.
type Text struct {
	Name    string `json:"name"`
	Content string `json:"content"`
}

// Response events.
const (
	EventToken    = "token"
	EventProgress = "progress"
	EventDone     = "done"
	EventError    = "error"
)

// Response is one line from a worker.
type Response struct {
	ID     uint64          `json:"id"`
	Event  string          `json:"event"`
	Text   string          `json:"text,omitempty"`  // token
	Done   int             `json:"done,omitempty"`  // progress
	Total  int             `json:"total,omitempty"` // progress
	Result json.RawMessage `json:"result,omitempty"`
	Error  string          `json:"error,omitempty"`
	Kind   string          `json:"kind,omitempty"` // error class, see WorkerError
	// Retire, on a final response, says the worker exits after it; the
	// pool starts a replacement (see worker.Options.Retire).
	Retire bool `json:"retire,omitempty"`
}

// Health is a worker's answer to OpHealth.
type Health struct {
	PID     int      `json:"pid"`
	Threads int      `json:"threads"`
	GPUs    []string `json:"gpus"` // "CUDA0: NVIDIA H100 80GB HBM3", one per GPU device
	Loaded  []string `json:"loaded"`
	// Devices are every device llama.cpp enumerated, the CPU included.
	Devices []Device `json:"devices"`
	// GPULayers is the worker's --gpu-layers (−1: all when a GPU is found).
	GPULayers int `json:"gpu_layers"`
	// SystemGPUs name the GPUs the machine has (see SystemGPUs), used or not.
	SystemGPUs []string `json:"system_gpus,omitempty"`
	// Backends are the GPU backend libraries on the worker's search path.
	Backends []string `json:"gpu_backends,omitempty"`
}

// TextPerplexity is the perplexity of one named text.
type TextPerplexity struct {
	Name string `json:"name"`
	PerplexityResult
	Seconds float64 `json:"seconds"`
}

// PerplexityReply answers OpPerplexity.
type PerplexityReply struct {
	Texts []TextPerplexity `json:"texts"`
}

// Error kinds a worker reports, for callers that branch on them.
const (
	KindLoad     = "load"     // the model could not be loaded
	KindInput    = "input"    // the request was invalid (text too short, bad task)
	KindInternal = "internal" // anything else
)

// ModelInfo answers OpLoad.
type ModelInfo struct {
	Path         string `json:"path"`
	Architecture string `json:"architecture"`
	Description  string `json:"description"`
	Params       uint64 `json:"params"`
	Layers       int    `json:"layers"`
	Vocab        int    `json:"vocab"`
	TrainContext int    `json:"train_context"`
	// Offloaded of Offloadable layers (blocks + output) are on GPUs.
	Offloaded   int `json:"layers_offloaded"`
	Offloadable int `json:"layers_offloadable"`
	// GPUFallback says why the model runs on the CPU though GPU layers
	// were asked for and a GPU backend is loaded (it failed to load so).
	GPUFallback string `json:"gpu_fallback,omitempty"`
}
