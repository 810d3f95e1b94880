package llm

import "github.com/ollama/ollama/llama"

// BackendInit is a placeholder to force the cgo build while bootstrapping.
func BackendInit() { llama.BackendInit() }
