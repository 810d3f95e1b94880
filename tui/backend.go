package tui

import (
	"context"

	"github.com/evomerge/evomerge/engine/config"
	"github.com/evomerge/evomerge/engine/eval"
	"github.com/evomerge/evomerge/engine/evolve"
)

// Backend is the engine as the workbench sees it. The CLI implements it
// over engine/evolve, the merge package and the evaluation workers; tests
// use a scripted fake. Keeping it an interface keeps this package free of
// cgo (llama.cpp), so it builds and tests in seconds.
//
// Every method is called from a tea.Cmd goroutine, never from Update, and
// must return promptly once ctx is cancelled.
type Backend interface {
	// Run runs a tournament until it finishes; events go to sink in order.
	// The sink never blocks for long. ctl pauses and resumes the run.
	// With resume, cfg.Output.Dir holds a run to continue from its
	// history (evolve.Options.Resume).
	Run(ctx context.Context, cfg config.Config, resume bool, sink evolve.Sink, ctl *evolve.Control) (*evolve.Result, error)
	// Materialize merges a candidate's recipe (TOML, as in
	// CandidateInfo.Recipe) into a temporary GGUF for chatting and returns
	// its path. The backend owns the file and removes it when it is done
	// with it (at the latest when its process exits).
	Materialize(ctx context.Context, recipe string) (string, error)
	// Generate streams a continuation of prompt from a model: a GGUF path,
	// or a configured source's reference (path or Hugging Face id) which
	// the backend resolves. onText receives the text as it forms.
	Generate(ctx context.Context, model, prompt string, opt eval.GenerateOptions, onText func(string)) (eval.GenerateResult, error)
}

// DeviceReporter is optionally implemented by a Backend that can describe
// the hardware evaluation runs on (e.g. "CUDA: NVIDIA H100 80GB, 16
// threads"); the status bar shows it. It is called once, in a command.
type DeviceReporter interface {
	Device() string
}
