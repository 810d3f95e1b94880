package main

import "github.com/evomerge/evomerge/engine/llm"

func main() { llm.BackendInit() }
